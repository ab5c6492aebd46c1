"""Forwarding hops: leaves made ``via=`` a bridged gateway, through the bridge's relay.

Real popen gateways chained with ``via=``; every gateway has a cache root of its own, as
separate hosts would. The hop keeps what it passes; a later leaf behind it gets those
bodies from the hop, and the master<->hop link carries none of them.
"""
import hashlib
import os
import platform
import re
import signal
import sys
import time

import execnet
import pytest

import bridge
from bridge.errors import BridgeError
from conftest import python_of, remote_value, write_tree
import extensions

TREE = {
    "demo/__init__.py": """
        import pkgutil
        from . import part
        VALUE = part.X * 2
        DATA = pkgutil.get_data(__name__, "data.bin")
        """,
    "demo/part.py": "X = 21\n" + "# filler, so a body is worth keeping\n" * 40,
    "demo/data.bin": "bytes stay bytes\n",
    "demo/secret.py": "TOKEN = 'no leaf may have this'\n",
    "slowdemo/__init__.py": """
        import time
        time.sleep(3)
        __import__("demo" + "_after")  # the scan cannot see it: a request of its own
        """,
    "demo_after.py": "X = 1\n",
}

IMPORT_DEMO = """
import demo
channel.send([demo.VALUE, demo.DATA, type(demo.DATA).__name__, type(u"").__name__])
"""


@pytest.fixture
def tree(tmp_path):
    return write_tree(tmp_path / "served", TREE)


@pytest.fixture
def fleet(tmp_path, tree):
    """Make gateways of one group: ``fleet(name, python, via=None, **install settings)``;
    the group is installed (path=tree) when the first gateway is made."""
    group = execnet.Group()
    state = {}

    def make(name, python, via=None, **settings):
        spec = "popen//id=%s//python=%s -E -S" % (name, python)
        settings.setdefault("cache_root", str(tmp_path / ("cache-" + name)))
        if via is not None:
            return state["handle"].makegateway(spec + "//via=" + via, **settings)
        gateway = group.makegateway(spec)
        if "handle" not in state:
            state["handle"] = bridge.install(group, path=[tree], **settings)
        else:
            bridge.install(gateway, path=[tree], **settings)
        return gateway

    make.group = group
    make.stats = lambda hop: state["handle"].hops[hop]
    yield make
    group.terminate(timeout=10)


def check_demo(gateway):
    value, data, data_type, text_type = remote_value(gateway, IMPORT_DEMO)
    assert value == 42
    assert data in (b"bytes stay bytes\n", u"bytes stay bytes\n")  # a 2.7 str arrives as text
    # on the leaf, exactly the types a slave of its version gets without a hop
    assert (data_type, text_type) in (("bytes", "str"), ("str", "unicode"))


def test_a_leaf_behind_a_warm_hop_moves_no_body_over_the_hop_link(fleet, slave_label,
                                                                    slave_python):
    """A hop and a first leaf of the master's own version (its replies carry the master's
    .pyc too), then a leaf of every version: each gets what fits it, and the hop's cache
    has all of it."""
    own = python_of("pypy3" if platform.python_implementation() == "PyPy"
                    else "%d.%d" % sys.version_info[:2])
    fleet("hop", own)
    first = fleet("first", own, via="hop")
    check_demo(first)
    after_first = fleet.stats("hop")
    assert after_first["bytes_upstream"] > 0 and after_first["bytes_from_hop"] == 0
    second = fleet("second", slave_python, via="hop")
    check_demo(second)
    after_second = fleet.stats("hop")
    assert after_second["bytes_upstream"] == after_first["bytes_upstream"], after_second
    assert after_second["bytes_from_hop"] > 0 and after_second["bodies_unfilled"] == 0
    assert bridge.install(second).stats.bytes_wire == 0  # its bodies came from the hop


def test_a_hop_of_every_version_forwards_and_fills(fleet, slave_label, slave_python):
    """A 3.11 leaf behind a hop of every version (2.7 included): the relay decodes and
    re-encodes only its replies, and the leaf gets the types it would get directly."""
    own = python_of("3.11")
    fleet("hop", slave_python)
    check_demo(fleet("first", own, via="hop"))
    upstream = fleet.stats("hop")["bytes_upstream"]
    check_demo(fleet("second", own, via="hop"))
    stats = fleet.stats("hop")
    assert stats["bytes_upstream"] == upstream and stats["bodies_from_hop"] > 0, stats


