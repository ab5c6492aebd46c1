"""Large replies stream: a reply carries at most INLINE_BYTES of bodies itself, and the
rest travels ahead of it in BODIES frames of about CHUNK_BYTES, which the slave writes
as they come and checks once each body is whole."""
import hashlib
import logging
import os
import signal
import sys
import zlib

import execnet
import pytest

import bridge
from bridge._install import MASTER_CACHES
from bridge.compat import protocol
from bridge.compat.blobs import BlobStore
from bridge.compat.incoming import PREFIX, Incoming
from conftest import (imported_or_why, python_of, relay_python, remote_value, slave_spec,
                      wait_until, write_tree)

RELAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "relay.py")
CHUNK = protocol.CHUNK_BYTES
MODULES = 24  # of 240 KB each: more than a reply carries itself


def noise(size, seed):
    """``size`` bytes that do not compress, the same for the same seed."""
    out, block = [], hashlib.sha256(seed.encode("ascii")).digest()
    while len(out) * 32 < size:
        block = hashlib.sha256(block).digest()
        out.append(block)
    return b"".join(out)[:size]


def big_package(tmp_path, seed, blob_size=CHUNK * 4 + 12345, text=None):
    """``big``: modules over INLINE_BYTES in all, and ``blob.bin``, several frames long."""
    files = {"big/__init__.py": "from big import %s\n" % ", ".join(
        "m%d" % number for number in range(MODULES))}
    for number in range(MODULES):
        files["big/m%d.py" % number] = "VALUE = %d\n" % number + "# %s\n" % ("x" * 78) * 3000
    root = write_tree(tmp_path / "master", files)
    blob = noise(blob_size, seed) if text is None else text
    with open(os.path.join(root, "big", "blob.bin"), "wb") as stream:
        stream.write(blob)
    return root, blob


READ_BACK = """
import hashlib, pkgutil, big
channel.send([sum(getattr(big, "m%d" % n).VALUE for n in range({modules})),
              hashlib.sha256(pkgutil.get_data("big", "blob.bin")).hexdigest()])
""".format(modules=MODULES)


def test_a_large_reply_streams_ahead_and_arrives_whole(slave_python, slave_cwd, tmp_path,
                                                       cache_root):
    """Every interpreter: the bodies past the reply's own share come in frames, the
    large file in pieces; the next gateway on that cache gets a lean reply."""
    root, blob = big_package(tmp_path, str(tmp_path))
    results = []
    for _ in range(2):
        group = execnet.Group()
        try:
            gateway = group.makegateway(slave_spec(slave_python, slave_cwd))
            seen = []
            handle = bridge.install(gateway, path=[root], cache_root=cache_root,
                                    progress=lambda *report: seen.append(report))
            value = remote_value(gateway, READ_BACK)
            results.append((value, handle.stats.as_dict(), seen))
        finally:
            group.terminate(timeout=10)
    expected = [sum(range(MODULES)), hashlib.sha256(blob).hexdigest()]
    (cold, stats, seen), (warm, warm_stats, _) = results
    assert cold == warm == expected
    assert stats["streamed"] >= max(len(blob), stats["bytes_sent"] - protocol.INLINE_BYTES)
    assert stats["bytes_sent"] > protocol.INLINE_BYTES + len(blob)
    assert len(seen) >= 2 and seen[-1][2] == stats["bytes_sent"]  # progress while it moved
    assert warm_stats["streamed"] == warm_stats["bytes_sent"] == 0 and warm_stats["lean"] == 1


def test_a_reply_slower_than_the_timeout_arrives_while_its_frames_move(slave_cwd, tmp_path,
                                                                      cache_root):
    """At 2 MB/s (benchmarks/relay.py) the reply takes longer than the 1 s timeout; each
    frame shows progress, so the slave keeps waiting, where one message would time out."""
    root, blob = big_package(tmp_path, "slow")
    group = execnet.Group()
    try:
        command = " ".join([relay_python(), RELAY, "--delay", "0.001", "--rate", "2e6", "--",
                            python_of("%d.%d" % sys.version_info[:2]), "-E", "-S"])
        gateway = group.makegateway("popen//python=%s//chdir=%s" % (command, slave_cwd))
        handle = bridge.install(gateway, path=[root], cache_root=cache_root, timeout=1.0,
                                compress=False)
        value = remote_value(gateway, READ_BACK)
        assert value == [sum(range(MODULES)), hashlib.sha256(blob).hexdigest()]
        assert handle.stats.bytes_wire > 3 * 2e6  # more than 3 s at 2 MB/s: over the timeout
    finally:
        group.terminate(timeout=10)


