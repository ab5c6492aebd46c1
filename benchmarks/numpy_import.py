"""numpy over the bridge vs numpy installed locally, on the same interpreter.

    python benchmarks/numpy_import.py [--runs N] [--site DIR] [--python PATH]

The slave is a bare interpreter of numpy's version (``-E -S``). "local" runs
``import numpy, numpy.linalg`` in that interpreter with DIR on its path (the
limit: numpy installed). "local, source only" is the same without .pyc files, compiling every module
as the bridge's slave does today. "bridged cold" starts a new gateway, installs the
bridge with an empty cache, and times the same import on the slave; every
byte of numpy travels. Medians over N runs, interpreter start-up excluded
from both. DIR defaults to $BRIDGE_TEST_NUMPY's folder (ci/test.sh makes it).
"""
from __future__ import print_function

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import execnet

import bridge
import scratch

IMPORT = """
import time
started = time.perf_counter()
import numpy, numpy.linalg
numpy.linalg.inv(numpy.eye(3))
elapsed = time.perf_counter() - started
"""


def local_seconds(python, site, *flags):
    code = "import sys; sys.path.insert(0, %r)\n%s\nprint(elapsed)" % (site, IMPORT)
    return float(subprocess.check_output([python, "-E", "-S"] + list(flags) + ["-c", code]))


def source_only_copy(site):
    """A copy of numpy without its .pyc: what the bridge's slave compiles from."""
    copy = tempfile.mkdtemp(prefix="bench-source-")
    for name in ("numpy", "numpy.libs"):
        shutil.copytree(os.path.join(site, name), os.path.join(copy, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def bridged(python, site):
    cache = scratch.folder("bench-cache-")  # removed at exit: benchmarks/scratch.py
    gateway = execnet.makegateway("popen//python=%s -E -S//chdir=%s" % (python, cache))
    try:
        started = time.perf_counter()
        handle = bridge.install(gateway, path=[site], allow_extensions=True, cache_root=cache)
        installed = time.perf_counter() - started
        seconds = gateway.remote_exec(IMPORT + "channel.send(elapsed)").receive(120)
        return installed, seconds, handle.stats.as_dict()
    finally:
        gateway.exit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--site", default=os.environ.get("BRIDGE_TEST_NUMPY", "=").split("=")[1])
    parser.add_argument("--python", default=None, help="slave interpreter (numpy's version)")
    args = parser.parse_args()
    if not args.site or not os.path.isdir(os.path.join(args.site, "numpy")):
        parser.error("no numpy folder: pass --site or set BRIDGE_TEST_NUMPY=3.11=/dir")
    python = args.python or sys.executable
    local_seconds(python, args.site)  # warm the page cache for both sides alike
    local = [local_seconds(python, args.site) for _ in range(args.runs)]
    source = source_only_copy(args.site)
    try:  # -B: never write .pyc, so every run compiles, as a cold bridged import does
        from_source = [local_seconds(python, source, "-B") for _ in range(args.runs)]
    finally:
        shutil.rmtree(source, ignore_errors=True)
    runs = [bridged(python, args.site) for _ in range(args.runs)]
    cold = [seconds for _, seconds, _ in runs]
    total = [installed + seconds for installed, seconds, _ in runs]
    stats = runs[-1][2]
    print("numpy import, slave %s, %d runs (medians)" % (python, args.runs))
    print("%-34s %8s %8s" % ("", "seconds", "x local"))
    for label, values in (("local import (installed)", local),
                          ("local import, source only (no .pyc)", from_source),
                          ("bridged cold import", cold),
                          ("bridged install + cold import", total)):
        print("%-34s %8.3f %8.2f" % (label, statistics.median(values),
                                     statistics.median(values) / statistics.median(local)))
    print("moved: %d modules, %d files, %.1f MB in %d requests" % (
        stats["modules"], stats["files"], stats["bytes_sent"] / 1e6, stats["requests"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
