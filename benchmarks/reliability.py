"""Reliability: a fleet under load and faults; nothing may be lost, nothing may hang.

    python benchmarks/reliability.py [--slaves 32] [--threads 8] [--bad 2000]
                                     [--stress-threads 10] [--stress-packages 20] [--only X]

1. Fleet: N bare slaves of every local interpreter, one master; each slave
   imports from T threads at once (different and identical modules).
2. Faults, while the fleet imports again: slaves killed in the middle of a
   30 MB reply, and slaves whose request channel the master closes.
3. Bad input: random malformed messages sent on the real request channels,
   then a real import on each of those slaves.

4. Thread stress: per interpreter, a fresh slave with a cold cache; for each
   of P packages (whose ``__init__`` imports a submodule), T threads started
   together import a mix of the package and its submodules. Counts
   ``_DeadlockError`` and every other error, and threads still running.

An import is lost if a slave that was not faulted fails it; a hang is a wait
that ran into its timeout. Both must be 0, and so must deadlocks.
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


STRESS_FILES = {
    "__init__.py": "from . import core\nfrom .core import VALUE\n",
    "core.py": "VALUE = __name__.split('.')[0]\n",
    "util.py": "from .core import VALUE\n",
    "sub/__init__.py": "from .. import core\nfrom ..core import VALUE\n",
    "sub/deep.py": "from . import leaf\nfrom ..core import VALUE\n",
    "sub/leaf.py": "from .. import util\nVALUE = util.VALUE\n",
}
STRESS_MIX = ["sub.deep", "core", "", "sub", "sub.leaf", "core", "sub.deep", "", "util", "sub"]

THREAD_STRESS = """
import sys, threading
packages, threads_per_package = %r, %d
mix = %r
tally = {"imports": 0, "deadlocks": 0, "errors": [], "hangs": 0}
for package in packages:
    start = threading.Event()

    def work(name):
        start.wait()
        try:
            __import__(name)
            assert sys.modules[name].VALUE == package
        except BaseException as error:
            if type(error).__name__ == "_DeadlockError":
                tally["deadlocks"] += 1
            else:
                tally["errors"].append("%%s: %%r" %% (name, error))

    names = [(package + "." + mix[i %% len(mix)]).rstrip(".")
             for i in range(threads_per_package)]
    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.daemon = True
        thread.start()
    start.set()
    for thread in threads:
        thread.join(60)
    tally["imports"] += len(names)
    tally["hangs"] += sum(thread.is_alive() for thread in threads)
channel.send(tally)
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


def write_stress_tree(root, packages):
    for index in range(packages):
        for relative, text in STRESS_FILES.items():
            path = os.path.join(root, "stress%d" % index, *relative.split("/"))
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            with open(path, "w") as stream:
                stream.write(text)


def stress_slave(python, work, source, served, cache_root, timeout):
    """Run the stress source on a fresh slave: bridged from ``served`` (``cache_root``
    empty), or with the packages on its own path when ``cache_root`` is None."""
    group = execnet.Group()
    try:
        gw = group.makegateway("popen//python=%s -E -S//chdir=%s" % (python, work))
        if cache_root is None:
            source = "import sys; sys.path.insert(0, %r)\n" % served + source
        else:
            bridge.install(gw, path=[served], cache_root=cache_root, timeout=timeout)
        try:
            return gw.remote_exec(source).receive(timeout * 4)
        except execnet.TimeoutError:
            return {"imports": 0, "deadlocks": 0, "errors": ["no answer"], "hangs": 1}
    finally:
        group.terminate(timeout=30)


def thread_stress(pythons, work, packages, threads, timeout):
    """Per interpreter: [(interpreter, bridged tally, installed tally)]. The installed
    run is the interpreter's own baseline: PyPy's importer deadlocks on its own."""
    served = os.path.join(work, "stress-master")
    write_stress_tree(served, packages)
    source = THREAD_STRESS % (["stress%d" % index for index in range(packages)], threads,
                              STRESS_MIX)
    results = []
    for index, python in enumerate(pythons):
        cache_root = os.path.join(work, "cache%d" % index)
        results.append((python,
                        stress_slave(python, work, source, served, cache_root, timeout),
                        stress_slave(python, work, source, served, None, timeout)))
    return results


def print_thread_stress(results, packages, threads):
    """Prints the figures; True if the bridge added no error, deadlock or hang."""
    print("thread stress         %d threads x %d packages, cold; deadlocks bridged "
          "(installed)" % (threads, packages))
    quiet, totals = True, [0, 0, 0, 0]
    for python, bridged, installed in results:
        figures = [bridged["imports"], bridged["deadlocks"], len(bridged["errors"]),
                   bridged["hangs"]]
        totals = [total + figure for total, figure in zip(totals, figures)]
        print("  %-42s imports %5d  deadlocks %3d (%d)  other errors %3d  hangs %d"
              % (python, figures[0], figures[1], installed["deadlocks"], figures[2],
                 figures[3]))
        for error in bridged["errors"][:3]:
            print("      " + error)
        # PyPy's own importer deadlocks on this pattern, by chance (0-41 of 800 installed
        # here): as in tests/test_threads.py, its deadlocks are shown, not failed on
        quiet = quiet and figures[2] == figures[3] == 0 and (
            figures[1] == 0 or installed["deadlocks"] > 0 or "pypy" in python)
    print("thread stress         imports %d, deadlocks %d, other errors %d, hangs %d"
          % tuple(totals))
    return quiet


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
    parser.add_argument("--stress-threads", type=int, default=10)
    parser.add_argument("--stress-packages", type=int, default=20)
    parser.add_argument("--only", choices=["fleet", "threads"], help="run one part")
    args = parser.parse_args()
    code = 0
    if args.only != "threads":
        code = fleet(args)
        if args.only == "fleet":
            return code
    work = tempfile.mkdtemp(prefix="bridge-stress-")
    try:
        results = thread_stress(interpreters(), work, args.stress_packages,
                                args.stress_threads, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    quiet = print_thread_stress(results, args.stress_packages, args.stress_threads)
    return code or (0 if quiet else 1)


def fleet(args):
    """Parts 1-3; prints their figures, returns the exit status."""
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
