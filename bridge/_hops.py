"""Forwarding hops: gateways made ``via=`` another gateway of the group, through the
bridge's relay (``compat/relay.py``) instead of execnet's ``serve_proxy_io``.

The relay keeps every body it passes to a leaf; the master remembers which (per hop,
``Hop.known``) and, in a later reply to any leaf behind that hop, sends such a body as
None with its hash in the record's AT_HOP. So a body crosses the master<->hop link once
per hop, not once per leaf. Policy stays here: the relay only fills bodies the master
named for that leaf, in a reply the master made for it.
"""
import collections
import contextlib
import logging
import threading
import weakref

from execnet import XSpec

from . import _execnet
from ._counters import Counters
from .compat import protocol
from .compat.neutral import ensure_text
from .errors import BridgeError

log = logging.getLogger("bridge.hops")

MAX_KNOWN = 1000000  # hashes remembered per hop (a set of 64-character texts: ~150 MB at most)

_hops = weakref.WeakKeyDictionary()  # hop gateway -> Hop
_routes = weakref.WeakKeyDictionary()  # leaf gateway -> Route
_lock = threading.Lock()


class HopStats(Counters):
    """What one hop saved: bytes of bodies that crossed the master<->hop link for its
    leaves (``bytes_upstream``, as on the wire), and bytes the hop filled from its cache
    (``bytes_from_hop``, as the relays report them)."""

    FIELDS = ("replies", "bytes_upstream", "bodies_upstream", "bytes_from_hop",
              "bodies_from_hop", "bodies_unfilled", "bytes_stored", "seconds_storing",
              "seconds_filling")


class Hop(object):
    """The master's view of one forwarding hop: the hashes its cache holds (bounded,
    oldest forgotten first) and its stats."""

    def __init__(self, gateway, bridge=None):
        self.id = gateway.id
        self.bridge = bridge  # the hop's own install: what the master sent the hop itself
        self.stats = HopStats()
        self._known = collections.OrderedDict()
        self._lock = threading.Lock()
        self.sending = threading.Lock()  # held while a reply to a leaf is composed and sent

    def holds(self, sha):
        with self._lock:
            if sha in self._known:
                return True
        own = _filler_of(self.bridge)
        return own is not None and own.holds(sha)

    def learn(self, sha):
        with self._lock:
            self._known[sha] = True
            while len(self._known) > MAX_KNOWN:
                self._known.popitem(last=False)

    def forget(self, hashes):
        """A leaf could not use these: the hop may not hold them either."""
        with self._lock:
            for sha in hashes:
                self._known.pop(sha, None)
        own = _filler_of(self.bridge)
        if own is not None:
            own.forget(hashes)


def _filler_of(bridge):
    """The Filler of the hop's own install (what the master sent the hop), if any."""
    responder = getattr(bridge, "responder", None)
    return getattr(responder, "filler", None)


GONE = object()  # the control channel's end: the relay ended, or the hop died


class Route(object):
    """One leaf's relay on its hop: the control channel, and the master's part of a reply."""

    def __init__(self, hop, control, hop_gateway, leaf_id):
        self.hop = hop
        self.control = control
        self.leaf_id = leaf_id
        self.bridge = None  # the leaf's install, once made
        self._hop_gateway = weakref.ref(hop_gateway)
        self._watching = threading.Event()
        control.setcallback(self._report, endmarker=GONE)

    def watch(self, channel_id, timeout):
        """Tell the relay which channel is the leaf's request channel; wait until it knows."""
        self.control.send(protocol.relay_message(protocol.WATCH, channel=channel_id))
        if not self._watching.wait(timeout):
            raise BridgeError("the relay on hop %s did not answer within %s s"
                              % (self.hop.id, timeout))

    def _report(self, msg):
        if msg is GONE:
            return self._gone()
        kind = protocol.relay_kind_of(msg)
        if kind == protocol.WATCHING:
            self._watching.set()
        elif kind == protocol.FILLED:
            unfilled = msg.get(protocol.UNFILLED) or []
            seconds = msg.get(protocol.SECONDS, 0.0)
            stored = msg.get(protocol.STORED_BYTES, 0)
            self.hop.stats.add(seconds_storing=seconds if stored else 0.0,
                               seconds_filling=0.0 if stored else seconds,
                               bytes_from_hop=msg.get(protocol.FILLED_BYTES, 0),
                               bodies_from_hop=msg.get(protocol.FILLED_BODIES, 0),
                               bodies_unfilled=len(unfilled),
                               bytes_stored=stored)
            self.hop.forget([ensure_text(sha) for sha in unfilled])

    def _gone(self):
        """A hop that died while still a member of its group (not exited): its leaf lost
        its link. Say so, and stop serving the leaf."""
        hop_gateway = self._hop_gateway()
        if hop_gateway is None or not _execnet.in_its_group(hop_gateway):
            return
        log.warning("execnet-bridge: the hop %s is gone: the leaf %s behind it lost its link "
                    "to the master, and its pending imports failed", self.hop.id, self.leaf_id)
        if self.bridge is not None:
            try:
                self.bridge.close()
            except (IOError, EOFError):  # the leaf's gateway has ended too
                pass

    @contextlib.contextmanager
    def replying(self, request, stats):
        """``with route.replying(request, the leaf's stats) as upstream:`` compose and send
        the reply to ``request`` (its BODIES frames, then the reply) inside, one leaf's
        reply at a time per hop. The relay reads frames in the order they come, so a body
        the master sent one leaf is on the hop before the next reply that names it AT_HOP
        gets there (eight cold leaves at once move each body over the link once)."""
        with self.hop.sending:
            upstream, wire = Upstream(self.hop, request), stats.bytes_wire
            yield upstream
            if upstream.replied:  # else the hop may not hold them: not learned
                for sha in upstream.travelled:
                    self.hop.learn(sha)
                self.hop.stats.add(replies=1, bytes_upstream=stats.bytes_wire - wire,
                                   bodies_upstream=len(upstream.travelled))


