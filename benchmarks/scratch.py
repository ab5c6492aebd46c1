"""Scratch folders for the slaves' cold caches, removed when the benchmark ends rather
than between its runs.

This host's ext4 has no journal, and without one the kernel will not reuse an inode
freed in the last half minute or so: a create near many such inodes checks each of them
first. Right after a cold run's cache was removed, creating a file took 850 us of system
time instead of 25 us, and the next cold run measured that. A new slave host has not just
deleted a cache, so no run pays for the one before it; and a benchmark's first folder
waits until a create costs what it costs on such a host (``settle``): the benchmark
before it, or a test run, removed its caches when it ended (session 20: 358 us a create
right after 3,000 files were removed, 40-80 us forty seconds later, 6 us on a tmpfs).
"""
from __future__ import print_function

import atexit
import os
import shutil
import sys
import tempfile
import time

SETTLED_SECONDS = 150e-6  # a create that costs more: inodes freed nearby lately
PROBES = 40  # files created per look; the median counts
PAUSE = 2.0  # seconds between looks
SETTLE_LIMIT = 90.0  # seconds waited at most

_made = []
_settled = set()


def folder(prefix, root=None):
    """A new empty folder in ``root`` (the temporary folder by default), removed at exit."""
    settle(root)
    path = tempfile.mkdtemp(prefix=prefix, dir=root)
    _made.append(path)
    return path


def settle(root=None, limit=SETTLE_LIMIT):
    """Wait, once per ``root`` and process, until a create there costs less than
    SETTLED_SECONDS (up to ``limit`` seconds); say on stderr how long, when it waited."""
    key = os.path.realpath(root or tempfile.gettempdir())
    if key in _settled:
        return
    _settled.add(key)
    started = time.time()
    probes = tempfile.mkdtemp(prefix="bench-settle-", dir=root)
    _made.append(probes)  # removed at exit, as the caches are
    look = 0
    while True:
        cost = _create_cost(probes, look)
        if cost < SETTLED_SECONDS or time.time() - started > limit:
            break
        time.sleep(PAUSE)
        look += 1
    if look:
        print("(waited %.0f s until a create in %s cost %.0f us)"
              % (time.time() - started, key, cost * 1e6), file=sys.stderr)


def _create_cost(probes, look):
    """The median seconds of PROBES new empty files' creates."""
    costs = []
    for index in range(PROBES):
        path = os.path.join(probes, "%d-%d" % (look, index))
        started = time.perf_counter()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        costs.append(time.perf_counter() - started)
        os.close(descriptor)
    return sorted(costs)[len(costs) // 2]


def remove_all():
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


atexit.register(remove_all)
