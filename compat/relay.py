"""The forwarding hop: a bridged slave that starts a slave of its own (execnet's ``via=``)
and copies the execnet frames between the master and that leaf, as execnet's
``serve_proxy_io`` does, keeping on the way every body the master sends the leaf.

The master names, in a reply to the leaf, the bodies this hop holds (``AT_HOP``) and
sends them as None; the relay fills them from its own content-addressed store, each
checked against its hash first. It decodes only the frames the master sends on the
leaf's request channel (named by WATCH); every other frame passes as bytes, untouched.
It never answers a request: what may be served is decided on the master, for each leaf.
"""
import struct
import threading
import zlib

from . import protocol
from .blobs import digest
from .hook import installed_finder
from .neutral import PY2, ensure_text, text_type

HEADER = struct.Struct("!bii")  # execnet's frame: message code, channel id, data length
SAME_TYPES = (False, False)  # decode as the leaf's request channel does: text stays text


def serve(channel):
    """The program the master runs on the hop (``protocol.RELAY_SOURCE``)."""
    spec = channel.receive()
    gateway_io = _gateway_io(channel.receive())
    bridge_control = channel.receive()
    io_control = channel.receive()
    leaf_io = gateway_io["create_io"](gateway_io["PseudoSpec"](spec), channel.gateway.execmodel)
    relay = Relay(channel, leaf_io, bridge_control, type(channel).send.__globals__)
    io_control.setcallback(io_control_answers(io_control, leaf_io, gateway_io))
    bridge_control.setcallback(relay.control)
    channel.setcallback(relay.to_leaf)
    relay.to_master()


def _gateway_io(source):
    """execnet's ``gateway_io`` (sent by the master: this slave need not have execnet),
    run as a module of its own, never as a ``__channelexec__`` program."""
    namespace = {"__name__": "_execnet_bridge_gateway_io"}
    if PY2:  # 2.7 refuses a coding declaration in unicode source
        source = source.encode("utf-8")
    exec(compile(source, "<execnet gateway_io>", "exec"), namespace)
    return namespace


def io_control_answers(io_control, leaf_io, gateway_io):
    """The callback of execnet's ProxyIO control channel: wait, kill, close, address."""
    actions = {gateway_io["RIO_WAIT"]: leaf_io.wait, gateway_io["RIO_KILL"]: leaf_io.kill,
               gateway_io["RIO_CLOSE_WRITE"]: leaf_io.close_write,
               gateway_io["RIO_REMOTEADDRESS"]: lambda: getattr(leaf_io, "remoteaddress", None)}

    def answer(code):
        io_control.send(actions[code]())
    return answer


def hop_blobs():
    """This hop's own blob store (its bridge session's), or None if it has none."""
    finder = installed_finder()
    return finder.session.blobs if finder is not None else None


class Relay(object):
    """One leaf's frames, both ways; fills and stores the bodies of its MODULE replies."""

    def __init__(self, channel, leaf_io, bridge_control, gateway_base):
        self.channel = channel
        self.leaf_io = leaf_io
        self.bridge_control = bridge_control
        self.data_code = gateway_base["Message"].CHANNEL_DATA
        self.loads = gateway_base["loads_internal"]
        self.dumps = gateway_base["dumps_internal"]
        self.watched = set()  # ids of the leaf's request channels
        self.blobs = hop_blobs()
        self.pending = pending_store(self.blobs) if self.blobs is not None else None

    def control(self, msg):
        """WATCH from the master: the id of the leaf's request channel."""
        if protocol.relay_kind_of(msg) == protocol.WATCH:
            self.watched.add(int(msg[protocol.CHANNEL]))
            self.bridge_control.send(protocol.relay_message(protocol.WATCHING))

    def to_master(self):
        """Copy the leaf's frames to the master until the leaf goes; the first byte is
        the bootstrap's "1", then whole frames, each one channel item."""
        try:
            self.channel.send(self.leaf_io.read(1))
            while True:
                header = self.leaf_io.read(HEADER.size)
                length = HEADER.unpack(header)[2]
                self.channel.send(header + self.leaf_io.read(length) if length else header)
        except (EOFError, IOError, OSError):
            return

    def to_leaf(self, frame):
        """Runs on the hop's receiver thread: one master->leaf frame, as one item."""
        code, channel_id, _ = HEADER.unpack(frame[:HEADER.size])
        stored = []
        if code == self.data_code and channel_id in self.watched and self.blobs is not None:
            frame, stored = self._filled(frame)
        try:
            self.leaf_io.write(frame)
        except (IOError, OSError, ValueError):  # the leaf is gone: to_master ends
            return
        self._store(stored)

    def _filled(self, frame):
        """(the frame with the AT_HOP bodies filled, [(sha, data, compressed)] to store)."""
        try:
            reply = self.loads(frame[HEADER.size:], None, SAME_TYPES)
        except Exception:  # not ours to judge: the leaf gets it as it came
            return frame, []
        if protocol.kind_of(reply) != protocol.MODULE:
            return frame, []
        if any(record.get(protocol.AT_HOP) for record in reply.get(protocol.MODULES) or ()):
            self.pending.wait()  # a body named AT_HOP may be one the last reply brought
        with self.blobs.in_use():
            report, stored = fill_reply(reply, self.blobs)
        data = self.dumps(reply)
        self.bridge_control.send(protocol.relay_message(protocol.FILLED, **report))
        return HEADER.pack(self.data_code, HEADER.unpack(frame[:HEADER.size])[1],
                           len(data)) + data, stored

    def _store(self, bodies):
        if bodies:
            self.pending.add(bodies)


