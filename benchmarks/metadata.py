"""What distribution metadata costs a bare slave, against reading it locally.

    python benchmarks/metadata.py [--site DIR] [--python PATH] [--runs N]

One call by name (``version()``) and one listing of every distribution
(``entry_points()``, as pytest does at start), on a bare slave of --python:
local (DIR on the slave's own path), bridged cold (empty slave cache) and warm
(a new gateway, the cache of the cold run). Medians of N runs, timed on the
slave; requests are the slave's round trips, bytes the bodies sent.
"""
from __future__ import print_function

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig

import execnet

import bridge
import scratch

TIMED = """
import sys, time
started = time.perf_counter()
import importlib.metadata as metadata
%s
channel.send(time.perf_counter() - started)
"""
CALLS = [
    ("version('pip') by name", "metadata.version('pip')"),
    ("every distribution's entry points", "[d.entry_points for d in metadata.distributions()]"),
]


def local(python, site, call):
    code = TIMED.replace("channel.send(", "print(") % call
    return float(subprocess.check_output(
        [python, "-E", "-S", "-c", "import sys; sys.path.append(%r)\n%s" % (site, code)]))


def bridged(python, site, call, cache):
    gateway = execnet.makegateway("popen//python=%s -E -S//chdir=%s" % (python, cache))
    try:
        handle = bridge.install(gateway, path=[site], cache_root=cache)
        seconds = gateway.remote_exec(TIMED % call).receive(600)
        return seconds, handle.stats.requests, handle.stats.bytes_sent
    finally:
        gateway.exit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default=sysconfig.get_paths()["purelib"])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    count = len([name for name in os.listdir(args.site) if name.endswith(".dist-info")])
    print("%s: %d distributions; slave %s -E -S; medians of %d runs"
          % (args.site, count, args.python, args.runs))
    print("%-36s %9s %9s %9s %6s %9s %10s" % ("call", "local s", "cold s", "warm s", "trips",
                                             "cold MB", "warm MB"))
    for label, call in CALLS:
        cold, warm = [], []
        for _ in range(args.runs):
            cache = scratch.folder("bench-metadata-")  # removed at exit: scratch.py
            cold.append(bridged(args.python, args.site, call, cache))
            warm.append(bridged(args.python, args.site, call, cache))
        seconds = statistics.median(local(args.python, args.site, call) for _ in range(args.runs))
        print("%-36s %9.4f %9.4f %9.4f %6d %9.2f %10.3f" % (
            label, seconds, statistics.median(each[0] for each in cold),
            statistics.median(each[0] for each in warm), cold[-1][1], cold[-1][2] / 1e6,
            warm[-1][2] / 1e6))


if __name__ == "__main__":
    main()
