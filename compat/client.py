"""Requests from the slave to the master, each waiting for its own reply.

Replies arrive on execnet's receiver thread and are matched to the waiting
request by ``id``, so any number of importing threads can wait at once.

CPython (3.x as well as 2.7) holds the global import lock while a meta path
finder runs. Waiting for the network with it held would stall every other
import in the process, and deadlock if anything on the reply's way needed an
import; so the lock is released, as many times as this thread holds it, for
the duration of the wait and re-acquired afterwards.

Python 3.3+ also guard each module being imported with a lock of its own, so
no thread ever sees another's half-executed module. Python 2.7 has only the
global lock: there it is released only by an import statement that is not
nested in a module's execution (held once). Held more often, a module is
half-executed and releasing would show it to other threads; 2.7 itself lets
no other thread import meanwhile, and neither do we. Nothing on the reply's
way (execnet's receiver thread, ``_receive``) imports, so holding it is safe.
"""
import threading

from . import protocol
from .neutral import PY2, ensure_text, text_type

try:
    import _imp as _import_lock
except ImportError:  # Python 2.7
    import imp as _import_lock


PER_MODULE_LOCKS = not PY2


def _release_all():
    count = 0
    while True:
        try:
            _import_lock.release_lock()
        except RuntimeError:  # not held (any more) by this thread
            return count
        count += 1


def release_import_lock():
    """Release the import lock where that is safe.

    Returns how often to re-acquire it, or None where it was kept. On 2.7 it
    is released once: if it is still held after that, this thread holds it
    again at a deeper level (or another thread just took it), so it is taken
    back at once. It is never free while this thread's module is half-made.
    """
    if PER_MODULE_LOCKS:
        return _release_all()
    try:
        _import_lock.release_lock()
    except RuntimeError:  # not inside an import (pkgutil.get_data, say)
        return 0
    if _import_lock.lock_held():
        _import_lock.acquire_lock()
        return None
    return 1


def acquire_import_lock(count):
    for _ in range(count or 0):
        _import_lock.acquire_lock()


class ImportLockReleased(object):
    """``with ImportLockReleased() as released:``, released is False where it was kept."""

    def __enter__(self):
        self.count = release_import_lock()
        return self.count is not None

    def __exit__(self, *exc_info):
        acquire_import_lock(self.count)


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
            with ImportLockReleased():
                answered = waiter.event.wait(self.timeout)
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
