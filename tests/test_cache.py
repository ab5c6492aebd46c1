"""Fewer bytes and round trips: the persistent cache, listings, prefetch."""
import os
import sys

import execnet
import pytest

import bridge
from conftest import remote_value, slave_spec
from trees import big_tree, shop_tree

IMPORT_BOTH = """
import big, shop.cart
channel.send([big.VALUE, shop.cart.total(8), len(open(big.__file__[:-len("__init__.py")]
              + "blob.bin", "rb").read())])
"""


def bridged_import(python, cwd, entries, cache_root, source):
    gateway = execnet.makegateway(slave_spec(python, cwd))
    try:
        handle = bridge.install(gateway, path=entries, cache_root=cache_root)
        return remote_value(gateway, source), handle.stats.as_dict()
    finally:
        gateway.exit()


def test_a_warm_gateway_moves_no_bodies(slave_python, slave_cwd, tmp_path, cache_root):
    entries = [big_tree(tmp_path, megabytes=4), shop_tree(tmp_path)]
    cold, cold_stats = bridged_import(slave_python, slave_cwd, entries, cache_root, IMPORT_BOTH)
    warm, warm_stats = bridged_import(slave_python, slave_cwd, entries, cache_root, IMPORT_BOTH)
    assert cold == warm == ["big", 10.0, 4 * 1024 * 1024]
    assert cold_stats["bytes_sent"] > 4 * 1024 * 1024
    assert warm_stats["bytes_sent"] == 0
    assert warm_stats["bytes_cached"] >= 4 * 1024 * 1024


def test_a_warm_gateway_uses_the_trees_an_earlier_one_built(slave_python, slave_cwd, tmp_path,
                                                            cache_root):
    """The second gateway's replies bring what the first asked for later (the master
    learned it follows), a new tree of blobs the cache holds; from then on, the same."""
    entries = [big_tree(tmp_path, megabytes=1), shop_tree(tmp_path)]
    trees = os.path.join(cache_root, "trees")

    def built():
        return sorted(name for name in os.listdir(trees) if "." not in name)  # no .files, .pack

    runs = [bridged_import(slave_python, slave_cwd, entries, cache_root, IMPORT_BOTH)
            for _ in range(2)]
    before = built()
    result, stats = bridged_import(slave_python, slave_cwd, entries, cache_root, IMPORT_BOTH)
    assert [run[0] for run in runs] + [result] == [["big", 10.0, 1024 * 1024]] * 3
    assert runs[0][1]["lean"] == 0 and runs[1][1]["bytes_sent"] == 0
    # every reply named a tree the cache held: no file listed, sent, read or linked again
    assert stats["lean"] == stats["requests"] == 2 and stats["bytes_sent"] == 0
    assert built() == before
    assert_no_bytecode_compiled_where_it_came(trees)


def assert_no_bytecode_compiled_where_it_came(trees):
    """Where the master's bytecode came (a pack), the slave read every module's from it:
    a .pyc file in a tree is one the slave compiled (a pack it could not read)."""
    names = os.listdir(trees)
    if any(name.endswith(".pack") for name in names):
        assert not [name for _, _, files in os.walk(trees) for name in files
                    if name.endswith(".pyc")]


IMPORT_SHOP_THEN_CART = """
import shop
import shop.cart
channel.send([shop.cart.total(8), shop.__file__, shop.cart.__file__])
"""


def test_a_second_gateway_builds_no_tree_where_the_first_ones_hold_its_records(
        slave_python, slave_cwd, tmp_path, cache_root):
    """The first gateway's ``import shop`` and ``import shop.cart`` made two trees; the
    master learned that shop.cart follows shop, so the second gateway's ``import shop``
    brings both in one reply, another composition than either tree. Each record of it
    names the tree that holds its files: nothing is built, linked, hashed or sent."""
    entries = [shop_tree(tmp_path)]
    trees = os.path.join(cache_root, "trees")

    def built():
        return sorted(name for name in os.listdir(trees) if "." not in name)  # no .files, .pack

    first, first_stats = bridged_import(slave_python, slave_cwd, entries, cache_root,
                                        IMPORT_SHOP_THEN_CART)
    before = built()
    second, stats = bridged_import(slave_python, slave_cwd, entries, cache_root,
                                   IMPORT_SHOP_THEN_CART)
    assert first_stats["requests"] == 2 and len(before) == 2
    assert_no_bytecode_compiled_where_it_came(trees)
    assert second[0] == first[0] == 10.0
    assert stats["requests"] == 1 and stats["prefetched"] >= 1  # shop brought shop.cart
    assert stats["bytes_sent"] == 0 and stats["bytes_cached"] > 0
    assert built() == before
    # each module is imported from the tree that first held it, as the first gateway did
    assert second[1:] == first[1:]


