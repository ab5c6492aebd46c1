"""Leaves behind a forwarding hop, on a slow master<->hop link (issue 11).

    python benchmarks/hops.py --site DIR [--python PATH] [--leaves 8] [--runs 3]
                              [--delay 0.010] [--rate 12500000] [--module sympy]

The link is simulated by benchmarks/relay.py between the master and the hop (its
``python=``), 20 ms round trip and 100 Mbit/s by default; the hop starts its leaves
over local pipes. Every gateway is a bare interpreter (a ``venv --without-pip`` of
--python, run ``-E -S``) with an empty cache of its own. Rows:

- direct: one slave straight on the same slow link (no hop): the reference;
- one leaf, plain via: execnet's own ``via=`` (serve_proxy_io), no forwarding;
- one leaf, forwarding: ``handle.makegateway("...//via=hop")`` (the bridge's relay);
- N leaves, plain via / forwarding: N cold leaves at once behind one cold hop;
- warm hop: one more leaf behind the hop the N forwarding leaves warmed, once the hop has
  stored what they brought;
- local: 1 and N slaves importing from their own path at once, no bridge: the floor
  this host's CPUs set (a fleet on one 2-core host cannot import N times in parallel).

"MB up" is the bytes of bodies that crossed the master<->hop link for the leaves (as on
the wire: compressed where they were), counted on the master; "MB hop" what the hop
filled from its cache. Seconds: from the import statements' start until the last leaf's
is done (wall, on the master), medians of --runs; "x" is against the direct slave.
The master is warm (one direct slave was served before the runs).
"""
from __future__ import print_function

import argparse
import os
import sys
import time

import execnet

import bridge
import scratch
from fleet import at_once
from imports import bare_venv, median

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY = os.path.join(HERE, "relay.py")
TIMED = "import %s\nchannel.send(1)"


def link_spec(python, delay, rate):
    return "python=%s %s --delay %s --rate %s -- %s -E -S" % (
        sys.executable, RELAY, delay, rate, python)


class Bench(object):
    def __init__(self, python, site, module, delay, rate):
        self.python, self.site, self.module = python, site, module
        self.delay, self.rate = delay, rate

    def direct(self):
        """One slave straight on the slow link: (seconds, MB of bodies)."""
        folder = scratch.folder("bench-hops-")  # removed at exit: benchmarks/scratch.py
        group = execnet.Group()
        try:
            gateway = group.makegateway("popen//id=direct//" + link_spec(
                self.python, self.delay, self.rate))
            handle = bridge.install(gateway, path=[self.site],
                                    cache_root=os.path.join(folder, "direct"))
            seconds = self._imports([gateway])
            return {"seconds": seconds, "up": handle.stats.bytes_wire / 1e6, "hop": 0.0}
        finally:
            group.terminate(timeout=10)

    def local(self, count):
        """``count`` slaves on local pipes importing from their own path, at once: what
        this host's CPUs allow a fleet of that size, whatever the link."""
        group = execnet.Group()
        try:
            made = [group.makegateway("popen//python=%s -E -S -B" % self.python)
                    for _ in range(count)]
            for gateway in made:
                gateway.remote_exec("import sys; sys.path.insert(0, %r)" % self.site).waitclose()
            return {"seconds": self._imports(made), "up": 0.0, "hop": 0.0}
        finally:
            group.terminate(timeout=10)

    def behind_hop(self, leaves, forwarding, warm_leaf=False):
        """``leaves`` cold leaves at once behind a cold hop: seconds and MB."""
        folder = scratch.folder("bench-hops-")  # removed at exit: benchmarks/scratch.py
        group = execnet.Group()
        try:
            group.makegateway("popen//id=hop//" + link_spec(self.python, self.delay,
                                                           self.rate))
            handle = None  # plain via: the hop only proxies (a bridged hop forwards)
            if forwarding:
                handle = bridge.install(group, path=[self.site],
                                        cache_root=os.path.join(folder, "hop"))
            made = self._leaves(group, handle, folder, leaves, forwarding, "leaf")
            seconds = self._imports(made)
            row = self._row(handle, made, forwarding, seconds)
            if warm_leaf:
                settled(handle)
                before = handle.hops["hop"]
                extra = self._leaves(group, handle, folder, 1, True, "warm")
                after_seconds = self._imports(extra)
                after = handle.hops["hop"]
                row["warm"] = {"seconds": after_seconds,
                               "up": (after["bytes_upstream"] - before["bytes_upstream"]) / 1e6,
                               "hop": (after["bytes_from_hop"] - before["bytes_from_hop"]) / 1e6}
                row["relay"] = after
            return row
        finally:
            group.terminate(timeout=10)

    def _leaves(self, group, handle, folder, count, forwarding, prefix):
        made = []
        for index in range(count):
            name = "%s%d" % (prefix, index)
            spec = "popen//id=%s//via=hop//python=%s -E -S" % (name, self.python)
            cache = os.path.join(folder, name)
            if forwarding:
                made.append(handle.makegateway(spec, cache_root=cache))
            else:
                gateway = group.makegateway(spec)
                bridge.install(gateway, path=[self.site], cache_root=cache)
                made.append(gateway)
        return made

    def _imports(self, gateways):
        started = time.perf_counter()
        channels = [gateway.remote_exec(TIMED % self.module) for gateway in gateways]
        at_once(lambda channel: channel.receive(900), channels)
        return time.perf_counter() - started

    @staticmethod
    def _row(handle, leaves, forwarding, seconds):
        if forwarding:
            hop = handle.hops["hop"]
            return {"seconds": seconds, "up": hop["bytes_upstream"] / 1e6,
                    "hop": hop["bytes_from_hop"] / 1e6}
        wire = sum(bridge.install(leaf).stats.bytes_wire for leaf in leaves)
        return {"seconds": seconds, "up": wire / 1e6, "hop": 0.0}


