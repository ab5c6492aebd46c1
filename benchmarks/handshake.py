"""What starting a bridge costs as the slave's cache grows (issue 9, target 8).

    python benchmarks/handshake.py [--python PATH] [--blobs 0,10000,100000] [--runs 5]

For each N, a cache root is filled with N small distinct blobs, laid out as
the slave's persistent cache keeps them (``<cache_root>/blobs/<sha256>``,
compat/blobs.py). Then, N times --runs, a new bare gateway (``-E -S``) is made
and ``bridge.install(gateway, cache_root=...)`` is timed on the master: the
whole handshake, before the first import. Also printed: the bytes the slave
sent the master during install (counted as the gateway's reader takes them:
HELLO and the handshake's replies), and what a list of N hashes weighs
(N x 64 bytes). Seconds are medians of the runs; "x" is against N = 0.
"""
from __future__ import print_function

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time

import execnet

import bridge
from imports import bare_venv, median


def fill_cache(cache_root, count):
    """``count`` distinct blobs, each stored under the sha256 of its bytes."""
    folder = os.path.join(cache_root, "blobs")
    os.makedirs(folder)
    for index in range(count):
        data = ("blob %d\n" % index).encode("ascii")
        with open(os.path.join(folder, hashlib.sha256(data).hexdigest()), "wb") as stream:
            stream.write(data)


def count_reads(gateway):
    """A list whose sum is the bytes the gateway's reader takes from now on."""
    io = gateway._io
    counted = []
    read = io.read

    def counting(size):
        data = read(size)
        counted.append(len(data))
        return data
    io.read = counting  # the receiver thread looks the method up for every read
    return counted


def one_install(python, cache_root, served):
    gateway = execnet.makegateway("popen//python=%s -E -S" % python)
    try:
        counted = count_reads(gateway)
        started = time.perf_counter()
        bridge.install(gateway, path=[served], cache_root=cache_root)
        return time.perf_counter() - started, sum(counted)
    finally:
        gateway.exit()


def measure(python, count, runs, served):
    cache_root = tempfile.mkdtemp(prefix="bench-handshake-")
    try:
        started = time.perf_counter()
        fill_cache(cache_root, count)
        filled = time.perf_counter() - started
        one_install(python, cache_root, served)  # the page cache warm for every run
        results = [one_install(python, cache_root, served) for _ in range(runs)]
        return {"seconds": median([each[0] for each in results]),
                "received": median([each[1] for each in results]), "fill": filled}
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the slave interpreter")
    parser.add_argument("--blobs", default="0,10000,100000",
                        help="comma-separated cache sizes, in blobs")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    counts = [int(each) for each in args.blobs.split(",")]
    python = bare_venv(args.python)
    served = tempfile.mkdtemp(prefix="bench-served-")  # an empty path: the handshake alone
    print("install() on a new bare gateway (%s) by blobs in the slave's cache; %d runs, "
          "medians" % (python, args.runs))
    print("%9s %9s %7s | %12s %12s | %8s" % (
        "blobs", "install s", "x", "slave sent", "N x 64 B", "filled s"))
    base = None
    try:
        for count in counts:
            row = measure(python, count, args.runs, served)
            base = base or row["seconds"]
            print("%9d %9.3f %6.2fx | %9.2f MB %9.2f MB | %8.1f" % (
                count, row["seconds"], row["seconds"] / base, row["received"] / 1e6,
                count * 64 / 1e6, row["fill"]))
            sys.stdout.flush()
    finally:
        shutil.rmtree(served, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
