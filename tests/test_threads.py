"""Threads importing a served package and its submodules at once never deadlock or hang."""
import execnet

import bridge
from conftest import remote_value, slave_spec, write_tree

PACKAGES = 6

# pkg's __init__ imports a submodule: a thread importing pkg.core first holds
# pkg.core's module lock while it waits for pkg's, the shape of the deadlock.
PACKAGE_FILES = {
    "__init__.py": "from . import core\nfrom .core import VALUE\n",
    "core.py": "VALUE = __name__.split('.')[0]\n",
    "util.py": "from .core import VALUE\n",
    "sub/__init__.py": "from .. import core\nfrom ..core import VALUE\n",
    "sub/deep.py": "from . import leaf\nfrom ..core import VALUE\n",
    "sub/leaf.py": "from .. import util\nVALUE = util.VALUE\n",
}

MIX = ["sub.deep", "core", "", "sub", "sub.leaf", "core", "sub.deep", "", "util", "sub"]

# Every thread waits at one Event (2.7 has no Barrier), then imports its name.
THREADED_IMPORTS = """
import sys, threading
rounds = channel.receive()
outcome = {"values": [], "errors": [], "hung": 0}
for names in rounds:
    start = threading.Event()
    values = [None] * len(names)

    def work(index, name):
        start.wait()
        try:
            __import__(name)
            values[index] = sys.modules[name].VALUE
        except BaseException as error:
            outcome["errors"].append("%s: %s: %s" % (name, type(error).__name__, error))

    threads = [threading.Thread(target=work, args=(i, name)) for i, name in enumerate(names)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    start.set()
    for thread in threads:
        thread.join(60)
    outcome["hung"] += sum(thread.is_alive() for thread in threads)
    outcome["values"].append(values)
channel.send(outcome)
"""


def package_tree(tmp_path, count=PACKAGES):
    files = {}
    for index in range(count):
        for relative, text in PACKAGE_FILES.items():
            files["pkg%d/%s" % (index, relative)] = text
    return write_tree(tmp_path / "threads-master", files)


def rounds(count=PACKAGES):
    """One round per package, so each round is cold for its package."""
    return [[("pkg%d.%s" % (index, part)).rstrip(".") for part in MIX] for index in range(count)]


def expected(count=PACKAGES):
    return [["pkg%d" % index] * len(MIX) for index in range(count)]


def run_rounds(slave_python, slave_cwd, served, cache_root):
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(slave_python, slave_cwd))
        bridge.install(gw, path=[served], cache_root=cache_root)
        return remote_value(gw, THREADED_IMPORTS.replace("rounds = channel.receive()",
                                                         "rounds = %r" % (rounds(),)), 300)
    finally:
        group.terminate(timeout=10)


def test_threads_importing_a_package_and_its_submodules_cold_then_warm(
        slave_python, slave_cwd, tmp_path, cache_root):
    served = package_tree(tmp_path)
    for state in ("cold", "warm"):  # the second slave finds every blob in the cache
        outcome = run_rounds(slave_python, slave_cwd, served, cache_root)
        assert outcome["errors"] == [], state
        assert outcome["hung"] == 0, state
        assert outcome["values"] == expected(), state