def large_tree(base):
    """A package whose reply streams: a 3 MB body (in pieces) and six of 300 KB (whole
    pieces), none of which the reply itself can carry."""
    files = {"large/__init__.py": """
        import hashlib, pkgutil
        NAMES = ["big.bin"] + ["part%d.bin" % number for number in range(6)]
        DIGESTS = [hashlib.sha256(pkgutil.get_data(__name__, name)).hexdigest()
                   for name in NAMES]
        """}
    write_tree(base, files)
    digests = []
    for name, size in [("big.bin", 3 * 1024 * 1024)] + [
            ("part%d.bin" % number, 300 * 1024) for number in range(6)]:
        data = noise(name, size)
        with open(os.path.join(str(base), "large", name), "wb") as stream:
            stream.write(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return str(base), digests


def noise(seed, size):
    """``size`` bytes no compressor shrinks, the same for the same ``seed``."""
    blocks, block = [], hashlib.sha256(seed.encode("ascii")).digest()
    while len(blocks) * len(block) < size:
        block = hashlib.sha256(block).digest()
        blocks.append(block)
    return b"".join(blocks)[:size]


def test_bodies_streamed_to_a_leaf_are_kept_on_the_hop(tmp_path, slave_label, slave_python):
    """A reply too large to travel whole streams through the relay, which writes its
    pieces to the hop's cache as they pass (a hop of every version): a second leaf gets
    every body from the hop, and none crosses the master<->hop link again."""
    served, digests = large_tree(tmp_path / "large")
    own = python_of("3.11")
    group = execnet.Group()
    try:
        group.makegateway("popen//id=hop//python=%s -E -S" % slave_python)
        # compress=False: a loaded machine can time a pipe as slow, and bytes that travel
        # compressed would not equal the bytes the hop fills
        handle = bridge.install(group, path=[served], cache_root=str(tmp_path / "hop"),
                                compress=False)
        answer = "import large\nchannel.send(large.DIGESTS)"
        for leaf in ("first", "second"):
            gateway = handle.makegateway("popen//id=%s//python=%s -E -S//via=hop" % (
                leaf, own), cache_root=str(tmp_path / leaf), compress=False)
            assert remote_value(gateway, answer) == digests
            stats = bridge.install(gateway).stats
            if leaf == "first":
                hop = dict(handle.hops["hop"])
                assert stats.streamed >= 3 * 1024 * 1024, stats  # it went in BODIES frames
                assert hop["bytes_upstream"] >= 4 * 1024 * 1024, hop
        after = handle.hops["hop"]
        assert after["bytes_upstream"] == hop["bytes_upstream"], after
        # the data files, __init__.py and its .pyc
        assert after["bodies_from_hop"] > len(digests) and after["bodies_unfilled"] == 0, after
        assert after["bytes_from_hop"] == hop["bytes_upstream"], after
        assert stats.bytes_wire == 0 and stats.streamed == 0, stats  # all from the hop
    finally:
        group.terminate(timeout=10)


def test_three_hops_each_leaf_filled_by_its_own_hop(fleet):
    own = python_of("3.11")
    fleet("hop1", own)
    fleet("hop2", own, via="hop1")
    check_demo(fleet("leaf1", own, via="hop2"))
    check_demo(fleet("leaf2", own, via="hop2"))
    hop2 = fleet.stats("hop2")
    assert hop2["bodies_from_hop"] > 0 and hop2["replies"] == 2, hop2
    check_demo(fleet("beside", own, via="hop1"))  # hop1 never passed demo on: it sends all
    assert fleet.stats("hop1")["bodies_upstream"] > 0


def test_a_corrupted_hop_blob_is_fetched_again_never_served(fleet, tmp_path):
    own = python_of("3.11")
    fleet("hop", own)
    check_demo(fleet("first", own, via="hop"))
    deadline = time.time() + 30  # the hop stores once its leaves are quiet
    while not fleet.stats("hop")["bytes_stored"] and time.time() < deadline:
        time.sleep(0.1)
    blobs = str(tmp_path / "cache-hop" / "blobs")
    for name in os.listdir(blobs):
        with open(os.path.join(blobs, name), "wb") as stream:
            stream.write(b"X = 'not what the master sent'\n")
    before = fleet.stats("hop")
    check_demo(fleet("second", own, via="hop"))
    after = fleet.stats("hop")
    assert after["bodies_unfilled"] > 0 and after["bodies_from_hop"] == 0, after
    assert after["bodies_upstream"] > before["bodies_upstream"]  # the retry moved them
    assert after["replies"] - before["replies"] == 2  # one retry, which prefetched again
    check_demo(fleet("third", own, via="hop"))  # the hop stored the retry's bodies
    assert fleet.stats("hop")["bodies_from_hop"] > 0


def test_a_hop_killed_mid_import_fails_the_leaf_at_once(fleet, caplog):
    own = python_of("3.11")
    hop = fleet("hop", own)
    leaf = fleet("leaf", own, via="hop")
    channel = leaf.remote_exec("import slowdemo\nchannel.send('imported')")
    hop_pid = remote_value(hop, "import os; channel.send(os.getpid())")
    time.sleep(1)  # slowdemo sleeps 3 s, then asks for demo_after
    os.kill(hop_pid, signal.SIGKILL)
    started = time.time()
    with pytest.raises((EOFError, channel.RemoteError)) as raised:
        channel.receive(60)
    assert time.time() - started < 30
    assert "message header" in str(raised.value) or "closed" in str(raised.value)
    deadline = time.time() + 30
    while time.time() < deadline and not gone_said(caplog):
        time.sleep(0.1)
    assert gone_said(caplog)  # the master saw its hop die, and said so in the log


def gone_said(caplog):
    return any("the hop hop is gone: the leaf leaf" in record.getMessage()
               for record in caplog.records)


REFUSED = """
out = []
for name in NAMES:
    try:
        __import__(name)
        out.append([name, "imported"])
    except ImportError as error:
        out.append([name, str(error)])
channel.send(out)
"""


def test_a_leaf_cannot_use_the_hop_to_reach_what_the_master_refuses(fleet, tmp_path):
    own = python_of("3.11")
    hop = fleet("hop", own)
    assert remote_value(hop, "import demo.secret; channel.send(demo.secret.TOKEN)")
    leaf = fleet("leaf", own, via="hop", deny=["demo.secret"])
    out = remote_value(leaf, REFUSED.replace("NAMES", "['demo', 'demo.secret']"))
    assert out[0] == ["demo", "imported"]
    assert out[1][0] == "demo.secret" and "denied by the master's rule" in out[1][1], out


def test_a_binary_the_send_rule_refuses_stays_refused_behind_the_hop(tmp_path):
    own, old = python_of("3.11"), python_of("2.7")
    site = extensions.built_site("3.11", own)
    group = execnet.Group()
    try:
        group.makegateway("popen//id=hop//python=%s -E -S" % own)
        handle = bridge.install(group, path=[site], allow_extensions=True,
                                cache_root=str(tmp_path / "cache-hop"))
        assert remote_value(group["hop"], "import extdemo._single as m\n"
                                          "channel.send(m.add(2, 3))") == 5
        leaf = handle.makegateway("popen//id=leaf//via=hop//python=%s -E -S" % old,
                                  cache_root=str(tmp_path / "cache-leaf"))
        out = remote_value(leaf, REFUSED.replace("NAMES", "['extdemo._single']"))
        assert out[0][0] == "extdemo._single" and "cp27mu" in out[0][1], out
    finally:
        group.terminate(timeout=10)


def test_a_group_made_by_plain_execnet_via_works_without_sharing(tmp_path, tree):
    """execnet's own via= (serve_proxy_io) carries the bridge too; only gateways made
    by the bridge (handle.makegateway) forward with a cache. Hop and leaf of the master's
    own version: execnet's serve_proxy_io fails between a 2.7 master and a 3.x hop."""
    own = python_of("pypy3" if platform.python_implementation() == "PyPy"
                    else "%d.%d" % sys.version_info[:2])
    group = execnet.Group(["popen//id=hop//python=%s -E -S" % own,
                           "popen//id=leaf//via=hop//python=%s -E -S" % own])
    try:
        handle = bridge.install(group, path=[tree], cache_root=str(tmp_path / "cache"))
        check_demo(group["leaf"])
        assert handle.hops == {}
        later = handle.makegateway("popen//id=later//via=hop//python=%s -E -S" % own,
                                   cache_root=str(tmp_path / "cache-later"))
        check_demo(later)
        assert handle.hops["hop"]["bodies_upstream"] > 0
    finally:
        group.terminate(timeout=10)


def test_a_leaf_made_via_a_bridged_hop_by_the_group_itself_is_refused_naming_the_handle(
        tmp_path, tree):
    """After install(group), the group's own makegateway(via=) goes past the bridge's
    relay: no forwarding. Installing on such a leaf says to use handle.makegateway; the
    group's other gateways go on serving."""
    own = python_of("pypy3" if platform.python_implementation() == "PyPy"
                    else "%d.%d" % sys.version_info[:2])
    group = execnet.Group(["popen//id=hop//python=%s -E -S" % own])
    try:
        handle = bridge.install(group, path=[tree], cache_root=str(tmp_path / "cache"))
        spec = "popen//id=late//via=hop//python=%s -E -S" % own
        late = group.makegateway(spec)
        expected = r"made via='hop' .* handle\.makegateway\('%s'\)" % re.escape(spec)
        with pytest.raises(BridgeError, match=expected):
            bridge.install(late, path=[tree], cache_root=str(tmp_path / "cache-late"))
        with pytest.raises(BridgeError, match=expected):
            handle.sync()
        check_demo(group["hop"])
        forwarded = handle.makegateway("popen//id=later//via=hop//python=%s -E -S" % own,
                                       cache_root=str(tmp_path / "cache-later"))
        check_demo(forwarded)
        assert handle.hops["hop"]["bodies_from_hop"] > 0  # what the hop itself imported
    finally:
        group.terminate(timeout=10)
