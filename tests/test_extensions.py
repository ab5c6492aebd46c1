"""Compiled extensions go where the send rule says they run; elsewhere, a reason.

Every local interpreter builds the same small extensions (single-phase and
multi-phase init, abi3, and a compiled twin of a .py), and every slave
imports every build. The expectation is the rule restated independently:
version-specific binaries load only on the interpreter that built them; an
abi3 binary (floor cp36) loads on any CPython 3.6+, unless it links its
builder's libpython (pyenv's shared 2.7-3.7 builds do), as ``objdump``
tells.
"""
import os
import subprocess
import sys

import execnet
import pytest

import bridge
from bridge._binaries import extension_problem
from bridge._locate import SearchPath
from bridge._roots import DirectoryRoot
from bridge.compat import tags
from conftest import (FREE_THREADED, MATRIX, execnet_cannot_start, find_python, label_version,
                      remote_value, served_files, served_path, slave_spec)
from extensions import built_site

CHECK = """
out = {}
for name in ("extdemo._single", "extdemo._multi", "extlimited._limited"):
    try:
        module = __import__(name, fromlist=["add"])
        out[name] = ["loaded", module.add(2, 3)]
    except ImportError as error:
        out[name] = ["refused", str(error)]
import extdemo.speed, extdemo.both
out["speed"] = [extdemo.speed.ACCELERATED, extdemo.speed.add(2, 3)]
out["both"] = [extdemo.both.KIND, extdemo.both.add(2, 3)]
channel.send(out)
"""

# What a refusal must name: the binary's tag and the slave's, per interpreter.
BINARY_TAG = {"2.7": "cp27mu", "3.6": "cpython-36m", "3.7": "cpython-37m",
              "pypy3": "pypy39-pp73"}
SLAVE_TAG = {"2.7": "cp27mu", "3.6": "cp36m", "3.7": "cp37m", "pypy3": "pypy39_pp73"}


def binary_tag(label):
    return BINARY_TAG.get(label, "cpython-" + label.replace(".", ""))


def slave_abi(label):
    return SLAVE_TAG.get(label, "cp" + label.replace(".", ""))


_builds = {}


def build_of(label):
    """The site folder of ``label``'s build, or skip with the reason."""
    if label not in _builds:
        python, reason = find_python(label)
        _builds[label] = (built_site(label, python), None) if python else (None, reason)
    site, reason = _builds[label]
    if site is None:
        pytest.skip(reason)
    return site


def links_libpython(path):
    out = subprocess.check_output(["objdump", "-p", path]).decode("utf-8", "replace")
    return any(line.split()[-1].startswith("libpython") for line in out.splitlines()
               if line.strip().startswith("NEEDED"))


def module_file(site, package, module):
    """The built binary of ``package.module``, or None where this build has none."""
    folder = os.path.join(site, package)
    names = [name for name in (os.listdir(folder) if os.path.isdir(folder) else [])
             if name.startswith(module + ".") and name.endswith(".so")]
    return os.path.join(site, package, names[0]) if names else None


def expected_loads(builder, slave, site, name):
    package, module = name.split(".")
    binary = module_file(site, package, module)
    if binary is None:
        return False
    if module == "_limited":
        # 3.15's setuptools names it .abi3-<multiarch>.so, a suffix 3.14+ alone list.
        multiarch_name = ".abi3-" in os.path.basename(binary)
        return (slave not in ("2.7", "pypy3") and not slave.endswith(FREE_THREADED)
                and (builder == slave or not links_libpython(binary))
                and (not multiarch_name or label_version(slave) >= (3, 14)))
    return builder == slave


@pytest.mark.parametrize("builder", MATRIX, ids=["built-py" + l.replace(".", "") for l in MATRIX])
def test_every_build_on_every_slave(builder, slave_label, gateway, cache_root):
    site = build_of(builder)
    bridge.install(gateway, path=[site], allow_extensions=True, cache_root=cache_root)
    out = remote_value(gateway, CHECK)
    for name in ("extdemo._single", "extdemo._multi", "extlimited._limited"):
        if expected_loads(builder, slave_label, site, name):
            assert out[name] == ["loaded", 5], (name, out[name])
        else:
            assert out[name][0] == "refused", (name, out[name])
            if module_file(site, *name.split(".")):
                message = out[name][1]
                assert name in message
                assert slave_abi(slave_label) in message, message
                if name != "extlimited._limited":
                    assert binary_tag(builder) in message, message
                else:
                    assert "abi3" in message or "libpython" in message, message
    accelerated = expected_loads(builder, slave_label, site, "extdemo._single")
    assert out["speed"] == [accelerated, 5]
    assert out["both"] == ["compiled" if builder == slave_label else "source", 5]


