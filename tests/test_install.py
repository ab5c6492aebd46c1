"""install(), its handle, uninstall(), groups: the hook's life cycle."""
import os
import re
import signal
import sys
import time

import execnet
import pytest

import bridge
from bridge._facts import Facts
from bridge.compat import protocol
from conftest import (FREE_THREADED, execnet_cannot_start, find_python, label_version, pid_alive,
                      remote_value, slave_spec, wait_until)
from trees import shop_tree

SNAPSHOT = """
import sys
channel.send([[type(finder).__module__ + "." + type(finder).__name__
               for finder in sys.meta_path],
              sorted(name for name in sys.modules if name.startswith("_execnet_bridge"))])
"""


def test_install_is_idempotent_per_gateway(gateway, tmp_path, cache_root):
    first = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    second = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert first is second and first.installed
    finders = remote_value(gateway, SNAPSHOT)[0]
    # One install's two: the importer, and the watcher that readies pkg_resources.
    assert len([name for name in finders if name.startswith("_execnet_bridge")]) == 2


def test_handle_knows_its_slave(gateway, slave_label, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    version = handle.slave["version"]
    if slave_label == "pypy3":
        assert handle.slave["implementation"] == "pypy" and version[0] == 3
    else:
        assert tuple(version[:2]) == label_version(slave_label)
        assert handle.slave["implementation"] == "cpython"
        assert handle.slave["free_threaded"] == slave_label.endswith(FREE_THREADED)
    assert handle.cache_dir.startswith(cache_root)
    # every fact it sends is one the protocol names, read by name on the master
    assert sorted(handle.slave) == sorted(protocol.FACT_NAMES)
    facts = Facts.of(handle.slave)
    assert facts.python == tuple(version) and facts.abi == handle.slave["abi"]
    with pytest.raises(AttributeError, match="no fact named 'libc_verison'"):
        facts.libc_verison


def test_uninstall_leaves_the_import_system_as_it_was(gateway, tmp_path, cache_root):
    before = remote_value(gateway, SNAPSHOT)
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gateway, "import shop; channel.send(shop.NAME)") == "shop"
    assert handle.uninstall() is True
    assert not handle.installed
    assert remote_value(gateway, SNAPSHOT) == before
    assert remote_value(gateway, """
        import shop  # already imported: stays usable
        try:
            import shop.cart
        except ImportError as error:
            channel.send(str(error))
    """).startswith("No module named")
    assert handle.uninstall() is False
    again = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert again is not handle
    assert remote_value(gateway, "import shop.cart; channel.send(shop.cart.total(4))") == 5.0


def test_cache_folder_is_removed_when_the_slave_exits(slave_python, slave_cwd, tmp_path,
                                                      cache_root):
    gw = execnet.makegateway(slave_spec(slave_python, slave_cwd))
    handle = bridge.install(gw, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert remote_value(gw, "import shop.cart; channel.send(1)") == 1
    used = os.listdir(os.path.join(handle.cache_dir, ".uses"))  # the trees it uses
    assert any(os.path.isfile(os.path.join(cache_root, "trees", tree, "shop", "cart",
                                           "items.py")) for tree in used)
    gw.exit()
    assert wait_until(lambda: not os.path.exists(handle.cache_dir))


def test_a_killed_slaves_cache_folder_is_removed_by_the_next_install(
        slave_python, slave_cwd, tmp_path, cache_root):
    first = execnet.makegateway(slave_spec(slave_python, slave_cwd))
    handle = bridge.install(first, path=[shop_tree(tmp_path)], cache_root=cache_root)
    pid = remote_value(first, "import os, shop; channel.send(os.getpid())")
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid))
    assert os.path.isdir(handle.cache_dir)
    second = execnet.makegateway(slave_spec(slave_python, slave_cwd))
    try:
        bridge.install(second, path=[shop_tree(tmp_path)], cache_root=cache_root)
        assert not os.path.exists(handle.cache_dir)
    finally:
        second.exit()


def test_install_on_a_group_serves_every_member(tmp_path, cache_root):
    labels = [label for label in ("2.7", "3.8", "3.13") if find_python(label)[0]
              and not execnet_cannot_start(label)]
    labels = labels[:1] + labels[-1:]  # a mixed fleet: the oldest and the newest
    if len(set(labels)) < 2:
        pytest.skip("needs two of Python 2.7, 3.8, 3.13 that this execnet can start")
    group = execnet.Group()
    try:
        for label in labels:
            group.makegateway(slave_spec(find_python(label)[0], str(tmp_path)))
        handle = bridge.install(group, path=[shop_tree(tmp_path)], cache_root=cache_root)
        assert len(handle.bridges) == len(labels)
        channels = group.remote_exec("import shop; channel.send(shop.total(100))")
        assert channels.receive_each() == [125.0] * len(labels)
        assert handle.uninstall() == [True] * len(labels)
    finally:
        group.terminate(timeout=10)


