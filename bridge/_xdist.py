"""The pytest-xdist plugin's hooks and classes (``bridge.xdist`` names them for pytest).

Here, not in ``bridge.xdist``: pytest rewrites the asserts of a module named by ``-p``,
which costs the controller and every worker 3.7 ms without a kept pyc, and a worker
needs only ``Worker``: the controller's imports (the bridge's master side, its facts)
are made where they are used.
"""
from __future__ import absolute_import  # 2.7: ``xdist`` is pytest-xdist, not this module

import importlib
import os
import platform
import re
import sys
import threading

import pytest
from _pytest import hookspec

_TEXT = (type(u""), type(""))  # six.string_types, without importing six on a worker
# Whether gateways may start on threads side by side: 2.7's subprocess runs Python between
# fork and exec, and a child forked while another thread holds a lock hangs there (a CI
# run on the 2.7 master saw the second of two such gateways never start).
FORKS_BESIDE_THREADS = sys.version_info[0] >= 3
WORKER_KEY = "bridge_project"  # workerinput: [the project's folder there, the controller's]

# Run on a new worker of another Python before xdist's own code: whether the controller's
# pytest imports there (a served pytest 4.6 does not on 3.12+, which has no ``imp``). Not
# xdist: a plugin imported before pytest's configuration is not assertion-rewritten, and
# pytest warns so.
IMPORT_PROBE = """
import sys
try:
    import pytest
except Exception:
    error = sys.exc_info()[1]
    channel.send("%s: %s" % (type(error).__name__, error))
else:
    channel.send(None)
"""
PROBE_TIMEOUT = 300.0


def pytest_addoption(parser):
    parser.addini("bridge_project", "send the rootdir's files to bridged xdist workers "
                  "(execnet-bridge)", type="bool", default=True)
    parser.addini("bridge_include", "rootdir-relative paths (fnmatch) that also travel to "
                  "bridged xdist workers", type="linelist", default=[])
    parser.addini("bridge_exclude", "rootdir-relative paths (fnmatch) that stay home",
                  type="linelist", default=[])


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        if config.workerinput.get(WORKER_KEY):
            config.pluginmanager.register(Worker(*config.workerinput[WORKER_KEY]))
    elif config.pluginmanager.hasplugin("xdist") and getattr(config.option, "tx", None):
        config.pluginmanager.register(Controller(config), "bridge-xdist-controller")


