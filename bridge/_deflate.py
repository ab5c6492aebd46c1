"""Which bodies travel zlib-compressed: decided per link and per body, by time.

A body is compressed where the wire time it saves exceeds what compressing it
costs (level 1 on demand, inflating on the slave): so on a slow link bodies are
deflated as they are sent; on a fast one only a body the master deflated before
pays, and those are deflated in the background for the next slave; on a pipe on
one host nothing pays, and nothing is compressed. The per-byte costs below are
the priors; each master measures its own as it goes (docs/performance.md has the
figures behind them).
"""
import collections
import logging
import os
import sys
import threading
import time
import zlib

log = logging.getLogger("bridge.deflate")

# A round trip faster than this is a pipe on one host (or a LAN): bodies travel as they
# are, and the handshake does not time the bandwidth.
SLOW_LINK_SECONDS = 0.002
PAYLOAD_BYTES = 256 * 1024  # the PING that times the bandwidth of a slow link
COMPRESS_AT_LEAST = 512  # smaller bodies travel as they are: zlib's own cost per call
ON_DEMAND_LEVEL = 1  # compressing while the slave waits: fast, a little larger
AHEAD_LEVEL = 6  # compressing in the background, for the next slave (12% smaller)
INFLATE_SECONDS_PER_BYTE = 4e-9  # the slave's zlib.decompress (2.8-3.4 ns measured)
DEFLATE_SECONDS_PER_BYTE = 10e-9  # level 1, until this master has timed its own
EXPECTED_RATIO = 0.35  # packed / raw of a body of a kind not compressed yet
NOT_SMALLER = b""  # kept for a body that zlib shrinks by less than a tenth
QUEUED_AHEAD_BYTES = 256 * 1024 * 1024  # bodies waiting for the background, at most
# Deflating while a slave waits. os.cpu_count is 3.4+ (2.7: 2); multiprocessing's would
# cost 3.5 ms of the master side's import.
DEFLATE_THREADS = min(4, getattr(os, "cpu_count", lambda: None)() or 2)
BYTES_PER_THREAD = 1024 * 1024  # less is not worth starting a thread for
DEFLATE_NOW = object()  # a body to deflate while the slave waits


def _deflated(data, level):
    """``data`` zlib-compressed, or NOT_SMALLER where that saves less than a tenth."""
    packed = zlib.compress(data, level)
    return packed if len(packed) < 0.9 * len(data) else NOT_SMALLER


def kind_of_body(path):
    """What compresses alike: source, bytecode, binaries, the rest."""
    name = path.rpartition("/")[2]
    suffix = name.rpartition(".")[2] if "." in name else ""
    return suffix if suffix in ("py", "pyc", "so", "pyd", "txt", "json") else ""


def _yield_cpu():
    """Lower this thread's priority where a thread has its own (Linux): the compressing
    done ahead must not slow the replies, nor a slave on the same machine."""
    native_id = getattr(threading, "get_native_id", None)  # Python 3.8+
    if native_id is None or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, native_id(), 19)
    except (AttributeError, OSError):
        pass


class Link(object):
    """What the handshake measured of one gateway's link, and the choice it makes.

    ``forced``: install()'s ``compress`` (True, False, or None: decide by time).
    ``bandwidth``: bytes a second from master to slave, None where not timed (a fast
    link: its round trip is under SLOW_LINK_SECONDS)."""

    def __init__(self, round_trip, bandwidth=None, forced=None):
        self.round_trip = round_trip
        self.bandwidth = bandwidth
        self.forced = forced

    @property
    def slow(self):
        return self.bandwidth is not None and self.round_trip >= SLOW_LINK_SECONDS

    def pays(self, raw, packed, deflate_seconds_per_byte=0.0):
        """Whether sending ``packed`` bytes instead of ``raw`` saves more time than
        deflating (at this cost a byte; 0 for a body deflated before) and inflating."""
        if self.forced is not None:
            return self.forced
        if not self.slow:
            return False
        saved = (raw - packed) / float(self.bandwidth)
        return saved > raw * (deflate_seconds_per_byte + INFLATE_SECONDS_PER_BYTE)

    @property
    def compresses(self):
        """Whether any body may travel compressed on this link."""
        return self.pays(1.0, EXPECTED_RATIO) if self.forced is None else self.forced

    def as_dict(self):
        return {"round_trip": self.round_trip, "bandwidth": self.bandwidth,
                "compress": bool(self.compresses),
                "on_demand": bool(self.pays(1.0, EXPECTED_RATIO, DEFLATE_SECONDS_PER_BYTE))}


