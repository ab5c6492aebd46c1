"""The master's time answering a warm slave, for sympy and a data-heavy package
with thousands of files, and that package's cold/warm/local import
(issue 9, targets 1 and 2).

    python benchmarks/warm_master.py --site DIR [--python PATH] [--runs 3]
                                     [--sdk-files 2400] [--sdk-mb 27]

The data-heavy package is generated once (like a cloud SDK: some modules and
thousands of JSON service descriptions, read when a client is made) under the
temporary folder, and reused while its size options stay the same. Slaves are
bare (a ``venv --without-pip`` of --python, ``-E -S``). Per package:

- local: the package on the slave's own path (warm .pyc): the limit;
- cold: a new gateway, an empty slave cache, a master that served it before;
- warm: a new gateway, the cache of the cold run;
- master: ``handle.stats.seconds``, the master's time answering, after the
  import statement, and after the package's first use too ("+use": the SDK
  makes its first client, which reads one service's data).

Seconds are medians of N runs, timed on the slave; "x" is against local.
"""
from __future__ import print_function

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import execnet

import bridge
from imports import bare_venv, median

SDK = "cloudsdk"
SDK_INIT = '''"""A generated stand-in for a cloud SDK: modules plus thousands of data files."""
import json
import os

from . import %(modules)s

DATA = os.path.join(os.path.dirname(__file__), "data")


def client(service):
    """A client reads its service's description from the package's data, as SDKs do."""
    folder = os.path.join(DATA, service)
    version = sorted(os.listdir(folder))[-1]
    with open(os.path.join(folder, version, "service-2.json")) as stream:
        return json.load(stream)
'''
SDK_MODULE = '''"""Generated module %(index)d."""
import collections
import json
%(sibling)s


class Thing%(index)d(object):
    def describe(self, value):
        return json.dumps(collections.OrderedDict(value=value, index=%(index)d))
%(classes)s
'''
SDK_CLASS = '''

class Shape%(index)d_%(number)d(Thing%(index)d):
    """A generated shape: real code to compile and execute, as an SDK's modules have."""
    members = dict((name, position) for position, name in enumerate(%(names)r))

    def validate(self, params):
        return [key for key in params if key not in self.members]

    def serialize(self, params):
        return self.describe(sorted(params.items()))
'''
SDK_MODULES = 60
SDK_CLASSES = 40  # per module
PER_SERVICE = ("service-2.json", "paginators-1.json", "waiters-2.json")
PACKAGES = [  # (label, site: "site" or "sdk", import statement's module, first use)
    ("sympy", "site", "sympy", None),
    ("cloud SDK (generated)", "sdk", SDK, "%s.client('service0001')" % SDK),
]
STEPS = """
import time
started = time.perf_counter()
import %s
channel.send(time.perf_counter() - started)
channel.receive()
started = time.perf_counter()
%s
channel.send(time.perf_counter() - started)
"""


def service_description(rng, index, size):
    """A JSON service description of about ``size`` bytes, distinct per service."""
    operations, total = {}, 0
    while total < size:
        name = "Operation%d%s" % (index, "".join(rng.choice("ABCDEFGH") for _ in range(8)))
        shape = {"input": {"shape": name + "Request"}, "output": {"shape": name + "Response"},
                 "documentation": " ".join(rng.choice(WORDS) for _ in range(40))}
        operations[name] = shape
        total += len(json.dumps(shape)) + len(name)
    return json.dumps({"metadata": {"serviceId": "service%04d" % index},
                       "operations": operations}, indent=1, sort_keys=True)


WORDS = ("the", "request", "returns", "a", "list", "of", "resources", "for", "account",
         "region", "bucket", "instance", "when", "token", "is", "given", "next", "page")


def sdk_classes(index):
    return "".join(SDK_CLASS % {"index": index, "number": number, "names": tuple(
        "Member%d" % member for member in range(number % 7 + 3))} for number in range(SDK_CLASSES))


