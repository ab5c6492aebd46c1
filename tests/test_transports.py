"""The core works over real socket and ssh gateways, not only popen.

ssh: an sshd of our own on a free loopback port, with keys made here
(Debian's openssh-server, which ci/ installs). socket: execnet's
socketserver.py run by a bare slave interpreter as its own process, on a free
loopback port (execnet's pure-Python package on its path for the server only;
``socket//installvia`` cannot start 2.7: execnet 1.9 sends the script as
unicode with an encoding line, which 2.7's compile refuses).
"""
import getpass
import os
import shutil
import socket
import subprocess

import execnet
import pytest

import bridge
from conftest import remote_value, wait_until
from trees import shop_tree

SSHD = "/usr/sbin/sshd"
CORE = """
import os, traceback
import shop.cart
from shop.cart import items
try:
    items.fail()
except ValueError:
    lines = traceback.format_exc()
here = os.path.dirname(shop.__file__)
with open(os.path.join(here, "templates", "receipt.txt")) as stream:
    receipt = stream.read()
try:
    import no_such_module
    missing = None
except ImportError as error:
    missing = type(error).__name__
channel.send([shop.cart.total(8), "raise ValueError(detail)" in lines, receipt, missing])
"""


def free_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not os.access(SSHD, os.X_OK):
        pytest.skip("no %s (Debian's openssh-server; ci/ installs it)" % SSHD)
    folder = str(tmp_path_factory.mktemp("sshd"))
    for name in ("host", "client"):
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                               os.path.join(folder, name)])
    with open(os.path.join(folder, "client.pub")) as source:
        with open(os.path.join(folder, "authorized_keys"), "w") as target:
            target.write(source.read())
    port = free_port()
    config = os.path.join(folder, "sshd_config")
    with open(config, "w") as stream:
        stream.write("\n".join([
            "Port %d" % port, "ListenAddress 127.0.0.1",
            "HostKey %s" % os.path.join(folder, "host"),
            "AuthorizedKeysFile %s" % os.path.join(folder, "authorized_keys"),
            "PidFile %s" % os.path.join(folder, "sshd.pid"),
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "PermitRootLogin prohibit-password", "PubkeyAuthentication yes", ""]))
    if not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd")  # sshd's privilege separation folder
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", config])
    try:
        assert wait_until(lambda: listening(port), timeout=15), "sshd did not start"
        yield ("-p %d -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o BatchMode=yes -o LogLevel=ERROR %s@127.0.0.1"
               % (port, os.path.join(folder, "client"), getpass.getuser()))
    finally:
        server.terminate()
        server.wait()


SOCKET_SERVER = """
import runpy, sys
sys.path.insert(0, %r)
sys.argv = ["socketserver", "127.0.0.1:%d"]
runpy.run_path(%r, run_name="__main__")
"""


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except socket.error:
        return False


@pytest.fixture
def socket_server(slave_python, slave_cwd, tmp_path):
    """A bare slave interpreter serving execnet gateways on a loopback port.

    It gets a copy of the execnet package alone: the master's whole site-packages
    could shadow its stdlib (a 2.7 master's has the enum34 backport).
    """
    package = str(tmp_path / "server-path" / "execnet")
    shutil.copytree(os.path.dirname(os.path.abspath(execnet.__file__)), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    port = free_port()
    server = subprocess.Popen([slave_python, "-E", "-S", "-c", SOCKET_SERVER % (
        os.path.dirname(package), port, os.path.join(package, "script", "socketserver.py"))],
        cwd=slave_cwd)
    try:
        assert wait_until(lambda: listening(port), timeout=15), "socketserver did not start"
        yield "socket=127.0.0.1:%d" % port
    finally:
        server.kill()
        server.wait()


@pytest.fixture(params=["socket", "ssh"])
def remote_gateway(request, slave_python, slave_cwd):
    if request.param == "ssh":
        spec = "ssh=%s//python=%s -E -S//chdir=%s" % (request.getfixturevalue("sshd"),
                                                      slave_python, slave_cwd)
    else:
        spec = request.getfixturevalue("socket_server")
    group = execnet.Group()
    try:
        yield group.makegateway(spec)
    finally:
        group.terminate(timeout=10)


def test_core_imports_over_socket_and_ssh_gateways(remote_gateway, tmp_path, cache_root):
    handle = bridge.install(remote_gateway, path=[shop_tree(tmp_path)], cache_root=cache_root)
    total, traceback_has_line, receipt, missing = remote_value(remote_gateway, CORE)
    assert total == 10.0 and traceback_has_line and receipt == "Total: {total}\n"
    assert missing in ("ModuleNotFoundError", "ImportError")
    assert handle.stats.modules >= 1
