"""The pytest-xdist plugin: bare workers get the controller's test dependencies, and
workers that cannot see the project's folder get the project too (bridge/xdist.py)."""
import glob
import os
import re
import stat
import subprocess
import sys
import threading

import pytest

from conftest import base_python, find_python, run_bounded, write_tree
from test_transports import sshd  # noqa: F401 (a session fixture: our own sshd)

INNER = '''
import sys
import pytest
import six


def test_runs_on_a_bare_worker_with_bridged_dependencies():
    assert sys.flags.no_site == 1  # nothing of its own beyond the standard library
    assert six.moves is not None and pytest.__version__
    # served, not read from the controller's sys.path (xdist hands that to popen workers)
    assert "execnet-bridge" in six.__file__ and "execnet-bridge" in pytest.__file__
'''


@pytest.mark.parametrize("project", ["true", "false"])
def test_bare_xdist_workers_import_the_controllers_packages(tmp_path, project):
    pytest.importorskip("xdist")  # tox installs it in every env
    write_tree(tmp_path / "inner", {"test_inner.py": INNER})
    worker = "popen//python=%s -E -S" % base_python()  # bare: no site-packages at all
    code, out, _ = run_bounded(
        [sys.executable, "-m", "pytest", "-p", "bridge.xdist", "--dist", "load", "--tx",
         "2*" + worker, "-q", "-p", "no:cacheprovider", "-o", "bridge_project=" + project,
         "test_inner.py"],
        tmp_path / "inner", stderr=subprocess.STDOUT)
    assert code == 0, out
    assert "1 passed" in out


SERVED_HELPER = """\
import warnings


def fail():
    raise ValueError("raised in a served module")


def warn():
    warnings.warn("warned in a served module")
"""
USES_HELPER = """\
import helper


def test_fails_in_a_served_module():
    helper.fail()


def test_warns_in_a_served_module():
    helper.warn()
"""


@pytest.mark.parametrize("style", ["long", "native"])
def test_frames_and_warnings_of_served_modules_name_the_controllers_files(
        tmp_path, monkeypatch, style):
    """A dependency the worker was served lives in its cache (trees/<id>/...); the report
    names the file it came from on the controller, where an editor can open it."""
    pytest.importorskip("xdist")
    deps = write_tree(tmp_path / "deps", {"helper.py": SERVED_HELPER})
    write_tree(tmp_path / "inner", {"test_helper.py": USES_HELPER})
    monkeypatch.setenv("PYTHONPATH", deps)  # the controller's path; a bare worker's not
    code, out, _ = run_bounded(
        [sys.executable, "-m", "pytest", "-p", "bridge.xdist", "--dist", "load", "--tx",
         "popen//python=%s -E -S" % base_python(), "-p", "no:cacheprovider", "--tb", style,
         "test_helper.py"], tmp_path / "inner", stderr=subprocess.STDOUT)
    assert code == 1 and outcome(out) == {"failed": 1, "passed": 1}, out
    home = os.path.join(deps, "helper.py")
    frame = ('File "%s", line 5, in fail' % home if style == "native" else
             "%s:5: ValueError" % home)
    assert frame in out, out
    assert "%s:9: UserWarning: warned in a served module" % home in out, out
    assert not [line for line in out.splitlines() if "trees" in line], out


