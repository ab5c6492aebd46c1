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
import time
import zlib

from . import protocol
from .hook import installed_finder
from .neutral import PY2, ensure_text, text_type

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue

HEADER = struct.Struct("!bii")  # execnet's frame: message code, channel id, data length
AT_HOP_BYTES = protocol.AT_HOP.encode("ascii")  # as the field's name is serialized
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
        self.pending = pending_store() if self.blobs is not None else None
        self.outgoing = queue.Queue()  # (frame, fill it?) for the leaf, in order; None: end
        writer = threading.Thread(target=self._write_out)
        writer.daemon = True
        writer.start()

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
                if self.pending is not None:
                    self.pending.touch()
                self.channel.send(header + self.leaf_io.read(length) if length else header)
        except (EOFError, IOError, OSError):
            self.outgoing.put(None)

    def to_leaf(self, frame):
        """Runs on the hop's receiver thread: one master->leaf frame, as one item, queued
        for this leaf's writer (so one leaf's fill or full pipe delays no other leaf). The
        bodies the master sent are queued for the hop's store here, in arrival order:
        a later reply naming them AT_HOP finds them queued before it."""
        code, channel_id, _ = HEADER.unpack(frame[:HEADER.size])
        if self.pending is not None:
            self.pending.touch()
        ours = code == self.data_code and channel_id in self.watched and self.pending
        if ours:
            self.pending.add(lambda: self._store(frame))
        # (a body holding the bytes "at_hop" makes a reply decoded for nothing: harmless)
        self.outgoing.put((frame, bool(ours) and AT_HOP_BYTES in frame))

    def _write_out(self):
        """The leaf's writer: a reply that names nothing AT_HOP goes on untouched."""
        while True:
            item = self.outgoing.get()
            if item is None:
                return
            frame, fill = item
            try:
                self.leaf_io.write(self._filled(frame) if fill else frame)
            except (IOError, OSError, ValueError):  # the leaf is gone: to_master ends
                return

    def _decoded(self, frame):
        """The MODULE reply in ``frame``, or None."""
        try:
            reply = self.loads(frame[HEADER.size:], None, SAME_TYPES)
        except Exception:  # not ours to judge: the leaf gets it as it came
            return None
        return reply if protocol.kind_of(reply) == protocol.MODULE else None

    def _filled(self, frame):
        """``frame`` with the AT_HOP bodies the hop holds filled in."""
        started = time.time()
        reply = self._decoded(frame)
        if reply is None:
            return frame
        self.pending.wait()  # a body named AT_HOP may be one an earlier reply brought
        with self.pending.filling:  # one at a time: parallel fills only fight for the GIL
            with self.blobs.in_use():
                report = fill_reply(reply, self.blobs)
            data = self.dumps(reply)
        report[protocol.SECONDS] = time.time() - started
        self.bridge_control.send(protocol.relay_message(protocol.FILLED, **report))
        return HEADER.pack(self.data_code, HEADER.unpack(frame[:HEADER.size])[1],
                           len(data)) + data

    def _store(self, frame):
        """Keep the bodies the master sent in ``frame``, each checked against its hash."""
        reply = self._decoded(frame)
        if reply is None:
            return
        stored, started = 0, time.time()
        with self.blobs.in_use():
            for record in reply.get(protocol.MODULES) or ():
                compressed = set(ensure_text(sha) for sha in
                                 record.get(protocol.COMPRESSED) or ())
                for _, sha, data in record.get(protocol.FILES) or ():
                    sha = ensure_text(sha)
                    if data is not None and store_body(self.blobs, sha, data, sha in compressed):
                        stored += len(data)
        self.bridge_control.send(protocol.relay_message(
            protocol.FILLED, **{protocol.STORED_BYTES: stored,
                                protocol.SECONDS: time.time() - started}))


class PendingStore(object):
    """The frames this hop passed on and has not yet stored the bodies of, shared by all
    its relays. Their bodies are stored on a thread of their own once no frame has passed
    for IDLE_SECONDS (so storing takes no CPU from a leaf busy importing them, on this
    host or on the way), or at once when a reply naming bodies AT_HOP waits for them."""

    IDLE_SECONDS = 0.5

    def __init__(self):
        self._jobs = []  # functions that store, oldest first
        self._running = False  # is a thread running them?
        self._urgent = 0  # how many fills wait for them
        self._last_frame = 0.0
        self._changed = threading.Condition(threading.Lock())
        self.filling = threading.Lock()  # held by the relay filling a reply

    def touch(self):
        """A frame passed: the leaves are busy."""
        self._last_frame = time.time()

    def add(self, job):
        with self._changed:
            self._jobs.append(job)
            start, self._running = not self._running, True
        if start:
            thread = threading.Thread(target=self._run)
            thread.daemon = True
            thread.start()

    def _next_job(self):
        with self._changed:
            while self._jobs and not self._urgent:
                quiet = time.time() - self._last_frame
                if quiet >= self.IDLE_SECONDS:
                    break
                self._changed.wait(self.IDLE_SECONDS - quiet)
            if not self._jobs:
                self._running = False
                self._changed.notify_all()
                return None
            return self._jobs[0]

    def _run(self):
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                job()
            except Exception:  # a body not stored is re-fetched, never served wrong
                pass
            with self._changed:
                self._jobs.pop(0)
                self._changed.notify_all()

    def wait(self):
        """Until every body passed on so far is stored."""
        with self._changed:
            self._urgent += 1
            self._changed.notify_all()
            try:
                while self._jobs:
                    self._changed.wait(1.0)
            finally:
                self._urgent -= 1


_pending = []  # this hop process's PendingStore, made by the first relay
_pending_lock = threading.Lock()


def pending_store():
    with _pending_lock:
        if not _pending:
            _pending.append(PendingStore())
        return _pending[0]


def fill_reply(reply, blobs):
    """Fill the AT_HOP bodies of ``reply``'s records that ``blobs`` holds intact; those it
    cannot stay listed (the leaf asks again, naming them lost). Returns a FILLED report."""
    filled_bytes, filled_bodies, unfilled = 0, 0, []
    for record in reply.get(protocol.MODULES) or ():
        wanted = protocol.at_hop(record)
        for entry in record.get(protocol.FILES) or ():
            sha = ensure_text(entry[1])
            if entry[2] is None and sha in wanted:
                body = blobs.read_verified(sha)
                if body is not None:
                    entry[2] = body
                    wanted.discard(sha)
                    filled_bytes, filled_bodies = filled_bytes + len(body), filled_bodies + 1
        if protocol.AT_HOP in record:
            record[text_type(protocol.AT_HOP)] = [text_type(sha) for sha in sorted(wanted)]
            unfilled.extend(wanted)
    return {protocol.FILLED_BYTES: filled_bytes, protocol.FILLED_BODIES: filled_bodies,
            protocol.UNFILLED: [text_type(sha) for sha in unfilled]}


def store_body(blobs, sha, data, compressed):
    """Store one body the master sent, uncompressed; whether it was kept. One that does
    not match its hash is not (the leaf, which checks it too, refuses it)."""
    try:
        blobs.put(sha, zlib.decompress(data) if compressed else data)
    except (ValueError, zlib.error, IOError, OSError):
        return False
    return True
