"""``install()``: ship the slave modules, run the handshake, serve requests."""
import logging
import pkgutil
import threading
import weakref

import execnet
import six

from ._locate import SearchPath, default_search_path
from ._policy import Policy
from ._responder import Responder, Stats
from .compat import protocol, tags
from .errors import HandshakeError

log = logging.getLogger("bridge")

# The slave modules, in dependency order: compat names, protocol, the rest, the hook.
SLAVE_MODULES = ("neutral", "protocol", "tags", "blobs", "mirror", "client", "session", "importer2", "importer3",
                 "hook")

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

    def __init__(self, gateway, responder, options, timeout):
        self.gateway = gateway
        self.responder = responder
        self.search_path = responder.search_path
        self.stats = responder.stats
        self.slave = responder.facts
        self.cache_dir = None
        self._requests = None
        self._handshake(options, timeout)

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
            self.cache_dir = hello.get("cache_dir")
            self._serve(hello[protocol.CHANNEL])
            channel.send(protocol.message(protocol.READY))
            self._expect(channel, protocol.INSTALLED, timeout)
            channel.waitclose(timeout)
        except (EOFError, IOError, channel.RemoteError, channel.TimeoutError) as error:
            raise HandshakeError("installing execnet-bridge on %s failed: %s"
                                 % (self.gateway.id, error))

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


def install(gateway, allow_extensions=False, path=None, timeout=30.0, cache_root=None,
            allow=None, deny=None, max_reply_bytes=DEFAULT_MAX_REPLY_BYTES):
    """Let the slave behind ``gateway`` import modules that only the master has.

    ``gateway`` may be an execnet Group: every member gets a bridge, and
    ``handle.makegateway(spec)`` adds bridged members later. ``path``: the
    entries to serve from (default: the master's ``sys.path`` without its
    standard library). ``timeout``: seconds any one wait may take, on either
    side. ``cache_root``: the folder on the slave under which served files are
    mirrored. ``allow``/``deny``: module name rules, exact (``"six"``) or prefix
    (``"requests.*"``); deny wins. ``max_reply_bytes``: the largest reply sent.
    Installing twice on one gateway returns the first handle.
    """
    settings = dict(allow_extensions=allow_extensions, path=path, timeout=timeout,
                    cache_root=cache_root, allow=allow, deny=deny,
                    max_reply_bytes=max_reply_bytes)
    if isinstance(gateway, execnet.Group):
        return GroupBridge(gateway, settings)
    policy = Policy(allow, deny)  # a malformed rule fails here, before anything is sent
    with _installed_lock:
        existing = _installed.get(gateway)
        if existing is not None and existing.installed:
            return existing
        options = {six.text_type("timeout"): float(timeout)}
        if cache_root:
            options[six.text_type("cache_root")] = six.text_type(cache_root)
        search_path = SearchPath(default_search_path() if path is None else path)
        responder = Responder(search_path, {}, Stats(), master_facts(), bool(allow_extensions),
                              policy, max_reply_bytes)
        bridge = Bridge(gateway, responder, options, timeout)
        _installed[gateway] = bridge
        return bridge
