"""The shipped slave files stand alone: stdlib only, valid on every interpreter."""
import ast
import os
import subprocess

import bridge.compat
from bridge._install import SLAVE_MODULES

COMPAT = os.path.dirname(os.path.abspath(bridge.compat.__file__))
SHIPPED = SLAVE_MODULES + ("bootstrap",)
STDLIB_USED = {"atexit", "errno", "gc", "hashlib", "imp", "_imp", "importlib", "linecache",
               "os", "pkgutil", "platform", "re", "shutil", "struct", "sys", "sysconfig",
               "tempfile", "threading", "types"}
COMPILE_ALL = """
import sys
for path in sys.argv[1:]:
    with open(path, "rb") as stream:
        compile(stream.read(), path, "exec", dont_inherit=True)
"""


def shipped_path(name):
    return os.path.join(COMPAT, name + ".py")


def test_every_slave_file_compiles_on_the_slave(slave_python):
    files = [shipped_path(name) for name in SHIPPED]
    subprocess.check_call([slave_python, "-E", "-S", "-c", COMPILE_ALL] + files)


def imports_of(name):
    with open(shipped_path(name)) as stream:
        tree = ast.parse(stream.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.level, node.module
        elif isinstance(node, ast.ImportFrom):  # from . import a, b
            for alias in node.names:
                yield node.level, alias.name


def test_slave_files_import_the_standard_library_and_each_other_only():
    for name in SHIPPED:
        for level, module in imports_of(name):
            if level:
                assert level == 1 and module in SLAVE_MODULES, (name, module)
            else:
                assert module.split(".")[0] in STDLIB_USED, (name, module)


def test_every_source_file_is_ascii_for_python_2():
    """2.7 refuses non-ASCII source without a coding line; both worlds run there."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    package = os.path.dirname(COMPAT)
    folders = [package, COMPAT] + [os.path.join(top, name) for name in ("tests", "benchmarks", "ci")]
    for folder in folders:
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as stream:
                    stream.read().decode("ascii")
