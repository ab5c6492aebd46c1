"""The demo: bare slaves of every local Python import a package only the master has.

For each interpreter found (pyenv versions and pypy3), a bare slave
(``python -E -S``, so nothing but its standard library) is started in an empty
folder, execnet-bridge is installed, and the slave imports ``forecast``:
a package with a subpackage, relative imports, a data file read next to
``__file__`` and a function that raises, so the traceback shows the master's
source line. Exit status 1 if any slave fails.
"""
from __future__ import print_function

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import execnet

import bridge

PACKAGE = {
    "forecast/__init__.py": '''
        """A package that exists only on the master."""
        from .model import predict
        from . import units
        ''',
    "forecast/model.py": '''
        import json, os
        from .units import celsius

        HERE = os.path.dirname(__file__)
        with open(os.path.join(HERE, "data", "normals.json")) as stream:
            NORMALS = json.load(stream)

        def predict(month):
            return celsius(NORMALS[month])
        ''',
    "forecast/units/__init__.py": '''
        def celsius(fahrenheit):
            return round((fahrenheit - 32) * 5.0 / 9.0, 1)

        def check(value):
            if value < -273.15:
                raise ValueError("below absolute zero: %r" % (value,))
            return value
        ''',
    "forecast/data/normals.json": '{"jan": 41, "jul": 77}\n',
}

EXPECTED_LINE = 'raise ValueError("below absolute zero: %r" % (value,))'

SLAVE_CODE = """
import sys, traceback
import forecast
from forecast.units import check
try:
    check(-300)
except ValueError:
    lines = traceback.format_exc().splitlines()
channel.send({
    "python": "%s %d.%d.%d" % ((sys.implementation.name if hasattr(sys, "implementation")
                                else "cpython",) + tuple(sys.version_info[:3])),
    "jul": forecast.predict("jul"),
    "file": forecast.__file__,
    "raise_line": [line.strip() for line in lines if "raise ValueError" in line][0],
})
"""


def interpreters():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python")),
                   key=lambda path: [int(part) if part.isdigit() else part for part in
                                     path.split(os.sep)[-3].split(".")])
    pypy = shutil.which("pypy3") if hasattr(shutil, "which") else None
    return found + ([pypy] if pypy else [])


def write_package(folder):
    for relative, text in PACKAGE.items():
        path = os.path.join(folder, *relative.split("/"))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w") as stream:
            stream.write(textwrap.dedent(text).lstrip())


def has_forecast(python):
    """The demo means something only if the slave cannot import it itself."""
    return subprocess.call([python, "-E", "-S", "-c", "import forecast"],
                           stderr=subprocess.DEVNULL) == 0


def run(python, served, empty):
    gateway = execnet.makegateway("popen//python=%s -E -S//chdir=%s" % (python, empty))
    try:
        started = time.time()
        handle = bridge.install(gateway, path=[served])
        result = gateway.remote_exec(SLAVE_CODE).receive(60)
        result["seconds"] = time.time() - started
        result["stats"] = handle.stats.as_dict()
        return result
    finally:
        gateway.exit()


def main():
    work = tempfile.mkdtemp(prefix="bridge-demo-")
    served, empty = os.path.join(work, "master"), os.path.join(work, "slave")
    os.makedirs(empty)
    write_package(served)
    print("master: Python %s, execnet %s, serving %s" % (
        sys.version.split()[0], execnet.__version__, served))
    print("%-18s %-6s %-8s %-9s %-6s  %s" % ("slave", "jul C", "modules", "bytes", "secs",
                                              "traceback line from the master's source"))
    failures = 0
    for python in interpreters():
        if has_forecast(python):
            print("%-18s the slave has forecast itself; demo invalid" % python)
            failures += 1
            continue
        try:
            result = run(python, served, empty)
        except Exception as error:  # report every slave, then fail
            print("%-18s FAILED: %s" % (python, error))
            failures += 1
            continue
        stats = result["stats"]
        correct = result["jul"] == 25.0 and result["raise_line"] == EXPECTED_LINE
        failures += 0 if correct else 1
        print("%-18s %-6s %-8d %-9d %-6.2f  %s%s" % (
            result["python"], result["jul"], stats["modules"], stats["bytes_sent"],
            result["seconds"], result["raise_line"], "" if correct else "  WRONG"))
    shutil.rmtree(work, ignore_errors=True)
    print("%d interpreters, %d failed" % (len(interpreters()), failures))
    return 1 if failures or not interpreters() else 0


if __name__ == "__main__":
    sys.exit(main())
