"""Cold and warm imports over the bridge against local imports and mitogen.

    python benchmarks/imports.py --site DIR [--numpy-site DIR] [--python PATH] [--runs N]

For each package, on a bare slave of one interpreter (a ``venv
--without-pip`` of --python: nothing but the standard library, also for
mitogen, whose bootstrap re-executes the interpreter without ``-E -S``),
side by side in one run, at 0 ms (direct pipe) and 10 ms one-way delay (20 ms RTT,
through benchmarks/relay.py, capped at --rate bytes/s, 1 Gbit/s, and at 100 Mbit/s),
with the slave's cache root on this host's disk (the temporary folder) and, on the
pipe, on a tmpfs (/dev/shm) too: what creating files costs is the difference:

- local: the package installed on the slave's path (warm .pyc): the limit;
- bridge cold: a new gateway and an empty slave cache, the master warm (one untimed
  import of the package first: a master is long-lived);
- bridge warm: a new gateway, the cache of the cold run (only missing bodies move);
- mitogen: its importer, a new local context (``router.local``).

Seconds are medians of N runs of the import statement alone, timed on the
slave, with their spread (largest minus smallest, ms). Trips are the blocking round
trips of the importing thread (the median; a range when runs differ); files are what
a cold run left in its empty cache root (blobs, tree entries, session records).
"""
from __future__ import print_function

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import execnet

import bridge
import scratch

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY = os.path.join(HERE, "relay.py")
PACKAGES = [  # (label, import statement's module, needs extensions)
    ("requests (HTTP client)", "requests", False),
    ("jinja2 (templates)", "jinja2", False),
    ("docutils.core", "docutils.core", False),
    ("sympy (hundreds of modules)", "sympy", False),
    ("numpy (extensions)", "numpy", True),
]
LINKS = [  # (one-way delay, bytes/s or None for --rate, label, cache roots)
    (0.0, None, "pipe", ("disk", "tmpfs")), (0.010, None, "1G", ("disk",)),
    (0.010, 12.5e6, "100M", ("disk",))]
TMPFS = "/dev/shm"
TIMED = """
import time
started = time.perf_counter()
import %s
channel.send(time.perf_counter() - started)
"""


def python_command(python, delay, rate):
    if not delay:
        return [python, "-E", "-S"]
    return [sys.executable, RELAY, "--delay", str(delay), "--rate", str(rate), "--",
            python, "-E", "-S"]


def local(python, site, module):
    code = ("import sys, time; sys.path.insert(0, %r); started = time.perf_counter()\n"
            "import %s\nprint(time.perf_counter() - started)" % (site, module))
    return float(subprocess.check_output([python, "-E", "-S", "-c", code]))


def bridged(command, site, module, cache, extensions):
    spec = "popen//python=%s//chdir=%s" % (" ".join(command), cache)
    gateway = execnet.makegateway(spec)
    try:
        handle = bridge.install(gateway, path=[site], allow_extensions=extensions,
                                cache_root=cache)
        seconds = gateway.remote_exec(TIMED % module).receive(600)
        stats = handle.stats.as_dict()
        return seconds, stats["requests"], stats["bytes_wire"]
    finally:
        gateway.exit()


def with_mitogen(command, site, module):
    """mitogen's importer serves from the master's own sys.path."""
    import mitogen.master
    import mitogen_probe
    sys.path.insert(0, site)
    broker = mitogen.master.Broker()
    try:
        router = mitogen.master.Router(broker)
        before = router.responder.get_module_count
        context = router.local(python_path=command)
        seconds = context.call(mitogen_probe.timed_import, module)
        return seconds, router.responder.get_module_count - before
    except Exception as error:  # mitogen cannot serve extensions: report, go on
        return "fails: %s" % str(error).splitlines()[0][:40], None
    finally:
        broker.shutdown()
        broker.join()
        sys.path.remove(site)


def tmpfs_root():
    """/dev/shm when it is a tmpfs (the kernel says so), else None."""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == TMPFS and fields[2] == "tmpfs":
                return TMPFS
    return None


def files_in(folder):
    return sum(len(names) for _, _, names in os.walk(folder))


def spread(values):
    numbers = [value for value in values if not isinstance(value, str)]
    return "%5.0f" % ((max(numbers) - min(numbers)) * 1e3) if numbers else "    -"


def trips(values):
    low, high, middle = min(values), max(values), statistics.median(values)
    return "%d" % middle if low == high else "%d-%d" % (low, high)


def median(values):
    numbers = [value for value in values if not isinstance(value, str)]
    return statistics.median(numbers) if len(numbers) == len(values) else values[0]


