"""The master's work kept on disk (bridge/_disk.py): a fresh master process reuses the
bytecode and imported names an earlier one worked out; a damaged entry is never used."""
import hashlib
import os
import subprocess
import sys
import time

import pytest

from bridge import _disk
from bridge._disk import DiskCache
from conftest import find_python, write_tree
from trees import shop_tree

MASTER = """
import sys, execnet, bridge
gateway = execnet.makegateway("popen//python=%s -E -S")
handle = bridge.install(gateway, path=[%r], cache_root=%r)
channel = gateway.remote_exec("import shop.cart; channel.send(shop.cart.total(8))")
print(channel.receive(60))
gateway.exit()
"""


def run_master(folder, entry, cache_root, program=MASTER):
    """A master process of this Python serving a bare 3.11 slave (the master's .pyc
    fits it when the master is 3.11 too; its imported names fit every slave)."""
    slave, reason = find_python("3.11")
    if slave is None:
        pytest.skip(reason)
    environment = dict(os.environ, EXECNET_BRIDGE_MASTER_CACHE=folder)
    return subprocess.check_output(
        [sys.executable, "-c", program % (slave, entry, cache_root)],
        env=environment).decode().strip()


WALKS = """
import bridge._planner as planner
walks = []
walk = planner.Planner._walk
planner.Planner._walk = lambda self, name, located: walks.append(name) or walk(
    self, name, located)
""" + MASTER.replace("print(channel.receive(60))",
                     "print('%%s %%d' %% (channel.receive(60), len(walks)))")


COMPOSES = """
import bridge._composer as composer
composed = []
compose = composer.Composer._compose
composer.Composer._compose = lambda self, name, located, key: composed.append(name) or \\
    compose(self, name, located, key)
""" + MASTER.replace("print(channel.receive(60))",
                     "print('%%s %%d %%d' %% (channel.receive(60), len(composed), "
                     "handle.stats.lean))")


def aged(folder, seconds_ago):
    """Give every file and folder below ``folder`` an mtime ``seconds_ago`` in the past:
    settled (older than Root.SETTLED), so work keyed by it may be kept."""
    when = time.time() - seconds_ago
    for parent, names, files in os.walk(folder):
        for name in names + files:
            os.utime(os.path.join(parent, name), (when, when))
        os.utime(parent, (when, when))


