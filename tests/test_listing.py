"""A served package lists as installed (compat/listing.py): the same listing on the same
slave with the package installed, before any of it came, and no body sent for it."""
import execnet

import bridge
from conftest import remote_value, slave_spec, write_tree

PLUGINS = {
    "plug/__init__.py": "",
    "plug/alpha.py": "NAME = 'alpha'\n",
    "plug/beta.py": "NAME = 'beta'\n",
    "plug/data.txt": "some data\n",
    "plug/res/inner.txt": "inner\n",
    "plug/sub/__init__.py": "",
    "plug/sub/gamma.py": "NAME = 'gamma'\n",
    "plug/sub/delta/__init__.py": "",
    "plug/sub/delta/epsilon.py": "NAME = 'epsilon'\n",
}

LIST = """
import os, pkgutil, sys
import plug
out = {"iter": sorted([info[1], info[2]] for info in pkgutil.iter_modules(plug.__path__))}
out["iter_prefixed"] = sorted(info[1] for info in pkgutil.iter_modules(plug.__path__, "plug."))
out["came_before_reading"] = os.path.exists(os.path.join(os.path.dirname(plug.__file__),
                                                         "alpha.py"))
out["walk"] = sorted(info[1] for info in pkgutil.walk_packages(plug.__path__, "plug."))
out["imported"] = sorted(name for name in sys.modules if name.startswith("plug."))
if sys.version_info >= (3, 10):  # 3.9's files() lists the folder itself (docs/limits.md)
    from importlib.resources import files
    root = files("plug")
    out["files"] = sorted([entry.name, entry.is_dir(), entry.is_file()]
                          for entry in root.iterdir() if entry.name != "__pycache__")
    out["sub_files"] = sorted(entry.name for entry in (root / "sub").iterdir()
                              if entry.name != "__pycache__")
    out["read"] = [(root / "beta.py").read_text(), (root / "res" / "inner.txt").read_text(),
                   root.joinpath("sub/gamma.py").read_bytes().decode("ascii")]
for name in ("plug.alpha", "plug.sub.delta.epsilon"):
    __import__(name)
out["names"] = [sys.modules["plug.alpha"].NAME, sys.modules["plug.sub.delta.epsilon"].NAME]
channel.send(out)
"""


def listing_on(python, cwd, served, cache_root, bridged):
    """The listing on a bare slave: served by a bridge, or installed (on its sys.path)."""
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(python, cwd))
        if bridged:
            handle = bridge.install(gw, path=[served], cache_root=cache_root)
            return remote_value(gw, LIST), handle.stats.as_dict()
        return remote_value(gw, "import sys; sys.path.insert(0, %r)\n" % served + LIST), None
    finally:
        group.terminate(timeout=10)


def test_a_served_package_lists_as_installed(slave_python, slave_cwd, tmp_path, cache_root):
    served = write_tree(tmp_path / "served", PLUGINS)
    installed, _ = listing_on(slave_python, slave_cwd, served, cache_root, False)
    bridged, stats = listing_on(slave_python, slave_cwd, served, cache_root, True)
    assert installed["iter"] == [["alpha", False], ["beta", False], ["sub", True]]
    assert installed["walk"] == ["plug.alpha", "plug.beta", "plug.sub", "plug.sub.delta",
                                 "plug.sub.delta.epsilon", "plug.sub.gamma"]
    assert installed["came_before_reading"] is True
    # Listing sent no module of plug: alpha.py had not come when it was listed.
    assert bridged.pop("came_before_reading") is False
    installed.pop("came_before_reading")
    assert bridged == installed
    # plug, then what walk_packages imports (plug.sub, plug.sub.delta), what files()
    # reads (plug.beta, plug.sub.gamma) and what is imported last (plug.alpha,
    # plug.sub.delta.epsilon): one request each at most, none for a listing.
    assert stats["requests"] <= 7, stats


def test_runpy_runs_a_submodule_that_has_not_come(slave_python, slave_cwd, tmp_path,
                                                  cache_root):
    """``python -m pkg.mod``'s search: 2.7's runpy looks for ``pkg.mod`` on
    ``pkg.__path__`` alone, as its pkgutil does; 3.x's asks the meta path first."""
    files = dict(PLUGINS, **{"plug/__init__.py": "RAN = []\n",
                             "plug/tool.py": "import plug\nplug.RAN.append(__name__)\n"})
    served = write_tree(tmp_path / "served", files)
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(slave_python, slave_cwd))
        bridge.install(gw, path=[served], cache_root=cache_root)
        ran = remote_value(gw, """
            import runpy
            import plug
            runpy.run_module("plug.tool", run_name="__main__")
            channel.send(plug.RAN)
        """)
    finally:
        group.terminate(timeout=10)
    assert ran == ["__main__"]
