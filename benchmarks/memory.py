"""Peak memory of the master and of a slave while numpy is served to many cold
slaves at once (issue 9, target 10).

    python benchmarks/memory.py --numpy-site DIR [--python PATH] [--slaves 16]

Run it in a process of its own: the master's figure is this process's peak
resident set (``getrusage(RUSAGE_SELF).ru_maxrss``, which only grows), read
before anything is served and after the fleet imported. The slaves are bare
(a ``venv --without-pip`` of --python, numpy's version, ``-E -S``), each
with an empty cache of its own (its TMPDIR), started at once in an execnet
Group bridged with ``allow_extensions=True, path=[DIR]``; each imports numpy
and reports its own peak. "local" is one bare slave with DIR on its own path:
what numpy costs a slave that has it installed.
"""
from __future__ import print_function

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import execnet

import bridge
from fleet import at_once
from imports import bare_venv, median

PEAK = """
import resource, sys
site = channel.receive()
if site:
    sys.path.insert(0, site)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import numpy
channel.send((before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def peak_kb():
    """This process's peak resident set in KB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def slave_peaks(gateway, site=None):
    channel = gateway.remote_exec(PEAK)
    channel.send(site)
    return channel.receive(600)


def served_fleet(python, site, slaves):
    """(wall seconds, [(slave peak before, after)], MB sent) for ``slaves`` cold slaves."""
    folder = tempfile.mkdtemp(prefix="bench-memory-")
    specs = []
    for index in range(slaves):
        os.makedirs(os.path.join(folder, str(index)))
        specs.append("popen//python=%s -E -S//env:TMPDIR=%s" % (
            python, os.path.join(folder, str(index))))
    group = execnet.Group()
    try:
        at_once(group.makegateway, specs)
        handle = bridge.install(group, path=[site], allow_extensions=True)
        started = time.perf_counter()
        peaks = at_once(slave_peaks, list(group))
        seconds = time.perf_counter() - started
        sent = sum(one.stats.bytes_wire for one in handle.bridges)
        return seconds, peaks, sent / 1e6
    finally:
        group.terminate(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def local_peak(python, site):
    gateway = execnet.makegateway("popen//python=%s -E -S" % python)
    try:
        return slave_peaks(gateway, site)
    finally:
        gateway.exit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numpy-site", required=True, help="numpy installed with pip --target")
    parser.add_argument("--python", default=sys.executable, help="slave interpreter (numpy's)")
    parser.add_argument("--slaves", type=int, default=16)
    args = parser.parse_args()
    python = bare_venv(args.python)
    local = local_peak(python, args.numpy_site)
    master_before = peak_kb()
    seconds, peaks, megabytes = served_fleet(python, args.numpy_site, args.slaves)
    master_after = peak_kb()
    print("numpy served to %d cold bare slaves (%s) at once: %.2f s wall, %.1f MB on the "
          "wire; peak RSS (ru_maxrss), MB" % (args.slaves, python, seconds, megabytes))
    print("%-32s %10s %10s" % ("process", "before", "peak"))
    print("%-32s %10.1f %10.1f" % ("master", master_before / 1024.0, master_after / 1024.0))
    print("%-32s %10.1f %10.1f" % ("slave, bridged (median)", median([p[0] for p in peaks])
                                   / 1024.0, median([p[1] for p in peaks]) / 1024.0))
    print("%-32s %10.1f %10.1f" % ("slave, bridged (largest)", max(p[0] for p in peaks)
                                   / 1024.0, max(p[1] for p in peaks) / 1024.0))
    print("%-32s %10.1f %10.1f" % ("slave, numpy installed (local)", local[0] / 1024.0,
                                   local[1] / 1024.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
