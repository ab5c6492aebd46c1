"""The forwarding hop: a bridged slave that starts a slave of its own (execnet's ``via=``)
and copies the execnet frames between the master and that leaf, as execnet's
``serve_proxy_io`` does, keeping on the way every body the master sends the leaf.

The master names, in a reply to the leaf, the bodies this hop holds (``AT_HOP``) and
sends them as None; the relay fills them from what it passed on, still in memory as the
master sent it, or from its own content-addressed store, checked against its hash first.
Bodies that went ahead of a reply, in BODIES frames, are written to that store piece by
piece (``Incoming``), as a slave writes them. It decodes only the frames the master sends
on the leaf's request channel (named by WATCH); every other frame passes as bytes,
untouched. It never answers a request: what may be served is decided on the master, for
each leaf.
"""
import struct
import threading
import time
import zlib

from . import protocol
from .hook import installed_finder
from .incoming import Incoming
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
    relay = Relay(channel, leaf_io, bridge_control, _execnet_base(channel))
    io_control.setcallback(io_control_answers(io_control, leaf_io, gateway_io))
    bridge_control.setcallback(relay.control)
    channel.setcallback(relay.to_leaf)
    relay.to_master()


def _execnet_base(channel):
    """The namespace of execnet's ``gateway_base`` running this slave, found through the
    channel's class (a ``__channelexec__`` program cannot import it by name): the relay
    reads and writes frames with its serializer. execnet's private API, used only here."""
    return type(channel).send.__globals__


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


def hop_session():
    """This hop's own bridge session (its blob store, its folder), or None."""
    finder = installed_finder()
    return finder.session if finder is not None else None


class Relay(object):
    """One leaf's frames, both ways; stores the bodies of its MODULE replies and BODIES
    frames, and fills the replies that name bodies AT_HOP."""

    def __init__(self, channel, leaf_io, bridge_control, gateway_base):
        self.channel = channel
        self.leaf_io = leaf_io
        self.bridge_control = bridge_control
        self.data_code = gateway_base["Message"].CHANNEL_DATA
        self.loads = gateway_base["loads_internal"]
        self.dumps = gateway_base["dumps_internal"]
        self.watched = set()  # ids of the leaf's request channels
        session = hop_session()
        self.blobs = session.blobs if session is not None else None
        self.store = hop_store(self.blobs, self.loads) if session is not None else None
        self.incoming = None  # writes the bodies streamed to this leaf into the store
        if self.store is not None:
            self.incoming = Incoming(self.blobs, session.session_folder.root,
                                     hold=False)  # its leaves read the blob store
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
                if self.store is not None:
                    self.store.touch()
                self.channel.send(header + self.leaf_io.read(length) if length else header)
        except (EOFError, IOError, OSError):
            self.outgoing.put(None)

    def to_leaf(self, frame):
        """Runs on the hop's receiver thread: one master->leaf frame, as one item, queued
        for this leaf's writer (so one leaf's fill or full pipe delays no other leaf). The
        frames of the leaf's replies go to the hop's store here, in arrival order: a later
        reply naming their bodies AT_HOP finds them there."""
        code, channel_id, _ = HEADER.unpack(frame[:HEADER.size])
        if self.store is not None:
            self.store.touch()
        ours = code == self.data_code and channel_id in self.watched and self.store
        if ours:
            self.store.add(frame, self)
        # (a body holding the bytes "at_hop" makes a reply decoded for nothing: harmless)
        self.outgoing.put((frame, bool(ours) and AT_HOP_BYTES in frame))

    def _write_out(self):
        """The leaf's writer: a reply that names nothing AT_HOP goes on untouched."""
        while True:
            item = self.outgoing.get()
            if item is None:
                return
            frame, fill = item
            if fill:
                try:
                    frame = self._filled(frame)
                except Exception:  # a hop that cannot fill saves nothing: the leaf asks
                    pass  # again with ``lost``, and the master sends the bodies
            try:
                self.leaf_io.write(frame)
            except (IOError, OSError, ValueError):  # the leaf is gone: to_master ends
                return

    def _filled(self, frame):
        """``frame`` with the AT_HOP bodies the hop holds filled in."""
        started = time.time()
        reply = decoded(self.loads, frame)
        if protocol.kind_of(reply) != protocol.MODULE:
            return frame
        with self.store.filling:  # one at a time: parallel fills only fight for the GIL
            self.store.read_frames()  # a body named AT_HOP may be one an earlier reply brought
            with self.blobs.in_use():
                report = fill_reply(reply, self.store)
            data = self.dumps(reply)
        report[protocol.SECONDS] = time.time() - started
        self.bridge_control.send(protocol.relay_message(protocol.FILLED, **report))
        return HEADER.pack(self.data_code, HEADER.unpack(frame[:HEADER.size])[1],
                           len(data)) + data

    def report_stored(self, stored, seconds):
        self.bridge_control.send(protocol.relay_message(
            protocol.FILLED, **{protocol.STORED_BYTES: stored, protocol.SECONDS: seconds}))


