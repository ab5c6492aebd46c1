"""Session after session on one slave host: when does warm arrive? (issue 23, item 1)

    python benchmarks/sessions.py --site DIR [--boto3-site DIR] [--python PATH]
                                  [--sessions 6] [--runs 3] [--sdk-files 2400]
                                  [--sdk-mb 27] [--only LABEL]

Per package, each run is a master process of its own, started afresh (its disk cache as
earlier runs left it, as a pytest controller's), serving new gateways one after another
to a bare slave (``venv --without-pip``, ``-E -S``) with one cache root, empty at first:
session 1 is cold, session 2 is what a user calls warm. Per session: the seconds on the
slave of the import statement and the package's first use (boto3 makes a client, the
generated SDK reads one service's data: both import more as they go), the master's seconds answering (``handle.stats``),
its requests, the bytes sent and the trees the session added to the slave cache. Local
is the same interpreter with the package on its path (warm .pyc). Figures are medians of
the runs; "x" is against local.
"""
from __future__ import print_function

import argparse
import json
import os
import subprocess
import sys

import execnet

import bridge
import scratch
from imports import bare_venv, median
from warm_master import SDK, sdk_site

TIMED = """
import time
started = time.perf_counter()
import %s
%s
channel.send(time.perf_counter() - started)
"""


def local(python, site, module, use):
    code = ("import sys, time; sys.path.insert(0, %r); started = time.perf_counter()\n"
            "import %s\n%s\nprint(time.perf_counter() - started)" % (site, module, use))
    return float(subprocess.check_output([python, "-E", "-S", "-c", code]))


def trees_in(cache):
    folder = os.path.join(cache, "trees")
    if not os.path.isdir(folder):
        return 0
    return len([name for name in os.listdir(folder) if "." not in name])  # tree ids alone


def series(python, site, module, use, sessions):
    """[(slave s, master s, requests, bytes sent, trees added)] of ``sessions`` new
    gateways in a row on one new cache root, served by this process."""
    cache, rows = scratch.folder("bench-sessions-"), []
    for _ in range(sessions):
        before = trees_in(cache)
        gateway = execnet.makegateway("popen//python=%s -E -S" % python)
        try:
            handle = bridge.install(gateway, path=[site], cache_root=cache)
            seconds = gateway.remote_exec(TIMED % (module, use)).receive(600)
            stats = handle.stats.as_dict()
            rows.append((seconds, stats["seconds"], stats["requests"], stats["bytes_sent"],
                         trees_in(cache) - before))
        finally:
            gateway.exit()
    return rows


def measure(python, site, module, use, sessions, runs):
    """(local s, [per session: the medians of each column over ``runs``]). Local is
    timed before and after each run's series, side by side with it: this host's import
    times drift by 10% from one minute to the next."""
    local(python, site, module, use)  # .pyc written, page cache warm
    locals_, results = [], []
    for _ in range(runs):  # a new master process each run
        locals_.append(local(python, site, module, use))
        output = subprocess.check_output([
            sys.executable, os.path.abspath(__file__), "--series", "--site", site,
            "--python", python, "--module", module, "--use", use,
            "--sessions", str(sessions)])
        results.append(json.loads(output.decode().strip().splitlines()[-1]))
        locals_.append(local(python, site, module, use))
    per_session = [[median([result[index][column] for result in results])
                    for column in range(5)] for index in range(sessions)]
    return median(locals_), per_session


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="requests, sympy (pip --target)")
    parser.add_argument("--boto3-site", help="boto3 (pip --target)")
    parser.add_argument("--python", default=sys.executable, help="the slave interpreter")
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sdk-files", type=int, default=2400)
    parser.add_argument("--sdk-mb", type=float, default=27.0)
    parser.add_argument("--only", help="run only packages whose label contains this")
    parser.add_argument("--series", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--use", default="pass", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.series:  # one master process: print its sessions as JSON
        print(json.dumps(series(args.python, args.site, args.module, args.use,
                                args.sessions)))
        return
    python = bare_venv(args.python)
    packages = [("requests", args.site, "requests", "pass"),
                ("sympy", args.site, "sympy", "pass"),
                ("cloud SDK (%d files, %g MB)" % (args.sdk_files, args.sdk_mb),
                 sdk_site(args.sdk_files, args.sdk_mb), SDK, "%s.client('service0001')" % SDK)]
    if args.boto3_site:
        packages.append(("boto3 + an S3 client", args.boto3_site, "boto3",
                         "boto3.client('s3', region_name='us-east-1')"))
    print("slave %s, %d sessions in a row, medians of %d runs (a new master each run)"
          % (python, args.sessions, args.runs))
    print("%-32s %7s  %s" % ("package / session", "local", "slave s (x local), master s, "
                                                           "requests, MB sent, trees added"))
    for label, site, module, use in packages:
        if args.only and args.only not in label:
            continue
        seconds, rows = measure(python, site, module, use, args.sessions, args.runs)
        print("%-32s %7.3f" % (label, seconds))
        for index, (slave, master, requests, sent, trees) in enumerate(rows):
            print("  session %-22d %7.3f (%5.2fx)  %6.3f  %4d  %7.2f  %4d" % (
                index + 1, slave, slave / seconds, master, requests, sent / 1e6, trees))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
