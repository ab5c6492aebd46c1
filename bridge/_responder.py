"""The master's answer to one slave's requests.

A Responder belongs to one gateway. It runs on that gateway's execnet
receiver thread, so a slow or faulty slave never delays another, and it never
lets an exception escape: every request gets exactly one reply.
"""
import logging
import threading
import time

import six

from ._binaries import binary_tag, extension_problem, slave_tag, suffix_of
from ._locate import OutsideRoot
from ._policy import Policy
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

    def __init__(self, search_path, facts, stats, master=None, allow_extensions=False,
                 policy=None, max_reply_bytes=None):
        self.search_path = search_path
        self.policy = policy or Policy()
        self.max_reply_bytes = max_reply_bytes
        self.facts = facts
        self.stats = stats
        self.master = master or {}  # the master's own tags: what its binaries were built for
        self.allow_extensions = allow_extensions
        self._sent = set()  # (root path, file) already sent to this slave: never again

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
        refused = self.policy.problem(name)
        if refused:
            return self._refuse(protocol.REFUSED, msg, refused)
        located = self.search_path.locate(name)
        if located is None:
            return self._refuse(protocol.MISSING, msg, "no module named %r on the master's "
                                "search path" % name)
        if located.type == protocol.NAMESPACE and self.slave_version() < (3, 3):
            return self._refuse(protocol.REFUSED, msg, "%r is a namespace package (PEP 420), "
                                "which Python %d.%d cannot import"
                                % ((name,) + self.slave_version()[:2]))
        try:
            if located.type == protocol.EXTENSION:
                return self._extension(msg, name, located)
            return self._module(msg, name, located)
        except OutsideRoot as error:
            return self._refuse(protocol.REFUSED, msg, "refused: %s" % error)

    def _extension(self, msg, name, located):
        """The first binary the send rule allows; else the .py beside it; else why not."""
        module = name.rpartition(".")[2]
        problems = []
        if not self.allow_extensions:
            problems.append("compiled modules are not served (install with allow_extensions=True)")
        else:
            for path in self._by_preference(located.extensions, module):
                filename = path.rpartition("/")[2]
                tags = self.search_path.wheel_tags(located.root, path)
                problem, libraries = extension_problem(located.root, path, module, self.facts,
                                                       self.master, tags)
                if problem is None:
                    return self._module(msg, name, located, protocol.EXTENSION, path, libraries)
                problems.append("%s is built for %s: %s" % (
                    filename, binary_tag(suffix_of(filename, module), tags, self.master), problem))
        if located.source:  # mypyc wheels and accelerators keep the .py beside the binary
            return self._module(msg, name, located, protocol.SOURCE, located.source)
        return self._refuse(protocol.REFUSED, msg, "no compiled module %r for this slave, %s: %s"
                            % (name, slave_tag(self.facts), "; ".join(problems)))

    def _by_preference(self, paths, module):
        """In the slave's own suffix order; suffixes it does not know go last."""
        order = self.facts.get("extension_suffixes") or []

        def rank(path):
            suffix = suffix_of(path.rpartition("/")[2], module)
            return order.index(suffix) if suffix in order else len(order)

        return sorted(paths, key=rank)

    def _module(self, msg, name, located, module_type=None, path=None, extra=()):
        root = located.root
        module_type, path = module_type or located.type, path or located.path
        if module_type == protocol.NAMESPACE:
            paths, dirs = [], [path]
        else:
            paths, dirs = [path] + list(extra) + self.search_path.data_files(located), []
        paths = [each for each in paths if (root.path, each) not in self._sent]
        size = sum(root.size(each) for each in paths)
        if self.max_reply_bytes is not None and size > self.max_reply_bytes:
            return self._refuse(protocol.REFUSED, msg, "%r is too large to send: %d bytes, "
                                "the master's limit is %d" % (name, size, self.max_reply_bytes))
        files = [[six.text_type(each), root.read(each)] for each in paths]
        self._sent.update((root.path, each) for each in paths)
        self.stats.add(modules=1, files=len(files), bytes_sent=size)
        log.debug("serving %s (%s, %d files, %d bytes)", name, module_type, len(files), size)
        return protocol.module_reply(msg[protocol.ID], name, module_type, path, files, dirs,
                                     root.local(path))