class PendingStore(object):
    """The bodies this hop has passed on and not yet stored, shared by all its relays:
    stored on a thread of their own after the leaf has its reply (storing costs the leaf
    no time), and waited for before a reply that names bodies AT_HOP is filled."""

    def __init__(self, blobs):
        self.blobs = blobs
        self._bodies = []  # [(sha, data, compressed)], oldest first
        self._running = False  # is a thread storing them?
        self._changed = threading.Condition(threading.Lock())

    def add(self, bodies):
        with self._changed:
            self._bodies.extend(bodies)
            start, self._running = not self._running, True
        if start:
            thread = threading.Thread(target=self._store_all)
            thread.daemon = True
            thread.start()

    def _store_all(self):
        while True:
            with self._changed:
                if not self._bodies:
                    self._running = False
                    self._changed.notify_all()
                    return
                sha, data, compressed = self._bodies[0]
            with self.blobs.in_use():
                store_body(self.blobs, sha, data, compressed)
            with self._changed:
                self._bodies.pop(0)

    def wait(self):
        with self._changed:
            while self._bodies:
                self._changed.wait(1.0)


_pending = {}  # blob folder -> its PendingStore, one per hop process
_pending_lock = threading.Lock()


def pending_store(blobs):
    with _pending_lock:
        return _pending.setdefault(blobs.root, PendingStore(blobs))


def fill_reply(reply, blobs):
    """Fill the AT_HOP bodies of ``reply``'s records that ``blobs`` holds intact; those it
    cannot stay listed (the leaf asks again, naming them lost). Returns (a FILLED report,
    the bodies that came, to store)."""
    filled_bytes, filled_bodies, unfilled, stored = 0, 0, [], []
    for record in reply.get(protocol.MODULES) or ():
        wanted = protocol.at_hop(record)
        compressed = set(ensure_text(sha) for sha in record.get(protocol.COMPRESSED) or ())
        for entry in record.get(protocol.FILES) or ():
            sha = ensure_text(entry[1])
            if entry[2] is not None:
                stored.append((sha, entry[2], sha in compressed))
            elif sha in wanted:
                body = verified_body(blobs, sha)
                if body is not None:
                    entry[2] = body
                    wanted.discard(sha)
                    filled_bytes, filled_bodies = filled_bytes + len(body), filled_bodies + 1
        if protocol.AT_HOP in record:
            record[text_type(protocol.AT_HOP)] = [text_type(sha) for sha in sorted(wanted)]
            unfilled.extend(wanted)
    report = {protocol.FILLED_BYTES: filled_bytes, protocol.FILLED_BODIES: filled_bodies,
              protocol.UNFILLED: [text_type(sha) for sha in unfilled],
              protocol.STORED_BYTES: sum(len(data) for _, data, _ in stored)}
    return report, stored


def verified_body(blobs, sha):
    """The bytes of blob ``sha`` if they match it (a bad blob is removed), else None."""
    path = blobs.verified(sha)
    if path is None:
        return None
    try:
        with open(path, "rb") as stream:
            body = stream.read()
    except (IOError, OSError):
        return None
    return body if digest(body) == sha else None


def store_body(blobs, sha, data, compressed):
    """Store one body the master sent, uncompressed; a body that does not match its hash
    is not kept (the leaf, which checks it too, refuses it)."""
    try:
        blobs.put(sha, zlib.decompress(data) if compressed else data)
    except (ValueError, zlib.error, IOError, OSError):
        pass