def test_a_corrupted_cache_entry_is_fetched_again_never_loaded(slave_python, slave_cwd,
                                                               tmp_path, cache_root):
    entries = [shop_tree(tmp_path)]
    source = "import shop.tax\nchannel.send(shop.tax.RATE)"
    assert bridged_import(slave_python, slave_cwd, entries, cache_root, source)[0] == 0.25
    blobs = os.path.join(cache_root, "blobs")
    corrupted = 0
    for folder, _, files in os.walk(blobs):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as stream:
                if stream.read() == b"RATE = 0.25\n":
                    with open(path, "wb") as stream:
                        stream.write(b"RATE = 99\n")
                    corrupted += 1
    assert corrupted == 1
    rate, stats = bridged_import(slave_python, slave_cwd, entries, cache_root, source)
    assert rate == 0.25
    assert stats["bytes_sent"] == len(b"RATE = 0.25\n")  # only the bad body moved again


def test_the_masters_bytecode_lands_in_one_pack_and_a_rewritten_one_moves_again(
        slave_python, slave_cwd, tmp_path, cache_root):
    """Each module's .pyc travels as a body of its own but lands in its tree's pack: no
    .pyc file is created (compat/packs.py). A pack rewritten in the cache fails its
    tree's check: its bodies are fetched again, never loaded."""
    from bridge._bytecode import fits
    entries = [shop_tree(tmp_path)]
    source = "import shop.tax\nchannel.send(shop.tax.RATE)"
    gateway = execnet.makegateway(slave_spec(slave_python, slave_cwd))
    try:
        handle = bridge.install(gateway, path=entries, cache_root=cache_root)
        assert remote_value(gateway, source) == 0.25
        shipped = fits(handle.slave)
    finally:
        gateway.exit()
    trees = os.path.join(cache_root, "trees")
    packs = [os.path.join(trees, name) for name in os.listdir(trees) if name.endswith(".pack")]
    if not shipped:  # another bytecode: the slave compiles the sources itself
        assert packs == []
        return
    assert len(packs) == 1
    assert not [name for _, _, names in os.walk(trees) for name in names
                if name.endswith(".pyc")]
    with open(packs[0], "rb") as stream:
        size = len(stream.read())
    with open(packs[0], "wb") as stream:
        stream.write(b"\0" * size)
    os.utime(packs[0], (1000000000, 1000000000))
    rate, stats = bridged_import(slave_python, slave_cwd, entries, cache_root, source)
    assert rate == 0.25
    assert 0 < stats["bytes_sent"] < size  # the .pyc again, not the sources
    with open(packs[0], "rb") as stream:
        assert stream.read(len(b"execnet-bridge pack")) == b"execnet-bridge pack"
    assert_no_bytecode_compiled_where_it_came(trees)


def test_the_listing_answers_no_such_submodule_without_asking(gateway, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, "import shop; channel.send(1)") == 1
    asked = handle.stats.requests
    names = ["shop.nope", "shop.os", "shop.cart.missing"]
    assert failed_imports(gateway, names) == names
    assert handle.stats.requests == asked + 1  # shop.cart itself; nothing for the misses


def failed_imports(gateway, names):
    """The names of ``names`` whose import fails with an ImportError on the slave."""
    return remote_value(gateway, """
        errors = []
        for name in %r:
            try:
                __import__(name)
            except ImportError:
                errors.append(name)
        channel.send(errors)
    """ % (list(names),))


def test_an_import_statement_costs_one_round_trip(gateway, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, "import shop; channel.send(shop.total(100))") == 125.0
    assert handle.stats.requests == 1
    assert handle.stats.prefetched == 2  # shop.prices, shop.tax came with shop


