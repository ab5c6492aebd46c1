"""Many threads on one slave, many slaves on one master, gateways that come later."""

import execnet
import pytest

import bridge
from conftest import MATRIX, execnet_cannot_start, find_python, remote_value, slave_spec
from trees import fleet_tree

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