class Controller(object):
    """The controller's side: a bridge, and the project, for each new gateway."""

    def __init__(self, config):
        self.config = config
        self.root = str(getattr(config, "rootpath", None) or config.rootdir)
        self.sends_project = config.getini("bridge_project")
        self.placed = {}  # gateway id -> the project's folder there
        self.files = None
        self.early = None  # EarlySetUps, once xdist is about to make the gateways
        self.tree_paths = TreePaths()
        here = str(getattr(config, "invocation_params", None) and
                   config.invocation_params.dir or os.getcwd())
        self.workdir = _relative_inside(here, self.root)
        _keep_own_sys_path()
        if self.sends_project:
            base = here if self.workdir is not None else self.root
            _rewrite_arguments(config, here, base, self.root)
            _keep_arguments()

    def pytest_xdist_setupnodes(self, config, specs):
        manager = self._node_manager()
        group = getattr(manager, "group", None)
        if not hasattr(group, "makegateway") or not FORKS_BESIDE_THREADS:
            _import_master_side_aside()  # an xdist this plugin does not know, or 2.7
            return
        if self.sends_project:
            self._list_project()  # once, before the threads that place it
        self.early = EarlySetUps(group, specs, self._checked_set_up)

    def pytest_xdist_newgateway(self, gateway):
        early = self.early.set_up_of(gateway) if self.early is not None else None
        problem = early.outcome() if early is not None else self._checked_set_up(gateway)
        if problem:  # a usage error, said once, not an INTERNALERROR
            if self.early is not None:
                self.early.settle()  # no gateway registers after the group ended
            _end_group(gateway)
            pytest.exit("execnet-bridge: %s" % problem, returncode=4)

    def _node_manager(self):
        return getattr(self.config.pluginmanager.getplugin("dsession"), "nodemanager", None)

    def _list_project(self):
        if self.files is None:
            from ._project import project_files
            self.files = project_files(self.root, self.config.getini("bridge_include"),
                                       self.config.getini("bridge_exclude"))

    def _checked_set_up(self, gateway):
        """``_set_up``, with a BridgeError said as what stops the run."""
        from .errors import BridgeError
        try:
            return self._set_up(gateway)
        except BridgeError as error:
            return "worker %s: %s" % (gateway.id, error)

    def _set_up(self, gateway):
        """Bridge ``gateway`` and place the project there; what stops it, else None.
        Runs on the thread that made the gateway (``EarlySetUps``)."""
        from ._install import MASTER_CACHES, install
        MASTER_CACHES.notices.leave_to_stats()  # this master lives for one run
        handle = install(gateway)
        self.tree_paths.add(handle.search_path.entries)
        problem = None
        if not _same_python(handle.slave):  # else pytest runs there as it does here
            problem = _undrivable(handle) or _unimportable(gateway, handle)
        if problem:
            return "this pytest cannot drive the worker %s: %s" % (gateway.id, problem)
        if not self.sends_project:
            return None
        manager = self._node_manager()
        if manager is not None:  # no rsync (xdist's, right after newgateway): the bridge
            manager.roots = []  # serves pytest, and the project
        self._list_project()
        self.placed[gateway.id] = handle.place_project(self.root, self.files,
                                                       self.workdir or ".")
        return None

    def pytest_configure_node(self, node):
        folder = self.placed.get(node.gateway.id)
        if folder is not None:
            node.workerinput[WORKER_KEY] = [folder, self.root]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_report_from_serializable(self, config, data):
        """A report's frames in served modules name the controller's files."""
        if isinstance(data, dict):
            data.update(_rewritten(data, self.tree_paths.rewrite))
        yield

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_warning_recorded(self, warning_message):
        _rewrite_warning(warning_message, self.tree_paths.rewrite)

    if not hasattr(hookspec, "pytest_warning_recorded"):  # pytest < 6.0, as in Worker
        @pytest.hookimpl(tryfirst=True, optionalhook=True)
        def pytest_warning_captured(self, warning_message):
            _rewrite_warning(warning_message, self.tree_paths.rewrite)


class Worker(object):
    """The worker's side: its reports name the controller's files, not the cache's."""

    def __init__(self, folder, root):
        self.folder, self.root = folder, root

    @pytest.hookimpl(hookwrapper=True)
    def pytest_report_to_serializable(self, config, report):
        outcome = yield
        data = outcome.get_result()
        if isinstance(data, dict):
            outcome.force_result(_replaced(data, self.folder, self.root))

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_warning_recorded(self, warning_message):
        """Before xdist sends it on: the warning names the controller's file."""
        _rename_warning(warning_message, self.folder, self.root)

    if not hasattr(hookspec, "pytest_warning_recorded"):  # pytest < 6.0; 6 and 7 warn
        @pytest.hookimpl(tryfirst=True, optionalhook=True)  # about an impl of the old one
        def pytest_warning_captured(self, warning_message):
            _rename_warning(warning_message, self.folder, self.root)


class EarlySetUps(object):
    """Every worker's gateway made and set up at once, each on a thread, when xdist is about
    to make them one after another, each waiting for its interpreter to start (30 ms here,
    an ssh connection's time over ssh) and then for the bridge's handshake (20 ms): the
    n-th worker started n times that late. xdist still gets each gateway from the group's
    ``makegateway``, in its order, only ready sooner; what it does not ask for the same
    way (a restarted worker, a gateway ``via`` another, whose one remote_exec at a time
    the threads would contend for) is made as before."""

    def __init__(self, group, specs, set_up):
        self._make = group.makegateway  # the group's own
        self._started = {}  # id(spec) -> Started
        self._ready = {}  # gateway id -> Started, once xdist took its gateway
        for spec in specs:
            if not getattr(spec, "via", None):
                self._started[id(spec)] = Started(spec, self._make, set_up)
        group.makegateway = self.makegateway

    def makegateway(self, spec=None):
        started = self._started.pop(id(spec), None)
        if started is None or started.spec is not spec:
            return self._make(spec)
        gateway = started.gateway()
        self._ready[gateway.id] = started
        return gateway

    def set_up_of(self, gateway):
        """The Started that made ``gateway``, or None: it was made as before."""
        return self._ready.pop(gateway.id, None)

    def settle(self):
        """Wait for the gateways xdist has not asked for yet: made, or failed."""
        for started in list(self._started.values()):
            started.settle()


