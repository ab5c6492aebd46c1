"""Pure-Python modules and packages that only the master has, on every slave."""
import os
import time

import pytest

import bridge
from conftest import label_version, remote, remote_value, write_tree
from trees import shop_tree, witness_tree, zip_tree


def test_package_with_relative_and_absolute_imports(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import shop.cart
        from shop.cart import items
        channel.send([shop.NAME, shop.total(100), shop.cart.total(8), items.first(),
                      shop.cart.items.prices.total(4)])
    """)
    assert result == ["shop", 125.0, 10.0, "apple", 5.0]


def test_from_package_import_submodule(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, """
        from shop import tax
        from shop.cart import items as things
        channel.send([tax.RATE, things.__name__])
    """) == [0.25, "shop.cart.items"]


def test_module_attributes_are_those_of_an_installed_module(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    attrs = remote_value(gateway, """
        import os, sys
        import shop.cart.items, standalone
        def describe(module):
            spec = getattr(module, "__spec__", None)
            return {
                "name": module.__name__,
                "package": module.__package__,
                "path": list(getattr(module, "__path__", [])),
                "file": module.__file__,
                "file_exists": os.path.isfile(module.__file__),
                "loader": module.__loader__.is_package(module.__name__),
                "spec": None if spec is None else [spec.name, spec.origin, spec.parent],
            }
        channel.send([describe(sys.modules[name]) for name in
                      ("shop", "shop.cart", "shop.cart.items", "standalone")])
    """)
    shop, cart, items, standalone = attrs
    assert [m["name"] for m in attrs] == ["shop", "shop.cart", "shop.cart.items", "standalone"]
    assert shop["package"] == "shop" and cart["package"] == "shop.cart"
    assert items["package"] == "shop.cart"
    assert standalone["package"] in ("", None)
    assert all(m["file_exists"] for m in attrs)
    assert shop["file"].endswith(os.path.join("shop", "__init__.py"))
    assert items["file"].endswith(os.path.join("shop", "cart", "items.py"))
    assert shop["path"] == [os.path.dirname(shop["file"])]
    assert cart["path"] == [os.path.dirname(cart["file"])]
    assert items["path"] == [] and standalone["path"] == []
    assert [m["loader"] for m in attrs] == [True, True, False, False]
    for module in attrs:
        if module["spec"] is not None:  # Python 3: a real ModuleSpec
            assert module["spec"] == [module["name"], module["file"], module["package"] or ""]
    assert shop["file"].startswith(cache_root)


DEPTH_PROBE = """\
import sys


def _depth():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


DEPTH = _depth()
"""


def test_a_served_module_runs_as_deep_as_an_installed_one(gateway, slave_label, tmp_path,
                                                           cache_root, slave_cwd):
    """Nested imports put each level's code no deeper than an installed package's: 3.11+
    keep frames on a stack of chunks, and one frame more per level put sympy's dispatch
    loops where every call took a chunk and gave it back (docs/performance.md)."""
    if slave_label == "2.7":
        pytest.skip("2.7 imports in C and runs a served module inside the PEP 302 loader's "
                    "load_module; it has no stack of frame chunks to keep aligned")
    master = write_tree(tmp_path / "master", {"served_probe/__init__.py": "",
                                              "served_probe/inner.py": DEPTH_PROBE})
    write_tree(slave_cwd, {"local_probe/__init__.py": "", "local_probe/inner.py": DEPTH_PROBE})
    bridge.install(gateway, path=[master], cache_root=cache_root)
    served, local, files, sizes = remote_value(gateway, """
        import sys
        served = __import__("served_probe.inner").inner
        local = __import__("local_probe.inner").inner
        sizes = [[loader.exec_module.__code__.co_nlocals,
                  loader.exec_module.__code__.co_stacksize]
                 for loader in (type(served.__loader__), type(local.__loader__))]
        channel.send([served.DEPTH, local.DEPTH, [served.__file__, local.__file__], sizes])
    """)
    assert files[0].startswith(cache_root) and not files[1].startswith(cache_root)
    assert served == local
    if (label_version(slave_label) or (0,)) >= (3, 11):  # each frame as many words too
        assert sizes[0] == sizes[1]


def test_local_module_wins_over_the_masters(gateway, tmp_path, cache_root, slave_cwd):
    write_tree(slave_cwd, {"standalone.py": 'WHERE = "slave"\n'})
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, """
        import standalone
        channel.send(standalone.WHERE)
    """) == "slave"
    assert handle.stats.requests == 0


def test_unknown_module_fails_at_once_with_module_not_found(gateway, slave_label, tmp_path,
                                                            cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    started = time.time()
    error = remote_value(gateway, """
        import sys
        errors = []
        for name in ("no_such_module", "shop.no_such_child"):
            try:
                __import__(name)
            except ImportError as error:
                errors.append([type(error).__name__, str(error)])
        channel.send(errors)
    """)
    assert time.time() - started < 10
    expected = "ImportError" if slave_label == "2.7" else "ModuleNotFoundError"  # 3.6+
    assert [kind for kind, _ in error] == [expected, expected]
    assert "no_such_module" in error[0][1] and "no_such_child" in error[1][1]


def test_module_that_raises_propagates_and_leaves_nothing_behind(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    outcome = remote_value(gateway, """
        import sys
        seen = []
        for attempt in range(2):
            for name in ("shop.broken", "shop.importsbroken"):
                try:
                    __import__(name)
                except RuntimeError as error:
                    seen.append([name, str(error), name in sys.modules,
                                 "shop.broken" in sys.modules])
        channel.send(seen)
    """)
    message = "shop.broken fails on purpose"
    assert outcome == [[name, message, False, False]
                       for name in ("shop.broken", "shop.importsbroken")] * 2


def test_modules_in_a_zip_on_the_masters_path(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[zip_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, """
        import pkgutil, zipped
        data = pkgutil.get_data("zipped", "data.txt")
        channel.send([zipped.VALUE, isinstance(data, bytes), data.decode("ascii")])
    """) == ["from the zip", True, "zip data\n"]


def test_no_code_of_a_served_module_runs_on_the_master(gateway, tmp_path, cache_root):
    folder, log = witness_tree(tmp_path)
    bridge.install(gateway, path=[folder], cache_root=cache_root)
    slave_pid = remote_value(gateway, """
        import os, witness.child
        channel.send(os.getpid())
    """)
    with open(log) as stream:
        pids = [int(line) for line in stream.read().split()]
    assert pids == [slave_pid, slave_pid]
    assert os.getpid() not in pids


def test_children_of_local_packages_are_never_asked_for(gateway, tmp_path, cache_root):
    remote(gateway, "import json, email")  # their own optional imports are not the point
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    failed = remote_value(gateway, """
        failed = []
        for name in ("json.no_such_child", "email.no_such_child"):
            try:
                __import__(name)
            except ImportError:
                failed.append(name)
        channel.send(failed)
    """)
    assert failed == ["json.no_such_child", "email.no_such_child"]
    assert handle.stats.requests == 0
