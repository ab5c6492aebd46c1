"""The demo: one master, a fleet of bare slaves of every local Python, real PyPI packages.

The master (this interpreter) serves ``simplejson`` (a C speedup with a pure
Python fallback) and ``six`` (pure) to a bare slave (``python -E -S``: its
standard library only) of each local interpreter:

- 2.7 from a 2.7 environment on the master (``python=``): its cp27mu binary is
  shipped;
- 3.6 ... 3.13 and PyPy from a folder installed for the master's own version
  (``path=``): the binary goes to the slave of that version only, the others
  are refused with the reason, and simplejson's pure fallback works there.

Each slave imports the packages cold (a fresh slave cache), then warm (a new
slave, same cache), then locally (the same interpreter with the packages on
its own path), and triggers an error whose traceback shows the master's source.
It prints one table and exits 1 if anything was wrong. Public API only.
"""
from __future__ import print_function

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import execnet

import bridge

RECEIVE_SECONDS = 60

SLAVE_CODE = r"""
import sys, time, traceback
started = time.time()
import simplejson, six
seconds = time.time() - started
try:
    import simplejson._speedups  # not "from simplejson import": that hides the reason
    refusal = None
except ImportError as error:  # the bridge says why; simplejson falls back to pure
    refusal = str(error)
data = {"fleet": [2.7, 3.13], "pypy": True, "name": "caf\u00e9"}
try:
    simplejson.loads('{"unterminated": ')
except simplejson.JSONDecodeError:
    frame = traceback.extract_tb(sys.exc_info()[2])[-1]
    formatted = traceback.format_exc()
channel.send({
    "seconds": seconds,
    "speedups": simplejson._import_c_make_encoder() is not None,
    "refusal": refusal,
    "roundtrip": simplejson.loads(simplejson.dumps(data)) == data,
    "six_py2": six.PY2,
    "frame_file": frame[0],
    "frame_line": frame[3],
    "traceback": formatted,
})
"""


class Slave(object):
    """One interpreter of the fleet and where its packages come from on the master."""

    def __init__(self, python, version, implementation, master_version, site, env27):
        self.python = python
        self.version = version  # (major, minor, micro)
        self.implementation = implementation
        self.is27 = version[:2] == (2, 7)
        self.serve = {"python": env27} if self.is27 else {"path": [site]}
        self.source_root = site_packages(env27) if self.is27 else site
        self.served_from = "env-2.7 (python=)" if self.is27 else "%s (path=)" % (
            os.path.basename(site))
        self.binary_expected = implementation == "cpython" and (
            self.is27 or version[:2] == master_version)

    @property
    def label(self):
        return "%s %s" % (self.implementation, ".".join(str(part) for part in self.version))

    def bare_spec(self, chdir):
        return "popen//python=%s -E -S//chdir=%s" % (self.python, chdir)

    def local_spec(self, chdir):
        """The same interpreter with the packages installed, for the local figure."""
        if self.is27:
            return "popen//python=%s -E//chdir=%s" % (self.serve["python"], chdir)
        return self.bare_spec(chdir)


def site_packages(python):
    found = glob.glob(os.path.join(os.path.dirname(os.path.dirname(python)), "lib",
                                   "python2.7", "site-packages"))
    return found[0] if found else ""


def version_key(path):
    """3.9 before 3.10, and 3.14 before 3.14t, from a pyenv folder name."""
    name = path.split(os.sep)[-3]
    return [int(number) for number in re.findall(r"\d+", name)], name


def interpreters():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python")),
                   key=version_key)
    pypy = shutil.which("pypy3")
    return found + ([pypy] if pypy else [])


def describe(python):
    """(version, implementation) of ``python``, or None if it does not run."""
    code = ("import sys, platform; print('%s %s' % (platform.python_implementation().lower(),"
            " '.'.join(str(part) for part in sys.version_info[:3])))")
    try:
        out = subprocess.check_output([python, "-E", "-S", "-c", code]).decode().split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return tuple(int(part) for part in out[1].split(".")), out[0]


def has_packages(python):
    """The demo means something only if the bare slave cannot import them itself."""
    code = "import simplejson, six"
    return subprocess.call([python, "-E", "-S", "-c", code], stderr=subprocess.DEVNULL) == 0


def run_bridged(slave, cache_root, empty):
    gateway = execnet.makegateway(slave.bare_spec(empty))
    try:
        handle = bridge.install(gateway, allow_extensions=True, cache_root=cache_root,
                                **slave.serve)
        result = gateway.remote_exec(SLAVE_CODE).receive(RECEIVE_SECONDS)
        result["stats"] = handle.stats.as_dict()
        return result
    finally:
        gateway.exit()


def run_local(slave, empty):
    gateway = execnet.makegateway(slave.local_spec(empty))
    prefix = "" if slave.is27 else "import sys; sys.path.insert(0, %r)\n" % slave.source_root
    try:
        return gateway.remote_exec(prefix + SLAVE_CODE).receive(RECEIVE_SECONDS)
    finally:
        gateway.exit()


