"""Requests from the slave to the master, each waiting for its own reply.

Replies arrive on execnet's receiver thread and are matched to the waiting
request by ``id``, so any number of importing threads can wait at once.

CPython (3.x as well as 2.7) holds the global import lock while a meta path
finder runs, so a wait for the master inside ``find_spec`` holds it too.

Python 3 (and PyPy 3) keep it held for the wait. They also guard each module
with a lock of its own, and take a module's lock *before* importing its
parent: released, the global lock would let thread C take ``pkg.core``'s lock
and wait for ``pkg``'s while thread A, holding ``pkg``'s, waits for the
master; ``pkg/__init__`` then needs ``pkg.core`` and CPython raises
``_DeadlockError``. A module lock can only be taken under the global lock, so
while it is held no thread starts a new import (importer3's finder runs the
local finders itself, so the hold begins with the local search, not after
it), and importer3 keeps it on until ``exec_module`` begins, when ``pkg`` is in
``sys.modules``: the threads queued behind the reply must not wake before. The
window left is CPython's own microseconds before ``find_spec``, the same as for
an installed package. The cost: another thread's first import of any
module waits for the reply. Waits outside ``find_spec`` (metadata, the
``runpy`` helper) hold no import lock and stall nothing.

Python 2.7 has only the global lock: there it is released for the wait by an
import statement that is not nested in a module's execution (held once).
Held more often, a module is half-executed and releasing would show it to
other threads; 2.7 itself lets no other thread import meanwhile, and neither
do we.

Nothing on the reply's way (execnet's receiver thread, ``_receive``, which also
writes the BODIES frames ahead of a reply: ``incoming``) imports, so a reply
arrives whoever holds the lock, with one exception: the weakref callback of a
collected module lock takes the global lock, and a garbage
collection can run it on any thread, the receiver too (on PyPy, every free is
a collection). So the collector pauses while a wait holds the import lock, and
nothing is made (no object a collection could start on) under a lock that a
thread holding the import lock also takes: here, and the session's.
"""
import gc
import threading

from . import protocol
from .neutral import PY2, ensure_text, text_type

if PY2:  # pragma: no cover - exercised on 2.7 slaves
    import imp as _import_lock
else:
    import _imp as _import_lock


class CollectorPause(object):
    """Keeps the garbage collector off while any thread's wait holds the import lock,
    and restores the state the first of them found."""

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    def __enter__(self):
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def __exit__(self, *exc_info):
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


collector_pause = CollectorPause()


def release_import_lock():
    """Release 2.7's import lock for a wait where that is safe.

    Returns how often to re-acquire it, or None where it was kept. It is
    released once: if it is still held after that, this thread holds it again
    at a deeper level (or another thread just took it), so it is taken back
    at once. It is never free while this thread's module is half-made. On 3.x
    it is kept (module docstring) and nothing is to be re-acquired.
    """
    if not PY2:
        return 0
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


class ImportLockDuringWait(object):
    """``with ImportLockDuringWait() as others_can_finish:`` around a wait.

    ``others_can_finish`` is False where this thread keeps a lock that another
    importing thread may need to finish (2.7, nested): waiting for that thread
    could then only end in a timeout.
    """

    def __enter__(self):
        self.count = release_import_lock()
        self.paused = self.count is None or (self.count == 0 and _import_lock.lock_held())
        if self.paused:
            collector_pause.__enter__()
        return self.count is not None

    def __exit__(self, *exc_info):
        if self.paused:
            collector_pause.__exit__()
        acquire_import_lock(self.count)


class BridgeUnavailable(Exception):
    """The master cannot answer: the channel closed or a reply did not come in time."""


class NotIntact(Exception):
    """What the master sent did not arrive intact, asked for twice."""


class _Waiter(object):
    def __init__(self):
        self.event = threading.Event()
        self.reply = None
        self.progressed = False  # a BODIES frame came since the clock last started

    def wait(self, timeout):
        """True once the reply is here; False after ``timeout`` seconds without it or
        a BODIES frame (a large reply takes as long as it takes, while it moves)."""
        while not self.event.wait(timeout):
            if not self.progressed:
                return False
            self.progressed = False
        return True


class RequestClient(object):
    """Sends protocol messages on the request channel and waits for replies."""

    asks_a_master = True  # a child's ParentClient asks its slave instead

    def __init__(self, channel, timeout, incoming=None):
        self._channel = channel
        self.timeout = timeout
        self.incoming = incoming  # writes the BODIES frames ahead of replies (incoming.py)
        self._lock = threading.Lock()
        self._pending = {}
        self._next_id = 1
        self._closed = None  # the reason, once the channel is gone
        channel.setcallback(self._receive, endmarker=None)

    def request(self, msg):
        """Send ``msg`` and return its reply, or raise BridgeUnavailable."""
        waiter = _Waiter()
        with self._lock:
            closed = self._closed
            if not closed:
                request_id = self._next_id
                self._next_id += 1
                self._pending[request_id] = waiter
        if closed:
            raise BridgeUnavailable(closed)
        msg[text_type(protocol.ID)] = request_id
        try:
            self._channel.send(msg)
            with ImportLockDuringWait():
                answered = waiter.wait(self.timeout)
        except (IOError, EOFError, ValueError) as error:
            raise BridgeUnavailable("cannot send to the master: %s" % (error,))
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        if not answered:
            raise BridgeUnavailable("no reply from the master within %s s" % self.timeout)
        if waiter.reply is None:
            raise BridgeUnavailable(self._closed or "the request channel closed")
        try:
            return protocol.unpacked(waiter.reply)
        except ValueError as error:
            raise BridgeUnavailable("a malformed reply from the master: %s" % (error,))

    def _receive(self, msg):
        """Runs on execnet's receiver thread: hand the reply to its waiter.

        The end of the channel (None) only fails the waiters. execnet calls it
        while it shuts the gateway down after losing the master: sending a
        close message then would raise on the dead pipe, and that exception
        would end execnet's receiver thread before it lets the slave exit.
        """
        if msg is None:
            self._fail_pending("the master closed the request channel")
            return
        request_id = msg.get(protocol.ID) if isinstance(msg, dict) else None
        with self._lock:
            waiter = self._pending.get(request_id)
        if protocol.kind_of(msg) == protocol.BODIES:  # ahead of its reply
            if waiter is not None and self.incoming is not None:
                self.incoming.receive(msg)
                waiter.progressed = True
            return
        if self.incoming is not None:
            self.incoming.finish(request_id)
        if waiter is not None:
            waiter.reply = msg
            waiter.event.set()

    def _fail_pending(self, reason):
        """Fail every pending and later request with ``reason``."""
        # made before the lock: a request holding the import lock may wait for it
        reason, emptied = ensure_text(reason), {}
        with self._lock:
            if not self._closed:
                self._closed = reason
            pending, self._pending = self._pending, emptied
        for waiter in pending.values():
            waiter.event.set()

    def close(self, reason):
        """Fail every pending and later request with ``reason``, and close the channel."""
        self._fail_pending(reason)
        try:
            self._channel.close()
        except (IOError, EOFError, ValueError):  # the master is gone already
            pass
