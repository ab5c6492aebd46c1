"""Replies composed ahead: once slaves asked for more after a package's first name (its
followers, ``_caches.Followers``), the reply to that name changes, and the next session
would wait while the master composes it (a fresh pytest controller's second run: hashing
and reading bytecode for hundreds of modules, 0.2 s). So it is composed here, after the
session's requests have paused, while the records just built are still in memory, and
kept on disk with the others (``_composer``).

The thread is not a daemon, and ends when nothing is pending: a master that lives for
one run finishes what it began before it exits (at most a pause and the compositions).
"""
import threading
import time

QUIET_SECONDS = 0.2  # followers come in bursts: one composition after the last of them


class ComposingAhead(object):
    """One queue per master process of (Composer, name) to compose again."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = {}  # (composer, name) -> True, in no order that matters
        self._last = 0.0  # when the last name was queued
        self._thread = None
        self._done = threading.Condition(self._lock)
        self.composed = 0  # names composed here (tests and figures)

    def later(self, composer, name):
        """Compose ``name`` again with ``composer`` once requests have paused."""
        with self._lock:
            self._pending[(composer, name)] = True
            self._last = time.time()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run,
                                                name="execnet-bridge-ahead")
                self._thread.daemon = False  # else inherited: execnet's receiver's is one
                self._thread.start()

    def settle(self):
        """Wait until everything queued is composed (tests, benchmarks)."""
        with self._lock:
            while self._thread is not None:
                self._done.wait()

    def _run(self):
        while True:
            with self._lock:
                pause = self._last + QUIET_SECONDS - time.time()
                if pause <= 0:
                    work, self._pending = list(self._pending), {}
                    if not work:
                        self._thread = None
                        self._done.notify_all()
                        return
            if pause > 0:
                time.sleep(pause)
                continue
            for composer, name in work:
                try:
                    if composer.compose_ahead(name):
                        self.composed += 1
                except Exception:  # never in a request's way: composed when asked
                    pass
