"""No hang, ever: when the master cannot answer, imports fail fast and say why."""
import os
import signal
import subprocess
import sys
import time

import execnet
import pytest

import bridge
from conftest import (pid_alive, remote_value, slave_spec, stall_master_then_collect,
                      wait_until)
from trees import big_tree, shop_tree


def test_import_after_the_master_closed_the_channel_fails_fast(gateway, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    handle.close()  # what a master that stops serving looks like to the slave
    started = time.time()
    error = remote_value(gateway, """
        try:
            import shop
        except ImportError as error:
            channel.send(str(error))
    """)
    assert time.time() - started < 10
    assert "execnet-bridge cannot import 'shop'" in error
    assert "closed" in error


def test_a_reply_that_never_comes_times_out(gateway, tmp_path, cache_root):
    """The master's receiver for this gateway is stalled for 2.5 s; the slave waits 1 s."""
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root, timeout=1.0)
    channel = gateway.remote_exec("""
        import time
        channel.receive()
        channel.send("this message stalls the master's receiver thread")
        started = time.time()
        try:
            import shop
        except ImportError as error:
            channel.send([str(error), time.time() - started])
    """)
    error, waited = stall_master_then_collect(channel, 2.5)
    assert "no reply from the master within 1.0 s" in error
    assert 1.0 <= waited < 2.5


def test_a_slave_killed_mid_transfer_disturbs_neither_master_nor_others(
        slave_python, slave_cwd, tmp_path, cache_root):
    group = execnet.Group()
    try:
        victim = group.makegateway(slave_spec(slave_python, slave_cwd))
        other = group.makegateway(slave_spec(slave_python, slave_cwd))
        handle = bridge.install(group, path=[big_tree(tmp_path), shop_tree(tmp_path)],
                                cache_root=cache_root)
        pid = remote_value(victim, "import os; channel.send(os.getpid())")
        victim.remote_exec("import big")  # a 30 MB reply is on its way
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(pid))
        assert remote_value(other, "import big, shop; channel.send([big.VALUE, shop.NAME])") \
            == ["big", "shop"]
        assert handle.bridges[1].stats.errors == 0
    finally:
        group.terminate(timeout=10)


# The slave's side of a pending import: a thread imports shop, whose reply the
# master's stalled receiver thread never sends.
PENDING_IMPORT = """
import threading
def importer():
    try:
        import shop
        outcome = "imported"
    except ImportError as error:
        outcome = "ImportError: %s" % error
    with open(outcome_file, "w") as stream:
        stream.write(outcome)
outcome_file = channel.receive()
channel.receive()  # "go": the master's stalling callback is in place
channel.send("stall the master")
thread = threading.Thread(target=importer)
thread.start()
thread.join()
"""

# argv: slave spec, served folder, "idle" or "pending", outcome file. Prints the
# slave's pid once the slave is in that state, then dies without a goodbye:
# os._exit ("exit") or waits to be killed ("wait").
MASTER_THAT_DIES = r"""
import os, sys, time, execnet, bridge
from test_faults import PENDING_IMPORT
spec, served, state, outcome, death = sys.argv[1:6]
gw = execnet.makegateway(spec)
bridge.install(gw, path=[served], timeout=60)
pid = gw.remote_exec("import os; channel.send(os.getpid())").receive(60)
if state == "pending":
    blocker = gw.remote_exec(PENDING_IMPORT)
    blocker.send(outcome)
    blocker.setcallback(lambda message: time.sleep(600))  # shop's reply never leaves
    blocker.send("go")  # only now: a message queued before setcallback would stall us
    time.sleep(1.5)  # the import is waiting
sys.stdout.write("%d\n" % pid)
sys.stdout.flush()
if death == "exit":
    os._exit(0)
time.sleep(600)
"""


def process_gone(pid):
    """Has ``pid`` exited? An orphan's zombie counts as gone (its parent may not reap)."""
    try:
        with open("/proc/%d/stat" % pid) as stream:
            return stream.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except IOError:
        return True


