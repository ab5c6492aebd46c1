"""Package data: loader.get_data, pkgutil, importlib.resources, files by __file__,
also in resource subpackages nobody imported yet (tzdata's shape)."""
import json

import bridge
import pytest
from conftest import remote_value
from trees import shop_tree, tz_tree


def test_pkgutil_and_loader_get_data(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import os, pkgutil, shop
        via_pkgutil = pkgutil.get_data("shop", "templates/receipt.txt")
        path = os.path.join(os.path.dirname(shop.__file__), "data", "rates.json")
        via_loader = shop.__loader__.get_data(path)
        channel.send([type(via_pkgutil) is bytes, via_pkgutil.decode("utf-8"),
                      via_loader.decode("utf-8")])
    """)
    assert result[:2] == [True, "Total: {total}\n"]
    assert json.loads(result[2]) == {"standard": 0.25}


def test_files_read_relative_to_dunder_file(gateway, tmp_path, cache_root):
    """Real packages open templates next to their module; that must work."""
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, """
        import io, os, shop
        here = os.path.dirname(shop.__file__)
        with io.open(os.path.join(here, "templates", "receipt.txt"), encoding="utf-8") as f:
            channel.send([f.read().format(total=shop.total(4)),
                          sorted(os.listdir(os.path.join(here, "data")))])
    """) == ["Total: 5.0\n", ["rates.json"]]


def test_importlib_resources(gateway, slave_label, tmp_path, cache_root):
    if slave_label in ("2.7", "3.6"):
        pytest.skip("importlib.resources is new in Python 3.7")
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import importlib.resources as resources
        out = {"files": hasattr(resources, "files")}
        if out["files"]:  # 3.9+: the traversable API
            shop = resources.files("shop")
            out["version"] = (shop / "VERSION").read_text()
            out["nested"] = (shop / "templates" / "receipt.txt").read_text()
            out["listing"] = sorted(entry.name for entry in (shop / "data").iterdir())
        else:  # 3.7, 3.8: files directly in the package
            out["version"] = resources.read_text("shop", "VERSION")
        channel.send(out)
    """)
    assert result.pop("version") == "1.2.3\n"
    if slave_label in ("3.7", "3.8"):
        assert result == {"files": False}
    else:  # 3.9+, and pypy3 (3.9)
        assert result == {"files": True, "nested": "Total: {total}\n", "listing": ["rates.json"]}


