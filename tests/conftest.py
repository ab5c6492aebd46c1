"""Real interpreters, real gateways: the fixtures every test builds on.

The slave matrix is every Python the project supports. Each is looked up in
``$BRIDGE_TEST_PYTHONS`` (``label=path`` pairs separated by os.pathsep), the
pyenv versions folder, then PATH. A missing one is skipped with the reason;
so is one this execnet cannot start (execnet 2.x cannot start 2.7 or 3.6).
Slaves are bare: ``-E -S``, so nothing but their standard library is on
their path, started in an empty folder.
"""
import errno
import glob
import os
import platform
import subprocess
import sys
import textwrap
import threading
import time

import execnet
import pytest

# 3.14t (free-threaded) joins the slave matrix where it is found (GitHub builds it); where it
# is missing (this project's own machine: Debian has no package of it), each test of it would
# only be skipped, so test_standalone says once, with the reason, that it did not run.
NEWEST = ("3.14t",)
ALL_SLAVES = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14",
              "3.14t", "3.15", "pypy3"]


def chosen_slaves(labels=ALL_SLAVES):
    """The slave matrix: all of it, or the labels $BRIDGE_TEST_SLAVES names (comma-separated;
    "own" is the master's own version). tox.ini runs every slave under the main master and
    a few under each other master: the full master x slave product took an hour here."""
    wanted = os.environ.get("BRIDGE_TEST_SLAVES")
    if not wanted:
        return list(labels)
    own = "pypy3" if platform.python_implementation() == "PyPy" else "%d.%d" % sys.version_info[:2]
    names = set(own if name.strip() == "own" else name.strip() for name in wanted.split(","))
    return [label for label in labels if label in names]


FREE_THREADED = "t"  # a label's suffix for a free-threaded build: 3.14t
EXECNET_VERSION = tuple(int(part) for part in execnet.__version__.split(".")[:2])
# The oldest slave each execnet can start: its bootstrap is sent as source.
OLDEST_SLAVE = (3, 8) if EXECNET_VERSION >= (2, 1) else (3, 7) if EXECNET_VERSION >= (2, 0) \
    else (2, 7)
HERE = os.path.dirname(os.path.abspath(__file__))

_found = {}


def _pyenv_root():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return root if os.path.isdir(root) else None


def label_version(label):
    """(3, 14) for "3.14" and "3.14t"; None for pypy3."""
    if label == "pypy3":
        return None
    return tuple(int(part) for part in label.rstrip(FREE_THREADED).split("."))


def _candidates(label):
    explicit = dict(item.split("=", 1) for item in
                    os.environ.get("BRIDGE_TEST_PYTHONS", "").split(os.pathsep) if "=" in item)
    if label in explicit:
        return [explicit[label]]
    found = []
    root = _pyenv_root()
    if root and label != "pypy3":  # pyenv names a free-threaded build 3.14.0t
        base, free = label.rstrip(FREE_THREADED), label.endswith(FREE_THREADED)
        found += sorted(path for path in glob.glob(os.path.join(
            root, "versions", base + ".*", "bin", "python"))
            if path.split(os.sep)[-3].endswith(FREE_THREADED) == free)
    names = ["pypy3"] if label == "pypy3" else ["python" + label]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found += [os.path.join(folder, name) for name in names]
    return [path for path in found if os.path.isfile(path) and os.access(path, os.X_OK)]


def _version_of(executable):
    code = "import sys, platform, sysconfig; print('%d.%d%s %s' % (sys.version_info[:2] + " \
           "('t' if sysconfig.get_config_var('Py_GIL_DISABLED') else '', " \
           "platform.python_implementation())))"
    try:
        out = subprocess.check_output([executable, "-E", "-S", "-c", code])
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode("ascii").split()


def find_python(label):
    """The executable for matrix ``label``, or (None, reason)."""
    if label not in _found:
        result = (None, "no Python %s found (BRIDGE_TEST_PYTHONS, pyenv, PATH)" % label)
        for path in _candidates(label):
            version = _version_of(path)
            wanted_impl = "PyPy" if label == "pypy3" else "CPython"
            if version and version[1] == wanted_impl and (
                    label == "pypy3" or version[0] == label):
                result = (path, None)
                break
        _found[label] = result
    return _found[label]


MATRIX = [label for label in chosen_slaves()
          if label not in NEWEST or find_python(label)[0] is not None]


def execnet_cannot_start(label):
    if label != "pypy3" and label_version(label) < OLDEST_SLAVE:
        return "execnet %s cannot start Python %s slaves (execnet 1.9.0 can)" % (
            execnet.__version__, label)
    return None


def slave_spec(executable, chdir):
    return "popen//python=%s -E -S//chdir=%s" % (executable, chdir)


def pytest_report_header(config):
    lines = ["execnet %s, master Python %s" % (execnet.__version__, sys.version.split()[0])]
    if MATRIX != ALL_SLAVES:
        lines.append("slaves limited by BRIDGE_TEST_SLAVES=%s to %s" % (
            os.environ.get("BRIDGE_TEST_SLAVES"), ", ".join(MATRIX)))
    for label in MATRIX:
        path, reason = find_python(label)
        lines.append("slave %-6s %s" % (label, path or "SKIPPED: " + reason))
    return lines


@pytest.fixture(params=MATRIX, ids=["py" + label.replace(".", "") for label in MATRIX])
def slave_label(request):
    return request.param


def python_of(label):
    """The interpreter of ``label``, or the test skips with the reason it cannot run."""
    path, reason = find_python(label)
    if path is None:
        pytest.skip(reason)
    reason = execnet_cannot_start(label)
    if reason:
        pytest.skip(reason)
    return path