def measure(python, site, module, extensions, delay, rate, runs, use_mitogen, root):
    """One row: local, then bridge cold and warm with caches in ``root``, then mitogen."""
    locals_ = [local(python, site, module) for _ in range(runs)]
    row = {"local": median(locals_), "local_spread": spread(locals_)}
    command = python_command(python, delay, rate)
    warm_up = tempfile.mkdtemp(prefix="bench-")
    try:  # the master is long-lived: its first reply of each package is not timed
        bridged(python_command(python, 0.0, None), site, module, warm_up, extensions)
    finally:
        shutil.rmtree(warm_up, ignore_errors=True)
    cold, warm = [], []
    for _ in range(runs):
        cache = scratch.folder("bench-", root)  # removed at exit: benchmarks/scratch.py
        cold.append(bridged(command, site, module, cache, extensions))
        row["files"] = files_in(cache)
        warm.append(bridged(command, site, module, cache, extensions))
    row["cold"] = median([each[0] for each in cold])
    row["cold_spread"] = spread([each[0] for each in cold])
    row["cold_requests"] = trips([each[1] for each in cold])
    row["cold_bytes"] = cold[-1][2]
    row["warm"] = median([each[0] for each in warm])
    row["warm_spread"] = spread([each[0] for each in warm])
    row["warm_bytes"] = warm[-1][2]
    if use_mitogen:
        results = [with_mitogen(command, site, module) for _ in range(runs)]
        row["mitogen"] = median([each[0] for each in results])
        row["mitogen_requests"] = results[-1][1]
    return row


def ratio(value, limit):
    return "%6.2fx" % (value / limit) if not isinstance(value, str) else "     -"


def seconds(value):
    return "%7.3f" % value if not isinstance(value, str) else "%7s" % value[:7]


def print_row(label, link, root_name, row):
    print("%-22s %5s %5s %s %s | %s %s %s %5s %5d %7.2f | %s %s %s %6.2f | %s %s %5s" % (
        label[:22], link, root_name, seconds(row["local"]), row["local_spread"],
        seconds(row["cold"]), ratio(row["cold"], row["local"]), row["cold_spread"],
        row["cold_requests"], row["files"], row["cold_bytes"] / 1e6,
        seconds(row["warm"]), ratio(row["warm"], row["local"]), row["warm_spread"],
        row["warm_bytes"] / 1e6, seconds(row.get("mitogen", "-")),
        ratio(row.get("mitogen", "-"), row["local"]),
        row.get("mitogen_requests") if row.get("mitogen_requests") is not None else "-"))
    sys.stdout.flush()


def bare_venv(python):
    """A venv of ``python`` without pip: its interpreter sees only the stdlib."""
    version = subprocess.check_output([python, "-c", "import sys; print('%d.%d' % "
                                       "sys.version_info[:2])"]).decode().strip()
    folder = os.path.join(tempfile.gettempdir(), "bridge-bench-bare-%s" % version)
    if not os.path.exists(os.path.join(folder, "bin", "python")):
        subprocess.check_call([python, "-m", "venv", "--without-pip", folder])
    return os.path.join(folder, "bin", "python")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="pure-Python packages (pip --target)")
    parser.add_argument("--numpy-site", help="a numpy installed with pip --target")
    parser.add_argument("--python", default=sys.executable, help="the slave interpreter")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=125e6, help="bytes/s at 10 ms (1 Gbit)")
    parser.add_argument("--only", help="run only packages whose label contains this")
    parser.add_argument("--link", help="run only this link: pipe, 1G or 100M")
    parser.add_argument("--no-mitogen", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, HERE)  # mitogen_probe, served to mitogen's child
    args.python = bare_venv(args.python)
    roots = {"disk": None, "tmpfs": tmpfs_root()}
    print("slave %s, %d runs, medians and their spread (ms); 'pipe': the gateway's own pipe; "
          "'1G', '100M': relay, 20 ms RTT, capped at %.0f and 12.5 MB/s; MB: on the wire "
          "(compressed where the link is slow); root: the slave's cache root, 'disk' %s, "
          "'tmpfs' %s; files: left by a cold run" % (
              args.python, args.runs, args.rate / 1e6, tempfile.gettempdir(),
              roots["tmpfs"] or "(none here: not measured)"))
    print("%-22s %5s %5s %7s %5s | %7s %7s %5s %5s %5s %7s | %7s %7s %5s %6s | %7s %7s %5s" % (
        "package", "link", "root", "local", "sprd", "cold", "x", "sprd", "trips", "files", "MB",
        "warm", "x", "sprd", "MB", "mitogen", "x", "trips"))
    for label, module, extensions in PACKAGES:
        if args.only and args.only not in label:
            continue
        site = args.numpy_site if extensions else args.site
        if not site:
            continue
        for delay, rate, link, root_names in LINKS:
            if args.link and link != args.link:
                continue
            for root_name in root_names:
                if root_name != "disk" and not roots[root_name]:
                    continue
                use_mitogen = not args.no_mitogen and root_name == "disk"
                row = measure(args.python, site, module, extensions, delay, rate or args.rate,
                              args.runs, use_mitogen, roots[root_name])
                print_row(label, link, root_name, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
