"""Bodies sent ahead of a reply, in BODIES frames (protocol: INLINE_BYTES, CHUNK_BYTES).

A MODULE reply carries at most INLINE_BYTES of bodies itself. The rest, and every
body larger than a frame, are read a frame at a time and sent ahead of it, so the
master holds about one frame per slave however large the reply or its files, and
the slave writes each piece as it comes, while the master reads the next.
"""
from .compat import protocol

REPORT_EVERY = 4  # frames between two progress reports of one reply


class SlaveGone(Exception):
    """A frame could not be sent: the slave or its channel is gone, and so is the reply."""


class Stream(object):
    """The BODIES frames of one reply, sent on ``send`` as they fill up."""

    def __init__(self, request_id, send, link, deflater, report=None):
        self.request_id = request_id
        self.send = send
        self.link = link  # which pieces travel compressed (Deflater.wire_bodies)
        self.deflater = deflater
        self.report = report  # called with the bytes of bodies streamed so far
        self.inline = 0  # bytes of bodies the reply itself carries
        self.streamed = 0  # bytes of bodies sent ahead
        self.wire = 0  # what those took on the wire
        self.frames = 0
        self._pieces, self._size = [], 0

    def carries(self, size):
        """Does the reply carry a body of ``size`` bytes itself? Else it goes ahead."""
        if size > protocol.CHUNK_BYTES or self.inline + size > protocol.INLINE_BYTES:
            return False
        self.inline += size
        return True

    def add(self, path, sha, size, chunks):
        """Send the body ``sha`` (``size`` bytes) ahead, its ``chunks`` of at most
        CHUNK_BYTES read one at a time."""
        offset = 0
        for chunk in chunks:
            self._pieces.append((path, sha, offset, size, chunk))
            self._size += len(chunk)
            offset += len(chunk)
            if self._size >= protocol.CHUNK_BYTES:
                self.flush()
        if offset != size:
            raise IOError("%s changed while it was sent: %d bytes, %d read" % (path, size, offset))

    def flush(self):
        """Send the pieces gathered so far as one frame."""
        if not self._pieces:
            return
        keys = [(path, sha if protocol.is_whole(offset, size, len(data))
                 else "%s@%d" % (sha, offset), data)
                for path, sha, offset, size, data in self._pieces]
        packed = self.deflater.wire_bodies(self.link, keys)
        pieces = []
        for (_, sha, offset, size, data), wire in zip(self._pieces, packed):
            pieces.append(protocol.piece(sha, offset, size, data if wire is None else wire,
                                         wire is not None))
            self.streamed += len(data)
            self.wire += len(data if wire is None else wire)
        self._pieces, self._size = [], 0
        try:
            self.send(protocol.bodies_frame(self.request_id, pieces))
        except (IOError, EOFError, ValueError) as error:  # what execnet raises on a dead channel
            raise SlaveGone(str(error))
        self.frames += 1
        if self.report is not None and self.frames % REPORT_EVERY == 0:
            self.report(self.streamed)
