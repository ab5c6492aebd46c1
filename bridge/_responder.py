"""The master's answer to one slave's requests.

A Responder belongs to one gateway. It runs on that gateway's execnet
receiver thread, so a slow or faulty slave never delays another, and it never
lets an exception escape: every request gets exactly one reply.

A MODULE reply holds the requested module's record and, prefetched, the
records of what it will import from the same top-level package (scanned with
``ast``, never run), as far as the prefetch budget goes. Bodies the slave
already holds (its cache, or earlier replies) are sent as their hash alone.
"""
import collections
import hashlib
import logging
import threading
import time

import six

from . import _bytecode
from ._binaries import binary_tag, extension_problem, slave_tag, suffix_of
from ._imports import imported_names
from ._locate import OutsideRoot
from ._policy import Policy
from .compat import protocol
from .compat.neutral import ensure_text

log = logging.getLogger("bridge.responder")

PREFETCH_MODULES = 2000  # records in one reply, at most
PREFETCH_BYTES = 64 * 1024 * 1024  # bodies prefetched into one reply, at most

_hashes = {}  # (file, mtime, size) -> sha256: one master, many slaves, hashed once
_imports = {}  # (file, mtime, size, module name) -> the names it imports: parsed once
_hashes_lock = threading.Lock()


def file_hash(root, path):
    """(sha256, the bytes where hashing had to read them, else None): each version of
    a file is hashed once, and bytes read for it are not read again to be sent."""
    stamp = root.stamp(path)
    with _hashes_lock:
        known = _hashes.get(stamp)
    if known is not None:
        return known, None
    data = root.read(path)
    known = hashlib.sha256(data).hexdigest()
    with _hashes_lock:
        _hashes[stamp] = known
    return known, data


class Stats(object):
    """Counters of one install, readable while it serves."""

    FIELDS = ("requests", "modules", "prefetched", "distributions", "missing", "refused",
              "errors", "files", "bytes_sent", "bytes_cached", "seconds")

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

    def __str__(self):
        data = self.as_dict()
        return ("%(requests)d requests, %(modules)d modules + %(prefetched)d prefetched, "
                "%(distributions)d distributions' metadata, %(files)d files, "
                "%(sent).2f MB sent, %(cached).2f MB already cached, %(missing)d missing, "
                "%(refused)d refused, %(errors)d errors, %(seconds).3f s"
                % dict(data, sent=data["bytes_sent"] / 1e6, cached=data["bytes_cached"] / 1e6))


class Refused(Exception):
    """A module exists but may not be served to this slave; the message says why."""


COUNTERS = {protocol.MISSING: "missing", protocol.REFUSED: "refused", protocol.ERROR: "errors"}


