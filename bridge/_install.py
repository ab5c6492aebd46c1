"""``install()``: ship the slave modules, run the handshake, serve requests."""
import logging
import pkgutil
import sys
import threading
import warnings
import weakref

import execnet
import six

from ._locate import SearchPath, default_search_path
from ._policy import Policy
from ._responder import Responder, Stats
from .compat import protocol, tags
from . import _wheelhouse
from ._environment import read_environment
from .errors import BridgeError, EnvironmentMismatchWarning, HandshakeError

log = logging.getLogger("bridge")

# The slave modules, in dependency order: compat names, protocol, the rest, the hook.
SLAVE_MODULES = ("neutral", "protocol", "tags", "cacheroot", "blobs", "mirror", "client",
                 "session", "metadata", "importer2", "importer3", "hook")

UNINSTALL_SOURCE = """
import sys
hook = sys.modules.get("_execnet_bridge.hook")
channel.send(bool(hook and hook.uninstall()))
"""

_installed = weakref.WeakKeyDictionary()  # gateway -> Bridge
_installed_lock = threading.Lock()


def master_facts():
    """This interpreter's tags: what the binaries on its own path were built for."""
    if not _master_facts:
        _master_facts.update(tags.facts())
    return _master_facts


_master_facts = {}


def _slave_source(name):
    return pkgutil.get_data("bridge.compat", name + ".py").decode("utf-8")


def slave_sources():
    """The bootstrap's first message: [[name, source]] of the slave modules, as text."""
    return [[six.text_type(name), _slave_source(name)] for name in SLAVE_MODULES]


def _open_channel(gateway, source):
    """A channel on which text stays text and bytes stay bytes between 2.7 and 3.x."""
    channel = gateway.remote_exec(source)
    channel.reconfigure(py2str_as_py3str=False, py3str_as_py2str=False)
    return channel