def test_no_binary_is_ever_sent_without_allow_extensions(slave_label, gateway, cache_root):
    site = build_of(slave_label)
    handle = bridge.install(gateway, path=[site], cache_root=cache_root)
    out = remote_value(gateway, CHECK)
    assert out["extdemo._single"][0] == "refused"
    assert "allow_extensions=True" in out["extdemo._single"][1]
    assert out["speed"] == [False, 5] and out["both"] == ["source", 5]
    sent = served_files(handle)
    assert sent and not [name for name in sent if ".so" in name]


def master_label():
    info = tags.facts()
    if info["implementation"] == "pypy":
        return "pypy3"
    return "%d.%d" % tuple(info["version"][:2])


@pytest.fixture
def own_binary():
    """A binary this master's interpreter built, and this interpreter's facts."""
    label = master_label()
    site = build_of(label)
    path = os.path.relpath(module_file(site, "extdemo", "_single"), site).replace(os.sep, "/")
    return DirectoryRoot(site), path, tags.facts()


@pytest.mark.parametrize("change, reason", [
    ({}, None),
    ({"machine": "aarch64"}, "built for another machine than aarch64"),
    ({"bits": 32}, "built for another machine"),
    ({"system": "darwin"}, "the slave runs darwin"),
    ({"libc": None, "libc_version": None}, "the slave has no glibc"),
    ({"libc_version": [2, 0]}, "the slave has 2.0"),
    ({"extension_suffixes": [".nothing.so"]}, "the slave loads .nothing.so"),
])
def test_each_clause_of_the_send_rule(own_binary, change, reason):
    root, path, facts = own_binary
    slave = dict(facts, **change)
    if reason == "the slave loads .nothing.so" and path.endswith("_single.so"):
        reason = "a plain .so built for %s loads only on that ABI" % facts["abi"]  # 2.7
    problem, _ = extension_problem(root, path, "_single", slave, facts,
                                   SearchPath([root.path]).wheel_tags(root, path))
    if reason is None:
        assert problem is None
    else:
        assert reason in problem


def test_a_binary_linking_another_libpython_is_refused(tmp_path):
    """A shared object linked to a libpython loads only where that libpython is."""
    import sysconfig
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        pytest.skip("this master's Python has no shared libpython to link")
    source, binary = str(tmp_path / "linked.c"), str(tmp_path / "linked.cpython-99.so")
    with open(source, "w") as stream:
        stream.write("extern int Py_IsInitialized(void);\n"
                     "int linked_probe(void) { return Py_IsInitialized(); }\n")
    library = sysconfig.get_config_var("LDLIBRARY")  # libpython3.11.so
    # LIBDIR as built; a relocated build (Debian's, ci/debian-python.sh) has it below its
    # own prefix
    libdir = next(folder for folder in (
        sysconfig.get_config_var("LIBDIR"),
        os.path.join(sys.base_prefix, "lib", sysconfig.get_config_var("MULTIARCH") or ""),
        os.path.join(sys.base_prefix, "lib")) if os.path.exists(os.path.join(folder, library)))
    subprocess.check_call(["gcc", "-shared", "-fPIC", source, "-o", binary, "-L" + libdir,
                           "-l" + library[len("lib"):library.index(".so")]])
    own = sysconfig.get_config_var("INSTSONAME")
    assert links_libpython(binary)
    root = DirectoryRoot(str(tmp_path))
    slave = dict(tags.facts(), extension_suffixes=[".cpython-99.so"], libpython=own)
    assert extension_problem(root, "linked.cpython-99.so", "linked", slave, slave, [])[0] is None
    other = dict(slave, libpython="libpython3.99.so.1.0")
    problem, _ = extension_problem(root, "linked.cpython-99.so", "linked", other, other, [])
    assert "links %s" % own in problem and "libpython3.99.so.1.0" in problem


@pytest.mark.parametrize("change, reason", [
    ({"version": [3, 5, 0]}, "needs CPython >= 3.6"),
    ({"free_threaded": True}, "only on CPython builds with the GIL"),
    ({"implementation": "pypy"}, "only on CPython builds with the GIL"),
])
def test_abi3_floor_comes_from_the_wheel_tag(change, reason):
    label = next((label for label in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
                  if find_python(label)[0]), None)
    if label is None:
        pytest.skip("no CPython 3.8+ to build an abi3 binary")
    site = build_of(label)
    root = DirectoryRoot(site)
    path = os.path.relpath(module_file(site, "extlimited", "_limited"), site)
    tags_found = SearchPath([site]).wheel_tags(root, path)
    assert ("cp36", "abi3", "linux_x86_64") in tags_found
    slave = dict(tags.facts(), version=[3, 6, 0], implementation="cpython",
                 free_threaded=False, extension_suffixes=[".abi3.so"], libpython=None)
    assert extension_problem(root, path, "_limited", slave, slave, tags_found)[0] is None
    problem, _ = extension_problem(root, path, "_limited", dict(slave, **change), slave,
                                   tags_found)
    assert reason in problem


