"""The slave world stands alone: stdlib only, valid on every interpreter.

That is the shipped files, and ``paths``, which the ``python=`` probe runs in
another interpreter (with ``tags``) but which is never shipped.
"""
import ast
import os
import subprocess

import pytest

import bridge.compat
from bridge._install import SLAVE_MODULES
from conftest import MATRIX, NEWEST, chosen_slaves, find_python

COMPAT = os.path.dirname(os.path.abspath(bridge.compat.__file__))
SHIPPED = SLAVE_MODULES  # bootstrap last: a spawned child materialises the package with it
PROBED = ("paths", "tags")  # bridge._environment runs these in the interpreter it reads
STANDALONE = SHIPPED + ("paths",)
STDLIB_USED = {"atexit", "contextlib", "errno", "fcntl", "gc", "hashlib", "imp", "_imp", "importlib",
               "json", "linecache", "logging", "os", "pkgutil", "platform", "re", "runpy",
               "shutil", "stat", "struct", "sys", "sysconfig", "tempfile", "threading", "time",
               "traceback", "types", "zlib",
               "queue", "Queue",  # relay.py: 3.x and 2.7 names
               "builtins", "marshal", "multiprocessing", "socket",  # children.py
               "io", "pathlib"}  # listing.py
COMPILE_ALL = """
import sys
for path in sys.argv[1:]:
    with open(path, "rb") as stream:
        compile(stream.read(), path, "exec", dont_inherit=True)
"""


def shipped_path(name):
    return os.path.join(COMPAT, name + ".py")


def test_every_slave_file_compiles_on_the_slave(slave_python):
    files = [shipped_path(name) for name in STANDALONE]
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
    for name in STANDALONE:
        for level, module in imports_of(name):
            if level:
                assert level == 1 and module in SLAVE_MODULES, (name, module)
            else:
                assert module.split(".")[0] in STDLIB_USED, (name, module)


def test_every_module_of_the_slave_world_is_shipped_or_probed():
    """A master-only module does not belong in compat/: it would escape these checks."""
    found = set(name[:-len(".py")] for name in os.listdir(COMPAT) if name.endswith(".py"))
    assert found == set(SHIPPED + PROBED + ("__init__",))


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


@pytest.mark.parametrize("label", NEWEST)
def test_the_free_threaded_build_joins_the_slave_matrix_where_it_is_found(label):
    path, reason = find_python(label)
    if path is None:
        pytest.skip("%s: no package of a free-threaded build here (docs/limits.md)" % reason)
    assert label in MATRIX or label not in chosen_slaves()
