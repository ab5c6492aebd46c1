"""A fleet: many cold slaves started at once from one master, against the same
slaves importing locally (issue 9, target 5).

    python benchmarks/fleet.py --site DIR [--python PATH] [--slaves 16] [--runs 3]

Each slave is a bare interpreter (a ``venv --without-pip`` of --python, run
``-E -S``) that imports requests, jinja2 and docutils.core. One run of a fleet:

- start: the gateways of an execnet Group, made at once from one thread each;
- install (bridged only): ``bridge.install(group, ...)``, the GroupBridge;
- imports: every slave's import statement started at once, one thread each,
  until the last one is done.

"local": the slaves have DIR on their own path (warm .pyc): the limit.
"bridged": DIR is served; every slave has an empty cache of its own (its
TMPDIR, so the default cache root) and the master is warm (one slave was
served before the runs): 16 hosts, simulated on this one's CPUs and disk.
"shared": the same, but the slaves share one TMPDIR, so one default cache
root, as slaves on one host do: a body and a tree are made once. Wall seconds
are medians of N runs; "x" is against the local fleet. Also printed: the
median and slowest single import statement (timed on its slave), and the
master's time answering the fleet (the sum of ``handle.stats.seconds``).
"""
from __future__ import print_function

import argparse
import os
import sys
import threading
import time

import execnet

import bridge
import scratch
from imports import bare_venv, median

MODULES = "requests, jinja2, docutils.core"
TIMED = """
import sys, time
site = channel.receive()
if site:
    sys.path.insert(0, site)
started = time.perf_counter()
import %s
channel.send(time.perf_counter() - started)
""" % MODULES


def at_once(function, arguments):
    """Call ``function`` on every argument, one thread each; results in order."""
    results = [None] * len(arguments)
    errors = []

    def call(index, argument):
        try:
            results[index] = function(argument)
        except Exception as error:  # reported after every thread ended
            errors.append(error)
    threads = [threading.Thread(target=call, args=(index, argument))
               for index, argument in enumerate(arguments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def timed_import(gateway, site):
    channel = gateway.remote_exec(TIMED)
    channel.send(site)
    return channel.receive(600)


def one_fleet(python, site, slaves, bridged, shared=False):
    """{phase: wall seconds} and per-slave import seconds of one fleet."""
    folder = scratch.folder("bench-fleet-")  # removed at exit: benchmarks/scratch.py
    specs = ["popen//python=%s -E -S//env:TMPDIR=%s" % (
        python, _made(folder, 0 if shared else index, exist_ok=shared))
        for index in range(slaves)]
    group = execnet.Group()
    try:
        started = time.perf_counter()
        at_once(group.makegateway, specs)
        phases = {"start": time.perf_counter() - started}
        handle = None
        if bridged:
            handle = bridge.install(group, path=[site])
            phases["install"] = time.perf_counter() - started - phases["start"]
        imported = time.perf_counter()
        each = at_once(lambda gateway: timed_import(gateway, None if bridged else site),
                       list(group))
        phases["imports"] = time.perf_counter() - imported
        phases["total"] = time.perf_counter() - started
        phases["master"] = sum(one.stats.seconds for one in handle.bridges) if handle else 0.0
        return phases, each
    finally:
        group.terminate(timeout=10)


def _made(folder, index, exist_ok=False):
    path = os.path.join(folder, "slave-%d" % index)
    if not (exist_ok and os.path.isdir(path)):
        os.makedirs(path)
    return path


def measure(python, site, slaves, runs):
    """{"local": row, "bridged": row, "shared": row}: medians of ``runs`` fleets of each,
    alternated."""
    one_fleet(python, site, 1, True)  # the master warm, the local .pyc written
    one_fleet(python, site, 1, False)
    results = {"local": [], "bridged": [], "shared": []}
    for _ in range(runs):
        for kind in ("local", "bridged", "shared"):
            results[kind].append(one_fleet(python, site, slaves, kind != "local",
                                           kind == "shared"))
    rows = {}
    for kind, fleets in results.items():
        row = dict((phase, median([fleet[0].get(phase, 0.0) for fleet in fleets]))
                   for phase in ("start", "install", "imports", "total", "master"))
        row["median_import"] = median([median(fleet[1]) for fleet in fleets])
        row["slowest_import"] = median([max(fleet[1]) for fleet in fleets])
        rows[kind] = row
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="requests, jinja2, docutils (pip --target)")
    parser.add_argument("--python", default=sys.executable, help="the slave interpreter")
    parser.add_argument("--slaves", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = bare_venv(args.python)
    rows = measure(python, args.site, args.slaves, args.runs)
    print("fleet: %d bare slaves (%s) at once, each 'import %s'; %d runs, medians, "
          "seconds" % (args.slaves, python, MODULES, args.runs))
    print("%-8s %7s %7s %7s %7s %7s | %9s %9s | %7s" % (
        "fleet", "start", "install", "imports", "total", "x", "one slave", "slowest", "master"))
    for kind in ("local", "bridged", "shared"):
        row = rows[kind]
        print("%-8s %7.3f %7.3f %7.3f %7.3f %6.2fx | %9.3f %9.3f | %7.3f" % (
            kind, row["start"], row["install"], row["imports"], row["total"],
            row["total"] / rows["local"]["total"], row["median_import"],
            row["slowest_import"], row["master"]))
    print("imports alone: bridged %.2fx local, shared %.2fx" % (
        rows["bridged"]["imports"] / rows["local"]["imports"],
        rows["shared"]["imports"] / rows["local"]["imports"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