class Started(object):
    """One gateway being made and set up on a thread of its own."""

    def __init__(self, spec, make, set_up):
        self.spec = spec
        self._made = self._failed = self._problem = self._broke = None
        self._thread = threading.Thread(target=self._run, args=(make, set_up),
                                        name="execnet-bridge-%s" % spec.id)
        self._thread.daemon = True  # a hung start must not hold the controller's exit
        self._thread.start()

    def _run(self, make, set_up):
        try:
            self._made = make(self.spec)
        except Exception as error:  # raised to xdist, which asked to make it
            self._failed = error
            return
        try:
            self._problem = set_up(self._made)
        except Exception as error:  # raised in the newgateway hook, as before
            self._broke = error

    def settle(self):
        self._thread.join()

    def gateway(self):
        self.settle()
        if self._failed is not None:
            raise self._failed
        return self._made

    def outcome(self):
        """The set-up's problem, or None; its unexpected error raised here."""
        if self._broke is not None:
            raise self._broke
        return self._problem


def _import_master_side_aside():
    """Import the master's side on a thread while xdist starts the first gateway (the
    controller waits for its interpreter): 10-30 ms of the first worker's set-up. Not
    sooner: beside the controller's own work it would only take turns with it."""
    thread = threading.Thread(target=_import_master_side, name="execnet-bridge-import")
    thread.daemon = True
    thread.start()


def _import_master_side():
    try:
        importlib.import_module("bridge._install")
    except Exception:  # imported again, and raised, where it is used
        pass


def _end_group(gateway):
    """End the gateways of xdist's group now: pytest.exit skips xdist's teardown, and
    execnet's exit-time clean-up of what is left starts threads, which 3.12+ refuses then."""
    from . import _execnet
    group = _execnet.group_of(gateway)
    if group is not None:
        group.terminate(timeout=10.0)


def _undrivable(handle):
    """Why a worker cannot run the controller's pytest or xdist (their Requires-Python
    excludes its Python), or None: said before any test runs, not as an import error.
    Not asked of a worker of the controller's Python (4 ms of the first one's set-up)."""
    from ._requires import python_problem
    responder = handle.responder
    for name in ("pytest", "xdist", "execnet"):
        located = responder.search_path.locate(name)
        if located is not None:
            problem = python_problem(responder.search_path.distribution_of(located),
                                     responder.facts)
            if problem:
                return problem
    return None


def _same_python(facts):
    """Whether the worker runs this Python (implementation and version up to the minor),
    where the controller's pytest imports as it does here."""
    from ._facts import Facts
    facts = Facts.of(facts)
    return (facts.implementation == platform.python_implementation().lower() and
            facts.python[:2] == tuple(sys.version_info[:2]))


def _unimportable(gateway, handle):
    """Why a worker of another Python cannot import the controller's pytest,
    or None: said once here, where xdist would restart a crashed worker again and again.
    A worker of this Python is not asked: the probe is a round trip of the controller's,
    which sets workers up one after another."""
    channel = gateway.remote_exec(IMPORT_PROBE)
    try:
        error = channel.receive(PROBE_TIMEOUT)
    finally:
        channel.close()
    if error is None:
        return None
    from ._facts import Facts
    version = ".".join(str(part) for part in Facts.of(handle.slave).version or [])
    return ("importing the controller's pytest fails on its Python %s: %s"
            % (version or "?", error))


def _replaced(value, old, new):
    """``value`` (plain data) with path ``old`` written as ``new`` in every string."""
    return _rewritten(value, lambda text: text.replace(old, new) if old in text else text)