def measure(slave, work):
    """Cold, warm and local runs of one slave: a dict, or raises."""
    empty = tempfile.mkdtemp(dir=work)
    cache_root = os.path.join(work, "cache-%s" % slave.label.replace(" ", "-"))
    cold = run_bridged(slave, cache_root, empty)
    warm = run_bridged(slave, cache_root, empty)
    run_local(slave, empty)  # the first local run writes its .pyc; time the second
    return {"cold": cold, "warm": warm, "local": run_local(slave, empty)}


def problems(slave, runs):
    """What is wrong with one slave's runs, as short phrases (empty: all good)."""
    found = []
    for name in ("cold", "warm"):
        result = runs[name]
        if not result["roundtrip"] or result["six_py2"] != slave.is27:
            found.append("%s: wrong results" % name)
        if result["speedups"] != slave.binary_expected:
            found.append("%s: C speedup %s, expected %s" % (
                name, result["speedups"], slave.binary_expected))
        if not result["speedups"] and "_speedups." not in (result["refusal"] or ""):
            found.append("%s: refused without naming the binary" % name)
        if not line_in_master_source(slave, result):
            found.append("%s: traceback line not from the master's source" % name)
    if runs["warm"]["stats"]["bytes_sent"]:
        found.append("warm: %d bytes sent, expected 0" % runs["warm"]["stats"]["bytes_sent"])
    return found


def line_in_master_source(slave, result):
    """The slave's traceback line is the master's line of the same simplejson file."""
    path = os.path.join(slave.source_root, "simplejson", os.path.basename(result["frame_file"]))
    if not result["frame_line"] or not os.path.isfile(path):
        return False
    with open(path) as stream:
        return result["frame_line"].strip() in (line.strip() for line in stream)


HEADER = ("%-16s %-18s %-15s | %25s | %25s | %7s | %s\n%-16s %-18s %-15s | "
          "%5s %6s %6s %6s | %5s %6s %6s %6s | %7s |" % (
              "", "", "", "cold (empty slave cache)", "warm (new slave, cache)", "local", "",
              "slave", "served from", "C speedup", "trips", "MB", "s", "x", "trips", "MB",
              "s", "x", "s"))


def row(slave, runs, wrong):
    local = runs["local"]["seconds"]
    cells = []
    for name in ("cold", "warm"):
        stats, seconds = runs[name]["stats"], runs[name]["seconds"]
        cells.append("%5d %6.2f %6.3f %5.1fx" % (stats["requests"], stats["bytes_sent"] / 1e6,
                                                 seconds, seconds / local if local else 0))
    speedup = "shipped" if runs["cold"]["speedups"] else "refused, pure"
    return "%-16s %-18s %-15s | %s | %s | %7.3f | %s" % (
        slave.label, slave.served_from, speedup, cells[0], cells[1], local,
        "ok" if not wrong else "FAILED: " + "; ".join(wrong))


def report_examples(results):
    """One refusal and one traceback, as the slave saw them."""
    refused = [(slave, runs) for slave, runs in results if not runs["cold"]["speedups"]]
    if refused:
        slave, runs = refused[0]
        print("\nThe binary refused, as %s's ImportError says (simplejson then runs pure):\n  %s"
              % (slave.label, runs["cold"]["refusal"]))
    if results:
        slave, runs = (refused or results)[0]
        lines = runs["cold"]["traceback"].rstrip().splitlines()
        print("\nA traceback on %s, with the master's source lines (last frame):\n  %s"
              % (slave.label, "\n  ".join(lines[-3:])))


def fleet(site, env27):
    master_version = sys.version_info[:2]
    slaves, skipped = [], []
    for python in interpreters():
        described = describe(python)
        if described is None:
            skipped.append("%s: does not run" % python)
        elif described[0][:2] == (2, 7) and not env27:
            skipped.append("%s: no 2.7 environment to serve it from" % python)
        else:
            slaves.append(Slave(python, described[0], described[1], master_version, site, env27))
    return slaves, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="packages for the master's version")
    parser.add_argument("--env27", help="python of a 2.7 environment with the packages")
    options = parser.parse_args(argv)
    env27 = options.env27 and os.path.abspath(options.env27)
    slaves, skipped = fleet(os.path.abspath(options.site), env27)
    print("master: %s %s, execnet %s, execnet-bridge %s; packages: simplejson, six\n" % (
        sys.implementation.name, sys.version.split()[0], execnet.__version__,
        bridge.__version__))
    print(HEADER)
    work = tempfile.mkdtemp(prefix="bridge-demo-")
    results, failures = [], 0
    try:
        for slave in slaves:
            if has_packages(slave.python):
                print("%-16s has simplejson or six itself: the demo would prove nothing"
                      % slave.label)
                failures += 1
                continue
            try:
                runs = measure(slave, work)
            except Exception as error:  # report every slave, then fail
                print("%-16s FAILED: %s: %s" % (slave.label, type(error).__name__, error))
                failures += 1
                continue
            wrong = problems(slave, runs)
            failures += 1 if wrong else 0
            results.append((slave, runs))
            print(row(slave, runs, wrong))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report_examples(results)
    for reason in skipped:
        print("skipped: %s" % reason)
    print("\n%d slaves, %d failed%s" % (len(slaves), failures,
                                         "" if slaves else " (no interpreter found)"))
    return 1 if failures or not slaves else 0


if __name__ == "__main__":
    sys.exit(main())
