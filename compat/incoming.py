"""Bodies that travel ahead of a reply, in BODIES frames, kept or written as they come.

A whole body (one piece) is checked against its hash and kept in memory, up to
HELD_BYTES, for the tree the reply will build: it is created once, there, rather than
written to the flat blob store and linked from it (sympy's cold import on this disk:
0.41 -> 0.38 s). Past that, and for a body in pieces, a large reply never sits whole
in the slave's memory: each piece is written to the session folder as it arrives (on
execnet's receiver thread, so a slow disk slows the sender instead of filling memory),
hashed on the way, and the body is renamed into the blob store once it is whole and
matches its hash. The reply that follows names it with None; the session finds it
among ``held`` or ``intact``. Nothing here raises: a bad piece drops its body, and the
reply's check then finds it lacking and asks again (``lost``).
"""
import hashlib
import os
import tempfile
import threading

from . import files, protocol
from .blobs import check
from .neutral import ensure_text

PREFIX = ".incoming-"  # a body being written, in the session folder
HELD_BYTES = 32 * 1024 * 1024  # whole bodies kept in memory for the reply's tree, at most


class Incoming(object):
    """Writes the pieces of one session's BODIES frames; ``intact``: the hashes of the
    bodies it stored whole and checked (the session trusts them without reading)."""

    def __init__(self, blobs, folder, hold=True):
        self.blobs = blobs
        self.folder = folder  # the session folder: eviction never touches a live one
        self.intact = set()  # of the bodies in the blob store, and those ``held``
        # sha -> checked bytes of a whole body, until the reply's tree takes it (a hop's
        # relay keeps none: its leaves read the blob store)
        self.held = _HeldBytes(HELD_BYTES if hold else 0)
        self._partial = {}  # (request id, sha) -> Partial
        self.failed = []  # why pieces were dropped, newest last (for messages and tests)

    def receive(self, msg):
        """Write the pieces of one BODIES frame; never raises."""
        request_id = msg.get(protocol.ID)
        for each in msg.get(protocol.PIECES) or ():
            sha = None
            try:
                problem = protocol.piece_problem(each)
                if problem:
                    raise ValueError(problem)
                sha = ensure_text(each[protocol.PIECE_SHA])
                self._piece(request_id, sha, each[protocol.PIECE_OFFSET],
                            each[protocol.PIECE_SIZE], each[protocol.PIECE_BYTES],
                            each[protocol.PIECE_COMPRESSED])
            except (ValueError, IOError, OSError) as error:
                self._drop(request_id, sha)
                self.failed = (self.failed + [str(error)])[-8:]

    def finish(self, request_id):
        """The reply to ``request_id`` came: bodies still unfinished are dropped."""
        for key in [key for key in self._partial if key[0] == request_id]:
            self._drop(*key)

    def _piece(self, request_id, sha, offset, size, data, compressed):
        if compressed:
            data = protocol.inflated(data, sha)
        key = (request_id, sha)
        if protocol.is_whole(offset, size, len(data)):
            self._drop(request_id, sha)
            if sha in self.held or os.path.exists(self.blobs.path(sha)):
                return  # had: the session checks a blob it did not write
            if self.held.fits(data):
                check(sha, data)
                self.held.add(sha, data)
            else:
                self.blobs.put(sha, data)
            self.intact.add(sha)
            return
        if offset == 0:
            self._drop(request_id, sha)
            self._partial[key] = Partial(self.folder, sha, size)
        partial = self._partial.get(key)
        if partial is None or partial.offset != offset:
            raise ValueError("a piece of %s at %d came out of order" % (sha, offset))
        partial.write(data)
        if partial.offset == size:
            del self._partial[key]
            files.make_folder(self.blobs.root)
            if self.blobs.keep(sha, partial.close()):
                self.intact.add(sha)

    def _drop(self, request_id, sha):
        partial = self._partial.pop((request_id, sha), None)
        if partial is not None:
            partial.discard()


class _HeldBytes(dict):
    """{sha: bytes} held until a tree takes them (``pop``), within a budget."""

    def __init__(self, budget):
        dict.__init__(self)
        self.budget = budget
        self._lock = threading.Lock()  # added on the receiver thread, taken on another
        self._size = 0

    def fits(self, data):
        return self._size + len(data) <= self.budget

    def add(self, sha, data):
        with self._lock:
            if sha not in self:
                self[sha] = data
                self._size += len(data)

    def pop(self, sha):
        with self._lock:
            data = dict.pop(self, sha)
            self._size -= len(data)
            return data


class Partial(object):
    """One body being written: a private temporary file and the hash so far."""

    def __init__(self, folder, sha, size):
        handle, self.temporary = tempfile.mkstemp(dir=folder, prefix=PREFIX)
        self.stream = os.fdopen(handle, "wb")
        self.sha, self.size, self.offset = sha, size, 0
        self.hash = hashlib.sha256()

    def write(self, data):
        if self.offset + len(data) > self.size:
            raise ValueError("the pieces of %s exceed its size, %d bytes" % (self.sha, self.size))
        self.stream.write(data)
        self.hash.update(data)
        self.offset += len(data)

    def close(self):
        """The whole body's file, once it matches its hash (ValueError: it does not)."""
        self.stream.close()
        if self.hash.hexdigest() != self.sha:
            self.discard()
            raise ValueError("received bytes do not match their sha256 %s" % self.sha)
        return self.temporary

    def discard(self):
        try:
            self.stream.close()
            os.unlink(self.temporary)
        except OSError:
            pass
