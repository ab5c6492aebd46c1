"""No hang, ever: when the master cannot answer, imports fail fast and say why."""
import threading
import time

import bridge
from conftest import remote_value
from trees import shop_tree


def test_import_after_the_master_closed_the_channel_fails_fast(gateway, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    handle._requests.close()  # what a master that stops serving looks like to the slave
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
    received = []
    done = threading.Event()

    def stall_then_collect(message):
        received.append(message)
        if len(received) == 1:
            time.sleep(2.5)
        else:
            done.set()

    channel.setcallback(stall_then_collect)
    channel.send("go")
    assert done.wait(30)
    error, waited = received[1]
    assert "no reply from the master within 1.0 s" in error
    assert 1.0 <= waited < 2.5
