"""Many threads on one slave, many slaves on one master, gateways that come later."""

import os

import execnet
import pytest

import bridge
from conftest import (MATRIX, execnet_cannot_start, find_python, remote_value, slave_spec,
                      write_tree)
from trees import fleet_tree, shop_tree

THREADS = """
import sys, threading
start = threading.Event()
results, errors = {}, []

def work(index, name):
    start.wait()
    try:
        results[index] = __import__(name, fromlist=["VALUE"]).VALUE
    except Exception as error:
        errors.append(repr(error))

names = ["fleet.m%d" % i for i in range(8)] + ["fleet.shared"] * 8
threads = [threading.Thread(target=work, args=(i, name)) for i, name in enumerate(names)]
for thread in threads:
    thread.start()
start.set()
for thread in threads:
    thread.join(60)
import fleet
channel.send([[results.get(i) for i in range(len(names))], errors, len(fleet.EXECUTIONS),
              any(thread.is_alive() for thread in threads)])
"""


def test_sixteen_threads_import_different_and_identical_modules(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[fleet_tree(tmp_path)], cache_root=cache_root)
    values, errors, executions, hung = remote_value(gateway, THREADS)
    assert errors == [] and not hung
    assert values == list(range(8)) + ["shared"] * 8
    assert executions == 1  # identical imports ran the module once


def startable_pythons():
    return [find_python(label)[0] for label in MATRIX
            if find_python(label)[0] and not execnet_cannot_start(label)]


def test_thirty_two_slaves_of_every_version_import_at_once(tmp_path, cache_root):
    pythons = startable_pythons()
    if not pythons:
        pytest.skip("no slave interpreter found")
    group = execnet.Group()
    try:
        for index in range(32):
            group.makegateway(slave_spec(pythons[index % len(pythons)], str(tmp_path)))
        handle = bridge.install(group, path=[fleet_tree(tmp_path)], cache_root=cache_root)
        assert len(handle.bridges) == 32
        channels = group.remote_exec("""
            import fleet.shared, fleet.m3
            channel.send([fleet.shared.VALUE, fleet.m3.VALUE])
        """)
        assert [channel.receive(120) for channel in channels] == [["shared", 3]] * 32
        # fleet, fleet.shared and fleet.m3 reached every slave, asked for or sent along
        # (the master learns that the submodules follow ``fleet`` and sends them with it)
        assert all(bridge.stats.modules + bridge.stats.prefetched >= 3
                   for bridge in handle.bridges)
        assert sum(bridge.stats.modules for bridge in handle.bridges) <= 32 * 3
    finally:
        group.terminate(timeout=30)


def test_gateways_added_later_through_the_group_handle(tmp_path, cache_root):
    pythons = startable_pythons()
    group = execnet.Group()
    try:
        group.makegateway(slave_spec(pythons[0], str(tmp_path)))
        handle = bridge.install(group, path=[fleet_tree(tmp_path)], cache_root=cache_root)
        later = handle.makegateway(slave_spec(pythons[-1], str(tmp_path)))
        assert remote_value(later, "import fleet.m1; channel.send(fleet.m1.VALUE)") == 1
        group.makegateway(slave_spec(pythons[-1], str(tmp_path)))  # behind the handle's back
        assert len(handle.sync()) == 3
        channels = group.remote_exec("import fleet.m2; channel.send(fleet.m2.VALUE)")
        assert [channel.receive(60) for channel in channels] == [2, 2, 2]
    finally:
        group.terminate(timeout=30)


HEAVY_BYTES = 8 * 1024 * 1024


def test_slaves_that_share_a_cache_root_are_sent_a_reply_once(slave_python, tmp_path):
    """Slaves on one host share its default cache root. Started together and asking the
    same, one is sent the bodies; the others wait until its tree is in place and are
    answered lean (each would otherwise receive, hash and write every body)."""
    master = write_tree(tmp_path / "master", {"heavy/__init__.py": (
        "import os\n"
        "SIZE = os.path.getsize(os.path.join(os.path.dirname(__file__), 'data.bin'))\n")})
    with open(os.path.join(master, "heavy", "data.bin"), "wb") as stream:
        stream.write(os.urandom(HEAVY_BYTES))  # incompressible
    group = execnet.Group()
    try:
        for index in range(3):
            folder = tmp_path / ("cwd-%d" % index)
            folder.mkdir()
            group.makegateway(slave_spec(slave_python, str(folder)))
        handle = bridge.install(group, path=[master], cache_root=str(tmp_path / "shared"))
        channels = group.remote_exec("import heavy; channel.send(heavy.SIZE)")
        sizes = [channel.receive(120) for channel in channels]
    finally:
        group.terminate(timeout=10)
    assert sizes == [HEAVY_BYTES] * 3
    sent = sorted(one.stats.bytes_sent for one in handle.bridges)
    assert sent[-1] >= HEAVY_BYTES and sum(sent[:-1]) < HEAVY_BYTES / 8, sent


def test_a_request_lock_held_elsewhere_delays_an_import_but_never_stops_it(
        gateway, tmp_path, cache_root):
    """A session that keeps its cache root's lock on a request (a slave hung mid-request)
    costs another the wait (ALONE_SECONDS, shortened here), never its import."""
    fcntl = pytest.importorskip("fcntl")
    from bridge.compat.blobs import digest
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    replies = os.path.join(cache_root, "replies")
    os.makedirs(replies)
    with open(os.path.join(replies, digest(b"find shop") + ".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        total, waited = remote_value(gateway, """
            import sys, time
            sys.modules["_execnet_bridge.session"].ALONE_SECONDS = 1.0
            started = time.time()
            import shop
            channel.send([shop.total(4), time.time() - started])
        """)
    assert total == 5.0 and waited >= 0.9
