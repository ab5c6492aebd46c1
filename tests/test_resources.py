"""Package data: loader.get_data, pkgutil, importlib.resources, files by __file__."""
import json

import bridge
import pytest
from conftest import remote_value
from trees import shop_tree


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
