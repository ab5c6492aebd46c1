"""Bodies travel zlib-compressed where that saves time on the link, as they are on a
pipe on one host; a compressed body that arrives damaged is refused."""
import hashlib
import os
import zlib

import execnet
import pytest

import bridge
from bridge import _deflate
from bridge._caches import BoundedCache
from bridge._deflate import Deflater, Link
from bridge._install import MASTER_CACHES
from conftest import imported_or_why, relay_python, remote_value, write_tree

RELAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "relay.py")


def text(lines):
    return "".join("line %d of a compressible text file\n" % number for number in range(lines))


TEXT = text(60000)
READ_BACK = """
import words, os
with open(os.path.join(os.path.dirname(words.__file__), "corpus.txt")) as stream:
    channel.send([words.VALUE, stream.read() == words.expected()])
"""


def words_tree(tmp_path, first_line="", lines=60000):
    """``words`` and its corpus, ``lines`` long (20,000 lines fit in the reply itself;
    60,000 travel ahead of it, in BODIES frames)."""
    return write_tree(tmp_path / "master", {
        "words/__init__.py": "VALUE = 'words'\n" + "# padding line\n" * 2000 + '''
def expected():
    return %r + "".join("line %%d of a compressible text file\\n" %% n for n in range(%d))
''' % (first_line, lines),
        "words/corpus.txt": first_line + text(lines),
    })


def bridged(gateway, tmp_path, cache_root, compress):
    handle = bridge.install(gateway, path=[words_tree(tmp_path)], cache_root=cache_root,
                            compress=compress)
    return handle, remote_value(gateway, READ_BACK)


def relayed(group, slave_python, slave_cwd, rate=0):
    """A gateway behind benchmarks/relay.py: 10 ms each way, capped at ``rate`` bytes/s."""
    command = " ".join([relay_python(), RELAY, "--delay", "0.010", "--rate", str(rate), "--",
                        slave_python, "-E", "-S"])
    return group.makegateway("popen//python=%s//chdir=%s" % (command, slave_cwd))


def test_compressed_bodies_arrive_intact_and_smaller(gateway, tmp_path, cache_root):
    handle, result = bridged(gateway, tmp_path, cache_root, compress=True)
    assert result == ["words", True]
    stats = handle.stats.as_dict()
    assert stats["bytes_sent"] > len(TEXT)
    assert stats["bytes_wire"] < stats["bytes_sent"] / 4
    assert handle.link["compress"] is True


def test_uncompressed_bodies_travel_as_they_are(gateway, tmp_path, cache_root):
    handle, result = bridged(gateway, tmp_path, cache_root, compress=False)
    assert result == ["words", True]
    stats = handle.stats.as_dict()
    assert stats["bytes_wire"] == stats["bytes_sent"] > len(TEXT)


def test_a_pipe_never_compresses(gateway, tmp_path, cache_root):
    """On one host compressing only costs time: the default sends every body as it is,
    and the handshake does not time a bandwidth."""
    handle, result = bridged(gateway, tmp_path, cache_root, compress=None)
    assert result == ["words", True]
    assert handle.link["compress"] is False  # a pipe's round trip is under 2 ms (unless
    # this machine's load stretched three PINGs: then its bandwidth says the same)
    stats = handle.stats.as_dict()
    assert stats["bytes_wire"] == stats["bytes_sent"] > len(TEXT)


def test_a_slow_link_is_measured_and_compressed_by_default(slave_python, slave_cwd, tmp_path,
                                                           cache_root):
    """20 ms round trip at 100 Mbit/s (benchmarks/relay.py): the handshake measures both,
    and deflating each body while the slave waits pays."""
    group = execnet.Group()
    try:
        gateway = relayed(group, slave_python, slave_cwd, rate=12.5e6)
        handle, result = bridged(gateway, tmp_path, cache_root, compress=None)
        assert result == ["words", True]
        assert handle.link["round_trip"] >= 0.019
        assert 2e6 < handle.link["bandwidth"] < 20e6
        assert handle.link["compress"] is True and handle.link["on_demand"] is True
        assert handle.stats.bytes_wire < handle.stats.bytes_sent / 4
    finally:
        group.terminate(timeout=10)


def test_a_forced_choice_skips_the_bandwidth_ping(slave_python, slave_cwd, tmp_path,
                                                  cache_root):
    """compress=False on a slow link: bodies travel as they are, no payload is timed."""
    group = execnet.Group()
    try:
        gateway = relayed(group, slave_python, slave_cwd, rate=12.5e6)
        handle, result = bridged(gateway, tmp_path, cache_root, compress=False)
        assert result == ["words", True]
        assert handle.link["bandwidth"] is None and handle.link["compress"] is False
        assert handle.stats.bytes_wire == handle.stats.bytes_sent
    finally:
        group.terminate(timeout=10)