@pytest.fixture
def slave_python(slave_label):
    return python_of(slave_label)


@pytest.fixture
def slave_cwd(tmp_path):
    folder = tmp_path / "slave-cwd"
    folder.mkdir()
    return str(folder)


@pytest.fixture
def gateway(slave_python, slave_cwd):
    group = execnet.Group()
    gw = group.makegateway(slave_spec(slave_python, slave_cwd))
    yield gw
    group.terminate(timeout=10)


@pytest.fixture
def cache_root(tmp_path):
    return str(tmp_path / "slave-cache")


def remote(gw, source, timeout=60):
    """Run ``source`` on the slave; return everything it sent, in order.

    The source is dedented; a remote exception fails the test with the
    slave's traceback.
    """
    channel = gw.remote_exec(textwrap.dedent(source))
    results = []
    while True:
        try:
            results.append(channel.receive(timeout))
        except EOFError:
            return results


def remote_value(gw, source, timeout=60):
    results = remote(gw, source, timeout)
    assert len(results) == 1, results
    return results[0]


def relay_python():
    """The interpreter that runs benchmarks/relay.py: this master's where it is 3.x; under a
    2.7 master a 3.x one, since 2.7's threads add about 10 ms to some chunks' delay, which
    a link measurement then reads as a shorter payload time (bandwidth 10-100x too high)."""
    if sys.version_info[0] >= 3:
        return sys.executable
    for label in reversed(ALL_SLAVES):
        if label != "pypy3" and label_version(label) >= (3,) and find_python(label)[0]:
            return find_python(label)[0]
    pytest.skip("no Python 3 to run benchmarks/relay.py")


IMPORTED_OR_WHY = """
try:
    import {module}
    channel.send("imported")
except Exception as error:
    channel.send([type(error).__name__, str(error)])
"""


def imported_or_why(gw, module):
    """Import ``module`` on the slave: "imported", or [the error's type name, its message]."""
    return remote_value(gw, IMPORTED_OR_WHY.format(module=module))


def write_tree(base, files):
    """Write ``{relative path: text}`` under ``base``; return ``base`` as text."""
    base = str(base)
    for relative, text in files.items():
        path = os.path.join(base, *relative.split("/"))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w") as stream:
            stream.write(textwrap.dedent(text))
    return base


def served_folders(handle):
    """The folders that hold what an install's session was sent: the trees it uses (named
    in its folder's ``.uses``) and its own folder (the served metadata)."""
    cache_root = os.path.dirname(handle.cache_dir)
    try:
        used = os.listdir(os.path.join(handle.cache_dir, ".uses"))
    except OSError:
        used = []
    return [os.path.join(cache_root, "trees", tree) for tree in sorted(used)] + [
        handle.cache_dir]


def served_path(handle, relative):
    """Where the session of ``handle`` holds the root-relative ``relative``, or None."""
    for folder in served_folders(handle):
        path = os.path.join(folder, *relative.split("/"))
        if os.path.exists(path):
            return path
    return None


def served_files(handle):
    """Every file name the session was sent (in its trees and its own folder)."""
    return [name for folder in served_folders(handle) for _, _, files in os.walk(folder)
            for name in files]


def wait_until(condition, timeout=15.0):
    """Poll ``condition`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno != errno.ESRCH
    try:  # a zombie child of ours still answers kill(0): reap it
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except OSError:
        return True


def stall_master_then_collect(channel, seconds, timeout=30):
    """The slave's first message on ``channel`` blocks the master's receiver thread for
    that gateway ``seconds`` long (as a busy master would); return its second message,
    which must come within ``timeout`` seconds.

    The slave code waits for "go", sends once, then does what is measured and sends
    its result.
    """
    received, done = [], threading.Event()

    def stall_then_collect(message):
        received.append(message)
        if len(received) == 1:
            time.sleep(seconds)
        else:
            done.set()

    channel.setcallback(stall_then_collect)
    channel.send("go")
    assert done.wait(timeout), "no result from the slave within %s s" % timeout
    return received[1]


def base_python():
    """The interpreter behind this (virtual) environment, which runs bare with ``-E -S``:
    a 2.7 virtualenv's own python cannot find its standard library without its site.py."""
    real = getattr(sys, "real_prefix", None)
    if real:
        return os.path.join(real, "bin", "python%d.%d" % sys.version_info[:2])
    return getattr(sys, "_base_executable", None) or sys.executable


def run_bounded(args, cwd, timeout=120, stderr=subprocess.PIPE):
    """Run a command to its end, as a test's own child; return (code, stdout, stderr) as text.

    The command and everything it starts (its slaves hold our pipes too) run in a
    session of their own. If they are not done within ``timeout`` they get SIGABRT
    (with faulthandler on, a Python 3 master prints every thread's stack), then
    SIGKILL; the test fails with what they printed, and nothing is left running.
    """
    environment = dict(os.environ, PYTHONFAULTHANDLER="1")
    process = subprocess.Popen(args, cwd=str(cwd), env=environment, stdout=subprocess.PIPE,
                               stderr=stderr, preexec_fn=os.setsid)
    expired = threading.Event()

    def stop():
        expired.set()
        for signal_number, pause in ((6, 2.0), (9, 0)):  # SIGABRT, then SIGKILL
            try:
                os.killpg(process.pid, signal_number)
            except OSError:
                return
            time.sleep(pause)

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        out, err = process.communicate()
    finally:
        timer.cancel()
    out, err = (stream.decode("utf-8", "replace") if stream is not None else ""
                for stream in (out, err))
    if expired.is_set():
        pytest.fail("%s still running after %ss; it printed:\n%s\n%s"
                    % (" ".join(args), timeout, out, err))
    return process.returncode, out, err
