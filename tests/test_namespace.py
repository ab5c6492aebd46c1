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
