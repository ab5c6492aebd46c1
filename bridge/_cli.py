"""``python -m bridge``: run code on a fresh slave with its imports bridged; doctor.

    python -m bridge run [--python X | --gateway SPEC] [--path DIR]... [--allow-extensions]
                         (-m module | script.py) [args...]
    python -m bridge doctor [--python X]... [--path DIR]... [--allow-extensions]
"""
from __future__ import print_function

import argparse
import os
import sys

import execnet

from ._binaries import extension_problem
from ._facts import Facts
from ._install import install, master_facts
from ._locate import SearchPath, default_search_path
from .compat import protocol
from ._requires import python_problem
from .compat.neutral import dotted

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
        channel = gateway.remote_exec(protocol.CONTROL_SOURCE)
        target = args.module or os.path.abspath(args.script)
        channel.send(protocol.run_request(
            module=args.module, source=source, filename=None if args.module else target,
            run_name="__main__", argv=[target] + list(args.args), output=True))
        while True:
            kind, payload = channel.receive()
            if kind == protocol.EXIT:
                return payload
            stream = sys.stdout if kind == protocol.OUT else sys.stderr
            stream.write(payload)
            stream.flush()
    finally:
        group.terminate(timeout=SLAVE_EXIT_SECONDS)


def distributions(search_path):
    """(root, InstalledDistribution, [root-relative files]) of every installed
    distribution, the first on the path for each name."""
    for root, folder, _ in search_path.distributions():
        for distribution, files in search_path.metadata_index(root).distributions:
            if distribution.folder == folder:
                yield root, distribution, files


def verdict(search_path, root, distribution, files, slave, master, allow_extensions):
    """pure, binary ok, binary refused (why), or refused by its Requires-Python, for one
    distribution and one slave."""
    if python_problem(distribution, slave):
        return "refused: Requires-Python %s" % distribution.requires_python
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
    facts = Facts.of(facts)
    return "%s %s  abi %s  %s  %s %s  suffixes %s" % (
        facts.implementation, dotted(facts.version or []), facts.abi, facts.platform,
        facts.libc, dotted(facts.libc_version or []), " ".join(facts.extension_suffixes or []))


def doctor(args):
    """Each side's tags, and what of the master's environment each slave could import."""
    master = master_facts()
    search_path = SearchPath(list(args.path) or default_search_path())
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
        for root, distribution, files in distributions(search_path):
            print("  %-32s %-12s %s" % (distribution.name, distribution.version, verdict(
                search_path, root, distribution, files, slave, master, args.allow_extensions)))
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
    checker.add_argument("--path", action="append", default=[],
                         help="check this entry (repeatable; default: the master's path)")
    checker.add_argument("--allow-extensions", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "doctor":
        return doctor(args)
    parser.print_help()
    return 2