def decoded(loads, frame):
    """The message in ``frame``, or None."""
    try:
        return loads(frame[HEADER.size:], None, SAME_TYPES)
    except Exception:  # not ours to judge: the leaf gets it as it came
        return None


def send_reports(reports):
    """Tell the master, per relay, what was stored: ``{report: [bytes, seconds]}``."""
    for report, (stored, seconds) in reports.items():
        try:
            report(stored, seconds)
        except Exception:  # the relay's control channel is gone: nobody to tell
            pass


def bodies_of(reply):
    """[(sha, data as sent, compressed?)] of the bodies in a MODULE reply (packed or
    not; none where it is malformed: the leaf says so)."""
    bodies = []
    try:
        reply = protocol.unpacked(reply)
    except ValueError:
        return bodies
    for record in reply.get(protocol.MODULES) or ():
        compressed = set(ensure_text(sha) for sha in record.get(protocol.COMPRESSED) or ())
        for _, sha, data in record.get(protocol.FILES) or ():
            sha = ensure_text(sha)
            if data is not None:
                bodies.append((sha, data, sha in compressed))
    return bodies


class HopStore(object):
    """What this hop passed on to its leaves, shared by all its relays: the frames not
    yet read, the bodies read from them and not yet in the blob store (in memory, as the
    master sent them: compressed where they were), and the blob store.

    Bodies go to the blob store, each checked against its hash, on a thread of their own
    once no frame has passed for IDLE_SECONDS (storing takes no CPU from a leaf busy
    importing), or when more than MEMORY_BYTES wait. A fill never waits for that: it
    reads the frames that came before it, and takes a body from memory (the leaf checks
    it against its hash, as it checks any body) or, verified, from the blob store.
    Streamed bodies (BODIES frames) go to the blob store when their frame is read."""

    IDLE_SECONDS = 0.5
    MEMORY_BYTES = 256 * 1024 * 1024

    def __init__(self, blobs, loads):
        self.blobs = blobs
        self.loads = loads
        self.filling = threading.Lock()  # held by the relay filling a reply
        self._frames = []  # [(frame, relay)] arrived, not yet read
        self._bodies = {}  # sha -> (data, compressed, report): read, not yet stored
        self._held = 0  # bytes in _bodies and _frames
        self._last_frame = 0.0
        self._running = False  # is the storing thread running?
        self._reading = threading.Lock()  # one reader at a time: a fill sees every frame
        self._changed = threading.Condition(threading.Lock())  # guards the fields above

    def touch(self):
        """A frame passed: the leaves are busy."""
        self._last_frame = time.time()

    def add(self, frame, relay):
        """``frame`` came for ``relay``'s leaf; ``relay.report_stored(bytes, seconds)``
        once its bodies are kept."""
        with self._changed:
            self._frames.append((frame, relay))
            self._held += len(frame)
            start, self._running = not self._running, True
        if start:
            thread = threading.Thread(target=self._store_when_quiet)
            thread.daemon = True
            thread.start()

    def read_frames(self):
        """Read the bodies of every frame that came so far: a reply's into memory, those
        of BODIES frames written to the blob store as they come (``relay.incoming``). A
        frame that cannot be read is dropped: the leaf asks again for what it lacks."""
        reports = {}  # report -> [bytes, seconds] of streamed bodies stored
        with self._reading:
            with self._changed:
                frames, self._frames = self._frames, []
                self._held -= sum(len(frame) for frame, _ in frames)
            for frame, relay in frames:
                try:
                    self._read(frame, relay, reports)
                except Exception:  # never on the storing thread's or a fill's way
                    pass
        send_reports(reports)

    def _read(self, frame, relay, reports):
        msg = decoded(self.loads, frame)
        kind = protocol.kind_of(msg)
        if kind == protocol.BODIES:
            started = time.time()
            stored = self._write_pieces(msg, relay)
            done = reports.setdefault(relay.report_stored, [0, 0.0])
            done[0] += stored
            done[1] += time.time() - started
            return
        if kind is not None:  # a reply: what is still unfinished of its bodies goes
            relay.incoming.finish(msg.get(protocol.ID))
        bodies = bodies_of(msg) if kind == protocol.MODULE else []
        with self._changed:
            for sha, data, compressed in bodies:
                if sha not in self._bodies:
                    self._bodies[sha] = (data, compressed, relay.report_stored)
                    self._held += len(data)

    def _write_pieces(self, msg, relay):
        """Write a BODIES frame's pieces; the bytes of the bodies it completed."""
        incoming = relay.incoming
        incoming.intact.clear()  # on the hop, only this count reads it
        with self.blobs.in_use():
            incoming.receive(msg)
        sizes = dict((ensure_text(each[protocol.PIECE_SHA]), each[protocol.PIECE_SIZE])
                     for each in msg.get(protocol.PIECES) or () if not protocol.piece_problem(each))
        return sum(sizes.get(sha, 0) for sha in incoming.intact)

    def body(self, sha):
        """(bytes, compressed?) of body ``sha`` from memory, or verified from the blob
        store (a bad blob is removed) or a pack of the hop's own trees, or None."""
        with self._changed:
            held = self._bodies.get(sha)
        if held is not None:
            return held[0], held[1]
        data = self.blobs.read_verified(sha)
        if data is None:  # a .pyc the hop imported itself is in its tree's pack
            session = hop_session()
            data = session.bytecode_body(sha) if session is not None else None
        return None if data is None else (data, False)

    def _store_when_quiet(self):
        reports = {}  # report -> [bytes, seconds]
        try:
            self._store(reports)
        finally:  # a failure ends this thread: the next frame starts another
            with self._changed:
                self._running = False
            send_reports(reports)

    def _store(self, reports):
        while self._wait_quiet():
            self.read_frames()
            with self._changed:
                if not self._bodies:
                    continue
                sha = next(iter(self._bodies))
                data, compressed, report = self._bodies[sha]
            started = time.time()
            with self.blobs.in_use():
                kept = store_body(self.blobs, sha, data, compressed)
            done = reports.setdefault(report, [0, 0.0])
            done[0] += len(data) if kept else 0
            done[1] += time.time() - started
            with self._changed:
                del self._bodies[sha]
                self._held -= len(data)

    def _wait_quiet(self):
        """Wait until the leaves are quiet (or too much waits in memory); False when
        nothing is left to store (the thread ends)."""
        with self._changed:
            while True:
                if not self._frames and not self._bodies:
                    self._running = False
                    return False
                quiet = time.time() - self._last_frame
                if quiet >= self.IDLE_SECONDS or self._held > self.MEMORY_BYTES:
                    return True
                self._changed.wait(self.IDLE_SECONDS - quiet)


