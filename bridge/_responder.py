"""The master's answer to one slave's requests.

A Responder belongs to one gateway. It runs on that gateway's execnet
receiver thread, so a slow or faulty slave never delays another, and it never
lets an exception escape: every request gets exactly one reply.
"""
import logging
import threading
import time

import six

from ._locate import OutsideRoot
from .compat import protocol
from .compat.neutral import ensure_text

log = logging.getLogger("bridge.responder")


class Stats(object):
    """Counters of one install, readable while it serves."""

    FIELDS = ("requests", "modules", "missing", "refused", "errors", "files", "bytes_sent",
              "seconds")

    def __init__(self):
        self._lock = threading.Lock()
        for field in self.FIELDS:
            setattr(self, field, 0)

    def add(self, **amounts):
        with self._lock:
            for field, amount in amounts.items():
                setattr(self, field, getattr(self, field) + amount)

    def as_dict(self):
        with self._lock:
            return dict((field, getattr(self, field)) for field in self.FIELDS)

    def __repr__(self):
        return "Stats(%s)" % ", ".join("%s=%r" % item for item in sorted(self.as_dict().items()))


class Responder(object):
    """Turns FIND requests into replies from a SearchPath."""

    def __init__(self, search_path, facts, stats):
        self.search_path = search_path
        self.facts = facts
        self.stats = stats

    def slave_version(self):
        return tuple(self.facts.get("version") or (3,))

    def reply(self, msg):
        """The reply to ``msg``; never raises."""
        started = time.time()
        try:
            answer = self._answer(msg)
        except Exception as error:  # a bug must not kill the channel: report it
            log.exception("execnet-bridge failed to answer %r", msg)
            answer = self._refuse(protocol.ERROR, msg, "master error: %s" % (error,))
        self.stats.add(requests=1, seconds=time.time() - started)
        return answer

    def _refuse(self, kind, msg, reason):
        fields = msg if isinstance(msg, dict) else {}
        request_id = fields.get(protocol.ID)
        name = fields.get(protocol.NAME)
        self.stats.add(**{{protocol.MISSING: "missing", protocol.REFUSED: "refused"}
                          .get(kind, "errors"): 1})
        return protocol.refusal(kind, request_id if isinstance(request_id, int) else None,
                                name if isinstance(name, six.string_types) else "", reason)

    def _answer(self, msg):
        problem = protocol.find_request_problem(msg)
        if problem:
            return self._refuse(protocol.ERROR, msg, "bad request: %s" % problem)
        name = ensure_text(msg[protocol.NAME])
        located = self.search_path.locate(name)
        if located is None:
            return self._refuse(protocol.MISSING, msg, "no module named %r on the master's "
                                "search path" % name)
        if located.type == protocol.NAMESPACE and self.slave_version() < (3, 3):
            return self._refuse(protocol.REFUSED, msg, "%r is a namespace package (PEP 420), "
                                "which Python %d.%d cannot import"
                                % ((name,) + self.slave_version()[:2]))
        try:
            return self._module(msg, name, located)
        except OutsideRoot as error:
            return self._refuse(protocol.REFUSED, msg, "refused: %s" % error)

    def _module(self, msg, name, located):
        root = located.root
        if located.type == protocol.NAMESPACE:
            files, dirs = [], [located.path]
        else:
            paths = [located.path] + self.search_path.data_files(located)
            files = [[six.text_type(path), root.read(path)] for path in paths]
            dirs = []
        size = sum(len(data) for _, data in files)
        self.stats.add(modules=1, files=len(files), bytes_sent=size)
        log.debug("serving %s (%s, %d files, %d bytes)", name, located.type, len(files), size)
        return protocol.module_reply(msg[protocol.ID], name, located.type, located.path,
                                     files, dirs, located.origin)
