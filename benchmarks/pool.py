"""A multiprocessing Pool of 4 on a bridged slave against the same Pool with the package
installed (issue: processes a slave starts stay bridged).

    python benchmarks/pool.py --site DIR [--python PATH] [--runs N] [--methods fork,spawn]

On a bare slave of --python (``-E -S``), the slave imports a small served task module
and starts a Pool of 4 of each start method; each of 16 tasks renders a template with
jinja2, which the slave itself never imports, so every child imports it:

- local: the task module and jinja2 on the slave's own path (installed);
- cold: a new gateway on an empty slave cache (a new host), the master warm;
- warm: a new gateway on the cache of a cold run (the second session on that host).

Seconds, timed on the slave, medians of N: to the first result (from before the Pool
starts) and to the last. The children ask their slave, which asks the master only for
what it was not served (compat/children.py).
"""
from __future__ import print_function

import argparse
import os
import statistics
import sys

import execnet

import bridge
import scratch

TASK = """
def render(n):
    import jinja2  # the slave itself never imports it: each child does
    return jinja2.Template("{{ n }} squared is {{ n * n }}").render(n=n)
"""

TIMED = """
import multiprocessing, sys, time
%s
context = multiprocessing.get_context(%r)
started = time.perf_counter()
import pooltask
pool = context.Pool(4)
results = pool.imap(pooltask.render, range(16))
first = next(results)
first_seconds = time.perf_counter() - started
rest = list(results)
all_seconds = time.perf_counter() - started
pool.close()
pool.join()
assert len(rest) == 15 and first == "0 squared is 0", (first, rest)
assert "jinja2" not in sys.modules
channel.send([first_seconds, all_seconds])
"""


def run(python, source, cwd, bridged=None):
    group = execnet.Group()
    try:
        gw = group.makegateway("popen//python=%s -E -S//chdir=%s" % (python, cwd))
        if bridged is not None:
            bridge.install(gw, path=bridged["path"], cache_root=bridged["cache_root"])
        channel = gw.remote_exec(source)
        return channel.receive(300)
    finally:
        group.terminate(timeout=10)


def measure(python, method, site, task_folder, runs):
    cwd = scratch.folder("pool-cwd-")
    local_source = TIMED % ("sys.path[:0] = [%r, %r]" % (task_folder, site), method)
    bridged_source = TIMED % ("", method)
    path = [task_folder, site]
    figures = {"local": [], "cold": [], "warm": []}
    for _ in range(runs):
        figures["local"].append(run(python, local_source, cwd))
        cache_root = scratch.folder("pool-cache-")
        figures["cold"].append(run(python, bridged_source, cwd,
                                   {"path": path, "cache_root": cache_root}))
        figures["warm"].append(run(python, bridged_source, cwd,
                                   {"path": path, "cache_root": cache_root}))
    return dict((state, [statistics.median(pair[i] for pair in pairs) for i in (0, 1)])
                for state, pairs in figures.items())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", required=True, help="a folder where jinja2 is installed")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--methods", default="fork,spawn,forkserver")
    args = parser.parse_args()
    task_folder = scratch.folder("pool-task-")
    with open(os.path.join(task_folder, "pooltask.py"), "w") as stream:
        stream.write(TASK)
    run(args.python, TIMED % ("", "fork"), scratch.folder("pool-cwd-"),  # the master warm
        {"path": [task_folder, args.site], "cache_root": scratch.folder("pool-cache-")})
    print("Pool(4), 16 tasks each importing jinja2 in the child; bare %s slave; medians of %d"
          % (args.python, args.runs))
    print("%-11s | %-15s | %-21s | %-21s" % ("method", "local first/all",
                                             "cold first/all (x)", "warm first/all (x)"))
    for method in args.methods.split(","):
        figures = measure(args.python, method, args.site, task_folder, args.runs)
        local = figures["local"]
        cells = ["%.3f/%.3f" % tuple(local)]
        for state in ("cold", "warm"):
            first, total = figures[state]
            cells.append("%.3f/%.3f (%.2fx)" % (first, total, total / local[1]))
        print("%-11s | %-15s | %-21s | %-21s" % tuple([method] + cells))


if __name__ == "__main__":
    main()
