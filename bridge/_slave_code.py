"""The bridge's slave modules compiled by the master, for cold slaves of its own build.

A slave compiles the modules the handshake sends it unless its cache root keeps
their code objects (compat/codecache.py): 32 ms of a bare 3.11's cold handshake
here, and sixteen cold slaves starting at once on 2 cores compiled them sixteen
times over. A slave whose interpreter would compile exactly what the master's does
(the same ``codecache.key``) asks for the master's instead, compiled once per
master process and sent as zlib of marshal (150 KB), and kept in the master's disk cache,
so a master that lives for one run (a pytest controller) need not compile them either.
"""
import threading

from .compat import bootstrap, codecache


class SlaveCode(object):
    """The master's code objects of the slave sources, compiled on first demand.
    ``disk``: the master's DiskCache (bridge/_disk.py), or None."""

    KIND = "slave-code"  # the disk cache's kind of entry; the key is codecache.key

    def __init__(self, disk=None):
        self.disk = disk
        self._lock = threading.Lock()  # one compile, however many slaves ask at once
        self._payloads = {}  # key -> the answer to codecache.fetch

    @staticmethod
    def key(sources):
        return codecache.key(sources)

    def payload(self, sources, key):
        """zlib of marshal of {name: code object} for ``sources``, whose key is ``key``,
        or None when they do not compile here (the slave then says why)."""
        with self._lock:
            if key not in self._payloads:
                self._payloads.clear()  # sources change only under tests: keep the last
                self._payloads[key] = self._kept(key) or self._compiled(sources, key)
            return self._payloads[key]

    def _kept(self, key):
        return self.disk.get(self.KIND, key) if self.disk is not None else None

    def _compiled(self, sources, key):
        payload = _compiled(sources)
        if payload is not None and self.disk is not None:
            self.disk.put(self.KIND, key, payload)
        return payload


def _compiled(sources):
    try:
        return codecache.encode(dict(
            (name, bootstrap.compile_module(name, source))
            for name, source in sources if name != "bootstrap"))  # execnet compiles that
    except Exception:  # SyntaxError, ValueError, RecursionError: the slave compiles then
        return None