def write_sdk(site, files, megabytes):
    """The package ``cloudsdk`` under ``site``: SDK_MODULES modules, and data files
    (three per service, the description carrying most bytes) up to ``files`` in all."""
    package = os.path.join(site, SDK)
    os.makedirs(package)
    modules = ["module%02d" % index for index in range(SDK_MODULES)]
    for index, name in enumerate(modules):
        with open(os.path.join(package, name + ".py"), "w") as stream:
            sibling = "from . import %s\n" % modules[index - 1] if index else ""
            stream.write(SDK_MODULE % {"index": index, "sibling": sibling,
                                       "classes": sdk_classes(index)})
    with open(os.path.join(package, "__init__.py"), "w") as stream:
        stream.write(SDK_INIT % {"modules": ", ".join(modules)})
    services = max(1, (files - SDK_MODULES - 1) // len(PER_SERVICE))
    size = int(megabytes * 1e6 / services) - 2000
    rng = random.Random(9)
    for index in range(services):
        folder = os.path.join(package, "data", "service%04d" % index, "2026-01-01")
        os.makedirs(folder)
        for name in PER_SERVICE:
            with open(os.path.join(folder, name), "w") as stream:
                stream.write(service_description(rng, index, size if name == PER_SERVICE[0]
                                                 else 800))


def sdk_site(files, megabytes):
    """The generated SDK's site folder, made once per size."""
    site = os.path.join(tempfile.gettempdir(), "bridge-bench-sdk-%d-%g" % (files, megabytes))
    if not os.path.isdir(os.path.join(site, SDK)):
        partial = tempfile.mkdtemp(prefix="bridge-bench-sdk-")
        write_sdk(partial, files, megabytes)
        os.rename(partial, site)
    return site


def local(python, site, module, use):
    code = ("import sys, time; sys.path.insert(0, %r)\n" % site
            + STEPS.replace("channel.send(", "print(").replace("channel.receive()", "")
            % (module, use or "pass"))
    return [float(line) for line in subprocess.check_output(
        [python, "-E", "-S", "-c", code]).split()]


def bridged(python, site, module, use, cache):
    """(import s, use s, master s after the import, master s after the use, stats)."""
    gateway = execnet.makegateway("popen//python=%s -E -S" % python)
    try:
        handle = bridge.install(gateway, path=[site], cache_root=cache)
        channel = gateway.remote_exec(STEPS % (module, use or "pass"))
        imported = channel.receive(600)
        master_import = handle.stats.seconds
        channel.send(None)
        used = channel.receive(600)
        return imported, used, master_import, handle.stats.seconds, handle.stats.as_dict()
    finally:
        gateway.exit()


def medians(results, columns):
    """The median of each of the first ``columns`` columns of ``results``."""
    return [median([result[column] for result in results]) for column in range(columns)]


def measure(python, site, module, use, runs):
    """([local, cold, warm] medians, the stats of the last cold run); local has
    (import, use) seconds, cold and warm (import, use, master import, master +use)."""
    local(python, site, module, use)  # .pyc written, page cache warm
    primer = tempfile.mkdtemp(prefix="bench-cache-")
    try:
        bridged(python, site, module, use, primer)  # the master warm
    finally:
        shutil.rmtree(primer, ignore_errors=True)
    locals_, colds, warms = [], [], []
    for _ in range(runs):
        locals_.append(local(python, site, module, use))
        cache = tempfile.mkdtemp(prefix="bench-cache-")
        try:
            colds.append(bridged(python, site, module, use, cache))
            warms.append(bridged(python, site, module, use, cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return [medians(locals_, 2), medians(colds, 4), medians(warms, 4)], colds[-1][4]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="sympy (pip --target)")
    parser.add_argument("--python", default=sys.executable, help="the slave interpreter")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sdk-files", type=int, default=2400)
    parser.add_argument("--sdk-mb", type=float, default=27.0)
    args = parser.parse_args()
    python = bare_venv(args.python)
    sites = {"site": args.site, "sdk": sdk_site(args.sdk_files, args.sdk_mb)}
    print("bare slave %s, master warm, %d runs, medians, seconds; 'use': the SDK's first "
          "client; master: handle.stats.seconds" % (python, args.runs))
    print("%-22s %6s %6s | %-27s | %-20s | %s" % (
        "", "", "", "import statement", "first use", "master s (import, +use)"))
    print("%-22s %6s %6s | %6s %6s %6s %6s %6s | %6s %6s %6s | %6s %6s %6s" % (
        "package", "files", "MB", "local", "cold", "x", "warm", "x", "local", "cold", "warm",
        "cold", "warm", "warm+"))
    for label, where, module, use in PACKAGES:
        (loc, cold, warm), stats = measure(python, sites[where], module, use, args.runs)
        print("%-22s %6d %6.1f | %6.3f %6.3f %5.2fx %6.3f %5.2fx | %6.4f %6.4f %6.4f | "
              "%6.3f %6.3f %6.3f" % (
                  label[:22], stats["files"], stats["bytes_sent"] / 1e6, loc[0], cold[0],
                  cold[0] / loc[0], warm[0], warm[0] / loc[0], loc[1], cold[1], warm[1],
                  cold[2], warm[2], warm[3]))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