def test_as_file_yields_the_served_file_itself(gateway, slave_label, tmp_path, cache_root):
    """importlib.resources.as_file of a served file is its path, as for an installed
    package (certifi.where() at every ``import requests``), not a temporary copy that is
    gone after the block; a package's folder, which holds only what came, is copied
    (3.12+; before, as_file took files alone)."""
    if slave_label in ("2.7", "3.6", "3.7", "3.8"):
        pytest.skip("importlib.resources.as_file is new in Python 3.9")
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import os, pathlib, sys
        from importlib.resources import as_file, files
        import shop
        here = os.path.realpath(os.path.dirname(shop.__file__))
        out = {"python": list(sys.version_info[:2])}
        with as_file(files("shop") / "templates" / "receipt.txt") as path:
            out["path"] = isinstance(path, pathlib.Path)
            out["beside"] = os.path.realpath(str(path)) == os.path.join(
                here, "templates", "receipt.txt")
            out["text"] = path.read_text()
        out["stays"] = os.path.isfile(str(path))
        with as_file(files("shop") / "VERSION") as path:
            out["version"] = os.path.realpath(str(path)) == os.path.join(here, "VERSION")
        if sys.version_info >= (3, 12):
            with as_file(files("shop")) as folder:
                out["folder"] = sorted(os.listdir(str(folder)))
                out["folder is a copy"] = os.path.realpath(str(folder)) != here
        channel.send(out)
    """)
    python = tuple(result.pop("python"))
    folder = result.pop("folder", None)
    copied = result.pop("folder is a copy", None)
    assert result == {"path": True, "beside": True, "text": "Total: {total}\n", "stays": True,
                      "version": True}
    if python >= (3, 12):
        assert copied is True
        assert {"__init__.py", "VERSION", "templates", "data", "cart"} <= set(folder)


def test_resource_subpackages_are_reachable_before_anyone_imports_them(gateway, slave_label,
                                                                       tmp_path, cache_root):
    """tzdata's zones lie in subpackages that hold no code: reading one must neither
    fail nor cost a round trip per file. A subpackage with code keeps its data until
    it is imported, but lists."""
    handle = bridge.install(gateway, path=[tz_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import io, os, pkgutil, sys, tzdata
        here = os.path.dirname(tzdata.__file__)
        out = {"get_data": pkgutil.get_data("tzdata", "zoneinfo/Europe/Paris").decode("ascii")}
        with io.open(os.path.join(here, "zoneinfo", "America", "Argentina", "Salta")) as f:
            out["open"] = f.read()
        try:
            from importlib.resources import files
        except ImportError:  # before 3.9
            files = None
        if files is not None:
            root = files("tzdata")
            out["files"] = (root / "zoneinfo" / "Europe" / "Paris").read_bytes().decode("ascii")
            out["joinpath"] = root.joinpath("zoneinfo/UTC").read_text()
            out["listing"] = sorted(entry.name for entry in root.iterdir()
                                    if entry.name != "__pycache__")
        out["imported"] = sorted(name for name in sys.modules if name.startswith("tzdata."))
        out["code subpackage placed"] = os.path.exists(os.path.join(here, "helpers"))
        channel.send(out)
    """)
    assert result.pop("get_data") == "TZif Paris\n"
    assert result.pop("open") == "TZif Salta\n"
    assert result.pop("imported") == []
    assert result.pop("code subpackage placed") is False
    if slave_label in ("2.7", "3.6", "3.7", "3.8"):  # no importlib.resources.files
        assert result == {}
    else:  # 3.9+, and pypy3 (3.9)
        # As installed: the code subpackage lists too, though none of it came; 3.9's
        # files() lists the folder itself, which holds what came (docs/limits.md).
        listed = ["__init__.py", "zoneinfo", "zones"] if slave_label in ("3.9", "pypy3") \
            else ["__init__.py", "helpers", "zoneinfo", "zones"]
        assert result == {"files": "TZif Paris\n", "joinpath": "TZif UTC\n", "listing": listed}
    assert handle.stats.requests == 1


def test_resource_subpackages_import_as_the_packages_they_are(gateway, slave_label, tmp_path,
                                                             cache_root):
    """Placed with their __init__.py, they are regular packages, not PEP 420 namespaces;
    a subpackage with code brings its data when imported."""
    bridge.install(gateway, path=[tz_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import pkgutil
        import tzdata.zoneinfo.Europe, tzdata.zoneinfo.America.Argentina, tzdata.helpers
        europe = tzdata.zoneinfo.Europe
        out = [europe.__file__.endswith("__init__.py"), list(europe.__path__) != [],
               pkgutil.get_data("tzdata.zoneinfo.America.Argentina", "Salta").decode("ascii"),
               tzdata.helpers.LOOKUP,
               pkgutil.get_data("tzdata.helpers", "table.csv").decode("ascii")]
        try:
            import importlib.resources as resources
        except ImportError:  # 2.7, 3.6
            resources = None
        if resources is not None and hasattr(resources, "files"):
            out.append(resources.files("tzdata.zoneinfo.Europe").joinpath("Paris").read_text())
        elif resources is not None:  # 3.7, 3.8: files directly in the package
            out.append(resources.read_text("tzdata.zoneinfo.Europe", "Paris"))
        channel.send(out)
    """)
    assert result[:5] == [True, True, "TZif Salta\n", "helpers", "zone,offset\n"]
    assert result[5:] == ([] if slave_label in ("2.7", "3.6") else ["TZif Paris\n"])


def test_a_denied_resource_subpackage_is_not_placed(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[tz_tree(tmp_path)], cache_root=cache_root,
                   deny=["tzdata.zoneinfo.Asia"])
    result = remote_value(gateway, """
        import os, tzdata
        zoneinfo = os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo")
        out = [os.path.exists(os.path.join(zoneinfo, "Asia")),
               os.path.isfile(os.path.join(zoneinfo, "Europe", "Paris"))]
        try:
            import tzdata.zoneinfo.Asia
        except ImportError as error:
            out.append(str(error))
        channel.send(out)
    """)
    assert result[:2] == [False, True]
    assert "denied by the master's rule 'tzdata.zoneinfo.Asia'" in result[2]
