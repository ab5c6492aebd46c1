"""Requests from the slave to the master, each waiting for its own reply.

Replies arrive on execnet's receiver thread and are matched to the waiting
request by ``id``, so any number of importing threads can wait at once.

CPython (3.x as well as 2.7) holds the global import lock while a meta path
finder runs. Waiting for the network with it held would stall every other
import in the process, and deadlock if anything on the reply's way needed an
import; so the lock is released, as many times as this thread holds it, for
the duration of the wait and re-acquired afterwards.
"""
import threading

from . import protocol
from .neutral import ensure_text, text_type

try:
    import _imp as _import_lock
except ImportError:  # Python 2.7
    import imp as _import_lock


def release_import_lock():
    """Release the import lock as often as this thread holds it; return how often."""
    count = 0
    while True:
        try:
            _import_lock.release_lock()
        except RuntimeError:  # not held (any more) by this thread
            return count
        count += 1


def acquire_import_lock(count):
    for _ in range(count):
        _import_lock.acquire_lock()


class BridgeUnavailable(Exception):
    """The master cannot answer: the channel closed or a reply did not come in time."""


class _Waiter(object):
    def __init__(self):
        self.event = threading.Event()
        self.reply = None


class RequestClient(object):
    """Sends protocol messages on the request channel and waits for replies."""

    def __init__(self, channel, timeout):
        self._channel = channel
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending = {}
        self._next_id = 1
        self._closed = None  # the reason, once the channel is gone
        channel.setcallback(self._receive, endmarker=None)

    def request(self, msg):
        """Send ``msg`` and return its reply, or raise BridgeUnavailable."""
        waiter = _Waiter()
        with self._lock:
            if self._closed:
                raise BridgeUnavailable(self._closed)
            request_id = self._next_id
            self._next_id += 1
            self._pending[request_id] = waiter
        msg[text_type(protocol.ID)] = request_id
        try:
            self._channel.send(msg)
            held = release_import_lock()
            try:
                answered = waiter.event.wait(self.timeout)
            finally:
                acquire_import_lock(held)
        except (IOError, EOFError, ValueError) as error:
            raise BridgeUnavailable("cannot send to the master: %s" % (error,))
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        if not answered:
            raise BridgeUnavailable("no reply from the master within %s s" % self.timeout)
        if waiter.reply is None:
            raise BridgeUnavailable(self._closed or "the request channel closed")
        return waiter.reply

    def _receive(self, msg):
        """Runs on execnet's receiver thread: hand the reply to its waiter."""
        if msg is None:
            self.close("the master closed the request channel")
            return
        request_id = msg.get(protocol.ID) if isinstance(msg, dict) else None
        with self._lock:
            waiter = self._pending.get(request_id)
        if waiter is not None:
            waiter.reply = msg
            waiter.event.set()

    def close(self, reason):
        """Fail every pending and later request with ``reason``."""
        with self._lock:
            if not self._closed:
                self._closed = ensure_text(reason)
            pending, self._pending = list(self._pending.values()), {}
        for waiter in pending:
            waiter.event.set()
        if not self._channel.isclosed():
            self._channel.close()
