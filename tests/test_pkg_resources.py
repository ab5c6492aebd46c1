"""pkg_resources on the slave sees the distributions the master serves.

pkg_resources itself comes from a setuptools that runs on the slave: the slave
interpreter's own (served from its site-packages, as ``install(python=)`` would),
else the master's, else the system python3's. A slave none of them runs on is
skipped with the reason: a 2.7 or 3.12 slave needs a setuptools of its era.
"""
import os
import subprocess
import sys

import pytest

import bridge
from conftest import remote_value, write_tree

MASTER = {
    "greeter/__init__.py": '''
        import pkg_resources
        VERSION = pkg_resources.get_distribution(__name__ + "-dist").version
        ''',
    "greeter/plugin.py": '''
        def hello():
            return "hello from greeter.plugin"
        ''',
    "greeter_dist-1.2.dist-info/METADATA": """\
        Metadata-Version: 2.1
        Name: greeter-dist
        Version: 1.2
        Requires-Dist: helper-egg (>=0.5)
        """,
    "greeter_dist-1.2.dist-info/entry_points.txt": """\
        [bridge.test]
        hello = greeter.plugin:hello
        """,
    "greeter_dist-1.2.dist-info/RECORD": "greeter/__init__.py,,\ngreeter/plugin.py,,\n",
    "helper_egg-0.9.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: helper-egg\nVersion: 0.9\n",
    "helper_egg-0.9.egg-info/requires.txt": "base-lib>=2\n",
    "base_lib-3.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: base-lib\nVersion: 3.0\n",
}

DECLARES = "__import__('pkg_resources').declare_namespace(__name__)\n"


def portion(name, version):
    """One distribution of the 2.7-era namespace package ``nsp``."""
    dist = "nsp.%s-%s.dist-info/" % (name, version)
    return {"nsp/__init__.py": DECLARES,
            "nsp/%s/__init__.py" % name: "VALUE = %r\n" % name,
            dist + "METADATA": "Metadata-Version: 2.1\nName: nsp.%s\nVersion: %s\n"
                               % (name, version),
            dist + "namespace_packages.txt": "nsp\n",
            dist + "top_level.txt": "nsp\n"}


_WHERE = "import os, pkg_resources; print(os.path.dirname(os.path.dirname(" \
         "os.path.abspath(pkg_resources.__file__))))"
_found = {}


def _pkg_resources_folder(python):
    """The folder that holds ``python``'s own pkg_resources, or None."""
    try:
        out = subprocess.check_output([python, "-E", "-W", "ignore", "-c", _WHERE],
                                      stderr=subprocess.STDOUT)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode("utf-8", "replace").strip().splitlines()[-1]


def _runs_on(python, folder, cwd):
    code = "import sys; sys.path.insert(0, %r); import pkg_resources" % folder
    with open(os.devnull, "w") as quiet:
        return subprocess.call([python, "-E", "-S", "-W", "ignore", "-c", code], cwd=cwd,
                               stdout=quiet, stderr=quiet) == 0


@pytest.fixture
def setuptools_folder(slave_label, slave_python, tmp_path):
    """A folder holding a pkg_resources that imports on this slave."""
    if slave_label not in _found:
        candidates = [_pkg_resources_folder(python) for python in (
            slave_python, sys.executable, "/usr/bin/python3")]
        tried = [folder for folder in candidates if folder]
        working = [folder for folder in tried if _runs_on(slave_python, folder, str(tmp_path))]
        _found[slave_label] = (working[0] if working else None, tried)
    folder, tried = _found[slave_label]
    if folder is None:
        pytest.skip("no setuptools on this machine has a pkg_resources that runs on "
                    "Python %s (tried %s)" % (slave_label, ", ".join(tried) or "none"))
    return folder