class Deflater(object):
    """The master's compressed bodies (by hash, bounded, shared by every slave) and its
    figures: how well each kind of body compresses, how fast this master deflates."""

    def __init__(self, cache):
        self.cache = cache  # a BoundedCache: sha -> packed bytes, or NOT_SMALLER
        self._lock = threading.Lock()
        self._ratios = {}  # kind of body -> [raw bytes, packed bytes] deflated so far
        self._speed = [1e6, 1e6 * DEFLATE_SECONDS_PER_BYTE]  # [bytes, seconds] at level 1
        self._ahead = collections.deque()
        self._queued = set()
        self._queued_bytes = 0
        self._worker = None

    def ratio(self, path):
        with self._lock:
            raw, packed = self._ratios.get(kind_of_body(path), (0, 0))
        return (packed + EXPECTED_RATIO * 1e5) / (raw + 1e5)  # a prior worth 100 KB

    def seconds_per_byte(self):
        with self._lock:
            return self._speed[1] / self._speed[0]

    def wire_bodies(self, link, bodies):
        """The bytes that carry each ``(path, sha, data)`` of ``bodies`` on ``link``:
        compressed, or None (as it is)."""
        if not link.compresses:
            return [None] * len(bodies)
        unique = dict((sha, (path, sha, data)) for path, sha, data in bodies)
        chosen = dict((sha, self._choose(link, *body)) for sha, body in unique.items())
        now = [unique[sha] for sha, choice in chosen.items() if choice is DEFLATE_NOW]
        for body, packed in zip(now, self._deflate_now(now)):
            chosen[body[1]] = packed or None
            if packed and link.slow:  # 12% smaller for the next slow slave
                self.ahead(*body)
        return [chosen[sha] for _, sha, _ in bodies]  # one choice per hash: COMPRESSED

    def _choose(self, link, path, sha, data):
        """None (as it is), the bytes deflated before, or DEFLATE_NOW."""
        if len(data) < COMPRESS_AT_LEAST:
            return None
        packed = self.cache.peek(sha)
        if packed is not None:
            return packed if packed and link.pays(len(data), len(packed)) else None
        expected = len(data) * self.ratio(path)
        if link.pays(len(data), expected, self.seconds_per_byte()):
            return DEFLATE_NOW
        if link.pays(len(data), expected):
            self.ahead(path, sha, data)
        return None

    def _deflate_now(self, bodies):
        """``bodies`` deflated at ON_DEMAND_LEVEL while the slave waits, shared among
        up to DEFLATE_THREADS threads (zlib lets go of the GIL)."""
        packed = [None] * len(bodies)

        def work(indexes):
            for index in indexes:
                try:
                    packed[index] = self.deflate(bodies[index][0], bodies[index][1],
                                                 bodies[index][2], ON_DEMAND_LEVEL)
                except Exception:  # that body travels as it is
                    log.exception("execnet-bridge could not compress %s", bodies[index][0])

        size = sum(len(data) for _, _, data in bodies)
        count = max(1, min(DEFLATE_THREADS, len(bodies), size // BYTES_PER_THREAD))
        helpers = [threading.Thread(target=work, args=(range(first, len(bodies), count),))
                   for first in range(1, count)]
        for helper in helpers:
            helper.start()
        work(range(0, len(bodies), count))
        for helper in helpers:
            helper.join()
        return packed

    def deflate(self, path, sha, data, level):
        """Compress ``data`` now, keep the result by ``sha`` (in place of a larger one
        deflated before), learn from it."""
        started = time.time()
        packed = _deflated(data, level)
        seconds = time.time() - started
        self.cache.get(sha, lambda: packed, valid=lambda kept: len(kept) <= len(packed))
        with self._lock:
            figures = self._ratios.setdefault(kind_of_body(path), [0, 0])
            figures[0] += len(data)
            figures[1] += len(packed or data)
            if level == ON_DEMAND_LEVEL:
                self._speed[0] += len(data)
                self._speed[1] += seconds
        return packed

    def ahead(self, path, sha, data):
        """Compress ``data`` in the background, for the next slave on a slow link."""
        with self._lock:
            if sha in self._queued or self._queued_bytes + len(data) > QUEUED_AHEAD_BYTES:
                return
            self._queued.add(sha)
            self._queued_bytes += len(data)
            self._ahead.append((path, sha, data))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work_ahead,
                                                name="execnet-bridge deflate")
                self._worker.daemon = True
                self._worker.start()

    def _work_ahead(self):
        _yield_cpu()
        while True:
            with self._lock:
                if not self._ahead:
                    self._worker = None
                    return
                path, sha, data = self._ahead.popleft()
            try:
                self.deflate(path, sha, data, AHEAD_LEVEL)
            except Exception:  # a bug must not lose the queue: the body just travels raw
                log.exception("execnet-bridge could not compress %s ahead", path)
            finally:
                with self._lock:
                    self._queued.discard(sha)
                    self._queued_bytes -= len(data)

    def idle(self, timeout):
        """Wait until nothing is queued for the background; whether that happened."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if self._worker is None:
                    return True
            time.sleep(0.01)
        return False
