"""PEP 420 namespace packages spread over several of the master's path entries."""
import bridge
from conftest import remote_value, write_tree


def namespace_entries(tmp_path):
    first = write_tree(tmp_path / "first", {"nsp/alpha/__init__.py": "NAME = 'alpha'\n"})
    second = write_tree(tmp_path / "second", {"nsp/beta.py": "from .alpha import NAME\n"})
    return [first, second]


def test_namespace_package_from_two_entries(gateway, slave_label, tmp_path, cache_root):
    bridge.install(gateway, path=namespace_entries(tmp_path), cache_root=cache_root)
    result = remote_value(gateway, """
        import sys
        try:
            import nsp.alpha, nsp.beta
        except ImportError as error:
            channel.send(["ImportError", str(error)])
        else:
            channel.send([nsp.alpha.NAME, nsp.beta.NAME, getattr(nsp, "__file__", None)])
    """)
    if slave_label == "2.7":
        assert result[0] == "ImportError"
        assert "namespace package (PEP 420)" in result[1] and "2.7" in result[1]
    else:
        assert result == ["alpha", "alpha", None]


def test_regular_package_beats_a_namespace_portion(gateway, tmp_path, cache_root):
    first = write_tree(tmp_path / "first", {"mixed/README": "a folder, not a package\n"})
    second = write_tree(tmp_path / "second", {"mixed/__init__.py": "KIND = 'regular'\n"})
    bridge.install(gateway, path=[first, second], cache_root=cache_root)
    assert remote_value(gateway, """
        import mixed
        channel.send(mixed.KIND)
    """) == "regular"


def test_a_module_beats_a_data_folder_of_its_name(gateway, tmp_path, cache_root):
    """``pkg/tool.py`` beside ``pkg/tool/`` (data, no ``__init__``): installed, ``pkg.tool``
    is the module. The folder travels as the package's data, so the module must travel
    with it, or the slave's PathFinder would make the folder a namespace package."""
    site = write_tree(tmp_path / "site", {
        "holder/__init__.py": "",
        "holder/tool.py": "KIND = 'module'\n",
        "holder/tool/template.txt": "data\n",
    })
    bridge.install(gateway, path=[site], cache_root=cache_root)
    assert remote_value(gateway, """
        import pkgutil, holder
        import holder.tool
        channel.send([getattr(holder.tool, "KIND", None),
                      pkgutil.get_data("holder", "tool/template.txt").decode("ascii")])
    """) == ["module", "data\n"]