def test_stats_read_and_print_and_progress_is_reported(gateway, tmp_path, cache_root):
    from trees import big_tree
    seen = []
    handle = bridge.install(gateway, path=[big_tree(tmp_path, megabytes=2), shop_tree(tmp_path)],
                            cache_root=cache_root,
                            progress=lambda *report: seen.append(report))
    assert remote_value(gateway, "import big, shop; channel.send(1)") == 1
    assert [(gw, name) for gw, name, _, _ in seen] == [(gateway.id, "big"), (gateway.id, "shop")]
    assert seen[0][2] >= 2 * 1024 * 1024 and seen[1][3] == handle.stats.bytes_sent
    text = str(handle.stats)
    assert text.startswith("2 requests, 2 modules + 2 prefetched") and "MB sent" in text
    assert handle.stats.as_dict()["requests"] == 2


def test_the_slave_waits_for_the_handshake_as_long_as_install_timeout_says(gateway):
    """The master goes silent after HELLO; the slave gives up after the configured 1 s."""
    from bridge._install import _open_channel, _slave_source, slave_sources
    from bridge.compat import protocol
    channel = _open_channel(gateway, _slave_source("bootstrap"))
    channel.send(protocol.bootstrap_frame(slave_sources()))
    channel.send(protocol.message(protocol.CONFIG, protocol=protocol.PROTOCOL_VERSION,
                                  options={u"timeout": 1.0}))
    assert protocol.kind_of(channel.receive(30)) == protocol.HELLO
    started = time.time()
    with pytest.raises(channel.RemoteError) as raised:
        channel.waitclose(30)
    assert "no 'ready' from the master within 1.0 s" in str(raised.value)
    assert 0.5 <= time.time() - started < 10  # its 1 s began before HELLO reached us


def test_a_protocol_mismatch_through_install_is_a_handshake_error(gateway, monkeypatch,
                                                                  tmp_path, cache_root):
    """The slave runs sources of another protocol version than the master's."""
    from bridge import _install
    from bridge.compat import protocol
    own = _install._slave_source

    def other_protocol(name):
        source = own(name)
        if name == "protocol":
            source = re.sub(r"(?m)^PROTOCOL_VERSION = \d+", "PROTOCOL_VERSION = 999", source)
        return source

    monkeypatch.setattr(_install, "_slave_source", other_protocol)
    with pytest.raises(bridge.HandshakeError) as raised:
        bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    assert "protocol mismatch: master %d, slave 999" % protocol.PROTOCOL_VERSION \
        in str(raised.value)
    assert gateway.id in str(raised.value)


def test_a_python_that_cannot_be_run_is_a_bridge_error(gateway, tmp_path):
    missing = str(tmp_path / "no-such-python")
    with pytest.raises(bridge.BridgeError) as raised:
        bridge.install(gateway, python=missing)
    assert "cannot run python=%r" % missing in str(raised.value)
    assert "No such file" in str(raised.value)


def test_a_python_that_fails_or_talks_nonsense_is_a_bridge_error(gateway, tmp_path):
    failing, chatty = str(tmp_path / "failing-python"), str(tmp_path / "chatty-python")
    for path, body in ((failing, "echo 'Fatal: no stdlib' >&2\nexit 3\n"),
                       (chatty, "echo 'Python 4.0, hello'\n")):
        with open(path, "w") as stream:
            stream.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
    with pytest.raises(bridge.BridgeError) as raised:
        bridge.install(gateway, python=failing)
    assert "exited with status 3" in str(raised.value)
    assert "Fatal: no stdlib" in str(raised.value)
    with pytest.raises(bridge.BridgeError) as raised:
        bridge.install(gateway, python=chatty)
    assert "did not report its environment" in str(raised.value)
    assert "Python 4.0, hello" in str(raised.value)


@pytest.mark.parametrize("choices", [("path", "python"), ("path", "wheelhouse"),
                                     ("python", "wheelhouse")])
def test_two_sources_of_modules_at_once_are_a_bridge_error(gateway, tmp_path, choices):
    given = dict((choice, {"path": [str(tmp_path)], "python": sys.executable,
                           "wheelhouse": str(tmp_path)}[choice]) for choice in choices)
    with pytest.raises(bridge.BridgeError) as raised:
        bridge.install(gateway, **given)
    assert "one of path=, python= and wheelhouse=" in str(raised.value)
    assert not isinstance(raised.value, bridge.HandshakeError)
    assert remote_value(gateway, SNAPSHOT)[1] == []  # nothing was sent to the slave
