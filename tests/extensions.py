"""Real compiled distributions, built per interpreter, for the extension tests.

Each interpreter builds ``tests/extsrc/extdemo`` (and, CPython 3.6+,
``extlimited``: abi3, floor cp36) into a wheel with its own pip, and the
wheel is unpacked into a folder as ``pip install`` would, so WHEEL and
RECORD are the real tools' output. Results are cached by source hash in
``$BRIDGE_TEST_CACHE`` (default ``~/.cache/execnet-bridge-tests``), so tox
envs build once. With ``$BRIDGE_TEST_WHEELHOUSE`` set (cibuildwheel's output
in CI), the wheels there are unpacked instead of building.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(HERE, "extsrc")


def cache_root():
    return os.environ.get("BRIDGE_TEST_CACHE") or os.path.expanduser(
        "~/.cache/execnet-bridge-tests")


def source_hash():
    digest = hashlib.sha256()
    for folder, folders, files in sorted(os.walk(SOURCES)):
        folders[:] = [name for name in folders if name != "build" and
                      not name.endswith(".egg-info") and name != "__pycache__"]
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, SOURCES).encode("utf-8"))
            with open(path, "rb") as stream:
                digest.update(stream.read())
    return digest.hexdigest()[:16]


def pip_environment():
    """pip as on a fresh machine: the package index, no local find-links or config."""
    env = dict((key, value) for key, value in os.environ.items() if not key.startswith("PIP_"))
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def build_wheel(python, project, out):
    """Build ``project`` (a folder of tests/extsrc) into a wheel in ``out``."""
    tree = os.path.join(out, "tree-" + project)
    shutil.copytree(os.path.join(SOURCES, project), tree,  # sources only: a stale build/
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    shutil.copy(os.path.join(SOURCES, "add.h"), tree)  # old pips copy only the project
    subprocess.check_call([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, tree],
                          env=pip_environment())
    wheels = [name for name in os.listdir(out) if name.startswith(project + "-")]
    return os.path.join(out, wheels[0])


def unpack_wheel(wheel, site):
    """Install a root-is-platlib wheel the way pip lays it out (it has no .data)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)


def projects_for(label):
    """The limited API (abi3) builds neither on 2.7, PyPy nor a free-threaded CPython."""
    limited = label not in ("2.7", "pypy3") and not label.endswith("t")
    return ["extdemo"] + (["extlimited"] if limited else [])


def wheel_tag(label):
    """The interpreter-abi part of a wheel name built by ``label``: cp311-cp311,
    cp314-cp314t for a free-threaded build."""
    special = {"2.7": "cp27-cp27mu", "3.6": "cp36-cp36m", "3.7": "cp37-cp37m",
               "pypy3": "pp39-pypy39_pp73"}
    digits = label.rstrip("t").replace(".", "")
    return special.get(label) or "cp%s-cp%s" % (digits, label.replace(".", ""))


def wheelhouse_site(label, wheelhouse):
    """Unpack ``label``'s wheels from ``wheelhouse`` (extlimited: the cp36-abi3 one)."""
    site = os.path.join(cache_root(), "wheelhouse", label)
    shutil.rmtree(site, ignore_errors=True)
    for project in projects_for(label):
        tag = "cp36-abi3" if project == "extlimited" else wheel_tag(label)
        wheels = sorted(name for name in os.listdir(wheelhouse)
                        if name.startswith(project + "-") and "-%s-" % tag in name)
        if not wheels:
            raise LookupError("no %s wheel tagged %s in %s" % (project, tag, wheelhouse))
        unpack_wheel(os.path.join(wheelhouse, wheels[-1]), site)
    return site


def built_wheels(label, python):
    """The folder of ``label``'s wheels of the test distributions, built once."""
    final = os.path.join(cache_root(), "v2-" + source_hash(), label, "wheels")
    if os.path.isdir(final):
        return final
    if not os.path.isdir(os.path.dirname(final)):
        os.makedirs(os.path.dirname(final))
    work = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(final))
    try:
        wheels = os.path.join(work, "wheels")
        os.makedirs(wheels)
        for project in projects_for(label):
            shutil.move(build_wheel(python, project, work), wheels)
        try:
            os.rename(wheels, final)
        except OSError:  # another test run finished first: use its build
            if not os.path.isdir(final):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def built_site(label, python):
    """The folder where ``label``'s build of the test distributions is installed."""
    if os.environ.get("BRIDGE_TEST_WHEELHOUSE"):
        return wheelhouse_site(label, os.environ["BRIDGE_TEST_WHEELHOUSE"])
    final = os.path.join(cache_root(), "v2-" + source_hash(), label, "site")
    if os.path.isdir(final):
        return final
    work = tempfile.mkdtemp(prefix="unpack-", dir=os.path.dirname(final)
                            if os.path.isdir(os.path.dirname(final)) else None)
    try:
        wheels = built_wheels(label, python)
        for name in sorted(os.listdir(wheels)):
            unpack_wheel(os.path.join(wheels, name), work)
        try:
            os.rename(work, final)
        except OSError:
            if not os.path.isdir(final):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