def test_a_slave_killed_while_its_reply_streams_is_no_master_error(gateway, tmp_path, cache_root,
                                                                   caplog):
    """The slave dies between two frames (killed from the progress report): the master's
    write fails, the reply is dropped without an error or a traceback, and the master
    serves the next slave on that cache as if nothing happened."""
    caplog.set_level(logging.INFO, logger="bridge.responder")
    root, blob = big_package(tmp_path, "killed")
    pid = remote_value(gateway, "import os; channel.send(os.getpid())")
    handle = bridge.install(gateway, path=[root], cache_root=cache_root,
                            progress=lambda *report: os.kill(pid, signal.SIGKILL))
    gateway.remote_exec("import big")
    assert wait_until(lambda: handle.stats.requests == 1, timeout=60)
    assert handle.stats.errors == 0
    said = [(record.levelno, record.getMessage()) for record in caplog.records
            if record.name.startswith("bridge")]
    assert [level for level, _ in said] == [logging.INFO], said
    assert "went away while its reply was sent" in said[0][1]
    group = execnet.Group()
    try:
        again = group.makegateway(gateway.spec)
        bridge.install(again, path=[root], cache_root=cache_root)
        assert remote_value(again, READ_BACK)[1] == hashlib.sha256(blob).hexdigest()
    finally:
        group.terminate(timeout=10)


def test_a_damaged_piece_is_refused_and_nothing_of_it_is_kept(gateway, tmp_path, cache_root):
    """The master's compressed copy of the second piece of a large body is damaged: the
    slave drops that body, asks once more, and the import fails saying why."""
    text = b"".join(b"line %d of %s\n" % (number, str(tmp_path).encode()) for number in
                    range(150000))
    assert len(text) > CHUNK * 2
    root, _ = big_package(tmp_path, "damaged", text=text)
    sha = hashlib.sha256(text).hexdigest()
    bad = zlib.compress(b"y" * CHUNK)  # as long as the piece it stands for
    key = "%s@%d" % (sha, CHUNK)
    assert MASTER_CACHES.compressed.get(key, lambda: bad) == bad
    bridge.install(gateway, path=[root], cache_root=cache_root, compress=True)
    error = imported_or_why(gateway, "big")
    blobs = os.path.join(cache_root, "blobs")
    stored = sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []
    leftovers = [name for _, _, names in os.walk(cache_root) for name in names
                 if name.startswith(PREFIX)]
    assert error[0] == "RemoteImportError", error
    assert "did not arrive intact" in error[1] and sha in error[1], error
    assert "do not match" in error[1]
    assert sha not in stored and leftovers == []


# The slave's Incoming, fed frames as a faulty master would send them.

@pytest.fixture
def incoming(tmp_path):
    blobs = BlobStore(str(tmp_path / "cache"))
    session = tmp_path / "cache" / "session"
    session.mkdir(parents=True)
    return Incoming(blobs, str(session))


def frame(*pieces):
    return protocol.bodies_frame(1, [list(each) for each in pieces])


def leftovers(incoming):
    return [name for name in os.listdir(incoming.folder) if name.startswith(PREFIX)]


def test_pieces_in_order_make_a_checked_blob(incoming):
    body = noise(3000, "a")
    sha = hashlib.sha256(body).hexdigest()
    incoming.receive(frame((sha, 0, 3000, body[:1000], False)))
    incoming.receive(frame((sha, 1000, 3000, zlib.compress(body[1000:2500]), True),
                           (sha, 2500, 3000, body[2500:], False)))
    assert sha in incoming.intact and incoming.failed == []
    with open(incoming.blobs.path(sha), "rb") as stream:
        assert stream.read() == body
    assert leftovers(incoming) == []


@pytest.mark.parametrize("case", ["out of order", "too long", "wrong bytes", "not zlib",
                                  "malformed", "unfinished"])
def test_bad_pieces_drop_their_body_and_leave_nothing(incoming, case):
    body = noise(3000, case)
    sha = hashlib.sha256(body).hexdigest()
    pieces = {
        "out of order": [(sha, 0, 3000, body[:1000], False), (sha, 2000, 3000, body[2000:], False)],
        "too long": [(sha, 0, 3000, body[:1000], False), (sha, 1000, 3000, body[1000:] + b"!", False)],
        "wrong bytes": [(sha, 0, 3000, body[:1000], False), (sha, 1000, 3000, body[:2000], False)],
        "not zlib": [(sha, 0, 3000, b"x" * 3000, True)],
        "malformed": [("../../etc/passwd", 0, 3000, body, False)],
        "unfinished": [(sha, 0, 3000, body[:1000], False)],
    }[case]
    incoming.receive(frame(*pieces))
    incoming.finish(1)  # its reply came
    assert sha not in incoming.intact
    assert not os.path.exists(incoming.blobs.path(sha))
    assert leftovers(incoming) == []
    assert (incoming.failed == []) == (case == "unfinished")
