"""The slave cache's size after many distinct packages, under its cap.

    python benchmarks/cache_size.py [--python PATH] [--packages N] [--files F]
                                    [--file-kib K] [--limit-mib L]

N packages of F files of K KiB each (distinct bytes), served one after the other
to fresh bare slaves of --python that share one cache root with
``cache_limit`` L MiB. Each slave imports its package and exits. Every tenth
package, and at the end, it prints the bytes and files in ``blobs/`` (after
that slave's exit trim) and the install's seconds (the handshake, which also
trims the cache at the start), then the largest size seen against the cap.
"""
from __future__ import print_function

import argparse
import os
import shutil
import sys
import tempfile
import time

import execnet

import bridge

MIB = 1024 * 1024


def write_packages(folder, packages, files, kib):
    for index in range(packages):
        package = os.path.join(folder, "pkg%d" % index)
        os.makedirs(package)
        with open(os.path.join(package, "__init__.py"), "w") as stream:
            stream.write("VALUE = %d\n" % index)
        for number in range(files):
            with open(os.path.join(package, "data%d.bin" % number), "wb") as stream:
                stream.write(os.urandom(kib * 1024))


def blobs_size(cache):
    folder = os.path.join(cache, "blobs")
    names = os.listdir(folder)
    return sum(os.lstat(os.path.join(folder, name)).st_size for name in names), len(names)


def serve_one(python, served, cache, index, limit):
    """A fresh slave imports ``pkg<index>`` and exits; the install's seconds."""
    group = execnet.Group()
    try:
        gateway = group.makegateway("popen//python=%s -E -S//chdir=%s"
                                     % (python, os.path.dirname(cache)))
        started = time.time()
        bridge.install(gateway, path=[served], cache_root=cache, cache_limit=limit)
        seconds = time.time() - started
        value = gateway.remote_exec("import pkg%d; channel.send(pkg%d.VALUE)"
                                    % (index, index)).receive(600)
        assert value == index, value
        return seconds
    finally:
        group.terminate(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--packages", type=int, default=60)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-kib", type=int, default=100)
    parser.add_argument("--limit-mib", type=int, default=32)
    args = parser.parse_args()
    limit = args.limit_mib * MIB
    package_mib = args.files * args.file_kib / 1024.0
    print("%d packages of %d files, %.1f MiB each (%.0f MiB in all); cache_limit %d MiB; "
          "slave %s -E -S" % (args.packages, args.files, package_mib,
                              package_mib * args.packages, args.limit_mib, args.python))
    print("%9s %10s %11s %11s" % ("packages", "cache MiB", "cache files", "install s"))
    work = tempfile.mkdtemp(prefix="bench-cache-size-")
    served, cache = os.path.join(work, "served"), os.path.join(work, "cache")
    largest = 0
    try:
        write_packages(served, args.packages, args.files, args.file_kib)
        for index in range(args.packages):
            seconds = serve_one(args.python, served, cache, index, limit)
            size, count = blobs_size(cache)
            largest = max(largest, size)
            if (index + 1) % 10 == 0 or index + 1 == args.packages:
                print("%9d %10.1f %11d %11.3f" % (index + 1, size / float(MIB), count, seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("largest cache seen: %.1f MiB, cap %d MiB: %s" % (
        largest / float(MIB), args.limit_mib, "under" if largest <= limit else "OVER"))
    return 0 if largest <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