def test_get_distribution_require_and_entry_points(gateway, setuptools_folder, tmp_path,
                                                   cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = bridge.install(gateway, path=[master, setuptools_folder], cache_root=cache_root)
    result = remote_value(gateway, """
        import os, pkg_resources, greeter  # greeter reads its own version at import
        dist = pkg_resources.get_distribution("Greeter_Dist")
        required = sorted("%s %s" % (each.key, each.version)
                          for each in pkg_resources.require("greeter-dist>=1"))
        [entry] = list(pkg_resources.iter_entry_points("bridge.test", "hello"))
        outcomes = []
        try:
            pkg_resources.require("base-lib>=5")
        except pkg_resources.VersionConflict:
            outcomes.append("conflict")
        try:
            pkg_resources.get_distribution("no-such-dist")
        except pkg_resources.DistributionNotFound:
            outcomes.append("not found")
        # The metadata's location is the session folder; the modules live in trees:
        # resources are found through the module, as pkg_resources' providers do.
        channel.send([greeter.VERSION, dist.version, required, entry.load()(), outcomes,
                      pkg_resources.resource_filename("greeter", "__init__.py")
                      == greeter.__file__ and os.path.isfile(greeter.__file__)])
    """)
    assert result == ["1.2", "1.2", ["base-lib 3.0", "greeter-dist 1.2", "helper-egg 0.9"],
                      "hello from greeter.plugin", ["conflict", "not found"], True]
    assert handle.stats.distributions >= 3


def test_declare_namespace_over_several_distributions(gateway, setuptools_folder, tmp_path,
                                                      cache_root):
    """``nsp`` is spread over two path entries, one distribution each; its
    ``__init__`` calls declare_namespace, as 2.7-era ``backports``, ``zope`` do."""
    alpha = write_tree(tmp_path / "alpha", portion("alpha", "1.0"))
    beta = write_tree(tmp_path / "beta", portion("beta", "2.0"))
    bridge.install(gateway, path=[alpha, beta, setuptools_folder], cache_root=cache_root)
    result = remote_value(gateway, """
        import nsp.alpha, nsp.beta
        import pkg_resources
        channel.send([nsp.alpha.VALUE, nsp.beta.VALUE,
                      [pkg_resources.get_distribution(name).version
                       for name in ("nsp.alpha", "nsp.beta")]])
    """)
    assert result == ["alpha", "beta", ["1.0", "2.0"]]


def test_a_local_pkg_resources_sees_served_distributions(gateway, setuptools_folder, tmp_path,
                                                         cache_root):
    """The slave's own pkg_resources, imported before install(): its working set
    takes the served distributions at install."""
    master = write_tree(tmp_path / "master", MASTER)
    remote_value(gateway, """
        import sys
        sys.path.append(%r)
        import pkg_resources
        channel.send(1)
    """ % setuptools_folder)
    bridge.install(gateway, path=[master], cache_root=cache_root)
    assert remote_value(gateway, """
        import pkg_resources
        channel.send(pkg_resources.get_distribution("greeter-dist").version)
    """) == "1.2"


def test_pkg_resources_imported_later_from_the_slave_s_own_path(gateway, setuptools_folder,
                                                                tmp_path, cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = bridge.install(gateway, path=[master], cache_root=cache_root)
    result = remote_value(gateway, """
        import os, sys
        sys.path.append(%r)
        import pkg_resources
        channel.send([pkg_resources.get_distribution("greeter-dist").version,
                      os.path.dirname(os.path.dirname(pkg_resources.__file__))])
    """ % setuptools_folder)
    assert result == ["1.2", setuptools_folder]
    assert handle.stats.modules == 0  # pkg_resources was the slave's own
    handle.uninstall()
    assert remote_value(gateway, """
        import sys
        channel.send([type(finder).__name__ for finder in sys.meta_path
                      if "execnet_bridge" in type(finder).__module__]
                     + [entry for entry in sys.path if "slave-cache" in entry])
    """) == []


def test_importlib_metadata_after_pkg_resources(gateway, slave_label, setuptools_folder,
                                                tmp_path, cache_root):
    """Once the session folder is on sys.path, importlib.metadata lists each distribution once
    (the slave's own win), and one asked for by name still gets the files a listing
    left out."""
    if slave_label in ("2.7", "3.6", "3.7"):
        pytest.skip("importlib.metadata is new in Python 3.8")
    master = write_tree(tmp_path / "master", MASTER)
    local = write_tree(tmp_path / "local", {
        "base_lib-9.9.dist-info/METADATA": "Metadata-Version: 2.1\nName: base-lib\n"
                                           "Version: 9.9\n"})
    bridge.install(gateway, path=[master, setuptools_folder], cache_root=cache_root)
    result = remote_value(gateway, """
        import sys
        sys.path.append(%r)
        import importlib.metadata as metadata
        import pkg_resources
        names = [dist.metadata["Name"] for dist in metadata.distributions()]
        dist = metadata.distribution("greeter-dist")
        channel.send([names.count("greeter-dist"), names.count("base-lib"),
                      metadata.version("greeter-dist"), dist.read_text("RECORD"),
                      metadata.version("base-lib"),
                      pkg_resources.get_distribution("base-lib").version])
    """ % local)
    assert result == [1, 1, "1.2", MASTER["greeter_dist-1.2.dist-info/RECORD"], "9.9", "9.9"]


# 2.7 writes a .pyc beside each source it imports: not the package's, left out.
RESOURCES = """
import pkg_resources, greeter
channel.send([
    sorted(name for name in pkg_resources.resource_listdir("greeter", "")
           if name != "__pycache__" and not name.endswith(".pyc")),
    pkg_resources.resource_isdir("greeter", "sub"),
    pkg_resources.resource_isdir("greeter", "templates"),
    pkg_resources.resource_exists("greeter", "extra.py"),
    pkg_resources.resource_string("greeter", "extra.py").decode("ascii"),
    pkg_resources.resource_string("greeter", "templates/a.txt").decode("ascii"),
    sorted(name for name in pkg_resources.resource_listdir("greeter", "sub")
           if name != "__pycache__" and not name.endswith(".pyc"))])
"""


def test_resource_listdir_lists_a_served_package_as_installed(gateway, slave_python, slave_cwd,
                                                              setuptools_folder, tmp_path,
                                                              cache_root):
    """The same answers as on the slave with the package installed, before any of it
    came: pkg_resources' provider of the served loaders goes by the package's listing."""
    import execnet
    from conftest import slave_spec
    master = write_tree(tmp_path / "master", dict(MASTER, **{
        "greeter/extra.py": "X = 1\n", "greeter/templates/a.txt": "A\n",
        "greeter/sub/__init__.py": "", "greeter/sub/inner.py": "Y = 2\n"}))
    group = execnet.Group()
    try:
        local = group.makegateway(slave_spec(slave_python, slave_cwd))
        installed = remote_value(local, "import sys\nsys.path[:0] = [%r, %r]\n" % (
            master, setuptools_folder) + RESOURCES)
    finally:
        group.terminate(timeout=10)
    bridge.install(gateway, path=[master, setuptools_folder], cache_root=cache_root)
    assert installed == [["__init__.py", "extra.py", "plugin.py", "sub", "templates"], True,
                         True, True, "X = 1\n", "A\n", ["__init__.py", "inner.py"]]
    assert remote_value(gateway, RESOURCES) == installed