def _rewritten(value, rewrite):
    """``value`` (plain data) with ``rewrite`` applied to every string in it."""
    if isinstance(value, _TEXT):
        return rewrite(value)
    if isinstance(value, dict):
        return dict((key, _rewritten(item, rewrite)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_rewritten(item, rewrite) for item in value)
    return value


def _rename_warning(warning_message, old, new):
    _rewrite_warning(warning_message, lambda text: _replaced(text, old, new))


def _rewrite_warning(warning_message, rewrite):
    filename = getattr(warning_message, "filename", None)
    if isinstance(filename, _TEXT):
        warning_message.filename = rewrite(filename)


class TreePaths(object):
    """A worker's path of a served module's file (``<cache root>/trees/<id>/<path>``, or
    ``../<id>/<path>`` where pytest made it relative to the project's tree) written as the
    controller's file it came from: the first entry of the search path the bridge serves
    from that holds ``<path>``. Rewritten on the controller, which has the files; a path
    it does not have is left as it is."""

    PATTERN = re.compile(r"""(?:(?:[A-Za-z]:)?[\\/][^\s"'()<>]*?[\\/]trees[\\/]|"""
                         r"""(?:\.\.[\\/])+)"""  # or relative to the project's folder
                         r"""[0-9a-f]{64}[\\/]([^\s"'()<>:,]+)""")

    def __init__(self):
        self.entries = []
        self._found = {}  # path in a tree -> the controller's file, or None

    def add(self, entries):
        self.entries.extend(entry for entry in entries if entry not in self.entries)

    def rewrite(self, text):
        if "trees" not in text and ".." not in text:
            return text
        return self.PATTERN.sub(lambda match: self._home(match.group(1)) or match.group(0),
                                text)

    def _home(self, path):
        if path not in self._found:
            parts = path.replace("\\", "/").split("/")
            homes = (os.path.join(entry, *parts) for entry in self.entries)
            self._found[path] = next((home for home in homes if os.path.isfile(home)), None)
        return self._found[path]


def _relative_inside(path, root):
    """``path`` relative to ``root`` with ``/``, or None where it is not inside it."""
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return relative.replace(os.sep, "/")


def _rewrite_arguments(config, here, base, root):
    """Write the arguments that name files of the project relative to ``base``, the
    folder the worker works in (the controller's own there, else the rootdir): a path
    of this host means nothing on a worker's."""
    params = getattr(config, "invocation_params", None)
    if params is None:
        return
    rewritten = tuple(_argument(each, here, base, root) for each in params.args)
    if rewritten == tuple(params.args):
        return
    try:  # a dataclass since pytest 8, an attrs class before
        import dataclasses
        config.invocation_params = dataclasses.replace(params, args=rewritten)
    except (ImportError, TypeError):
        import attr
        config.invocation_params = attr.evolve(params, args=rewritten)


def _argument(argument, here, base, root):
    if argument.startswith("-"):
        option, equals, value = argument.partition("=")
        if equals and os.path.isabs(value):
            mapped = _path(value, here, base, root)
            return option + "=" + mapped if mapped is not None else argument
        return argument
    path, marker, rest = argument.partition("::")
    mapped = _path(path, here, base, root)
    return argument if mapped is None else mapped + marker + rest


def _path(path, here, base, root):
    """``path`` (of this host, relative to ``here``) relative to ``base``, where it is a
    file or folder of the project; else None (left as it is)."""
    full = os.path.join(here, path)
    if not os.path.exists(full) or _relative_inside(full, root) is None:
        return None
    if not os.path.isabs(path) and base == here:
        return None
    return os.path.relpath(os.path.realpath(full), os.path.realpath(base))


def _keep_own_sys_path():
    """A popen worker keeps its own ``sys.path`` (xdist would give it the controller's, as
    a remote one does), with the folder it works in first: the controller's
    site-packages would be read from this host's disk instead of being served, and its
    standard library is the wrong one for a worker of another Python."""
    try:
        from xdist import workermanage
    except ImportError:
        return
    if hasattr(workermanage, "_sys_path"):
        workermanage._sys_path = None


def _keep_arguments():
    """xdist makes the arguments of a worker that is not a plain popen one relative to
    its rsync roots, and fails where they are not under one: nothing is rsynced here, and
    the arguments stay as ``_rewrite_arguments`` wrote them."""
    try:
        from xdist import workermanage
    except ImportError:
        return
    if hasattr(workermanage, "make_reltoroot"):
        workermanage.make_reltoroot = lambda roots, args: list(args)
