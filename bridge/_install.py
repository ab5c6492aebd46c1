"""``install()``: ship the slave modules, run the handshake, serve requests.

install() is the handshake's first step (HELLO says who the slave is), then a
Responder built whole from what the slave said, then the handshake's last step.
"""
import logging
import os
import pkgutil
import sys
import threading
import time
import warnings
import weakref

import execnet
import six

from ._locate import SearchPath, default_search_path
from ._policy import Policy
from ._project import Project, project_files
from ._caches import MasterCaches
from ._deflate import Link, PAYLOAD_BYTES, SLOW_LINK_SECONDS
from ._facts import Facts
from ._responder import Responder, Stats
from ._slave_code import SlaveCode
from .compat import protocol
from .compat.neutral import dotted
from . import _execnet, _hops, _wheelhouse
from ._environment import read_environment
from .errors import BridgeError, EnvironmentMismatchWarning, HandshakeError

CONFIRM_SECONDS = 0.010  # a round trip between SLOW_LINK_SECONDS and this is timed again
CONFIRM_PINGS = 4  # ... up to this many more times,
CONFIRM_PAUSE = 0.005  # this long apart

log = logging.getLogger("bridge")
log.addHandler(logging.NullHandler())  # 2.7 prints "No handlers could be found" otherwise

# The slave modules, in dependency order: compat names, protocol, the rest, the hook.
SLAVE_MODULES = ("neutral", "protocol", "files", "tags", "cacheroot", "codecache", "blobs",
                 "packs", "trees", "session_folder", "incoming", "client", "distributions",
                 "session", "metadata", "listing", "working_set", "importer2", "importer3",
                 "children", "run", "hook", "relay", "bootstrap")

MASTER_CACHES = MasterCaches()  # this master's work per file version, shared by every slave
SLAVE_CODE = SlaveCode(MASTER_CACHES.disk)  # the slave modules compiled for cold slaves

_installed = weakref.WeakKeyDictionary()  # gateway -> Bridge
_installing = weakref.WeakKeyDictionary()  # gateway -> Lock: one install of a gateway at a time
_registry_lock = threading.Lock()  # guards the two tables only: never held over I/O


def master_facts():
    """This interpreter's tags: what the binaries on its own path were built for."""
    return MASTER_CACHES.own_facts()


def _slave_source(name):
    return pkgutil.get_data("bridge.compat", name + ".py").decode("utf-8")


def slave_sources():
    """The bootstrap frame: [[name, source]] of the slave modules, as text."""
    return [[six.text_type(name), _slave_source(name)] for name in SLAVE_MODULES]


def _open_channel(gateway, source):
    """A channel on which text stays text and bytes stay bytes between 2.7 and 3.x."""
    channel = gateway.remote_exec(source)
    channel.reconfigure(py2str_as_py3str=False, py3str_as_py2str=False)
    return channel


def _expect(channel, kind, timeout):
    return _checked(channel.receive(timeout), kind)


def _checked(msg, kind):
    if protocol.kind_of(msg) != kind:
        raise HandshakeError("expected %r from the slave, got %r" % (kind, msg))
    return msg


