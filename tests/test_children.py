"""Processes a bridged slave starts stay bridged (compat/children.py): multiprocessing's
fork, spawn and forkserver, ProcessPoolExecutor, cold and warm, one handshake per slave,
and a child whose slave is gone fails its import at once, saying why."""
import os
import time

import execnet
import pytest

import bridge
from conftest import find_python, remote_value, slave_spec, write_tree

SERVED = {
    "work/__init__.py": "",
    "work/tasks.py": """
        import os

        def square(x):
            import extra.mathy  # a package the slave itself never imports
            return [os.getpid(), extra.mathy.square(x)]

        class Box(object):
            def __init__(self, value):
                self.value = value

        def unbox(box):
            return [type(box).__module__, box.value]

        def version_of(name):
            from importlib.metadata import version
            return version(name)

        def import_later(path, delay):
            import time
            open(path + ".started", "w").close()
            time.sleep(delay)
            started = time.time()
            try:
                import extra.late
                outcome = "imported"
            except ImportError as error:
                outcome = "ImportError: %s" % (error,)
            with open(path, "w") as stream:
                stream.write("%s\\n%.3f" % (outcome, time.time() - started))
    """,
    "work/tool.py": "import sys, extra.mathy\nprint(extra.mathy.square(int(sys.argv[1])))\n",
    "extra/__init__.py": "",
    "extra/mathy.py": "def square(x):\n    return x * x\n",
    "extra/late.py": "VALUE = 1\n",
    "extra_dist-2.5.dist-info/METADATA": "Metadata-Version: 2.1\nName: extra-dist\nVersion: 2.5\n",
    "extra_dist-2.5.dist-info/RECORD": "extra/__init__.py,,\n",
}

POOL = """
import multiprocessing, os, sys
import work.tasks
method = %r
if hasattr(multiprocessing, "get_context"):
    context = multiprocessing.get_context(method)
else:  # 2.7: fork only
    context = multiprocessing
pool = context.Pool(2)
try:
    results = pool.map(work.tasks.square, range(6))
    boxes = pool.map(work.tasks.unbox, [work.tasks.Box(7)])
finally:
    pool.close()
    pool.join()
channel.send([os.getpid(), results, boxes, "extra.mathy" in sys.modules])
"""

EXECUTOR = """
import os, sys
from concurrent.futures import ProcessPoolExecutor
import work.tasks
with ProcessPoolExecutor(2) as executor:
    results = list(executor.map(work.tasks.square, range(4)))
channel.send([os.getpid(), results, "extra.mathy" in sys.modules])
"""


def assert_each_name_served_once(stats, state):
    """One handshake: the children's imports travel as their slave's, each of work,
    work.tasks, extra and extra.mathy asked for (or prefetched: the master learns what
    follows) once, however many children import it, none again for what the slave has.
    (Requests also count names neither side has: 2.7 and PyPy probe one.)"""
    assert stats["modules"] + stats["prefetched"] == 4, (state, stats)


def methods_of(label):
    """Start methods this slave has: 2.7 forks only; spawn and forkserver from 3.4."""
    return ["fork"] if label == "2.7" else ["fork", "spawn", "forkserver"]


def run_on_a_new_slave(python, cwd, served, cache_root, source, timeout=120):
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(python, cwd))
        handle = bridge.install(gw, path=[served], cache_root=cache_root)
        return remote_value(gw, source, timeout), handle.stats.as_dict()
    finally:
        group.terminate(timeout=10)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_pool_imports_served_modules_cold_then_warm(
        slave_python, slave_label, slave_cwd, tmp_path, cache_root, method):
    if method not in methods_of(slave_label):
        pytest.skip("Python 2.7's multiprocessing only forks")
    served = write_tree(tmp_path / "served", SERVED)
    for state in ("cold", "warm"):
        (parent, results, boxes, parent_has), stats = run_on_a_new_slave(
            slave_python, slave_cwd, served, cache_root, POOL % method)
        assert [square for _, square in results] == [0, 1, 4, 9, 16, 25], state
        assert parent not in set(pid for pid, _ in results), state  # run by the children
        assert boxes == [["work.tasks", 7]], state  # a served class, pickled and back
        assert not parent_has, state  # the children imported what their slave never did
        assert_each_name_served_once(stats, state)


def test_a_process_pool_executor_imports_served_modules(
        slave_python, slave_label, slave_cwd, tmp_path, cache_root):
    if slave_label == "2.7":
        pytest.skip("Python 2.7 has no concurrent.futures")
    served = write_tree(tmp_path / "served", SERVED)
    (parent, results, parent_has), stats = run_on_a_new_slave(
        slave_python, slave_cwd, served, cache_root, EXECUTOR)
    assert [square for _, square in results] == [0, 1, 4, 9]
    assert parent not in set(pid for pid, _ in results) and not parent_has
    assert_each_name_served_once(stats, "cold")