class Upstream(object):
    """One reply to a leaf, as its hop sees it (``Filler.filled`` asks): a body the hop
    holds travels as its hash alone (named AT_HOP, the relay fills it); one it does not
    is learned as held once the MODULE reply that brought it (in it, or ahead of it) was
    sent. A retry (``lost``) names nothing: the master sends every body then."""

    def __init__(self, hop, request):
        self.hop = hop
        lost = []
        if protocol.request_problem(request) is None:  # else refused: nothing to learn
            lost = [ensure_text(sha) for sha in request.get(protocol.LOST) or ()]
        hop.forget(lost)
        self.retry = bool(lost)
        self.travelled = []  # hashes of the bodies that crossed the master<->hop link
        self.replied = False  # was a MODULE reply sent?

    def holds(self, sha):
        return not self.retry and self.hop.holds(sha)

    def sent(self, sha):
        self.travelled.append(sha)

    def delivered(self, reply):
        """``reply`` went to the leaf."""
        self.replied = protocol.kind_of(reply) == protocol.MODULE


def route_of(gateway):
    """The Route of a leaf made through a relay, or None."""
    with _lock:
        return _routes.get(gateway)


def hop_of(gateway, bridge=None):
    """The Hop of ``gateway`` (made on first use)."""
    with _lock:
        hop = _hops.get(gateway)
        if hop is None:
            hop = _hops[gateway] = Hop(gateway, bridge)
        elif bridge is not None:
            hop.bridge = bridge
        return hop


def unforwarded_problem(gateway, bridge_of):
    """Why ``gateway`` may not be bridged as it is, or None: it was made ``via=`` a member
    by execnet's own makegateway after that member was bridged (``bridge_of``: its
    Bridge, which names the members its group had then), past the bridge's relay, so
    every body would cross the hop's link again for it. A group made ``via=`` before it
    was installed is bridged without forwarding (docs/hops.md)."""
    spec = getattr(gateway, "spec", None)
    via = getattr(spec, "via", None)
    group = _execnet.group_of(gateway)
    with _lock:
        routed = gateway in _routes
    if not via or routed or group is None or via not in group:
        return None
    hop = bridge_of(group[via])
    if hop is None or gateway.id in hop.group_members:
        return None
    return ("gateway '%s' was made via='%s' by the group's own makegateway, after '%s' was "
            "bridged: it would get no forwarding (every body crossing that hop's link again "
            "for it). Make it with the install handle's makegateway: handle = "
            "bridge.install(group); handle.makegateway('%s') (docs/hops.md)"
            % (gateway.id, via, via, _spec_text(spec)))


def _spec_text(spec):
    return getattr(spec, "_spec", None) or "popen//via=%s" % spec.via


def make_gateway(group, spec, install_hop):
    """``group.makegateway(spec)``; where ``spec`` goes ``via=`` a member, through the
    bridge's relay on that member, which ``install_hop(gateway)`` bridges first."""
    spec = spec if isinstance(spec, XSpec) else XSpec(spec)
    if not spec.via:
        return group.makegateway(spec)
    if spec.via not in group:
        raise BridgeError("no gateway %r in the group to go via" % (spec.via,))
    hop_gateway = group[spec.via]
    hop = hop_of(hop_gateway, install_hop(hop_gateway))
    group.allocate_id(spec)
    if spec.execmodel is None:
        spec.execmodel = group.remote_execmodel.backend
    channel = hop_gateway.remote_exec(protocol.RELAY_SOURCE)
    channel.send(dict(vars(spec)))  # as execnet sends it: a 2.7 master's str is text there
    channel.reconfigure(py2str_as_py3str=False, py3str_as_py2str=False)  # frames are bytes
    channel.send(_execnet.gateway_io_source())
    control = hop_gateway.newchannel()
    channel.send(control)
    gateway = _execnet.bootstrap(channel, group, spec)
    with _lock:
        _routes[gateway] = Route(hop, control, hop_gateway, gateway.id)
    _apply_place(gateway, spec)
    return gateway


PLACE_SOURCE = """
import os
folder, niceness, variables = channel.receive()
if folder:
    if not os.path.isdir(folder):
        os.mkdir(folder)
    os.chdir(folder)
if niceness and hasattr(os, "nice"):
    os.nice(niceness)
for key in variables or {}:
    os.environ[key] = variables[key]
"""


def _apply_place(gateway, spec):
    """The spec's chdir=, nice= and env:, as execnet's makegateway applies them."""
    if not (spec.chdir or spec.nice or spec.env):
        return
    channel = gateway.remote_exec(PLACE_SOURCE)
    channel.send((spec.chdir, int(spec.nice or 0), spec.env))
    channel.waitclose()


def hop_stats(gateways):
    """{hop id: its stats as a dict} of the forwarding hops among ``gateways``."""
    with _lock:
        hops = [_hops[gateway] for gateway in gateways if gateway in _hops]
    return dict((hop.id, hop.stats.as_dict()) for hop in hops)