class Handshake(object):
    """The master's side of the handshake, in the two steps around building the
    Responder: ``greet`` (sources, CONFIG -> HELLO), then ``finish`` (READY -> INSTALLED)."""

    code_sent = 0  # bytes of the master's code objects a cold slave asked for

    def __init__(self, gateway, config, timeout):
        self.gateway = gateway
        self.timeout = timeout
        self.channel = _open_channel(gateway, _slave_source("bootstrap"))
        self.hello = self._guarded(self._greet, config)

    def _greet(self, config):
        """Behind a hop the master offers no code objects: its link is the leaves'
        to share, and compiling costs a leaf its own CPU only."""
        sources = slave_sources()
        offered = None if self.gateway.spec.via else SLAVE_CODE.key(sources)
        self.channel.send(protocol.bootstrap_frame(
            sources, protocol.option(config, protocol.CACHE_ROOT), offered))
        self.channel.send(config)
        msg = self.channel.receive(self.timeout)
        if offered is not None and msg == offered:  # codecache.fetch
            payload = SLAVE_CODE.payload(sources, offered)
            self.channel.send(payload)
            self.code_sent = len(payload or b"")
            msg = self.channel.receive(self.timeout)
        hello = _checked(msg, protocol.HELLO)
        if hello.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
            raise HandshakeError("slave speaks protocol %r, master %r"
                                 % (hello.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
        return hello

    @property
    def facts(self):
        return dict(self.hello.get(protocol.FACTS) or {})

    def measure_link(self, compress=None):
        """The Link: its round trip, the fastest of a few PINGs (the slowest would measure
        this machine's load); on a slow one, also its bandwidth (a pipe is not timed: it
        never compresses)."""
        round_trip = self._guarded(self._round_trip)
        if round_trip < SLOW_LINK_SECONDS or compress is not None:
            return Link(round_trip, None, compress)
        return Link(round_trip, self._guarded(self._bandwidth, round_trip), compress)

    def _round_trip(self):
        """The fastest of a few PINGs. A pipe on a busy host can look slow for a moment
        (many slaves of a Group starting at once): a round trip under CONFIRM_SECONDS is timed again a little later before it counts
        as slow; a link slower than that is not, so it costs no more to start."""
        best = min(self._ping() for _ in range(3))
        for _ in range(CONFIRM_PINGS):
            if best < SLOW_LINK_SECONDS or best >= CONFIRM_SECONDS:
                break
            time.sleep(CONFIRM_PAUSE)
            best = min(best, self._ping())
        return best

    def _ping(self, payload=None):
        started = time.time()
        self.channel.send(protocol.ping(payload))
        self._wait_for_ping()
        return time.time() - started

    def _wait_for_ping(self):
        """Wait for a PING's answer. A 2.7 master looks every millisecond: its timed waits
        sleep up to 50 ms between looks, which would time this machine, not the link."""
        if not six.PY2:
            return _expect(self.channel, protocol.PING, self.timeout)
        deadline = time.time() + self.timeout
        while True:
            try:
                return _expect(self.channel, protocol.PING, 0.001)
            except self.channel.TimeoutError:
                if time.time() > deadline:
                    raise

    def _bandwidth(self, round_trip):
        """Bytes a second towards the slave: two PINGs of PAYLOAD_BYTES sent back to back
        cross in one round trip plus their time on the wire, and their answers come that
        time for one apart. This machine's load can shorten either figure, and rarely
        both: the lower estimate counts (too low costs a little CPU, too high the link)."""
        payload = os.urandom(PAYLOAD_BYTES)  # incompressible, should the link compress
        started = time.time()
        for _ in range(2):
            self.channel.send(protocol.ping(payload))
        answered = []
        for _ in range(2):
            self._wait_for_ping()
            answered.append(time.time())
        both = answered[1] - started - round_trip
        return PAYLOAD_BYTES / max(both / 2, answered[1] - answered[0], 1e-6)

    def finish(self):
        """The request channel is served now: let the slave install its hook."""
        def ready():
            self.channel.send(protocol.ready())
            _expect(self.channel, protocol.INSTALLED, self.timeout)
            self.channel.waitclose(self.timeout)
        self._guarded(ready)

    def _guarded(self, step, *args):
        try:
            return step(*args)
        except (EOFError, IOError, self.channel.RemoteError, self.channel.TimeoutError) as error:
            raise HandshakeError("installing execnet-bridge on %s failed: %s"
                                 % (self.gateway.id, error))


class Bridge(object):
    """The handle of one gateway's install: its stats, its slave, ``uninstall()``."""

    route = None  # a leaf behind a forwarding hop: its _hops.Route
    code_sent = 0  # bytes of the master's code objects the handshake sent: a cold slave

    def __init__(self, gateway, responder, requests, cache_dir, wheelhouse=None, link=None,
                 cache_problem=None):
        self.gateway = gateway
        self.link = link or {}  # Link.as_dict(): round_trip, bandwidth, compress, on_demand
        self.responder = responder
        self.search_path = responder.search_path
        self.stats = responder.stats
        self.slave = responder.facts.data  # the plain dict, as it travelled
        self.cache_dir = cache_dir
        self.cache_problem = cache_problem  # why the slave refused its cache root, or None
        if cache_problem:  # someone else's folder on the slave's host: say so
            log.warning("%s: %s", gateway.id, cache_problem)
        self.wheelhouse = wheelhouse
        group = _execnet.group_of(gateway)  # its members now: made before it was bridged
        self.group_members = frozenset(member.id for member in group) if group else frozenset()
        self._requests = requests
        requests.reconfigure(py2str_as_py3str=False, py3str_as_py2str=False)
        requests.setcallback(self._on_request)

    def _on_request(self, msg):
        """Runs on this gateway's receiver thread: one reply per request."""
        try:
            if self.route is None:
                self._send_reply(msg)
            else:  # bodies its hop holds travel as their hash alone
                with self.route.replying(msg, self.stats) as upstream:
                    self._send_reply(msg, upstream)
        except (IOError, EOFError, ValueError) as error:
            log.warning("cannot reply to %s: %s", self.gateway.id, error)

    def _send_reply(self, msg, upstream=None):
        reply = self.responder.reply(msg, self._requests.send, upstream)
        if reply is None:  # the slave went away while the reply's frames were sent
            return
        self._requests.send(protocol.packed(reply))
        if upstream is not None:
            upstream.delivered(reply)

    def check_versions(self, environment):
        """Serving an environment made for another Python is a risk: say so."""
        served, slave = Facts.of(environment), Facts.of(self.slave)
        if served.python[:2] != slave.python[:2] or \
                served.implementation != slave.implementation:
            message = ("execnet-bridge serves %s %s's environment to the %s %s slave %s: "
                       "its packages may not import there; pass install(..., python=) an "
                       "interpreter of the slave's version" % (
                           served.implementation, dotted(served.python[:2]),
                           slave.implementation, dotted(slave.python[:2]), self.gateway.id))
            log.warning(message)
            warnings.warn(message, EnvironmentMismatchWarning, stacklevel=4)

    def __repr__(self):
        return "<Bridge %s %s>" % (self.gateway.id, "installed" if self.installed else "removed")

    @property
    def installed(self):
        return not self._requests.isclosed()

    def close(self):
        """Stop serving this slave, as a master that goes away would: the hook stays, and
        its pending and later requests fail at once, saying the master closed."""
        self._requests.close()

    def uninstall(self, timeout=30.0):
        """Remove the hook from the slave; modules it already imported stay."""
        with _registry_lock:
            if _installed.get(self.gateway) is self:
                del _installed[self.gateway]
        if not self.installed:
            return False
        channel = _open_channel(self.gateway, protocol.CONTROL_SOURCE)
        channel.send(protocol.uninstall())
        reply = _expect(channel, protocol.UNINSTALLED, timeout)
        channel.waitclose(timeout)
        self._requests.close()
        return bool(reply.get(protocol.REMOVED))


    def place_project(self, root, files=None, workdir=".", timeout=None):
        """Give the slave the files of the project folder ``root`` and make it work in
        ``workdir`` (relative to ``root``) of them. ``files``: root-relative paths with
        ``/``; default: what the project tracks (``_project.project_files``). They land
        in a tree of the slave's cache: a later session moves only files that changed.
        Returns the project's folder on the slave. ``timeout``: seconds to wait for it
        (None: as long as the transfer takes; the slave bounds each of its waits)."""
        project = Project(root, project_files(root) if files is None else files)
        self.responder.project = project
        channel = _open_channel(self.gateway, protocol.CONTROL_SOURCE)
        channel.send(protocol.enter(workdir))
        try:
            reply = _expect(channel, protocol.ENTERED, timeout)
        except (EOFError, IOError, execnet.RemoteError) as error:
            raise BridgeError("cannot place %s on %s: %s" % (project.path, self.gateway.id,
                                                            error))
        channel.waitclose(timeout)
        if reply.get(protocol.PATH) is None:
            raise BridgeError("cannot place %s on %s: %s" % (
                project.path, self.gateway.id, reply.get(protocol.REASON)))
        return six.text_type(reply[protocol.PATH])


class GroupBridge(object):
    """The handles of every gateway of an execnet Group; ``makegateway`` bridges new ones."""

    def __init__(self, group, settings):
        self.group = group
        self.settings = settings
        self.bridges = []
        self.sync()

    def sync(self):
        """Install on every gateway of the group that has no bridge yet, all at once (a
        handshake waits on its slave, not on the others); the first error is raised."""
        bridged = set(id(bridge.gateway) for bridge in self.bridges)
        pending = [gateway for gateway in list(self.group) if id(gateway) not in bridged]
        results = [None] * len(pending)

        def install_one(index, gateway):
            try:
                results[index] = install(gateway, **self.settings)
            except Exception as error:  # raised below, in the caller's thread
                results[index] = error

        threads = [threading.Thread(target=install_one, args=pair)
                   for pair in enumerate(pending)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.bridges.extend(result for result in results if isinstance(result, Bridge))
        for result in results:
            if not isinstance(result, Bridge):
                raise result
        return self.bridges

    def makegateway(self, spec=None, **settings):
        """``group.makegateway(spec)``, bridged like the others (``settings`` override
        install()'s for this gateway). ``via=`` a member: that member is bridged first and
        forwards, keeping the bodies it passes for the next leaf (docs/hops.md)."""
        gateway = _hops.make_gateway(self.group, spec or self.group.defaultspec,
                                     self._bridged)
        self._bridged(gateway, **settings)
        return gateway

    def _bridged(self, gateway, **settings):
        bridge = install(gateway, **dict(self.settings, **settings))
        if bridge not in self.bridges:
            self.bridges.append(bridge)
        return bridge

    @property
    def hops(self):
        """{hop gateway id: HopStats as a dict}: bytes over each hop's upstream link for
        its leaves, and bytes it filled from its cache."""
        return _hops.hop_stats(list(self.group))

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


def _check_cache_limit(cache_limit):
    if isinstance(cache_limit, bool) or not isinstance(cache_limit, six.integer_types) \
            or cache_limit < 0:
        raise ValueError("cache_limit must be a number of bytes >= 0, not %r" % (cache_limit,))


def install(gateway, allow_extensions=False, path=None, timeout=30.0, cache_root=None,
            allow=None, deny=None, max_reply_bytes=DEFAULT_MAX_REPLY_BYTES, python=None,
            wheelhouse=None, progress=None, compress=None,
            cache_limit=protocol.DEFAULT_CACHE_LIMIT, subprocesses=False):
    """Let the slave behind ``gateway`` import modules that only the master has.

    ``gateway`` may be an execnet Group: every member gets a bridge, and
    ``handle.makegateway(spec)`` adds bridged members later. ``path``: the
    entries to serve from (default: the master's ``sys.path`` without its
    standard library). ``timeout``: seconds any one wait may take, on either
    side. ``cache_root``: the folder on the slave under which served files are
    kept. ``allow``/``deny``: module name rules, exact (``"six"``) or prefix
    (``"requests.*"``); deny wins. ``max_reply_bytes``: the largest reply sent.
    ``python``: serve the environment of this interpreter (on the master)
    instead of the master's own, e.g. a 2.7 one for 2.7 slaves. ``wheelhouse``:
    serve, per project, the wheel in this folder that best fits the slave.
    ``progress``: True prints a line to stderr for each reply of 1 MB or more;
    a callable gets ``(gateway id, module, bytes of the reply, bytes so far)``
    for every reply, and while a large one is sent, every few frames of it.
    ``compress``: send bodies zlib-compressed (True) or as they are
    (False); None (the default) decides per body by the link the handshake measured:
    compressed where the wire time saved exceeds the time compressing costs, never on
    a pipe on one host (round trip under ``SLOW_LINK_SECONDS``). ``cache_limit``: the
    size cap of the slave's persistent cache in bytes; least recently used files go
    first, never a live session's. ``subprocesses``: True bridges the processes the
    slave starts of its own interpreter (``subprocess.run([sys.executable, ...])``)
    too, through ``PYTHONPATH`` and a ``sitecustomize`` in the environment they inherit
    (multiprocessing's children are bridged either way).
    Installing twice on one gateway returns the first handle.
    """
    settings = dict(allow_extensions=allow_extensions, path=path, timeout=timeout,
                    cache_root=cache_root, allow=allow, deny=deny,
                    max_reply_bytes=max_reply_bytes, python=python, wheelhouse=wheelhouse,
                    progress=progress, compress=compress, cache_limit=cache_limit,
                    subprocesses=subprocesses)
    _check_cache_limit(cache_limit)
    if sum(choice is not None for choice in (path, python, wheelhouse)) > 1:
        raise BridgeError("give install() one of path=, python= and wheelhouse=")
    if isinstance(gateway, execnet.Group):
        return GroupBridge(gateway, settings)
    policy = Policy(allow, deny)  # a malformed rule fails here, before anything is sent
    existing = _installed_on(gateway)
    if existing is not None:
        return existing
    unforwarded = _hops.unforwarded_problem(gateway, _installed_on)
    if unforwarded:
        raise BridgeError(unforwarded)
    entries, environment = _served_environment(path, python, wheelhouse)
    MASTER_CACHES.disk.prepare()  # checked (thousands of entries) while the handshake runs
    with _install_lock(gateway):  # installs of other gateways go on meanwhile
        existing = _installed_on(gateway)
        if existing is not None:
            return existing
        handshake = Handshake(gateway, protocol.config(
            timeout, cache_root, environment["version"] if environment else None,
            cache_limit, subprocesses), timeout)
        facts = handshake.facts
        link = handshake.measure_link(None if compress is None else bool(compress))
        if wheelhouse is not None:  # the wheels that fit this slave, now that we know it
            entries = _wheelhouse.search_path(wheelhouse, facts)
        responder = Responder(SearchPath(entries, MASTER_CACHES.root), facts, Stats(),
                              environment or master_facts(),
                              bool(allow_extensions), policy, max_reply_bytes,
                              _progress_reporter(gateway, progress),
                              caches=MASTER_CACHES, link=link)
        bridge = Bridge(gateway, responder, handshake.hello[protocol.CHANNEL],
                        handshake.hello.get(protocol.CACHE_DIR), wheelhouse,
                        link.as_dict(),
                        handshake.hello.get(protocol.CACHE_PROBLEM))
        bridge.code_sent = handshake.code_sent
        _watch_route(bridge, handshake, timeout)
        handshake.finish()
        if environment is not None:
            bridge.check_versions(environment)
        with _registry_lock:
            _installed[gateway] = bridge
        return bridge


def _watch_route(bridge, handshake, timeout):
    """Behind a forwarding hop: the relay learns the request channel before READY."""
    route = _hops.route_of(bridge.gateway)
    if route is not None:
        handshake._guarded(route.watch, handshake.hello[protocol.CHANNEL].id, timeout)
        bridge.route = route
        route.bridge = bridge


def _installed_on(gateway):
    with _registry_lock:
        existing = _installed.get(gateway)
    return existing if existing is not None and existing.installed else None


def _install_lock(gateway):
    with _registry_lock:
        return _installing.setdefault(gateway, threading.Lock())


def _served_environment(path, python, wheelhouse):
    """(search path entries, facts of the interpreter whose environment they are, or None).
    ``python=`` asks that interpreter (a subprocess: before any lock is taken); a
    wheelhouse's entries are chosen once the slave has said what it is."""
    if python is not None:
        return read_environment(python)
    if wheelhouse is not None:
        return [], None
    if path is None:
        return default_search_path(), master_facts()
    return path, None
