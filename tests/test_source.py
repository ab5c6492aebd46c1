"""Tracebacks, linecache and inspect on the slave show the master's lines."""
import bridge
from conftest import remote_value, write_tree
from trees import shop_tree

NOISY = """\
import warnings


def warn():
    warnings.warn("from a served module")
"""


def test_traceback_shows_the_masters_source_lines(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    text = remote_value(gateway, """
        import traceback
        from shop.cart import items
        try:
            items.fail()
        except ValueError:
            channel.send(traceback.format_exc())
    """)
    with open(str(tmp_path / "master" / "shop" / "cart" / "items.py")) as stream:
        line = stream.read().splitlines().index("    raise ValueError(detail)") + 1
    assert 'items.py", line %d, in fail' % line in text
    assert "raise ValueError(detail)" in text
    assert "ValueError: raised in shop.cart.items" in text


def test_linecache_and_inspect_read_the_served_source(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    with open(str(tmp_path / "master" / "shop" / "prices.py")) as stream:
        master_source = stream.read()
    number = master_source.splitlines().index("def total(amount):") + 1
    line, source, loader_source = remote_value(gateway, """
        import inspect, linecache
        import shop.prices
        line = linecache.getline(shop.prices.__file__, %d)
        source = inspect.getsource(shop.prices.total)
        loader_source = shop.prices.__loader__.get_source("shop.prices")
        channel.send([line, source, loader_source])
    """ % number)
    assert line == "def total(amount):\n"
    assert source == "def total(amount):\n    return round(amount * (1 + RATE), 2)\n"
    assert loader_source == master_source


def test_a_warning_from_a_served_module_names_its_file(gateway, tmp_path, cache_root):
    """warnings (C code on 2.7 too) take the file from the module's ``__file__``: a native
    string, as an installed module's is, or 2.7 names the module instead of a file."""
    master = write_tree(tmp_path / "master", {"noisy.py": NOISY})
    bridge.install(gateway, path=[master], cache_root=cache_root)
    filename, native, line = remote_value(gateway, """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import noisy
            noisy.warn()
        channel.send([caught[0].filename, type(noisy.__file__) is str, caught[0].lineno])
    """)
    assert native
    assert filename.endswith("noisy.py") and filename.startswith(str(cache_root)), filename
    assert line == 5