# A small project as a user has it: a src/ layout package with package data, an ini file
# with markers, a conftest with a fixture reading a data file beside it, a nested folder
# with a conftest of its own, parametrized tests, a skip, an xfail; a git checkout whose
# ignored files, and a virtual environment, must stay home.
PROJECT = {
    "pytest.ini": """\
        [pytest]
        testpaths = tests
        markers =
            slow: takes a while
            broken: fails on purpose
        """,
    "conftest.py": """\
        import os, sys
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "src"))
        """,
    ".gitignore": "ignored/\n",
    "ignored/secret.txt": "never travels\n",
    ".venv/pyvenv.cfg": "home = /usr\n",
    ".venv/lib/junk.py": "",
    "env/pyvenv.cfg": "home = /usr\n",  # a virtual environment git does not ignore
    "env/lib/junk.py": "",
    "src/calc/__init__.py": """\
        import json, os
        def rates():
            with open(os.path.join(os.path.dirname(__file__), "data", "rates.json")) as f:
                return json.load(f)
        def total(amount, region):
            return round(amount * (1 + rates()[region]), 2)
        """,
    "src/calc/data/rates.json": '{"eu": 0.2, "us": 0.05}\n',
    "tests/conftest.py": """\
        import os
        import pytest
        @pytest.fixture
        def limits():
            with open(os.path.join(os.path.dirname(__file__), "data", "limits.txt")) as f:
                return [int(line) for line in f]
        """,
    "tests/data/limits.txt": "10\n20\n",
    "tests/test_calc.py": """\
        import os
        import sys
        import pytest
        import calc

        @pytest.mark.parametrize("amount,region,expected", [
            (10, "eu", 12.0), (100, "us", 105.0), (0, "eu", 0)])
        def test_total(amount, region, expected):
            assert calc.total(amount, region) == expected

        def test_limits_from_the_conftest(limits):
            assert limits == [10, 20]

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            assert False

        @pytest.mark.xfail(reason="rounding", strict=True)
        def test_xfail():
            assert calc.total(1, "eu") == 1.3

        @pytest.mark.slow
        def test_marked(request):
            root = str(request.config.rootdir)
            assert os.path.exists(os.path.join(root, "tests", "data", "limits.txt"))
            if os.environ.get("PYTEST_XDIST_WORKER"):  # what stays home
                assert not os.path.exists(os.path.join(root, "ignored", "secret.txt"))
                assert not os.path.exists(os.path.join(root, ".venv"))
                assert not os.path.exists(os.path.join(root, "env"))

        @pytest.mark.broken
        def test_broken():
            total = calc.total(10, "eu")
            assert total == 99
        """,
    "tests/sub/conftest.py": """\
        import pytest
        @pytest.fixture
        def unit():
            return "EUR"
        """,
    "tests/sub/test_units.py": """\
        def test_unit(unit, limits):
            assert unit == "EUR" and limits[0] == 10
        """,
}
SUMMARY = re.compile(r"(\d+ (passed|failed|skipped|xfailed|deselected|errors?))")

# A worker on this host that cannot see the project: a private mount namespace with an
# empty file system over the project's folder, then a bare Python working in it. Its
# cache root (under TMPDIR) is the test's own.
HIDING_WORKER = """#!/bin/sh
export TMPDIR=%(cache)s
exec unshare -m sh -c 'mount -t tmpfs none "$0" && cd "$0" && exec "$@"' \\
    %(project)s %(python)s -E -S "$@"
"""


def outcome(output):
    """{"passed": 7, ...} of pytest's summary line (xdist's controller does not count
    the deselected)."""
    return dict((word, int(count.split()[0])) for count, word in SUMMARY.findall(output)
                if word != "deselected")


@pytest.fixture
def project(tmp_path):
    folder = write_tree(tmp_path / "proj", PROJECT)
    if subprocess.call(["git", "init", "-q", folder]) != 0:
        pytest.skip("git cannot make a checkout here")
    return folder


def hiding_worker(tmp_path, project, python):
    """The executable of a worker that sees an empty folder where ``project`` is."""
    if os.geteuid() != 0:
        pytest.skip("a private mount namespace (unshare -m) needs root here")
    if not os.path.isdir(str(tmp_path)):
        os.makedirs(str(tmp_path))
    path = str(tmp_path / "worker.sh")
    cache = str(tmp_path / "worker-tmp")
    os.mkdir(cache)
    with open(path, "w") as stream:
        stream.write(HIDING_WORKER % dict(cache=cache, project=project, python=python))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    probe = subprocess.call([path, "-c", "import os, sys; sys.exit(len(os.listdir('.')))"])
    assert probe == 0, "the worker still sees the project's files"
    return path, cache


def skip_without_invocation_params():
    from _pytest.config import Config
    if not hasattr(Config, "InvocationParams"):  # pytest < 5.1 (the 2.7 master's 4.6)
        pytest.skip("this pytest (%s) has no invocation_params: the arguments workers get "
                    "cannot be made relative to the folder they work in" % pytest.__version__)


def run_pytest(project, *args):
    return run_bounded([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                        "-p", "no:randomly"] + list(args), project, timeout=300,
                       stderr=subprocess.STDOUT)


def remote_spec(transport, worker, request):
    if transport == "popen":
        return "popen//python=%s" % worker
    return "ssh=%s//python=%s" % (request.getfixturevalue("sshd"), worker)