@pytest.mark.parametrize("damage", ["not zlib", "other bytes"])
def test_a_damaged_compressed_body_is_refused(gateway, tmp_path, cache_root, damage):
    """The master's compressed copy of the corpus is damaged (its cache is where a bad
    byte would sit for every slave): the slave stores nothing of the reply (its tree is
    built whole or not at all) and the import fails, naming the hash."""
    marker = "corpus of %s\n" % tmp_path  # a body of its own: no other test meets the damage
    sha = hashlib.sha256((marker + text(20000)).encode("ascii")).hexdigest()
    bad = b"x" * 4096 if damage == "not zlib" else zlib.compress(b"other bytes" * 400)
    assert MASTER_CACHES.compressed.get(sha, lambda: bad) == bad
    bridge.install(gateway, path=[words_tree(tmp_path, marker, 20000)], cache_root=cache_root,
                   compress=True)
    blobs = os.path.join(cache_root, "blobs")
    error = imported_or_why(gateway, "words")
    stored = sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []
    assert error != "imported"
    assert sha in error[1]
    assert "inflate" in error[1] if damage == "not zlib" else "do not match" in error[1]
    assert sha not in stored  # nothing of a reply with a bad body is kept


# The choice itself, per link and per body: a Link and a Deflater of the master's own.

GIGABIT, MEGABIT_100 = 125e6, 12.5e6
with open(os.path.join(os.path.dirname(RELAY), "imports.py"), "rb") as _stream:
    SOURCE = _stream.read()  # real source: level 6 packs it smaller than level 1


def wire_body(deflater, link, path, sha, data):
    """What carries one body on ``link``: compressed bytes, or None (as it is)."""
    return deflater.wire_bodies(link, [(path, sha, data)])[0]


def test_a_pipe_link_never_pays():
    link = Link(0.0001)
    assert not link.compresses
    assert not link.pays(10 ** 6, 10 ** 5)
    assert wire_body(Deflater(BoundedCache(10)), link, "a.py", "s" * 64, SOURCE) is None


def test_100_megabit_deflates_on_demand_then_better_for_the_next_slave():
    deflater = Deflater(BoundedCache(10))
    link = Link(0.02, MEGABIT_100)
    packed = wire_body(deflater, link, "a.py", "s" * 64, SOURCE)
    assert zlib.decompress(packed) == SOURCE
    learnt = float(len(packed)) / len(SOURCE)  # how this source packs, for the next .py
    assert abs(deflater.ratio("b.py") - learnt) < abs(_deflate.EXPECTED_RATIO - learnt)
    assert deflater.ratio("b.so") == _deflate.EXPECTED_RATIO
    assert deflater.idle(30)
    again = wire_body(deflater, link, "a.py", "s" * 64, SOURCE)
    assert again == zlib.compress(SOURCE, _deflate.AHEAD_LEVEL)
    assert len(again) < len(packed) < len(SOURCE) / 2


def test_a_gigabit_sends_as_it_is_and_deflates_for_the_next_slave():
    """At 1 Gbit/s deflating while the slave waits costs more than it saves; the body
    goes as it is and is deflated in the background, and a cached body pays."""
    link = Link(0.02, GIGABIT)
    assert link.compresses and not link.as_dict()["on_demand"]
    deflater = Deflater(BoundedCache(10))
    assert wire_body(deflater, link, "a.py", "s" * 64, SOURCE) is None
    assert deflater.idle(30)
    assert zlib.decompress(wire_body(deflater, link, "a.py", "s" * 64, SOURCE)) == SOURCE


def test_small_and_incompressible_bodies_travel_as_they_are():
    deflater = Deflater(BoundedCache(10))
    link = Link(0.02, MEGABIT_100)
    assert wire_body(deflater, link, "a.py", "s" * 64, SOURCE[:100]) is None
    noise = os.urandom(100000)
    assert wire_body(deflater, link, "a.so", "n" * 64, noise) is None
    assert wire_body(deflater, Link(0.0, forced=True), "a.so", "n" * 64, noise) is None


def test_forced_choices_hold_on_any_link():
    deflater = Deflater(BoundedCache(10))
    assert wire_body(deflater, Link(0.02, MEGABIT_100, forced=False), "a.py", "s" * 64,
                              SOURCE) is None
    packed = wire_body(deflater, Link(0.0001, forced=True), "a.py", "t" * 64, SOURCE)
    assert zlib.decompress(packed) == SOURCE