ORPHAN = """
import multiprocessing, os, time
import work.tasks
if hasattr(multiprocessing, "get_context"):
    context = multiprocessing.get_context(%r)
else:
    context = multiprocessing
child = context.Process(target=work.tasks.import_later, args=(%r, 1.5))
child.daemon = False
child.start()
while not os.path.exists(%r + ".started"):  # it imported work.tasks: it runs
    time.sleep(0.05)
channel.send(child.pid)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_whose_slave_is_gone_fails_its_import_at_once(
        slave_python, slave_label, slave_cwd, tmp_path, cache_root, method):
    if method not in methods_of(slave_label):
        pytest.skip("Python 2.7's multiprocessing only forks")
    served = write_tree(tmp_path / "served", SERVED)
    report = str(tmp_path / "report.txt")
    group = execnet.Group()
    gw = group.makegateway(slave_spec(slave_python, slave_cwd))
    bridge.install(gw, path=[served], cache_root=cache_root)
    remote_value(gw, ORPHAN % (method, report, report))
    group.terminate(timeout=10)  # the slave goes; its child sleeps on, then imports
    deadline = time.time() + 30
    while not os.path.exists(report) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    with open(report) as stream:
        outcome, seconds = stream.read().split("\n")
    # The slave goes in two steps: the master's channel first, then the process (after
    # multiprocessing joined its children): either says why.
    assert outcome.startswith("ImportError: execnet-bridge cannot import 'extra"), outcome
    assert ("slave that started this process" in outcome
            or "the master closed the request channel" in outcome), outcome
    assert outcome.count("execnet-bridge cannot import") == 1, outcome
    assert float(seconds) < 1.0


SUBPROCESSES = """
import subprocess, sys

def run(args):
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    return [process.returncode, out.decode("utf-8").strip(),
            (err.decode("utf-8").strip().splitlines() or [""])[-1]]

channel.send([run([sys.executable, "-c", "import extra.mathy; print(extra.mathy.square(7))"]),
              run([sys.executable, "-m", "work.tool", "6"]),
              run([%r, "-c", "import extra.mathy"])])
"""


def another_python(label):
    """An interpreter other than the slave's, which the bridge must leave alone."""
    for other in ("3.13", "3.12", "2.7"):
        path = find_python(other)[0]
        if other != label and path is not None:
            return path
    pytest.skip("no second interpreter")


@pytest.mark.parametrize("opted_in", [True, False], ids=["subprocesses", "default"])
def test_subprocesses_of_the_slaves_own_interpreter_when_opted_in(
        slave_python, slave_label, slave_cwd, tmp_path, cache_root, opted_in):
    served = write_tree(tmp_path / "served", SERVED)
    group = execnet.Group()
    try:
        gw = group.makegateway(slave_spec(slave_python, slave_cwd))
        before = remote_value(gw, "import os; channel.send(os.environ.get('PYTHONPATH'))")
        handle = bridge.install(gw, path=[served], cache_root=cache_root,
                                subprocesses=opted_in)
        own_c, own_m, other = remote_value(gw, SUBPROCESSES % another_python(slave_label))
        after = remote_value(gw, "import os; channel.send(os.environ.get('PYTHONPATH'))")
        handle.uninstall()
        restored = remote_value(gw, "import os; channel.send(os.environ.get('PYTHONPATH'))")
    finally:
        group.terminate(timeout=10)
    if opted_in:
        assert own_c == [0, "49", ""] and own_m == [0, "36", ""], (own_c, own_m)
        assert after.split(os.pathsep)[1:] == ([before] if before else [])
        assert restored == before
    else:
        for failed in (own_c, own_m):
            assert failed[0] != 0 and "No module named" in failed[2], failed
        assert after == before
    assert other[0] != 0 and "No module named" in other[2], other  # left alone


BAD_CHILD = """
import socket, sys
children = sys.modules["_execnet_bridge.children"]
session = sys.modules["_execnet_bridge.hook"].installed_finder().session
address = session.processes.address_to_ask()
out = []
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.settimeout(30)
connection.connect(address)
for request in ({"kind": "find", "id": 1, "name": "../../etc/passwd"},
                {"kind": "run", "id": 2, "name": "extra.mathy"},
                {"kind": "find", "id": 3, "name": "no_such_module_here"},
                {"kind": "find", "id": 4, "name": "extra.mathy"}):
    children.send_frame(connection, request)
    reply = children.receive_frame(connection)
    records = reply.get("modules") or []  # lean: each names the tree that holds its files
    out.append([reply["kind"], reply["id"], bool(records) and all(
        record.get("in_tree") and not record.get("files") for record in records)])
connection.sendall(children.HEADER.pack(children.MAX_FRAME + 1))  # an oversize frame
out.append(connection.recv(10) == b"")  # the slave closes that connection
again = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
again.settimeout(30)
again.connect(address)  # and serves the next as before
children.send_frame(again, {"kind": "find", "id": 5, "name": "extra"})
out.append(children.receive_frame(again)["kind"])
channel.send(out)
"""


def test_the_slave_answers_bad_child_requests_with_reasons_and_drops_bad_frames(
        gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[write_tree(tmp_path / "served", SERVED)],
                   cache_root=cache_root)
    assert remote_value(gateway, BAD_CHILD) == [
        ["error", 1, False], ["error", 2, False], ["missing", 3, False], ["module", 4, True],
        True, "module"]


METADATA = """
import multiprocessing, sys
import work.tasks
pool = multiprocessing.get_context(%r).Pool(2)
try:
    versions = pool.map(work.tasks.version_of, ["extra-dist", "extra-dist"])
finally:
    pool.close()
    pool.join()
channel.send(versions)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_children_read_served_metadata(slave_python, slave_label, slave_cwd, tmp_path,
                                       cache_root, method):
    if slave_label in ("2.7", "3.6", "3.7"):
        pytest.skip("importlib.metadata is new in Python 3.8")
    served = write_tree(tmp_path / "served", SERVED)
    versions, _ = run_on_a_new_slave(slave_python, slave_cwd, served, cache_root,
                                     METADATA % method)
    assert versions == ["2.5", "2.5"]