def test_one_round_trip_brings_other_distributions_and_absent_names(gateway, tmp_path,
                                                                    cache_root):
    from conftest import write_tree
    entry = write_tree(tmp_path / "apps", {
        "app/__init__.py": '''
            import libdep.core
            try:
                import optional_speedup
            except ImportError:
                optional_speedup = None

            def later():
                import lazydep
                return lazydep.VALUE
            ''',
        "libdep/__init__.py": "",
        "libdep/core.py": "from . import util\n",
        "libdep/util.py": "VALUE = 'util'\n",
        "lazydep.py": "VALUE = 'lazy'\n",
    })
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root)
    assert remote_value(gateway, """
        import app
        channel.send([app.libdep.core.util.VALUE, app.optional_speedup])
    """) == ["util", None]
    assert handle.stats.requests == 1 and handle.stats.prefetched == 3  # libdep, .core, .util
    assert remote_value(gateway, """
        try:
            import optional_speedup
        except ImportError:
            channel.send("absent")
    """) == "absent"
    assert handle.stats.requests == 1  # known absent: not asked again
    assert remote_value(gateway, "import app; channel.send(app.later())") == "lazy"
    assert handle.stats.requests == 2  # the function-level import was not prefetched


def test_a_reply_names_absent_only_what_the_slave_would_ask(gateway, tmp_path, cache_root):
    """``from package import name`` looks like a submodule to the master's walk; the
    package's record lists its children, so the slave answers those names itself."""
    from conftest import write_tree
    from bridge._locate import SearchPath
    from bridge._responder import Responder, Stats
    from bridge.compat import protocol
    entry = write_tree(tmp_path / "apps", {
        "app/__init__.py": '''
            from app.tools import helper, CONSTANT
            try:
                import optional_speedup
            except ImportError:
                optional_speedup = None
            ''',
        "app/tools.py": "CONSTANT = 3\n\ndef helper():\n    return CONSTANT\n",
    })
    responder = Responder(SearchPath([entry]), {}, Stats())
    reply = responder.reply(dict(protocol.find_request("app"), id=1))
    assert sorted(record[protocol.NAME] for record in reply[protocol.MODULES]) == \
        ["app", "app.tools"]
    assert reply[protocol.ABSENT] == ["optional_speedup"]  # not app.tools.helper, ...
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root)
    assert remote_value(gateway, """
        from app.tools import helper
        import app
        channel.send([helper(), app.optional_speedup])
    """) == [3, None]
    names = ["app.tools.helper", "app.CONSTANT", "optional_speedup"]
    assert failed_imports(gateway, names) == names
    assert handle.stats.requests == 1


def test_bytecode_is_shipped_only_where_the_magic_number_matches(gateway, slave_label,
                                                                 tmp_path, cache_root):
    import platform
    import sys
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    result = remote_value(gateway, """
        import os, sys, traceback
        import shop.prices
        spec = getattr(shop.prices, "__spec__", None)  # 3.15 sets no __cached__
        pyc = getattr(spec, "cached", None) or getattr(shop.prices, "__cached__", None)
        from_pack = False
        if pyc is not None and not os.path.exists(pyc):  # not a file: from the tree's pack
            from importlib.util import MAGIC_NUMBER
            from_pack = spec.loader.get_data(pyc)[:4] == MAGIC_NUMBER
        try:
            shop.prices.total(None)
        except TypeError:
            lines = traceback.format_exc()
        channel.send([from_pack, os.path.exists(shop.prices.__file__),
                      "return round(amount * (1 + RATE), 2)" in lines])
    """)
    same = (sys.version_info >= (3, 7)  # hash-based .pyc (PEP 552) on the master
            and handle.slave["implementation"] == platform.python_implementation().lower()
            and tuple(handle.slave["version"][:2]) == sys.version_info[:2])
    from_pack, source_is_a_file, traceback_shows_source = result
    assert from_pack == same  # the master's .pyc, in the tree's pack
    assert source_is_a_file and traceback_shows_source


def test_a_file_edited_in_place_is_served_fresh_to_the_next_gateway(slave_python, slave_cwd,
                                                                     tmp_path, cache_root):
    """Same size, within the same second: CPython's timestamp .pyc would miss it; the
    master's caches (digests, plans) and the slave's cache must not."""
    from conftest import write_tree
    entry = write_tree(tmp_path / "edits", {"edited/__init__.py": "from .value import V\n",
                                            "edited/value.py": "V = 1\n"})
    source = "import edited\nchannel.send(edited.V)"
    assert bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[0] == 1
    path = os.path.join(entry, "edited", "value.py")
    before = os.stat(path)
    with open(path, "w") as stream:
        stream.write("V = 2\n")
    if hasattr(before, "st_mtime_ns"):  # within one clock tick: the very same mtime
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:  # a 2.7 master
        os.utime(path, (before.st_atime, before.st_mtime))
    assert bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[0] == 2
    assert_no_bytecode_compiled_where_it_came(os.path.join(cache_root, "trees"))