_stores = []  # this hop process's HopStore, made by its first relay
_stores_lock = threading.Lock()


def hop_store(blobs, loads):
    with _stores_lock:
        if not _stores:
            _stores.append(HopStore(blobs, loads))
        return _stores[0]


def fill_reply(reply, store):
    """Fill the AT_HOP bodies of ``reply``'s records that ``store`` holds; those it cannot
    stay listed (the leaf asks again, naming them lost). Returns a FILLED report."""
    filled_bytes, filled_bodies, unfilled = 0, 0, []
    for record in reply.get(protocol.MODULES) or ():
        wanted = protocol.at_hop(record)
        compressed = []
        for entry in record.get(protocol.FILES) or ():
            sha = ensure_text(entry[protocol.FILE_SHA])
            if entry[protocol.FILE_BODY] is None and sha in wanted:
                found = store.body(sha)
                if found is not None:
                    entry[protocol.FILE_BODY] = found[0]
                    if found[1]:
                        compressed.append(text_type(sha))
                    wanted.discard(sha)
                    filled_bytes, filled_bodies = filled_bytes + len(found[0]), filled_bodies + 1
        if compressed:
            record[text_type(protocol.COMPRESSED)] = list(
                record.get(protocol.COMPRESSED) or ()) + compressed
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