def settled(handle, quiet=1.0, limit=60.0):
    """Wait until the hop has stored what its leaves brought (no new report for ``quiet``
    seconds): a warm hop is one whose cache holds the package, not one still writing it."""
    last, changed, deadline = None, time.time(), time.time() + limit
    while time.time() < deadline:
        now = handle.hops["hop"]
        if now != last:
            last, changed = now, time.time()
        elif time.time() - changed >= quiet:
            return
        time.sleep(0.1)


def measure(bench, leaves, runs):
    bench.direct()  # the master warm: its work per file is done once
    rows = {}
    cases = [("direct", bench.direct), ("1 local (no link)", lambda: bench.local(1)),
             ("%d local at once" % leaves, lambda: bench.local(leaves)),
             ("1 leaf, plain via", lambda: bench.behind_hop(1, False)),
             ("1 leaf, forwarding", lambda: bench.behind_hop(1, True)),
             ("%d leaves, plain via" % leaves, lambda: bench.behind_hop(leaves, False)),
             ("%d leaves, forwarding" % leaves, lambda: bench.behind_hop(leaves, True, True))]
    results = dict((name, []) for name, _ in cases)
    for _ in range(runs):
        for name, case in cases:
            results[name].append(case())
    for name, _ in cases:
        rows[name] = dict((key, median([run[key] for run in results[name]]))
                          for key in ("seconds", "up", "hop"))
        if "warm" in results[name][0]:
            rows["1 leaf, warm hop"] = dict(
                (key, median([run["warm"][key] for run in results[name]]))
                for key in ("seconds", "up", "hop"))
    rows["relay"] = results[cases[-1][0]][-1].get("relay", {})
    return [name for name, _ in cases] + ["1 leaf, warm hop"], rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="packages to serve (pip --target)")
    parser.add_argument("--python", default=sys.executable, help="hop and leaf interpreter")
    parser.add_argument("--module", default="sympy")
    parser.add_argument("--leaves", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.010, help="one way, seconds")
    parser.add_argument("--rate", type=float, default=12500000, help="bytes per second")
    args = parser.parse_args()
    bench = Bench(bare_venv(args.python), args.site, args.module, args.delay, args.rate)
    order, rows = measure(bench, args.leaves, args.runs)
    print("hops: 'import %s', master<->hop link %.0f ms RTT, %.0f Mbit/s; %d runs, medians"
          % (args.module, 2000 * args.delay, args.rate * 8 / 1e6, args.runs))
    print("%-24s %9s %9s %9s %7s" % ("case", "MB up", "MB hop", "seconds", "x"))
    for name in order:
        row = rows[name]
        print("%-24s %9.2f %9.2f %9.3f %6.2fx" % (name, row["up"], row["hop"], row["seconds"],
                                                 row["seconds"] / rows["direct"]["seconds"]))
    relay = rows["relay"]
    print("the hop's relays (last forwarding run): %.2f s storing, %.2f s filling %d replies"
          % (relay.get("seconds_storing", 0), relay.get("seconds_filling", 0),
             relay.get("replies", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