class Responder(object):
    """Turns FIND and DISTRIBUTIONS requests into replies from a SearchPath."""

    def __init__(self, search_path, facts, stats, master=None, allow_extensions=False,
                 policy=None, max_reply_bytes=None, progress=None):
        self.search_path = search_path
        self.facts = facts
        self.stats = stats
        self.master = master or {}  # the master's own tags: what its binaries were built for
        self.allow_extensions = allow_extensions
        self.policy = policy or Policy()
        self.max_reply_bytes = max_reply_bytes
        self.progress = progress  # called (name, bytes of this reply, bytes so far)
        self.known = set()  # hashes the slave holds: its cache, and what we sent it
        self.sent = set()  # names whose records this slave has had

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
        self.stats.add(**{COUNTERS[kind]: 1})
        return protocol.refusal(kind, request_id if isinstance(request_id, int) else None,
                                name if isinstance(name, six.string_types) else "", reason)

    def _answer(self, msg):
        problem = protocol.request_problem(msg)
        if problem:
            return self._refuse(protocol.ERROR, msg, "bad request: %s" % problem)
        self.search_path.snapshot()
        self.known.difference_update(ensure_text(sha) for sha in msg.get(protocol.LOST) or ())
        if protocol.kind_of(msg) == protocol.DISTRIBUTIONS:
            return self._distributions(msg)
        name = ensure_text(msg[protocol.NAME])
        refused = self.policy.problem(name)
        if refused:
            return self._refuse(protocol.REFUSED, msg, refused)
        located = self.search_path.locate(name)
        if located is None:
            return self._refuse(protocol.MISSING, msg, "no module named %r on the master's "
                                "search path" % name)
        try:
            record, size = self._record(name, located, self.max_reply_bytes)
        except (Refused, OutsideRoot) as error:
            return self._refuse(protocol.REFUSED, msg, str(error))
        related, absent = self._prefetch(name, located, size)
        records = [record] + related
        self.sent.update(each[protocol.NAME] for each in records)
        self.stats.add(modules=1, prefetched=len(related))
        if self.progress is not None:
            sent = sum(len(data) for each in records for _, _, data in each[protocol.FILES]
                       if data is not None)
            self.progress(name, sent, self.stats.bytes_sent)
        return protocol.module_reply(msg[protocol.ID], records, absent)

    def _distributions(self, msg):
        """The metadata folders of one distribution, or of every one on the path.

        They describe what the master has, as installed: served from the same
        search path as the modules, so from the slave's own environment when
        install() was given ``python=``."""
        name = msg.get(protocol.NAME)
        name = None if name is None else ensure_text(name)
        found = self.search_path.distributions(name)
        if name is not None and not found:
            return self._refuse(protocol.MISSING, msg, "no distribution named %r on the "
                                "master's search path" % name)
        records, total, cached = [], 0, 0
        for root, folder, normalized in found:
            paths, left_out = self.search_path.metadata_files(root, folder), []
            if name is None:  # a listing: what it reads now, the rest when asked by name
                left_out = [path for path in paths if path[len(folder) + 1:] not in
                            protocol.LISTED]
                paths = [path for path in paths if path not in left_out]
            files, size, kept = self._files(root, paths)
            records.append(protocol.metadata_record(
                normalized, folder, files, root.local(folder),
                [path[len(folder) + 1:] for path in left_out]))
            total, cached = total + size, cached + kept
        if self.max_reply_bytes is not None and total > self.max_reply_bytes:
            return self._refuse(protocol.REFUSED, msg, "the metadata of %s is too large to "
                                "send: %d bytes, the master's limit is %d" % (
                                    repr(name) if name else "every distribution", total,
                                    self.max_reply_bytes))
        self.known.update(sha for record in records for _, sha, _ in record[protocol.FILES])
        self.stats.add(distributions=len(records), bytes_sent=total, bytes_cached=cached,
                       files=sum(len(record[protocol.FILES]) for record in records))
        return protocol.module_reply(msg[protocol.ID], records)

    def _record(self, name, located, budget):
        """(record, bytes sent) of one module; Refused if it may not go to this slave."""
        if located.type == protocol.NAMESPACE and self.slave_version() < (3, 3):
            raise Refused("%r is a namespace package (PEP 420), which Python %d.%d cannot "
                          "import" % ((name,) + self.slave_version()[:2]))
        module_type, path, extra = located.type, located.path, []
        if located.type == protocol.EXTENSION:
            module_type, path, extra = self._extension(name, located)
        root = located.root
        if module_type == protocol.NAMESPACE:
            paths, dirs = [], [path]
        else:
            paths, dirs = [path] + extra + self.search_path.data_files(
                located, self.policy.allows), []
        files, size, cached = self._files(root, paths)
        if module_type in (protocol.SOURCE, protocol.PACKAGE) and _bytecode.fits(self.facts):
            sent, kept = self._add_bytecode(root, path, files)
            size, cached = size + sent, cached + kept
        if budget is not None and size > budget:
            raise Refused("%r is too large to send: %d bytes, the master's limit is %d"
                          % (name, size, budget))
        self.known.update(sha for _, sha, _ in files)
        self.stats.add(files=len(files), bytes_sent=size, bytes_cached=cached)
        children = self.search_path.children(located) if located.places else []
        record = protocol.module_record(name, module_type, path, files, dirs, children,
                                        root.local(path))
        return record, size

    def _add_bytecode(self, root, path, files):
        """Append the master-compiled .pyc of ``path`` to ``files``;
        (bytes that travel, bytes the slave already has)."""
        compiled = _bytecode.compiled(files[0][1], lambda: root.read(path))
        if compiled is None:
            return 0, 0
        pyc, sha = compiled
        data = None if sha in self.known else pyc
        files.append([six.text_type(_bytecode.pyc_path(path, self.facts["cache_tag"])),
                      six.text_type(sha), data])
        return (len(pyc), 0) if data is not None else (0, len(pyc))

    def _files(self, root, paths):
        """[[path, sha, bytes or None]], bytes that travel, bytes the slave already has."""
        files, size, cached = [], 0, 0
        for path in paths:
            sha, data = file_hash(root, path)
            if sha in self.known:
                data = None
                cached += root.size(path)
            else:
                data = root.read(path) if data is None else data
                size += len(data)
            files.append([six.text_type(path), six.text_type(sha), data])
        return files, size, cached

    def _extension(self, name, located):
        """(type, path, libraries) of the first binary the send rule allows; else the .py
        beside it; else Refused with every binary's tag and the slave's."""
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
                    return protocol.EXTENSION, path, libraries
                problems.append("%s is built for %s: %s" % (
                    filename, binary_tag(suffix_of(filename, module), tags, self.master), problem))
        if located.source:  # mypyc wheels and accelerators keep the .py beside the binary
            return protocol.SOURCE, located.source, []
        raise Refused("no compiled module %r for this slave, %s: %s"
                      % (name, slave_tag(self.facts), "; ".join(problems)))

    def _by_preference(self, paths, module):
        """In the slave's own suffix order; suffixes it does not know go last."""
        order = self.facts.get("extension_suffixes") or []

        def rank(path):
            suffix = suffix_of(path.rpartition("/")[2], module)
            return order.index(suffix) if suffix in order else len(order)

        return sorted(paths, key=rank)

    def _prefetch(self, name, located, used):
        """(records, absent names) of what importing ``name`` will import: from its own
        top-level package, and from distributions the slave does not have itself."""
        local = set(self.facts.get("top_level") or ())
        budget = PREFETCH_BYTES if self.max_reply_bytes is None \
            else min(PREFETCH_BYTES, self.max_reply_bytes - used)
        queue = collections.deque(self._imports_of(name, located))
        seen, records, absent = set([name]), [], []
        while queue and len(records) < PREFETCH_MODULES and budget > 0:
            candidate = queue.popleft()
            top = candidate.split(".")[0]
            if candidate in seen or candidate in self.sent or top in local:
                continue
            seen.add(candidate)
            if self.policy.problem(candidate):
                continue
            found = self.search_path.locate(candidate)
            if found is None:
                absent.append(candidate)
                continue
            try:
                record, size = self._record(candidate, found, budget)
            except (Refused, OutsideRoot):
                continue  # asked for explicitly, it gets its reason then
            budget -= size
            records.append(record)
            queue.extend(self._imports_of(candidate, found))
        return records, absent

    def _imports_of(self, name, located):
        if located.type not in (protocol.SOURCE, protocol.PACKAGE):
            return []
        stamp = located.root.stamp(located.path) + (name,)  # relative imports need the name
        with _hashes_lock:
            known = _imports.get(stamp)
        if known is None:
            source = located.root.read(located.path)
            known = imported_names(source, name, located.type == protocol.PACKAGE)
            with _hashes_lock:
                _imports[stamp] = known
        return known