# -- numpy: a real wheel with vendored libraries (numpy.libs, $ORIGIN RUNPATH) ------------

def numpy_site():
    """(label, folder) of an installed numpy: $BRIDGE_TEST_NUMPY ("3.11=/dir"), or the
    site-packages of the first matrix interpreter that has one."""
    explicit = os.environ.get("BRIDGE_TEST_NUMPY", "")
    if "=" in explicit:
        return tuple(explicit.split("=", 1))
    for label in MATRIX:
        python = find_python(label)[0]
        if python:
            try:
                out = subprocess.check_output([python, "-c", "import numpy, os; print("
                                               "os.path.dirname(os.path.dirname(numpy.__file__)))"],
                                              stderr=subprocess.STDOUT)
            except subprocess.CalledProcessError:
                continue
            return label, out.decode().strip()
    return None, None


@pytest.fixture(scope="module")
def numpy_install():
    label, site = numpy_site()
    if label is None:
        pytest.skip("no interpreter has numpy; set BRIDGE_TEST_NUMPY=3.11=/site/dir")
    if execnet_cannot_start(label):
        pytest.skip(execnet_cannot_start(label))
    return label, site


def test_numpy_imports_and_computes_on_a_bare_slave(numpy_install, tmp_path):
    label, site = numpy_install
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(find_python(label)[0], str(tmp_path)))
        assert remote_value(gw, """
            try:
                import numpy
            except ImportError:
                channel.send("bare")
        """) == "bare"
        handle = bridge.install(gw, path=[site], allow_extensions=True,
                                cache_root=str(tmp_path / "cache"))
        result = remote_value(gw, """
            import os, numpy, numpy.linalg
            matrix = numpy.array([[2.0, 1.0], [1.0, 3.0]])
            channel.send({
                "det": round(float(numpy.linalg.det(matrix)), 6),
                "inverse": numpy.linalg.inv(matrix).round(6).tolist(),
                "solve": numpy.linalg.solve(matrix, numpy.array([3.0, 5.0])).round(6).tolist(),
                "file": numpy.__file__,
            })
        """)
        assert result["det"] == 5.0
        assert result["inverse"] == [[0.6, -0.2], [-0.2, 0.4]]
        assert result["solve"] == [0.8, 1.4]
        assert result["file"] == served_path(handle, "numpy/__init__.py")
        libs = served_path(handle, "numpy.libs")
        assert libs and any("openblas" in name for name in os.listdir(libs))
    finally:
        group.terminate(timeout=10)


def test_numpy_is_refused_with_both_tags_on_another_version(numpy_install, tmp_path):
    label, site = numpy_install
    other = next((each for each in ("3.12", "3.13", "3.11") if each != label
                  and find_python(each)[0] and not execnet_cannot_start(each)), None)
    if other is None:
        pytest.skip("needs a second Python 3.11+ slave")
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(find_python(other)[0], str(tmp_path)))
        bridge.install(gw, path=[site], allow_extensions=True,
                       cache_root=str(tmp_path / "cache"))
        message = remote_value(gw, """
            try:
                import numpy
            except ImportError as error:
                channel.send(str(error))
        """)
        assert binary_tag(label) in message and slave_abi(other) in message, message
    finally:
        group.terminate(timeout=10)



# -- a refused binary beside a folder of its name (pydantic_core's _pydantic_core/ stubs) --

STUBBED = """
try:
    from extdemo._single import add
    channel.send(["loaded", add(2, 3)])
except ImportError as error:
    channel.send(["refused", str(error)])
"""


def other_build(label):
    """A label whose build differs from ``label``'s: 3.11's, or 3.12's on a 3.11 slave."""
    return "3.12" if label == "3.11" else "3.11"


@pytest.mark.parametrize("builder_is", ["own", "other"])
def test_a_refused_binary_names_its_refusal_not_its_stub_folder(
        builder_is, slave_label, gateway, cache_root, tmp_path):
    """A folder of ``.pyi`` stubs named like the binary must not become a namespace
    package in the binary's place ("cannot import name ... (unknown location)")."""
    import shutil
    builder = slave_label if builder_is == "own" else other_build(slave_label)
    site = str(tmp_path / "site")
    shutil.copytree(build_of(builder), site)
    stubs = os.path.join(site, "extdemo", "_single")
    os.makedirs(stubs)
    with open(os.path.join(stubs, "__init__.pyi"), "w") as stream:
        stream.write("def add(a: int, b: int) -> int: ...\n")
    handle = bridge.install(gateway, path=[site], allow_extensions=True, cache_root=cache_root)
    out = remote_value(gateway, STUBBED)
    if builder == slave_label:
        assert out == ["loaded", 5]
        return
    kind, message = out
    assert kind == "refused" and "unknown location" not in message, message
    assert "extdemo._single" in message, message
    assert binary_tag(builder) in message and slave_abi(slave_label) in message, message
    assert served_path(handle, "extdemo/_single") is None