def kill_if_alive(pid):
    if pid and not process_gone(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def read_text(path):
    if not os.path.exists(path):
        return ""
    with open(path) as stream:
        return stream.read()


def dying_master(tmp_path, slave_python, slave_cwd, state, death):
    """Start the master of MASTER_THAT_DIES; it prints its slave's pid."""
    script, outcome = str(tmp_path / "master.py"), str(tmp_path / "outcome.txt")
    with open(script, "w") as stream:
        stream.write(MASTER_THAT_DIES)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.abspath(__file__))] + sys.path))
    master = subprocess.Popen([sys.executable, script, slave_spec(slave_python, slave_cwd),
                               shop_tree(tmp_path), state, outcome, death],
                              stdout=subprocess.PIPE, env=environment)
    return master


def stop(master, slave):
    """Leave nothing running, whatever the test found."""
    if master is not None:
        if master.poll() is None:
            master.kill()
            master.wait()
        master.stdout.close()
    kill_if_alive(slave)


def test_the_master_dying_fails_a_pending_import_quickly(slave_python, slave_cwd, tmp_path):
    started, master, slave = time.time(), None, None
    try:
        master = dying_master(tmp_path, slave_python, slave_cwd, "pending", "exit")
        slave = int(master.stdout.readline() or 0)
        assert wait_until(lambda: master.poll() is not None, timeout=30)
        assert master.returncode == 0 and slave
        outcome = str(tmp_path / "outcome.txt")
        assert wait_until(lambda: read_text(outcome), timeout=20)
        text = read_text(outcome)
        assert text.startswith("ImportError: execnet-bridge cannot import 'shop'"), text
        assert "closed" in text
        assert time.time() - started < 20  # the slave's timeout is 60 s: this was not it
        assert wait_until(lambda: process_gone(slave), timeout=10)
    finally:
        stop(master, slave)


@pytest.mark.parametrize("state", ["idle", "pending"])
def test_a_slave_exits_soon_after_its_master_is_killed(slave_python, slave_cwd, tmp_path, state):
    """As a plain execnet slave does: nothing of the bridge keeps it alive."""
    master, slave = None, None
    try:
        master = dying_master(tmp_path, slave_python, slave_cwd, state, "wait")
        slave = int(master.stdout.readline() or 0)
        assert slave and not process_gone(slave)
        master.kill()
        master.wait()
        killed = time.time()
        assert wait_until(lambda: process_gone(slave), timeout=15)
        assert time.time() - killed < 8
    finally:
        stop(master, slave)


def test_garbage_on_the_request_channel_gets_error_replies_and_serving_goes_on(
        gateway, tmp_path, cache_root):
    """Malformed requests go over the real channel through the slave's own client (found
    on sys.meta_path, as the import system finds it); non-dicts are test_fuzz's."""
    from bridge.compat import protocol
    kind, name = protocol.KIND, protocol.NAME
    garbage = [{kind: protocol.FIND}, {kind: "bogus"},
               {kind: protocol.FIND, name: "../../etc/passwd"},
               {kind: protocol.FIND, name: "a" * 10000},
               {kind: protocol.DISTRIBUTIONS, name: "../x"},
               {kind: protocol.DISTRIBUTIONS, name: ["six"]},
               {kind: protocol.DISTRIBUTIONS, name: None, protocol.LOST: 5}]
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    replies, total = remote_value(gateway, """
        import sys
        finder = [each for each in sys.meta_path if hasattr(each, "session")][0]
        replies = [finder.session.client.request(garbage).get(%r) for garbage in %r]
        import shop.cart
        channel.send([replies, shop.cart.total(8)])
    """ % (kind, garbage))
    assert replies == [protocol.ERROR] * len(garbage)
    assert total == 10.0
    stats = handle.stats  # shop, shop.prices, shop.tax, shop.cart, shop.cart.items
    assert stats.errors == len(garbage)
    assert stats.modules + stats.prefetched == 5 and stats.modules == 2


def test_a_protocol_mismatch_is_a_clear_handshake_error(gateway):
    from bridge._install import _open_channel, _slave_source, slave_sources
    from bridge.compat import protocol
    channel = _open_channel(gateway, _slave_source("bootstrap"))
    channel.send(protocol.bootstrap_frame(slave_sources()))
    channel.send(protocol.message(protocol.CONFIG, protocol=999, options={}))
    with pytest.raises(channel.RemoteError) as raised:
        channel.receive(30)
    assert "protocol mismatch: master 999, slave %d" % protocol.PROTOCOL_VERSION \
        in str(raised.value)
