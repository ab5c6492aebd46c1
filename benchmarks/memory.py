"""Peak memory of the master and of a slave while numpy is served to many cold
slaves at once (issue 9, target 10).

    python benchmarks/memory.py --numpy-site DIR [--python PATH] [--slaves 1,16]

Each fleet size runs in a master process of its own: the master's figure is
that process's peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``, which
only grows), read before anything is served and after the fleet imported,
so 1 slave against 16 shows what the master holds per slave. The slaves are bare
(a ``venv --without-pip`` of --python, numpy's version, ``-E -S``), each
with an empty cache of its own (its TMPDIR), started at once in an execnet
Group bridged with ``allow_extensions=True, path=[DIR]``; each imports numpy
and reports its own peak. "local" is one bare slave with DIR on its own path:
what numpy costs a slave that has it installed.
"""
from __future__ import print_function

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import execnet

import bridge
import scratch
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
    folder = scratch.folder("bench-memory-")  # removed at exit: benchmarks/scratch.py
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


def local_peak(python, site):
    gateway = execnet.makegateway("popen//python=%s -E -S" % python)
    try:
        return slave_peaks(gateway, site)
    finally:
        gateway.exit()


def one_fleet_size(python, site, slaves):
    """The figures of one fleet, measured in this process (its peak is the master's)."""
    master_before = peak_kb()
    seconds, peaks, megabytes = served_fleet(python, site, slaves)
    return {"slaves": slaves, "seconds": seconds, "megabytes": megabytes,
            "master_before": master_before, "master_peak": peak_kb(),
            "slave_median": median([peak[1] for peak in peaks]),
            "slave_largest": max(peak[1] for peak in peaks)}


def in_own_process(python, site, slaves):
    """``one_fleet_size`` in a new master process: ru_maxrss never goes down."""
    output = subprocess.check_output([sys.executable, os.path.abspath(__file__), "--numpy-site",
                                      site, "--python", python, "--one", str(slaves)])
    return json.loads(output.decode("utf-8").splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numpy-site", required=True, help="numpy installed with pip --target")
    parser.add_argument("--python", default=sys.executable, help="slave interpreter (numpy's)")
    parser.add_argument("--slaves", default="1,16", help="comma-separated fleet sizes")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a fleet, in a child
    args = parser.parse_args()
    python = bare_venv(args.python)
    if args.one:
        print(json.dumps(one_fleet_size(python, args.numpy_site, args.one)))
        return 0
    local = local_peak(python, args.numpy_site)
    print("numpy served to cold bare slaves (%s) at once, one master process per fleet; "
          "peak RSS (ru_maxrss), MB" % python)
    print("%6s %7s %8s | %13s %11s | %12s %13s" % (
        "slaves", "wall s", "MB wire", "master before", "master peak", "slave median",
        "slave largest"))
    for slaves in [int(each) for each in args.slaves.split(",")]:
        row = in_own_process(python, args.numpy_site, slaves)
        print("%6d %7.2f %8.1f | %13.1f %11.1f | %12.1f %13.1f" % (
            slaves, row["seconds"], row["megabytes"], row["master_before"] / 1024.0,
            row["master_peak"] / 1024.0, row["slave_median"] / 1024.0,
            row["slave_largest"] / 1024.0))
        sys.stdout.flush()
    print("a slave with numpy installed (local): %.1f MB" % (local[1] / 1024.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
