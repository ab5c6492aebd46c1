"""PEP 810 explicit lazy imports (3.15+) of served modules: a lazy import fetches and runs
nothing until first use; ``-X lazy_imports=all`` and the filter work on served modules;
threads reifying at once while another waits for the master neither deadlock nor hang."""
import execnet
import pytest

import bridge
from conftest import (MATRIX, label_version, python_of, remote_value, slave_spec,
                      stall_master_then_collect, write_tree)

LAZY = [label for label in MATRIX if label != "pypy3" and label_version(label) >= (3, 15)]

# app's __init__ imports lazily; each module says when it runs.
APP = {
    "ran.py": "ORDER = []\n",
    "app/__init__.py": """
        import ran
        ran.ORDER.append(__name__)
        lazy import app.heavy
        lazy from app.util import helper
        import app.eager

        def use():
            return [app.heavy.VALUE, helper()]
    """,
    "app/heavy.py": "import ran\nran.ORDER.append(__name__)\nVALUE = 'heavy'\n",
    "app/util.py": "import ran\nran.ORDER.append(__name__)\ndef helper():\n    return 'helped'\n",
    "app/eager.py": "import ran\nran.ORDER.append(__name__)\n",
}


@pytest.fixture(params=LAZY or [None], ids=["py" + label.replace(".", "") for label in LAZY]
                or ["no-lazy-python"])
def lazy_python(request):
    if request.param is None:
        pytest.skip("no Python 3.15+ slave in this run's matrix (%s)" % ", ".join(MATRIX))
    return python_of(request.param)


def lazy_gateway(python, cwd, flags=()):
    group = execnet.Group()
    gw = group.makegateway(slave_spec(" ".join([python] + list(flags)), cwd))
    return group, gw


def test_a_lazy_import_of_a_served_module_runs_it_at_first_use(
        lazy_python, slave_cwd, tmp_path, cache_root):
    group, gw = lazy_gateway(lazy_python, slave_cwd)
    try:
        bridge.install(gw, path=[write_tree(tmp_path / "app", APP)], cache_root=cache_root)
        order, used = remote_value(gw, """
            import sys, ran
            lazy import app
            lazy from app.heavy import VALUE
            before = [list(ran.ORDER), "app" in sys.modules, "app.heavy" in sys.modules]
            used = app.use() + [VALUE]
            channel.send([before + [list(ran.ORDER)], used])
        """)
    finally:
        group.terminate(timeout=10)
    assert order == [[], False, False, ["app", "app.eager", "app.heavy", "app.util"]]
    assert used == ["heavy", "helped", "heavy"]


def test_all_imports_lazy_and_the_filter_on_served_modules(
        lazy_python, slave_cwd, tmp_path, cache_root):
    """``-X lazy_imports=all`` makes every plain import lazy, app's ``import app.eager``
    too; the filter makes that one eager again."""
    served = write_tree(tmp_path / "app", APP)
    outcomes = []
    for use_filter in (False, True):
        group, gw = lazy_gateway(lazy_python, slave_cwd, ["-X", "lazy_imports=all"])
        try:
            bridge.install(gw, path=[served], cache_root=cache_root)
            outcomes.append(remote_value(gw, """
                import sys
                if %r:
                    sys.set_lazy_imports_filter(
                        lambda importer, name, fromlist: name != "app.eager")
                import ran, app
                after_import = list(ran.ORDER)
                used = app.use()
                channel.send([sys.get_lazy_imports(), after_import, used, list(ran.ORDER)])
            """ % use_filter))
        finally:
            group.terminate(timeout=10)
    lazy_all, with_filter = outcomes
    assert lazy_all[0] == with_filter[0] == "all"
    assert lazy_all[1] == with_filter[1] == []  # even ``import ran, app`` was lazy
    for outcome in outcomes:
        assert outcome[2] == ["heavy", "helped"]
        assert sorted(outcome[3]) == sorted(["app", "app.heavy", "app.util"] + (
            ["app.eager"] if outcome is with_filter else []))


# Eight packages, each reified by its own thread at one moment, while thread W waits
# for the master (its receiver stalled) to serve a ninth.
REIFY_WHILE_AN_IMPORT_WAITS = """
import sys, threading, time
lazy import pkg0.core, pkg1.core, pkg2.core, pkg3.core, pkg4.core, pkg5.core, pkg6.core, pkg7.core
readers = {"pkg0": lambda: pkg0.core.VALUE, "pkg1": lambda: pkg1.core.VALUE,
           "pkg2": lambda: pkg2.core.VALUE, "pkg3": lambda: pkg3.core.VALUE,
           "pkg4": lambda: pkg4.core.VALUE, "pkg5": lambda: pkg5.core.VALUE,
           "pkg6": lambda: pkg6.core.VALUE, "pkg7": lambda: pkg7.core.VALUE}
channel.receive()
channel.send("stall the master's receiver")
errors, values = [], {}

def wait_for_the_master():
    import pkg8.core
    values["pkg8"] = pkg8.core.VALUE

waiting = threading.Thread(target=wait_for_the_master)
waiting.start()
time.sleep(0.3)  # pkg8's request is out; its reply is held up
start = threading.Event()

def reify(name):
    start.wait()
    try:
        values[name] = readers[name]()
    except BaseException as error:
        errors.append("%s: %s: %s" % (name, type(error).__name__, error))

threads = [threading.Thread(target=reify, args=(name,)) for name in sorted(readers)]
for thread in threads:
    thread.daemon = True
    thread.start()
start.set()
for thread in threads + [waiting]:
    thread.join(60)
channel.send([errors, [list(item) for item in sorted(values.items())], sum(t.is_alive() for t in threads + [waiting]),
              sorted(name for name in readers if name in sys.modules)])
"""


def test_threads_reifying_at_once_while_an_import_waits_for_the_master(
        lazy_python, slave_cwd, tmp_path, cache_root):
    files = {}
    for index in range(9):
        files["pkg%d/__init__.py" % index] = "from . import core\n"
        files["pkg%d/core.py" % index] = "VALUE = %d\n" % index
    served = write_tree(tmp_path / "pkgs", files)
    group, gw = lazy_gateway(lazy_python, slave_cwd)
    try:
        bridge.install(gw, path=[served], cache_root=cache_root)
        channel = gw.remote_exec(REIFY_WHILE_AN_IMPORT_WAITS)
        errors, values, alive, imported = stall_master_then_collect(channel, 1.5)
    finally:
        group.terminate(timeout=10)
    assert errors == [] and alive == 0 and imported == ["pkg%d" % index for index in range(8)]
    assert values == [["pkg%d" % index, index] for index in range(9)]