def test_a_warm_session_is_answered_without_a_stat_and_an_edit_after_it_is_seen(
        slave_python, slave_cwd, tmp_path, cache_root):
    """A long-lived master: the second session's reply is current because the kernel
    noted no change where it read (bridge/_notices.py); the next, after an edit, is not."""
    from conftest import write_tree
    from test_master_cache import aged
    from test_notices import file_system_of
    from bridge._notices import LOCAL_FILE_SYSTEMS
    from bridge._install import MASTER_CACHES
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's: elsewhere every check is a stat of every path")
    if file_system_of(str(tmp_path)) not in LOCAL_FILE_SYSTEMS:
        pytest.skip("%s is not on a file system inotify sees every change of" % tmp_path)
    entry = write_tree(tmp_path / "noticed", {"noticed/__init__.py": "from .value import V\n",
                                              "noticed/value.py": "V = 1\n"})
    aged(entry, 3600)
    source = "import noticed\nchannel.send(noticed.V)"
    assert bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[0] == 1
    MASTER_CACHES.notices.settle()
    vouched = MASTER_CACHES.notices.vouched
    assert bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[0] == 1
    assert MASTER_CACHES.notices.vouched == vouched + 1
    with open(os.path.join(entry, "noticed", "value.py"), "w") as stream:
        stream.write("V = 20\n")
    assert bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[0] == 20
    assert MASTER_CACHES.notices.vouched == vouched + 1


def test_what_is_refused_along_the_way_is_said_in_the_same_reply(gateway, tmp_path, cache_root):
    """markupsafe's shape: an optional binary speedup with a pure fallback."""
    from conftest import write_tree
    entry = write_tree(tmp_path / "speedy", {
        "speedy/__init__.py": '''
            try:
                from ._speedups import escape
            except ImportError:
                from ._native import escape
            ''',
        "speedy/_native.py": "def escape(text):\n    return text.replace('<', '&lt;')\n",
        "speedy/_speedups.cpython-311-x86_64-linux-gnu.so": "not a real binary",
    })
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root)
    assert remote_value(gateway, """
        import speedy
        try:
            import speedy._speedups
        except ImportError as error:
            channel.send([speedy.escape("<b>"), str(error)])
    """) == ["&lt;b>", "execnet-bridge cannot import 'speedy._speedups': no compiled module "
             "'speedy._speedups' for this slave, %s: compiled modules are not served "
             "(install with allow_extensions=True)" % slave_tag_of(handle)]
    assert handle.stats.requests == 1  # the refusal came with speedy


def slave_tag_of(handle):
    from bridge._binaries import slave_tag
    return slave_tag(handle.slave)


def test_names_imported_by_call_over_literal_names_come_along(gateway, tmp_path, cache_root):
    """requests.packages: ``for package in ("urllib3", "idna"): __import__(package)``."""
    from conftest import write_tree
    entry = write_tree(tmp_path / "dynamic", {
        "front/__init__.py": '''
            import importlib
            for name in ("back_one", "back_two"):
                __import__(name)
            helper = importlib.import_module("back_three")
            ''',
        "back_one.py": "ONE = 1\n", "back_two.py": "TWO = 2\n", "back_three.py": "THREE = 3\n",
    })
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root)
    assert remote_value(gateway, """
        import front, back_one, back_two
        channel.send(back_one.ONE + back_two.TWO + front.helper.THREE)
    """) == 6
    assert handle.stats.requests == 1


def test_a_submodule_asked_for_after_its_package_comes_with_it_next_time(
        slave_python, slave_cwd, tmp_path, cache_root):
    """``import pkg.core`` asks for ``pkg`` first, then ``pkg.core``; the master learns
    it, so the next slave (warm or cold) needs one round trip."""
    from conftest import write_tree
    entry = write_tree(tmp_path / "learned", {"lib/__init__.py": "", "lib/core.py": "X = 1\n",
                                              "lib/unused.py": "Y = 2\n"})
    source = "import lib.core\nchannel.send(lib.core.X)"
    value, first = bridged_import(slave_python, slave_cwd, [entry], cache_root, source)
    assert value == 1 and first["requests"] == 2
    warm = bridged_import(slave_python, slave_cwd, [entry], cache_root, source)[1]
    cold = bridged_import(slave_python, slave_cwd, [entry], cache_root + "-new", source)[1]
    assert warm["requests"] == cold["requests"] == 1
    assert cold["modules"] + cold["prefetched"] == 2  # lib and lib.core; not lib.unused
