"""Reliability: a fleet under load and faults; nothing may be lost, nothing may hang.

    python benchmarks/reliability.py [--slaves 32] [--threads 8] [--bad 2000]

1. Fleet: N bare slaves of every local interpreter, one master; each slave
   imports from T threads at once (different and identical modules).
2. Faults, while the fleet imports again: slaves killed in the middle of a
   30 MB reply, and slaves whose request channel the master closes.
3. Bad input: random malformed messages sent on the real request channels,
   then a real import on each of those slaves.

An import is lost if a slave that was not faulted fails it; a hang is a wait
that ran into its timeout. Both must be 0.
"""
from __future__ import print_function

import argparse
import glob
import logging
import os
import shutil
import signal
import sys
import tempfile
import time

import execnet

import bridge

THREADED_IMPORTS = """
import threading
names = %r
start, results, errors = threading.Event(), {}, []

def work(index, name):
    start.wait()
    try:
        results[index] = __import__(name, fromlist=["VALUE"]).VALUE
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate(names)]
for thread in threads:
    thread.start()
start.set()
for thread in threads:
    thread.join(60)
channel.send([len(results), errors, sum(thread.is_alive() for thread in threads)])
"""

GARBAGE = """
import random, sys
client = [finder for finder in sys.meta_path if hasattr(finder, "session")][0].session.client
rng = random.Random(%d)
pieces = [None, 0, -1, 2 ** 70, 1.5, "", "find", "..", "/etc/passwd", "a" * 5000, b"\\xff",
          [1, [2]], {"kind": "find"}, {"kind": "find", "id": "x"}, {"kind": "zzz", "id": 1}]
for _ in range(%d):
    message = rng.choice(pieces)
    if rng.random() < 0.5:
        message = {"kind": rng.choice(["find", "module", "bogus", 3]), "id": rng.choice(pieces),
                   "name": rng.choice(pieces + ["fleet/../x", "fleet..m1", ".fleet", "\\0"])}
    client._channel.send(message)
import fleet.m7
channel.send(fleet.m7.VALUE)
"""


def interpreters():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python")))
    if execnet.__version__.startswith("2."):  # execnet 2 cannot start 2.7, 3.6, 3.7
        found = [path for path in found if not path.split(os.sep)[-3].startswith(
            ("2.", "3.6", "3.7"))]
    return found + [path for path in ["/usr/bin/pypy3"] if os.path.exists(path)]


def write_tree(root, modules):
    files = {"fleet/__init__.py": "", "fleet/shared.py": "import time\ntime.sleep(0.02)\n"
             "VALUE = 'shared'\n", "big/__init__.py": "VALUE = 'big'\n"}
    for index in range(modules):
        files["fleet/m%d.py" % index] = "import time\ntime.sleep(0.02)\nVALUE = %d\n" % index
    for relative, text in files.items():
        path = os.path.join(root, *relative.split("/"))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w") as stream:
            stream.write(text)
    with open(os.path.join(root, "big", "blob.bin"), "wb") as stream:
        stream.write(os.urandom(30 * 1024 * 1024))


class Tally(object):
    def __init__(self):
        self.imports = self.lost = self.hangs = self.faults = self.bad = 0


def run_imports(gateways, names, tally, timeout):
    channels = [gw.remote_exec(THREADED_IMPORTS % (names,)) for gw in gateways]
    for channel in channels:
        try:
            done, errors, alive = channel.receive(timeout)
        except channel.TimeoutError:
            tally.hangs += 1
            continue
        tally.imports += len(names)
        tally.lost += len(names) - done
        tally.hangs += alive


def inject_faults(gateways, handles, tally, timeout):
    """Kill some slaves mid-transfer, cut others off; returns the survivors."""
    quarter = max(1, len(gateways) // 8)
    killed, cut = gateways[:quarter], gateways[quarter:2 * quarter]
    pids = [gw.remote_exec("import os; channel.send(os.getpid())").receive(timeout)
            for gw in killed]
    for gw in killed:
        gw.remote_exec("import big")
    time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for gw in cut:
        handles[gw].close()  # the master stops serving this slave
    for gw in cut:  # a cut-off slave must fail fast and say why, not hang
        started = time.time()
        ok = gw.remote_exec("""
            try:
                import big  # not imported yet: the master must be asked
                channel.send(False)
            except ImportError as error:
                channel.send("closed" in str(error))
        """).receive(timeout)
        tally.hangs += time.time() - started > timeout
        tally.lost += not ok
    tally.faults += len(killed) + len(cut)
    return gateways[2 * quarter:]


def main():
    logging.basicConfig(level=logging.ERROR)  # "cannot reply to a killed slave" is expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slaves", type=int, default=32)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bad", type=int, default=2000, help="malformed messages in all")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bridge-reliability-")
    served, cache = os.path.join(work, "master"), os.path.join(work, "cache")
    write_tree(served, max(args.threads, 8))  # fleet.m7 is the garbage phase's check
    pythons = interpreters()
    group, tally = execnet.Group(), Tally()
    started = time.time()
    try:
        gateways = [group.makegateway("popen//python=%s -E -S//chdir=%s" % (
            pythons[index % len(pythons)], work)) for index in range(args.slaves)]
        handle = bridge.install(group, path=[served], cache_root=cache, timeout=args.timeout)
        handles = dict((each.gateway, each) for each in handle.bridges)
        names = ["fleet.m%d" % i for i in range(args.threads)] + ["fleet.shared"] * args.threads
        run_imports(gateways, names, tally, args.timeout)
        survivors = inject_faults(gateways, handles, tally, args.timeout)
        run_imports(survivors, ["fleet.shared", "big"] * args.threads, tally, args.timeout)
        per_slave = max(1, args.bad // len(survivors))
        answered = 0
        for index, gw in enumerate(survivors):
            before = handles[gw].stats.requests
            value = gw.remote_exec(GARBAGE % (index, per_slave)).receive(args.timeout)
            answered += handles[gw].stats.requests - before  # replies are in order
            tally.bad += per_slave
            tally.imports += 1
            tally.lost += value != 7
        errors = sum(handles[gw].stats.errors for gw in survivors)
    finally:
        group.terminate(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print("slaves held at once   %d (%d interpreters)" % (args.slaves, len(pythons)))
    print("threads per slave     %d" % (2 * args.threads))
    print("imports               %d" % tally.imports)
    print("faults injected       %d (slaves killed mid-transfer, channels closed)" % tally.faults)
    print("bad inputs tried      %d (answered %d, of which error replies %d; serving went on)"
          % (tally.bad, answered, errors))
    print("imports lost          %d" % tally.lost)
    print("hangs                 %d" % tally.hangs)
    print("seconds               %.1f" % (time.time() - started))
    return 0 if tally.lost == tally.hangs == 0 and answered == tally.bad else 1


if __name__ == "__main__":
    sys.exit(main())