@pytest.mark.parametrize("transport", ["popen", "ssh"])
def test_workers_that_cannot_see_the_project_run_its_suite(transport, project, tmp_path,
                                                           request):
    pytest.importorskip("xdist")
    skip_without_invocation_params()
    worker, cache = hiding_worker(tmp_path, project, base_python())
    spec = remote_spec(transport, worker, request)
    code, local, _ = run_pytest(project, "-m", "not broken")
    assert code == 0 and outcome(local) == {"passed": 6, "skipped": 1, "xfailed": 1}, local
    remote_args = ["-p", "bridge.xdist", "--dist", "load", "--tx", "2*" + spec]
    code, out, _ = run_pytest(project, *(remote_args + ["-m", "not broken"]))
    assert code == 0 and outcome(out) == outcome(local), out

    # An edit between two runs is seen by the next; only its bytes move again.
    blobs = set(glob.glob(os.path.join(cache, "execnet-bridge-*", "blobs", "*")))
    with open(os.path.join(project, "tests", "sub", "test_units.py"), "a") as stream:
        stream.write("\n\ndef test_added(unit):\n    assert unit\n")
    code, out, _ = run_pytest(project, *(remote_args + ["-m", "not broken",
                                                        "tests/sub", "-k", "added"]))
    assert code == 0 and outcome(out) == {"passed": 1}, out
    added = set(glob.glob(os.path.join(cache, "execnet-bridge-*", "blobs", "*"))) - blobs
    assert len(added) == 1, sorted(added)

    # A failure is reported with the controller's paths and the test's source lines.
    for style in ("auto", "native"):  # paths relative to the rootdir; absolute ones
        code, out, _ = run_pytest(project, *(remote_args + ["-m", "broken", "--tb", style]))
        assert code == 1 and outcome(out)["failed"] == 1, out
        assert "assert total == 99" in out and "test_calc.py" in out, out
        assert not [line for line in out.splitlines() if "test_calc.py" in line and
                    ("trees" in line or cache in line)], out
    assert os.path.join(project, "tests", "test_calc.py") in out, out
    # So is a warning a test gives (a worker of this Python: xdist 1.x on a 2.7 controller
    # cannot unserialize a 3.x worker's warning, whose category lives in ``builtins``).
    with open(os.path.join(project, "tests", "test_warns.py"), "w") as stream:
        stream.write("import warnings\n\n\ndef test_warns():\n"
                     "    warnings.warn('limits come from a file')\n")
    code, out, _ = run_pytest(project, *(remote_args + ["tests/test_warns.py"]))
    warned = [line for line in out.splitlines() if "limits come from a file" in line]
    assert code == 0 and warned, out
    assert os.path.join(project, "tests", "test_warns.py:") in out, out
    assert not [line for line in out.splitlines() if "trees" in line or cache in line], out


def test_an_argument_naming_a_project_file_by_its_absolute_path(project, tmp_path):
    pytest.importorskip("xdist")
    skip_without_invocation_params()
    worker, _ = hiding_worker(tmp_path, project, base_python())
    target = os.path.join(project, "tests", "test_calc.py") + "::test_total"
    code, out, _ = run_bounded(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "bridge.xdist",
         "--dist", "load", "--tx", "popen//python=%s" % worker, target],
        str(tmp_path), timeout=300, stderr=subprocess.STDOUT)  # run from outside it
    assert code == 0 and outcome(out) == {"passed": 3}, out


def test_a_folder_that_does_not_travel_is_refused_as_a_usage_error(project, tmp_path):
    """Run from a folder git ignores, the workers have no such folder to work in: pytest
    ends with the bridge's reason, not an INTERNALERROR traceback."""
    pytest.importorskip("xdist")
    skip_without_invocation_params()
    worker, _ = hiding_worker(tmp_path, project, base_python())
    code, out, _ = run_bounded(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "bridge.xdist",
         "--dist", "load", "--tx", "popen//python=%s" % worker, "../tests"],
        os.path.join(project, "ignored"), timeout=300, stderr=subprocess.STDOUT)
    assert code == 4, out
    assert "execnet-bridge: worker gw0: cannot place %s" % project in out, out
    assert "INTERNALERROR" not in out and "Traceback" not in out, out


def pytest_pythons():
    """The Requires-Python of this environment's pytest (a SpecifierSet) and the Python
    versions its classifiers name ("3.13"), or (None, None)."""
    try:
        try:
            from importlib.metadata import distribution
        except ImportError:  # 2.7 and 3.6, 3.7: the backport
            from importlib_metadata import distribution
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return None, None
    metadata = distribution("pytest").metadata
    prefix = "Programming Language :: Python :: "
    named = [each[len(prefix):] for each in metadata.get_all("Classifier") or []
             if each.startswith(prefix)]
    text = metadata["Requires-Python"]
    return (SpecifierSet(text) if text else None), named


LABELS = ("3.15", "3.14", "3.13", "3.12", "3.11", "3.10", "3.9", "3.8", "3.7", "3.6", "2.7")