class Bridge(object):
    """The handle of one gateway's install: its stats, its slave, ``uninstall()``."""

    def __init__(self, gateway, responder, options, timeout, environment=None,
                 wheelhouse=None):
        self.gateway = gateway
        self.responder = responder
        self.search_path = responder.search_path
        self.stats = responder.stats
        self.slave = responder.facts
        self.cache_dir = None
        self.cache_problem = None  # why the slave refused its cache root, or None
        self._requests = None
        self.wheelhouse = wheelhouse
        self._handshake(options, timeout)
        if environment is not None:
            self._check_versions(environment)

    def _check_versions(self, environment):
        """Serving an environment made for another Python is a risk: say so."""
        served = environment.get("version", [])[:2]
        if served != self.slave.get("version", [])[:2] or environment.get(
                "implementation") != self.slave.get("implementation"):
            message = ("execnet-bridge serves %s %s's environment to the %s %s slave %s: "
                       "its packages may not import there; pass install(..., python=) an "
                       "interpreter of the slave's version" % (
                           environment.get("implementation"), _version(served),
                           self.slave.get("implementation"),
                           _version(self.slave.get("version", [])[:2]), self.gateway.id))
            log.warning(message)
            warnings.warn(message, EnvironmentMismatchWarning, stacklevel=4)

    def __repr__(self):
        return "<Bridge %s %s>" % (self.gateway.id, "installed" if self.installed else "removed")

    @property
    def installed(self):
        return self._requests is not None and not self._requests.isclosed()

    def _handshake(self, options, timeout):
        channel = _open_channel(self.gateway, _slave_source("bootstrap"))
        try:
            channel.send(slave_sources())
            channel.send(protocol.message(protocol.CONFIG, protocol=protocol.PROTOCOL_VERSION,
                                          options=options))
            hello = self._expect(channel, protocol.HELLO, timeout)
            if hello.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
                raise HandshakeError("slave speaks protocol %r, master %r"
                                     % (hello.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
            self.slave.update(hello.get(protocol.FACTS) or {})
            self.responder.known.update(hello.get(protocol.BLOBS) or [])
            if self.wheelhouse:  # the wheels that fit this slave, now that we know it
                self.responder.search_path = self.search_path = SearchPath(
                    _wheelhouse.search_path(self.wheelhouse, self.slave))
            self.cache_dir = hello.get("cache_dir")
            self._note_cache_problem(hello.get(protocol.CACHE_PROBLEM))
            self._serve(hello[protocol.CHANNEL])
            channel.send(protocol.message(protocol.READY))
            self._expect(channel, protocol.INSTALLED, timeout)
            channel.waitclose(timeout)
        except (EOFError, IOError, channel.RemoteError, channel.TimeoutError) as error:
            raise HandshakeError("installing execnet-bridge on %s failed: %s"
                                 % (self.gateway.id, error))

    def _note_cache_problem(self, problem):
        """A refused cache root is someone else's folder on the slave's host: say so."""
        self.cache_problem = problem
        if problem:
            log.warning("%s: %s", self.gateway.id, problem)

    @staticmethod
    def _expect(channel, kind, timeout):
        msg = channel.receive(timeout)
        if protocol.kind_of(msg) != kind:
            raise HandshakeError("expected %r from the slave, got %r" % (kind, msg))
        return msg

    def _serve(self, requests):
        requests.reconfigure(py2str_as_py3str=False, py3str_as_py2str=False)

        def answer(msg):
            reply = self.responder.reply(msg)
            try:
                requests.send(reply)
            except (IOError, EOFError, ValueError) as error:
                log.warning("cannot reply to %s: %s", self.gateway.id, error)

        requests.setcallback(answer)
        self._requests = requests

    def uninstall(self, timeout=30.0):
        """Remove the hook from the slave; modules it already imported stay."""
        with _installed_lock:
            if _installed.get(self.gateway) is self:
                del _installed[self.gateway]
        if not self.installed:
            return False
        channel = _open_channel(self.gateway, UNINSTALL_SOURCE)
        removed = channel.receive(timeout)
        channel.waitclose(timeout)
        self._requests.close()
        return removed


class GroupBridge(object):
    """The handles of every gateway of an execnet Group; ``makegateway`` bridges new ones."""

    def __init__(self, group, settings):
        self.group = group
        self.settings = settings
        self.bridges = []
        self.sync()

    def sync(self):
        """Install on every gateway of the group that has no bridge yet."""
        bridged = set(id(bridge.gateway) for bridge in self.bridges)
        for gateway in list(self.group):
            if id(gateway) not in bridged:
                self.bridges.append(install(gateway, **self.settings))
        return self.bridges

    def makegateway(self, spec=None):
        """``group.makegateway(spec)``, bridged like the others."""
        gateway = self.group.makegateway(spec)
        self.bridges.append(install(gateway, **self.settings))
        return gateway

    def uninstall(self, timeout=30.0):
        return [bridge.uninstall(timeout) for bridge in self.bridges]


DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024


def _progress_reporter(gateway, progress):
    """``progress`` as the responder calls it: (module, bytes, bytes so far)."""
    if not progress:
        return None
    if callable(progress):
        return lambda name, size, total: progress(gateway.id, name, size, total)

    def to_stderr(name, size, total):
        if size >= 1000000:
            sys.stderr.write("execnet-bridge: %s <- %s: %.1f MB (%.1f MB in all)\n"
                             % (gateway.id, name, size / 1e6, total / 1e6))
            sys.stderr.flush()
    return to_stderr


def _version(parts):
    return ".".join(str(part) for part in parts)


def _check_cache_limit(cache_limit):
    if isinstance(cache_limit, bool) or not isinstance(cache_limit, six.integer_types) \
            or cache_limit < 0:
        raise ValueError("cache_limit must be a number of bytes >= 0, not %r" % (cache_limit,))


def install(gateway, allow_extensions=False, path=None, timeout=30.0, cache_root=None,
            allow=None, deny=None, max_reply_bytes=DEFAULT_MAX_REPLY_BYTES, python=None,
            wheelhouse=None, progress=None, cache_limit=protocol.DEFAULT_CACHE_LIMIT):
    """Let the slave behind ``gateway`` import modules that only the master has.

    ``gateway`` may be an execnet Group: every member gets a bridge, and
    ``handle.makegateway(spec)`` adds bridged members later. ``path``: the
    entries to serve from (default: the master's ``sys.path`` without its
    standard library). ``timeout``: seconds any one wait may take, on either
    side. ``cache_root``: the folder on the slave under which served files are
    mirrored. ``allow``/``deny``: module name rules, exact (``"six"``) or prefix
    (``"requests.*"``); deny wins. ``max_reply_bytes``: the largest reply sent.
    ``python``: serve the environment of this interpreter (on the master)
    instead of the master's own, e.g. a 2.7 one for 2.7 slaves. ``wheelhouse``:
    serve, per project, the wheel in this folder that best fits the slave.
    ``progress``: True prints a line to stderr for each reply of 1 MB or more;
    a callable gets ``(gateway id, module, bytes of the reply, bytes so far)``
    for every reply. ``cache_limit``: the size cap of the slave's persistent
    cache in bytes; least recently used files go first, never a live session's.
    Installing twice on one gateway returns the first handle.
    """
    settings = dict(allow_extensions=allow_extensions, path=path, timeout=timeout,
                    cache_root=cache_root, allow=allow, deny=deny,
                    max_reply_bytes=max_reply_bytes, python=python, wheelhouse=wheelhouse,
                    progress=progress, cache_limit=cache_limit)
    _check_cache_limit(cache_limit)
    if sum(choice is not None for choice in (path, python, wheelhouse)) > 1:
        raise BridgeError("give install() one of path=, python= and wheelhouse=")
    if isinstance(gateway, execnet.Group):
        return GroupBridge(gateway, settings)
    policy = Policy(allow, deny)  # a malformed rule fails here, before anything is sent
    with _installed_lock:
        existing = _installed.get(gateway)
        if existing is not None and existing.installed:
            return existing
        options = {six.text_type("timeout"): float(timeout),
                   six.text_type(protocol.CACHE_LIMIT): int(cache_limit)}
        if cache_root:
            options[six.text_type("cache_root")] = six.text_type(cache_root)
        environment = None  # the facts of the interpreter whose environment is served
        if python is not None:
            entries, environment = read_environment(python)
        elif wheelhouse is not None:
            entries = []  # chosen for the slave at the handshake
        elif path is None:
            entries, environment = default_search_path(), master_facts()
        else:
            entries = path
        if environment is not None:
            options[six.text_type("environment")] = environment["version"][:2]
        responder = Responder(SearchPath(entries), {}, Stats(), environment or master_facts(),
                              bool(allow_extensions), policy, max_reply_bytes,
                              _progress_reporter(gateway, progress))
        bridge = Bridge(gateway, responder, options, timeout, environment, wheelhouse)
        _installed[gateway] = bridge
        return bridge
