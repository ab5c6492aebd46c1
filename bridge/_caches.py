"""What the master works out once per version of a file and shares with every slave it
serves: digests, the names a module imports, compiled bytecode.

One ``MasterCaches`` belongs to the master process (``install()`` hands it to each
Responder); each cache has its own lock and a bound, least recently used first, so a
long-lived master serving many versions does not grow without end.
"""
import collections
import contextlib
import hashlib
import json
import os
import stat
import threading

import six

from ._deflate import Deflater
from ._ahead import ComposingAhead
from ._notices import Notices


_MISSING = object()


class BoundedCache(object):
    """A thread-safe mapping of at most ``limit`` entries, least recently used out first."""

    def __init__(self, limit):
        self.limit = limit
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def peek(self, key):
        """The value kept for ``key``, or None; nothing is computed or stored."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key, value):
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = value
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)

    def get(self, key, compute, valid=None):
        """The value for ``key``, from ``compute()`` (run outside the lock) the first time,
        and again whenever ``valid(value)`` says the kept one is out of date."""
        with self._lock:
            value = self._entries.pop(key, _MISSING)
            if value is not _MISSING:
                self._entries[key] = value  # most recently used last
        if value is not _MISSING and (valid is None or valid(value)):
            return value
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
        return value


class Tickets(object):
    """Numbers in the order they are taken, from any thread: a request takes one when it
    arrives, a check of a kept reply when it begins. A check that began after a request
    arrived saw the files as they were then or later, so its verdict serves that request
    too: sixteen slaves asking at once for one reply wait for one check, not sixteen in
    a row (each a stat of every file the reply read)."""

    def __init__(self):
        self._next = 0
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            self._next += 1
            return self._next


class RecentBodies(object):
    """The bytes of bodies sent lately, by hash, bounded in bytes, least recently used
    out first: a fleet asking for one package at once reads each file once, not once a
    slave. Only bytes that match their hash are kept (a file may change between its
    hashing and its reading), so what is kept never goes stale."""

    def __init__(self, limit=32 * 1024 * 1024, largest=1024 * 1024):
        self.limit = limit
        self.largest = largest
        self._entries = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def read(self, sha, size, read):
        """The body ``sha`` of ``size`` bytes, kept or from ``read()``."""
        if size > self.largest:
            return read()
        with self._lock:
            data = self._entries.pop(sha, None)
            if data is not None:
                self._entries[sha] = data
                return data
        data = read()
        if hashlib.sha256(data).hexdigest() == sha:
            with self._lock:
                if sha not in self._entries:
                    self._entries[sha] = data
                    self._size += len(data)
                while self._size > self.limit:
                    self._size -= len(self._entries.popitem(last=False)[1])
        return data


class KeyedLocks(object):
    """A lock per key, kept while a thread holds or waits for it: sixteen slaves asking at
    once for the same reply wait for the one thread that works it out, then take it, where
    each would have read and held the same files."""

    def __init__(self):
        self._lock = threading.Lock()
        self._locks = {}  # key -> [lock, threads holding or waiting]

    @contextlib.contextmanager
    def held(self, key):
        with self._lock:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]


class Followers(object):
    """Names slaves asked for after a first one of the same top-level package, in the
    same session (``docutils.core`` after ``docutils``: ``import docutils.core`` asks
    for the parent first; numpy's extensions import modules no source names). The next
    reply for the first brings them along, so a package costs one round trip. Kept on
    disk too (``disk``): a master that lives for one run knows what earlier ones learned.
    Bounded in leads and in followers per lead (numpy 2.4 has 68)."""

    def __init__(self, disk=None, leads=20000, per_lead=512):
        self.per_lead = per_lead
        self.disk = disk
        self._names = BoundedCache(leads)
        self._lock = threading.Lock()

    def learn(self, lead, name):
        """Remember ``name`` after ``lead``; whether it is new."""
        names = self._names.get(lead, lambda: self._kept(lead))
        with self._lock:
            if name in names or len(names) >= self.per_lead:
                return False
            names.append(name)
            known = list(names)
        if self.disk is not None:
            self.disk.put("followers", _lead_text(lead), json.dumps(known).encode("utf-8"))
        return True

    def of(self, lead):
        """The followers of ``lead``, learned here or by an earlier master."""
        names = self._names.get(lead, lambda: self._kept(lead))
        with self._lock:
            return list(names)

    def _kept(self, lead):
        data = self.disk.get("followers", _lead_text(lead)) if self.disk is not None else None
        try:
            names = json.loads(data.decode("utf-8")) if data is not None else []
        except ValueError:
            return []
        if not isinstance(names, list):
            return []
        return [name for name in names if isinstance(name, six.string_types)][:self.per_lead]


def _lead_text(lead):
    """The disk key of a lead: (search path entries, name)."""
    entries, name = lead
    return json.dumps([list(entries), name])


class MasterCaches(object):
    """The master's shared work: prefetch plans (checked with one stat per folder and
    file they read), sha256 by file version, imported names by file version and module
    name, master-compiled .pyc by source hash, compressed bodies by hash, and the hashes
    of the trees replies made (a slave that holds a tree holds its blobs)."""

    def __init__(self, files=200000, bodies=50000, plans=5000, roots=1000, disk=None):
        from ._disk import LazyDiskCache  # the caches are the lower layer
        self.disk = disk if disk is not None else LazyDiskCache()  # what outlives the master
        self._roots = BoundedCache(roots)
        self.plans = BoundedCache(plans)  # what importing a module brings along
        self.followers = Followers(self.disk)
        self.digests = BoundedCache(files)
        self.imports = BoundedCache(files)
        self.bytecode = BoundedCache(bodies)
        self.compressed = BoundedCache(bodies)
        self.trees = BoundedCache(plans)  # a reply's tree id -> its _filler.TreeFacts
        self.records = BoundedCache(files // 10)  # a module's record, per slave kind
        self.replies = BoundedCache(plans)  # a FIND's Composed reply, per slave kind
        self.lean_replies = BoundedCache(plans)  # an earlier master's, bodiless (or None)
        self.composing = KeyedLocks()  # one thread composes a reply, the others take it
        self.tickets = Tickets()  # one check of a kept reply serves the requests before it
        self.notices = Notices()  # or, while no change is noted in its folders, none
        self.ahead = ComposingAhead()  # replies whose followers changed, composed again
        self.recent = RecentBodies()  # bodies sent lately: a fleet reads each file once
        self.deflater = Deflater(self.compressed)  # and how well, how fast, it compresses
        self._own_facts = None

    def own_facts(self):
        """The master's own facts (compat/tags.py): what the binaries on its path were
        built for; read once. Not its top-level names: they say what a slave has."""
        if self._own_facts is None:
            from .compat import tags
            self._own_facts = tags.facts(top_level=False)
        return self._own_facts

    def root(self, entry):
        """The root of search path ``entry``, shared by every install that serves it, so
        its folder listings are read once for all slaves. A zip is read again when the
        archive changes."""
        from ._roots import make_root  # the caches are the lower layer
        entry = os.path.abspath(entry or os.curdir)
        try:
            status = os.stat(entry)
        except OSError:
            status = None
        version = None if status is None or stat.S_ISDIR(status.st_mode) \
            else (status.st_mtime, status.st_size)
        return self._roots.get((entry, version), lambda: make_root(entry),
                               valid=lambda root: root is not None)