def test_workers_of_two_pythons_each_run_the_suite_and_one_it_cannot_drive_is_named(
        project, tmp_path):
    """``--dist each`` over this Python and another this pytest names as supported, both
    without the project; then a worker whose Python this pytest cannot run on (outside
    its Requires-Python, or, for pytest 4.6 on 2.7, a 3.12+ without ``imp``): the run
    stops before any test, saying why."""
    pytest.importorskip("xdist")
    supported, named = pytest_pythons()
    if supported is None:
        pytest.skip("this pytest (%s) names no Requires-Python to choose Pythons by"
                    % pytest.__version__)
    own = "%d.%d" % sys.version_info[:2]
    others = [label for label in LABELS if label != own and label in named and
              label in supported and find_python(label)[0]]
    if not others:
        pytest.skip("no second Python that pytest %s names as supported (%s) was found"
                    % (pytest.__version__, ", ".join(named)))
    other = find_python(others[0])[0]
    first, _ = hiding_worker(tmp_path / "a", project, base_python())
    second, _ = hiding_worker(tmp_path / "b", project, other)
    code, out, _ = run_pytest(project, "-p", "bridge.xdist", "--dist", "each", "-m",
                              "not broken", "--tx", "popen//python=%s" % first,
                              "--tx", "popen//python=%s" % second)
    assert code == 0 and outcome(out) == {"passed": 12, "skipped": 2, "xfailed": 2}, out
    assert "cannot be rewritten" not in out, out  # no plugin imported before pytest's set-up

    excluded = [label for label in LABELS if label not in supported]
    unrun = [label for label in LABELS if label in ("3.15", "3.14", "3.13", "3.12") and
             label not in named and sys.version_info[0] == 2]
    candidates = [label for label in excluded + unrun if find_python(label)[0]]
    if not candidates:
        pytest.skip("no Python that pytest %s cannot run on was found" % pytest.__version__)
    label = candidates[0]
    third, _ = hiding_worker(tmp_path / "c", project, find_python(label)[0])
    code, out, _ = run_pytest(project, "-p", "bridge.xdist", "--dist", "load",
                              "--tx", "popen//python=%s" % third)
    assert code == 4, out
    assert "cannot drive the worker" in out and "Python " + label in out, out
    if label in excluded:
        assert "requires Python" in out, out
    else:
        assert "No module named 'imp'" in out, out
    assert "passed" not in out and "failed" not in out, out


def test_every_workers_gateway_is_made_and_set_up_before_xdist_asks_for_it(tmp_path):
    """EarlySetUps, on a real group: xdist asks for its gateways one after another, and
    each is made and set up on a thread of its own from the start, so the second one is
    set up before xdist asks for it. A spec it did not start (``via``, or unknown) and a
    gateway that cannot start reach the group's own ``makegateway`` and its error."""
    execnet = pytest.importorskip("execnet")
    from bridge._xdist import FORKS_BESIDE_THREADS, EarlySetUps
    if not FORKS_BESIDE_THREADS:
        pytest.skip("a 2.7 master makes its gateways one after another: its subprocess "
                    "runs Python between fork and exec, which hangs beside other threads")
    group = execnet.Group()
    try:
        specs = [execnet.XSpec("popen//python=%s//id=gw%d" % (sys.executable, index))
                 for index in range(2)]
        broken = execnet.XSpec("popen//python=%s//id=gw2" % str(tmp_path / "no-python"))
        via = execnet.XSpec("popen//python=%s//via=gw0//id=gw4" % sys.executable)
        set_up = {}  # gateway id -> the thread that set it up
        everything_set_up = threading.Event()

        def record(gateway):
            set_up[gateway.id] = threading.current_thread().name
            if len(set_up) == 2:
                everything_set_up.set()
            return "problem of %s" % gateway.id

        early = EarlySetUps(group, specs + [broken, via], record)
        assert everything_set_up.wait(30), set_up  # before xdist asked for any
        for spec in specs:
            gateway = group.makegateway(spec)
            assert gateway.id == spec.id and gateway.remote_exec(
                "channel.send(1)").receive(30) == 1
            assert early.set_up_of(gateway).outcome() == "problem of %s" % spec.id
            assert early.set_up_of(gateway) is None  # taken once
        assert set_up == {"gw0": "execnet-bridge-gw0", "gw1": "execnet-bridge-gw1"}
        with pytest.raises(Exception) as raised:
            group.makegateway(broken)
        assert "no-python" in str(raised.value) or isinstance(raised.value, OSError)
        later = group.makegateway(execnet.XSpec("popen//python=%s//id=gw3" % sys.executable))
        hopped = group.makegateway(via)
        for gateway in (later, hopped):
            assert gateway.remote_exec("channel.send(2)").receive(30) == 2
            assert early.set_up_of(gateway) is None
        assert sorted(set_up) == ["gw0", "gw1"]
    finally:
        group.terminate(timeout=10.0)