def entries(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def test_a_fresh_master_reuses_the_work_of_an_earlier_one(tmp_path):
    folder, entry = str(tmp_path / "master-cache"), shop_tree(tmp_path)
    aged(entry, 3600)  # settled in both runs: each keeps the same entries (plans, replies)
    assert run_master(folder, entry, str(tmp_path / "one")) == "10.0"
    kept = entries(folder)
    assert kept  # imported names of each module (and .pyc where it compiles here)
    for name in kept:  # damage every entry: none may be used
        path = os.path.join(folder, name)
        with open(path, "rb") as stream:
            data = stream.read()
        with open(path, "wb") as stream:
            stream.write(data[:64] + b"#" + data[65:])
    assert run_master(folder, entry, str(tmp_path / "two")) == "10.0"
    assert entries(folder) == kept  # worked out again and kept again, whole
    for name in kept:
        with open(os.path.join(folder, name), "rb") as stream:
            data = stream.read()
        assert hashlib.sha256(data[64:]).hexdigest().encode("ascii") == data[:64]


def test_an_entry_is_checked_against_its_own_hash(tmp_path):
    cache = DiskCache(str(tmp_path))
    cache.put("pyc", "key", b"compiled bytes")
    assert cache.get("pyc", "key") == b"compiled bytes"
    assert cache.get("pyc", "other") is None
    [name] = entries(str(tmp_path))
    with open(os.path.join(str(tmp_path), name), "r+b") as stream:
        stream.seek(70)
        stream.write(b"X")
    assert cache.get("pyc", "key") is None and entries(str(tmp_path)) == []


def test_the_cache_is_bounded_least_recently_written_first(tmp_path):
    cache = DiskCache(str(tmp_path), limit=3 * (64 + 1000))
    for index in range(6):
        cache.put("imports", str(index), b"x" * 1000)
        os.utime(cache._path("imports", str(index)), (index, index))  # written in order
    cache.trim()
    assert sum(os.path.getsize(os.path.join(str(tmp_path), name))
               for name in entries(str(tmp_path))) <= 3 * (64 + 1000)
    assert cache.get("imports", "5") == b"x" * 1000


def test_a_folder_others_can_write_is_not_used(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(str(folder), 0o777)
    monkeypatch.setenv("EXECNET_BRIDGE_MASTER_CACHE", str(folder))
    assert DiskCache.open_default() is None
    assert os.listdir(str(folder)) == []


def test_an_entry_others_can_write_is_not_used(tmp_path):
    """The master opens its cache without checking each of its thousands of entries:
    each is checked as it is read, so one another user could have changed is not used."""
    cache = DiskCache(str(tmp_path))
    cache.put("plans", "key", b"a plan")
    os.chmod(cache._path("plans", "key"), 0o666)
    assert cache.get("plans", "key") is None
    cache.put("plans", "key", b"a plan")
    assert cache.get("plans", "key") == b"a plan"
    cache.put("plans", "other", b"another plan")  # a link to another entry is not one
    os.unlink(cache._path("plans", "key"))
    os.symlink(cache._path("plans", "other"), cache._path("plans", "key"))
    assert cache.get("plans", "key") is None and cache.get("plans", "other") == b"another plan"


def test_a_fresh_master_walks_again_only_what_changed(tmp_path):
    """A plan (what importing a module brings along) is kept on disk with what its walk
    read: a later master process takes it after one stat of each, and walks again where
    a file changed."""
    folder, entry = str(tmp_path / "master-cache"), shop_tree(tmp_path)
    aged(entry, 3600)
    first = run_master(folder, entry, str(tmp_path / "one"), WALKS).split()
    again = run_master(folder, entry, str(tmp_path / "two"), WALKS).split()
    assert first[0] == again[0] == "10.0" and int(first[1]) > 0 and again[1] == "0"
    cart = os.path.join(entry, "shop", "cart", "__init__.py")
    with open(cart, "a") as stream:
        stream.write("# changed\n")
    aged(entry, 1800)
    changed = run_master(folder, entry, str(tmp_path / "three"), WALKS).split()
    assert changed[0] == "10.0" and int(changed[1]) > 0


def test_a_fresh_master_answers_a_warm_slave_with_what_an_earlier_one_composed(tmp_path):
    """A reply is kept on disk without its bodies, with what composing it read: a later
    master process answers a slave that holds its records with it (lean: no body needed)
    after one stat of each, composing nothing; a changed file is composed and sent. The
    names asked after the first are kept too: the second master asks once."""
    folder, entry = str(tmp_path / "master-cache"), shop_tree(tmp_path)
    aged(entry, 3600)
    slave_cache = str(tmp_path / "slave-cache")
    first = run_master(folder, entry, slave_cache, COMPOSES).split()
    again = run_master(folder, entry, slave_cache, COMPOSES).split()
    third = run_master(folder, entry, slave_cache, COMPOSES).split()
    assert first[0] == again[0] == third[0] == "10.0"
    assert first[1] == "2" and first[2] == "0"  # import shop.cart: shop, then shop.cart
    # one request, lean record by record from the first run's trees, composing nothing:
    # the first master composed shop's reply again with what followed it before it
    # exited (_ahead), and kept it whole
    assert again[1:] == ["0", "1"] and third[1:] == ["0", "1"], (again, third)
    with open(os.path.join(entry, "shop", "tax.py"), "w") as stream:
        stream.write("RATE = 0.5\n")
    aged(entry, 1800)
    changed = run_master(folder, entry, slave_cache, COMPOSES).split()
    assert changed[0] == "12.0" and int(changed[1]) > 0


def test_a_folder_on_the_path_that_keeps_changing_does_not_stop_reuse(tmp_path):
    """A folder every walk only asks whether a name is there (a script's folder, a
    project's root where tests write files) changed a moment ago in every run: what was
    asked of it is asked again, and the work of the folders that did not change is
    reused as if it had not. A module that appears there is seen."""
    folder, entry = str(tmp_path / "master-cache"), shop_tree(tmp_path)
    aged(entry, 3600)
    busy = str(tmp_path / "busy")
    os.mkdir(busy)
    program = COMPOSES.replace("path=[%r]", "path=[%r, %%r]" % busy)
    slave_cache = str(tmp_path / "slave-cache")
    runs = []
    for number in range(3):
        with open(os.path.join(busy, "run%d.log" % number), "w"):
            pass
        future = time.time() + 3600  # changed "just now" all through the run
        os.utime(busy, (future, future))
        runs.append(run_master(folder, entry, slave_cache, program).split())
    first, again, third = runs
    assert first[0] == again[0] == third[0] == "10.0"
    assert first[1:] == ["2", "0"] and again[1:] == ["0", "1"] and third[1:] == ["0", "1"], runs
    write_tree(busy, {"shop/__init__.py": "", "shop/cart.py": "def total(amount):\n"
                      "    return 99.0\n"})
    changed = run_master(folder, entry, slave_cache, program).split()
    assert changed[0] == "99.0" and int(changed[1]) > 0, changed


PLUGINS = {"plugins/__init__.py": """
    import importlib
    NAMES = ["plugins.p%d" % number for number in range(12)]
    LOADED = [importlib.import_module(name).NAME for name in NAMES]  # no scan sees these
    """}
PLUGINS.update(("plugins/p%d.py" % number, "from . import common\nNAME = %d\n" % number)
               for number in range(12))
PLUGINS["plugins/common.py"] = "SHARED = True\n"


def test_a_package_asked_for_by_many_names_is_lean_for_each(tmp_path):
    """pytest's plugins: one package whose submodules are asked for by name one after the
    other, each reply leaving out what the session had. A warm slave and a fresh master:
    every one of the 13 requests is lean (the slave names the trees of each request, not
    only the last 8 of the package), and the master composes none of them again: the
    second session on a host is warm (a pytest controller's second run composed five
    replies, 0.2 s, before replies were composed ahead)."""
    folder, entry = str(tmp_path / "master-cache"), write_tree(tmp_path / "served", PLUGINS)
    aged(entry, 3600)
    slave_cache = str(tmp_path / "slave-cache")
    program = COMPOSES.replace("import shop.cart; channel.send(shop.cart.total(8))",
                               "import plugins; channel.send(sum(plugins.LOADED))")
    first = run_master(folder, entry, slave_cache, program).split()
    again = run_master(folder, entry, slave_cache, program).split()
    assert first[0] == again[0] == str(sum(range(12)))
    assert int(first[1]) == 13 and first[2] == "0"  # the package, then its 12 plugins
    # the second master knows the 12 follow (the first learned it, and composed the
    # package's reply with them before it exited: _ahead): one request, lean from the
    # first run's trees, composed by neither it nor the third
    third = run_master(folder, entry, slave_cache, program).split()
    assert again[1:] == ["0", "1"] and third[1:] == ["0", "1"], (again, third)


def test_a_process_trims_a_disk_cache_folder_once_however_often_it_opens_it(tmp_path):
    """Each Responder made without the master's shared caches opens the disk cache anew:
    a trim (a listing and an lstat of every entry) per opening made a 400-example test
    hold 1.7 GB and spend 116 s of system time."""
    root = str(tmp_path / "one-root")
    assert _disk.first_opening(root)
    assert not _disk.first_opening(root)
    assert _disk.first_opening(str(tmp_path / "another-root"))


ORDER = {"order/__init__.py": "",
         "order/common.py": "SHARED = 1\n",
         "order/a.py": "from .common import SHARED\nA = SHARED + 1\n",
         "order/b.py": "from .common import SHARED\nB = SHARED + 2\n"}

IN_ORDER = MASTER.replace(
    'channel = gateway.remote_exec("import shop.cart; channel.send(shop.cart.total(8))")\n'
    'print(channel.receive(60))',
    'channel = gateway.remote_exec("import order.FIRST, order.SECOND; "\n'
    '                              "channel.send(order.a.A + order.b.B)")\n'
    'stats = handle.stats\n'
    'print("%%s %%d %%d" %% (channel.receive(60), stats.requests, stats.bytes_sent))')


def in_order(first, second):
    return IN_ORDER.replace("FIRST", first).replace("SECOND", second)


def test_a_fresh_master_reuses_trees_record_by_record_whatever_the_import_order(tmp_path):
    """A slave imported order.a, then order.b: the tree of order.a's reply holds order.a
    and order.common, order.b's holds order.b alone. A later master process, asked in the
    other order, knows that both follow order (the earlier one learned it, and what its
    trees hold: its disk cache says so): one request, each record served from the tree
    that holds it, nothing sent and no tree made."""
    folder, entry = str(tmp_path / "master-cache"), write_tree(tmp_path / "served", ORDER)
    aged(entry, 3600)
    slave_cache = str(tmp_path / "slave-cache")
    trees = os.path.join(slave_cache, "trees")
    first = run_master(folder, entry, slave_cache, in_order("a", "b")).split()
    before = set(entries(trees))
    again = run_master(folder, entry, slave_cache, in_order("b", "a")).split()
    assert first[0] == again[0] == "5"
    assert first[1] == "3"  # order, then each module
    assert again[1] == "1" and again[2] == "0", again
    assert set(entries(trees)) == before


REQUESTS = MASTER.replace(
    "print(channel.receive(60))",
    "print('%%s %%d' %% (channel.receive(60), handle.stats.requests))").replace(
    "import shop.cart; channel.send(shop.cart.total(8))",
    "import plugins; channel.send(sum(plugins.LOADED))")


def test_a_fresh_master_serves_a_cold_slave_what_followed_in_one_request(tmp_path):
    """What slaves asked for after a package's first name, which no scan of its source
    sees (numpy's extensions import modules by name from C), is kept on disk: a master
    that lives for one run serves a new slave host the package in one round trip."""
    folder, entry = str(tmp_path / "master-cache"), write_tree(tmp_path / "served", PLUGINS)
    first = run_master(folder, entry, str(tmp_path / "one"), REQUESTS).split()
    again = run_master(folder, entry, str(tmp_path / "two"), REQUESTS).split()
    assert first == [str(sum(range(12))), "13"] and again == [first[0], "1"], (first, again)
    off = run_master("off", entry, str(tmp_path / "three"), REQUESTS).split()
    assert off == first  # no disk cache: nothing learned before


BROKEN = {"parsing/__init__.py": "",
          "parsing/good.py": "import json\nVALUE = 1\n",
          "parsing/bad.py": "def broken(:\n"}  # no Python parses it


def test_what_a_master_cannot_parse_is_not_kept_as_importing_nothing(tmp_path):
    """A 2.7 or 3.6 master cannot parse source written for 3.8+: its scan finds nothing,
    which it must not keep as "imports nothing" on disk, where a master that can parse
    it would take it (and prefetch nothing: numpy from 1 request to 69)."""
    folder, entry = str(tmp_path / "master-cache"), write_tree(tmp_path / "served", BROKEN)
    aged(entry, 3600)
    program = MASTER.replace(
        '"import shop.cart; channel.send(shop.cart.total(8))"',
        '"import parsing.good\\ntry:\\n    import parsing.bad\\nexcept SyntaxError:\\n'
        '    channel.send(parsing.good.VALUE)"')
    assert run_master(folder, entry, str(tmp_path / "one"), program) == "1"
    cache = DiskCache(folder)
    for name, python2 in (("parsing.good", 0), ("parsing.bad", 0)):
        with open(os.path.join(entry, *name.split(".")) + ".py", "rb") as stream:
            sha = hashlib.sha256(stream.read()).hexdigest()
        kept = cache.get("imports", "%s %s %d" % (sha, name, python2))
        assert (kept is not None) == (name == "parsing.good"), (name, kept)


def test_recent_bodies_keep_only_bytes_that_match_their_hash_within_their_bound():
    from bridge._caches import RecentBodies
    bodies = RecentBodies(limit=250, largest=100)
    reads = []

    def reader(data):
        return lambda: reads.append(data) or data

    one, two, three = b"1" * 100, b"2" * 100, b"3" * 100
    sha = dict((data, hashlib.sha256(data).hexdigest()) for data in (one, two, three))
    assert bodies.read(sha[one], 100, reader(one)) == one
    assert bodies.read(sha[one], 100, reader(one)) == one and reads == [one]  # kept
    # bytes read after the file changed are sent (the slave refuses them) but not kept
    assert bodies.read(sha[two], 100, reader(three)) == three
    assert bodies.read(sha[two], 100, reader(two)) == two and reads == [one, three, two]
    bodies.read(sha[three], 100, reader(three))  # past 250 bytes: the oldest goes
    assert bodies.read(sha[one], 100, reader(one)) == one and reads[-1] == one
    big = b"b" * 101  # past ``largest``: read each time
    bodies.read("x", 101, reader(big))
    bodies.read("x", 101, reader(big))
    assert reads[-2:] == [big, big]


def test_one_check_of_a_kept_reply_serves_the_requests_that_came_before_it(tmp_path):
    """Sixteen slaves ask at once for a reply the master keeps: the one check (a stat of
    every file it read) that began after they asked serves them all. A request that
    came after an edit is checked again and sees it."""
    from bridge._responder import Responder, Stats
    from bridge._roots import Watch
    from bridge._locate import SearchPath
    from bridge.compat import protocol
    folder = write_tree(tmp_path / "served", {"pkg/__init__.py": "from . import a\n",
                                                 "pkg/a.py": "A = 1\n"})
    aged(folder, 3600)
    responder = Responder(SearchPath([folder]), {"version": [3, 11, 0]}, Stats())
    caches, composer = responder.caches, responder.composer
    assert protocol.kind_of(responder.reply(
        protocol.message(protocol.FIND, id=1, name="pkg"))) == protocol.MODULE
    [kept] = [value for key, value in caches.replies._entries.items() if key.name == "pkg"]
    caches.notices.settle()
    kept.notice = False  # the stat check alone (test_notices.py: changes the kernel notes)
    checks = []
    unchanged = Watch.unchanged

    def counted(watch):
        checks.append(watch)
        return unchanged(watch)
    Watch.unchanged = counted
    try:
        waiting = [caches.tickets.take() for _ in range(16)]  # asked, all before the check
        assert all(composer._current(kept, arrived) for arrived in waiting)
        assert 0 < len(checks) <= len(kept.all_watches())  # one check, not sixteen
        with open(os.path.join(folder, "pkg", "a.py"), "w") as stream:
            stream.write("A = 2\n")
        assert not composer._current(kept, caches.tickets.take())  # asked after the edit
    finally:
        Watch.unchanged = unchanged


TWO_SLAVES = """
import sys, execnet, bridge
import bridge._composer as composer
reads = []
get_json = composer.get_json
composer.get_json = lambda disk, kind, key: reads.append(kind) or get_json(disk, kind, key)
results = []
for _ in range(2):
    gateway = execnet.makegateway("popen//python=%s -E -S")
    handle = bridge.install(gateway, path=[%r], cache_root=%r)
    channel = gateway.remote_exec("import shop.cart; channel.send(shop.cart.total(8))")
    results.append("%%s %%d" %% (channel.receive(60), handle.stats.lean))
    gateway.exit()
print(" ".join(results + [str(reads.count("composed"))]))
"""


def test_a_reply_an_earlier_master_kept_is_read_from_disk_once_for_every_slave(tmp_path):
    """A pytest controller lives for one run and serves several workers on one host: the
    reply an earlier run kept is read from disk (and parsed) for the first worker only."""
    folder, entry = str(tmp_path / "master-cache"), shop_tree(tmp_path)
    aged(entry, 3600)
    slave_cache = str(tmp_path / "slave-cache")
    for _ in range(3):  # the followers settle, then the reply is kept whole
        run_master(folder, entry, slave_cache)
    out = run_master(folder, entry, slave_cache, TWO_SLAVES).split()
    assert out == ["10.0", "1", "10.0", "1", "1"], out


def test_a_folder_is_trimmed_on_opening_only_after_an_eighth_of_its_limit_was_written(tmp_path):
    """A master that lives for one run (a pytest controller) listed and lstat-ed every
    entry of a long-used folder on opening (18,795 here), beside its first answers."""
    writer = DiskCache(str(tmp_path))  # the default limit: it does not trim itself here
    reader = DiskCache(str(tmp_path), limit=8 * 3 * (64 + 1000))  # another master
    assert reader.needs_trim()  # a folder no master of this version trimmed
    reader.trim()
    assert not reader.needs_trim()
    for index in range(3):
        writer.put("imports", str(index), b"x" * 1000)
    assert not reader.needs_trim()  # 3 entries: an eighth of the limit exactly
    writer.put("imports", "3", b"x" * 1000)
    assert reader.needs_trim()
    reader.trim()
    assert not reader.needs_trim() and writer.get("imports", "3") == b"x" * 1000
    os.remove(os.path.join(str(tmp_path), _disk.LEDGER))
    assert reader.needs_trim()


def test_the_slave_modules_a_master_compiled_are_kept_for_the_next_master(tmp_path,
                                                                          monkeypatch):
    """A cold slave of the master's build gets the master's code objects of the bridge's
    modules (bridge/_slave_code.py): a master that lives for one run (a pytest controller)
    reads them from its disk cache instead of compiling them again; a damaged entry is
    compiled again, never sent."""
    import marshal
    import zlib
    from bridge import _install, _slave_code
    sources = _install.slave_sources()
    key = _slave_code.SlaveCode.key(sources)
    names = sorted(name for name, _ in sources if name != "bootstrap")

    def modules(payload):
        return sorted(marshal.loads(zlib.decompress(payload)))
    payload = _slave_code.SlaveCode(DiskCache(str(tmp_path))).payload(sources, key)
    assert modules(payload) == names
    compiled = []
    compile_here = _slave_code._compiled
    monkeypatch.setattr(_slave_code, "_compiled",
                        lambda sources: compiled.append(1) or compile_here(sources))
    assert _slave_code.SlaveCode(DiskCache(str(tmp_path))).payload(sources, key) == payload
    assert compiled == []
    [name] = entries(str(tmp_path))
    with open(os.path.join(str(tmp_path), name), "r+b") as stream:
        stream.seek(100)
        stream.write(b"\0\0\0\0")
    again = _slave_code.SlaveCode(DiskCache(str(tmp_path))).payload(sources, key)
    assert compiled == [1] and modules(again) == names  # (3.13+ marshal differs per compile)
