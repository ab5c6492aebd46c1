"""The slave's persistent cache is bounded: least recently used bodies go first,
never one a live session uses, and slaves sharing a cache stay correct."""
import os
import signal
import threading

import execnet
import pytest
from hypothesis import given, strategies

import bridge
from bridge.compat.cacheroot import pick_evictions
from conftest import (pid_alive, remote_value, served_folders, slave_spec, wait_until,
                      write_tree)

KIB = 1024
DATA_BYTES = 64 * KIB

IMPORT_PACKAGE = """
import os
import {name}
with open(os.path.join(os.path.dirname({name}.__file__), "data.bin"), "rb") as stream:
    data = stream.read()
channel.send([{name}.VALUE, len(data), list(bytearray(data[:8])) == {name}.HEAD])
"""


def write_packages(tmp_path, count):
    """``pkg0`` ... ``pkg<count-1>``, each with 64 KiB of data of its own."""
    entry = str(tmp_path / "packages")
    for index in range(count):
        data = os.urandom(DATA_BYTES)
        write_tree(entry, {"pkg%d/__init__.py" % index: "VALUE = %d\nHEAD = %r\n"
                           % (index, list(bytearray(data[:8])))})
        with open(os.path.join(entry, "pkg%d" % index, "data.bin"), "wb") as stream:
            stream.write(data)
    return entry


def blob_bytes(cache_root):
    blobs = os.path.join(cache_root, "blobs")
    return sum(os.lstat(os.path.join(blobs, name)).st_size for name in os.listdir(blobs))


def import_once(python, cwd, entry, cache_root, index, limit):
    """A fresh slave imports ``pkg<index>`` and exits; its result and bytes sent."""
    group = execnet.Group()
    try:
        gateway = group.makegateway(slave_spec(python, cwd))
        handle = bridge.install(gateway, path=[entry], cache_root=cache_root,
                                cache_limit=limit)
        result = remote_value(gateway, IMPORT_PACKAGE.format(name="pkg%d" % index))
        assert handle.cache_problem is None  # slaves sharing the root never refuse it
        return result, handle.stats.bytes_sent
    finally:
        group.terminate(timeout=30)


def test_distinct_packages_through_a_small_cap_keep_the_cache_under_it(
        slave_python, slave_cwd, tmp_path, cache_root):
    entry, limit = write_packages(tmp_path, 5), 150 * KIB  # room for two packages
    for index in range(5):
        result, sent = import_once(slave_python, slave_cwd, entry, cache_root, index, limit)
        assert result == [index, DATA_BYTES, True] and sent > DATA_BYTES
        assert wait_until(lambda: not [name for name in os.listdir(cache_root)
                                       if name.startswith("s-")])  # the slave has gone
        assert DATA_BYTES < blob_bytes(cache_root) <= limit
    newest, newest_sent = import_once(slave_python, slave_cwd, entry, cache_root, 4, limit)
    oldest, oldest_sent = import_once(slave_python, slave_cwd, entry, cache_root, 0, limit)
    assert newest == [4, DATA_BYTES, True] and newest_sent == 0  # still cached
    assert oldest == [0, DATA_BYTES, True] and oldest_sent > DATA_BYTES  # evicted


def test_a_live_sessions_files_are_never_evicted(slave_python, slave_cwd, tmp_path,
                                                 cache_root):
    entry = write_packages(tmp_path, 2)
    group = execnet.Group()
    try:
        live = group.makegateway(slave_spec(slave_python, slave_cwd))
        handle = bridge.install(live, path=[entry], cache_root=cache_root, cache_limit=0)
        assert remote_value(live, IMPORT_PACKAGE.format(name="pkg0")) == [0, DATA_BYTES, True]
        linked = set(info.st_ino for info in (  # the session's links to cached bodies
            os.lstat(os.path.join(base, name)) for folder in served_folders(handle)
            for base, _, files in os.walk(folder) for name in files)
            if info.st_nlink > 1)
        assert len(linked) >= 2  # __init__.py, data.bin (and the master's .pyc)
        result, _ = import_once(slave_python, slave_cwd, entry, cache_root, 1, 0)
        assert result == [1, DATA_BYTES, True]
        blobs = os.path.join(cache_root, "blobs")
        left = set(os.lstat(os.path.join(blobs, name)).st_ino for name in os.listdir(blobs))
        assert left == linked  # pkg1's bodies went at that slave's exit, pkg0's stayed
        assert remote_value(live, IMPORT_PACKAGE.format(name="pkg0")) == [0, DATA_BYTES, True]
    finally:
        group.terminate(timeout=30)


