"""``python -m bridge``: run code on a fresh slave with its imports bridged; doctor.

    python -m bridge run [--python X | --gateway SPEC] [--path DIR]... [--allow-extensions]
                         (-m module | script.py) [args...]
    python -m bridge doctor [--python X]... [--allow-extensions]
"""
from __future__ import print_function

import argparse
import os
import sys

import execnet

from ._binaries import extension_problem
from ._install import install, master_facts
from ._locate import SearchPath, default_search_path, distribution_version, record_paths
from .compat import protocol
from .compat.neutral import dotted

# Runs on the slave: the program's output comes back over the channel as it is
# written; its exit status is the last message.
RUN = """
import linecache, runpy, sys, traceback

class Stream(object):
    def __init__(self, kind):
        self.kind = kind
    def write(self, text):
        channel.send((self.kind, text))
    def flush(self):
        pass
    def isatty(self):
        return False

argv, kind, target, source = channel.receive()
target = str(target)  # a native string: 2.7's runpy refuses a unicode __package__
sys.argv = list(argv)
sys.stdout, sys.stderr = Stream("out"), Stream("err")
code = 0
try:
    if kind == "module":
        sys.modules["_execnet_bridge.hook"].make_available(target)
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        linecache.cache[target] = (len(source), None, source.splitlines(True), target)
        exec(compile(source, target, "exec"), {"__name__": "__main__", "__file__": target})
except SystemExit as stop:
    if stop.code is None or isinstance(stop.code, int):
        code = stop.code or 0
    else:
        sys.stderr.write("%s\\n" % (stop.code,))
        code = 1
except BaseException:
    traceback.print_exc()
    code = 1
finally:
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
channel.send(("exit", code))
"""


# A slave that has not ended this long after being told to is killed, so none
# outlives the command (and keeps its stderr, which is ours, open).
SLAVE_EXIT_SECONDS = 10


def gateway_spec(args):
    return args.gateway or "popen//python=%s" % (args.python or sys.executable)


def run(args):
    """Run a module or script on a new slave; its output and exit status are ours."""
    if args.module and args.script:  # with -m, every word after it is the program's
        args.args, args.script = [args.script] + list(args.args), None
    if not (args.module or args.script):
        raise SystemExit("bridge run: give -m MODULE or a script")
    path = list(args.path) or default_search_path()
    source = None
    if args.script:
        with open(args.script) as stream:
            source = stream.read()
        path.insert(0, os.path.dirname(os.path.abspath(args.script)))
    group = execnet.Group()  # of its own: terminate() below waits for (or kills) the slave
    gateway = group.makegateway(gateway_spec(args))
    try:
        install(gateway, path=path, allow_extensions=args.allow_extensions)
        channel = gateway.remote_exec(RUN)
        target = args.module or os.path.abspath(args.script)
        channel.send([[target] + list(args.args), "module" if args.module else "script",
                      target, source])
        while True:
            kind, payload = channel.receive()
            if kind == "exit":
                return payload
            stream = sys.stdout if kind == "out" else sys.stderr
            stream.write(payload)
            stream.flush()
    finally:
        group.terminate(timeout=SLAVE_EXIT_SECONDS)


def distributions(search_path):
    """(root, name, version, [root-relative files]) of every installed distribution."""
    for root, entry, _ in search_path.distributions():
        files = record_paths(root, entry) if entry.endswith(".dist-info") else []
        if files:
            yield root, protocol.distribution_of(entry), distribution_version(entry), files


def verdict(search_path, root, files, slave, master, allow_extensions):
    """pure, binary ok, or binary refused (why), for one distribution and one slave."""
    modules = [path for path in files if path.endswith(".so") and ".libs/" not in path]
    if not modules:
        return "pure"
    for path in modules:
        module = path.rpartition("/")[2].split(".")[0]
        problem, _ = extension_problem(root, path, module, slave, master,
                                       search_path.wheel_tags(root, path))
        if problem:
            return "binary refused: %s: %s" % (path.rpartition("/")[2], problem)
    return "binary ok" if allow_extensions else "binary ok (needs allow_extensions=True)"


def describe(facts):
    return "%s %s  abi %s  %s  %s %s  suffixes %s" % (
        facts.get("implementation"), dotted(facts.get("version", [])),
        facts.get("abi"), facts.get("platform"), facts.get("libc"),
        dotted(facts.get("libc_version") or []),
        " ".join(facts.get("extension_suffixes") or []))


def doctor(args):
    """Each side's tags, and what of the master's environment each slave could import."""
    master = master_facts()
    search_path = SearchPath(default_search_path())
    print("master: %s" % describe(master))
    for python in args.python or [sys.executable]:
        group = execnet.Group()
        try:
            handle = install(group.makegateway("popen//python=%s" % python), path=[])
            slave = dict(handle.slave)
            handle.uninstall()
        finally:
            group.terminate(timeout=SLAVE_EXIT_SECONDS)
        print("\nslave %s: %s" % (python, describe(slave)))
        for root, name, version, files in distributions(search_path):
            print("  %-32s %-12s %s" % (name, version, verdict(
                search_path, root, files, slave, master, args.allow_extensions)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    runner = commands.add_parser("run", help="run a module or script on a new bridged slave")
    where = runner.add_mutually_exclusive_group()
    where.add_argument("--python", help="the slave interpreter (popen)")
    where.add_argument("--gateway", help="an execnet gateway spec")
    runner.add_argument("--path", action="append", default=[],
                        help="serve from this entry (repeatable; default: the master's path)")
    runner.add_argument("--allow-extensions", action="store_true")
    runner.add_argument("-m", dest="module", help="run this module as __main__")
    runner.add_argument("script", nargs="?", help="run this script as __main__")
    runner.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    checker = commands.add_parser("doctor", help="tags, and what each slave could import")
    checker.add_argument("--python", action="append", help="a slave interpreter (repeatable)")
    checker.add_argument("--allow-extensions", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "doctor":
        return doctor(args)
    parser.print_help()
    return 2