def test_a_killed_slaves_session_and_bodies_go_at_the_next_start(slave_python, slave_cwd,
                                                                  tmp_path, cache_root):
    entry = write_packages(tmp_path, 2)
    group = execnet.Group()
    try:
        victim = group.makegateway(slave_spec(slave_python, slave_cwd))
        handle = bridge.install(victim, path=[entry], cache_root=cache_root, cache_limit=0)
        assert remote_value(victim, IMPORT_PACKAGE.format(name="pkg0")) == [0, DATA_BYTES, True]
        pid = remote_value(victim, "import os; channel.send(os.getpid())")
        os.kill(pid, signal.SIGKILL)  # no exit trim: its folder and bodies stay behind
        assert wait_until(lambda: not pid_alive(pid))
        assert os.path.isdir(handle.cache_dir) and blob_bytes(cache_root) > DATA_BYTES
        later = group.makegateway(slave_spec(slave_python, slave_cwd))
        bridge.install(later, path=[entry], cache_root=cache_root, cache_limit=0)
        assert not os.path.exists(handle.cache_dir) and blob_bytes(cache_root) == 0
    finally:
        group.terminate(timeout=30)


TRIM_UNTIL_TOLD = """
import sys
hook = sys.modules["_execnet_bridge.hook"]
runs = removed = 0
while True:
    removed += hook.trim_cache(%r, 0, always=True) or 0
    runs += 1
    try:
        channel.receive(0.002)
        break
    except channel.TimeoutError:
        pass
channel.send([runs, removed])
"""


def test_slaves_sharing_a_cache_import_correctly_while_it_is_trimmed(
        slave_python, slave_cwd, tmp_path, cache_root):
    entry, count = write_packages(tmp_path, 6), 6
    group = execnet.Group()
    try:
        trimmer = group.makegateway(slave_spec(slave_python, slave_cwd))
        bridge.install(trimmer, path=[entry], cache_root=cache_root)
        trimming = trimmer.remote_exec(TRIM_UNTIL_TOLD % cache_root)
        results, errors = [], []

        def importer(order):
            try:
                for index in order:
                    results.append(import_once(slave_python, slave_cwd, entry, cache_root,
                                               index, 100 * KIB)[0])
            except Exception as error:  # reported below, with the others' results
                errors.append(error)

        threads = [threading.Thread(target=importer, args=(order,))
                   for order in (range(count), reversed(range(count)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        trimming.send("stop")
        runs, removed = trimming.receive(60)
    finally:
        group.terminate(timeout=30)
    assert errors == []
    assert sorted(results) == sorted([index, DATA_BYTES, True]
                                     for index in list(range(count)) * 2)
    assert runs > 10 and removed > 0  # eviction really ran between the imports


def test_install_refuses_a_cache_limit_that_is_not_bytes():
    for bad in (-1, 1.5, "1G", True):
        with pytest.raises(ValueError, match="cache_limit must be a number of bytes"):
            bridge.install(None, cache_limit=bad)


ENTRIES = strategies.lists(strategies.tuples(
    strategies.integers(0, 100), strategies.integers(0, 1000), strategies.booleans()),
    max_size=30)


@given(ENTRIES, strategies.integers(0, 10000))
def test_eviction_picks_the_least_recently_used_that_are_not_in_use(raw, limit):
    entries = [(used, size, "k%d" % index, in_use)
               for index, (used, size, in_use) in enumerate(raw)]
    picked = pick_evictions(entries, limit)
    kept = [entry for entry in entries if entry[2] not in picked]
    evictable = sorted(entry for entry in entries if not entry[3])
    assert [entry[2] for entry in evictable[:len(picked)]] == picked  # oldest first, none in use
    kept_bytes = sum(entry[1] for entry in kept)
    assert kept_bytes <= limit or len(picked) == len(evictable)  # over only if all went
    if picked:  # and no more than needed
        assert kept_bytes + evictable[len(picked) - 1][1] > limit
