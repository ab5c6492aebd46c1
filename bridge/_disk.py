"""The master's work that outlives its process: compiled bytecode, imported names,
prefetch plans and composed replies (without bodies).

A long-lived master does each file's work once (``MasterCaches``). A master
that lives for one run (a pytest controller, ``python -m bridge run``) would
do it again every run, and compiling and scanning is most of what a fresh master
spends serving a warm slave. So that work is also kept on disk, keyed by the hash of the source it was made from (a version of a file,
never a path or a time), the master's bytecode magic and the format of the
work, and checked against a hash of itself when read back. A plan (``Planner.plan``)
or a composed reply (``Composer._keep``) is keyed by the module and what decides it, and
carries the Watch of the folders and files it read: it is used only while one stat of each
finds them unchanged, and a composed reply only for a slave that holds its tree.

The folder must be private (``cacheroot.claim_root``: ours, no one else can
write it or rename it away), because what it holds is sent to slaves to run.
Where it is not, nothing is kept on disk and the master says why once.
It is bounded: past ``LIMIT`` bytes, the least recently written entries go.
"""
import hashlib
import json
import logging
import os
import threading

from .compat import cacheroot, files

log = logging.getLogger("bridge.cache")

LIMIT = 512 * 1024 * 1024
FORMAT = "4"  # bump when what an entry holds changes meaning (2: package entries; 3: no
# entry says "imports nothing" of a source its master could not parse; 4: a Watch's
# probes, which a master that does not know them would not check)
LEDGER = ".ledger"  # a line per entry written since the last trim: its size in bytes
ENVIRONMENT = "EXECNET_BRIDGE_MASTER_CACHE"  # a folder; "" or "off": none


def default_folder():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "execnet-bridge-master")


_trimmed = set()  # roots this process has begun to trim on opening
_trimmed_lock = threading.Lock()


def first_opening(root):
    """True once per process for ``root``: each Responder made without the master's shared
    caches opens the disk cache anew, and a trim lists and lstat-s the whole folder, so
    it is done at the first opening only."""
    with _trimmed_lock:
        if root in _trimmed:
            return False
        _trimmed.add(root)
        return True


class DiskCache(object):
    """Entries of bytes by (kind, key text), each checked against its own sha256 and,
    as it is read, for being ours alone (the folder's thousands of entries are not
    each checked when a master opens it)."""

    def __init__(self, root, limit=LIMIT):
        self.root = root
        self.ledger = os.path.join(root, LEDGER)
        self.limit = limit
        self._written = 0  # bytes written since the last trim

    @classmethod
    def open_default(cls):
        """The master's cache folder if it can be used, else None (the reason logged).
        It is trimmed in the background: a master that lives for one run must not list
        thousands of entries before its first answer."""
        folder = os.environ.get(ENVIRONMENT, default_folder())
        if folder in ("", "off"):
            return None
        root, problem = cacheroot.claim_root(folder, each_entry=False)  # get() checks
        if problem is not None:
            log.warning("execnet-bridge keeps no master cache on disk: %s", problem)
            return None
        cache = cls(root)
        if first_opening(root) and cache.needs_trim():
            trimming = threading.Thread(target=cache.trim, name="execnet-bridge-trim")
            trimming.daemon = True
            trimming.start()
        return cache

    def _path(self, kind, key):
        name = hashlib.sha256(("%s\0%s\0%s" % (FORMAT, kind, key)).encode("utf-8"))
        return os.path.join(self.root, name.hexdigest())

    def get(self, kind, key):
        """The bytes kept for (kind, key), or None (none, or damaged: then removed)."""
        path = self._path(kind, key)
        try:
            kept = _read_private(path)
        except (IOError, OSError):
            return None
        if kept is not None:  # else not ours alone: removed like a damaged one
            check, payload = kept[:64], kept[64:]
            if hashlib.sha256(payload).hexdigest().encode("ascii") == check:
                return payload
        files.remove_file(path)
        return None

    def put(self, kind, key, payload):
        """Keep ``payload`` for (kind, key); a full disk or a race loses nothing."""
        try:
            files.write_atomically(self._path(kind, key), hashlib.sha256(
                payload).hexdigest().encode("ascii") + payload)
        except (IOError, OSError) as error:
            log.debug("master cache: cannot keep an entry: %s", error)
            return
        self._written += len(payload) + 64
        self._note_written(len(payload) + 64)
        if self._written > self.limit // 8:
            self.trim()

    def _note_written(self, size):
        """Add ``size`` to the folder's ledger: what every master wrote since a trim."""
        try:
            handle = os.open(self.ledger, os.O_WRONLY | os.O_APPEND
                             | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                os.write(handle, ("%d\n" % size).encode("ascii"))
            finally:
                os.close(handle)
        except OSError:
            pass

    def needs_trim(self):
        """Whether masters wrote over an eighth of the limit since the folder's last trim
        (or its ledger is missing): a master that lives for one run would otherwise list
        and lstat thousands of entries (18,795 here: 74 ms of CPU) beside its answers."""
        try:
            written = _read_private(self.ledger)
        except (IOError, OSError):
            return True
        if written is None:
            return True
        sizes = [int(line) for line in written.split(b"\n") if line.strip().isdigit()]
        return sum(sizes) > self.limit // 8

    def trim(self):
        """Remove the least recently written entries past the limit."""
        self._written = 0
        entries = []
        _empty(self.ledger)  # what is written from now on counts
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            if name == LEDGER:
                continue
            try:
                info = os.lstat(os.path.join(self.root, name))
            except OSError:
                continue
            entries.append((info.st_mtime, info.st_size, name))
        total = sum(size for _, size, _ in entries)
        for _, size, name in sorted(entries):
            if total <= self.limit:
                break
            try:
                os.unlink(os.path.join(self.root, name))
            except OSError:
                continue
            total -= size


def _empty(path):
    """Make the file ``path`` empty, or remove what is there instead (a link, a folder)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                         | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except OSError:
        files.remove_file(path)


def _read_private(path):
    """The bytes of the file ``path`` if it is a regular file only we can change (not
    followed if a link; a FIFO does not block), else None."""
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(handle, "rb") as stream:
        if not cacheroot.private_file(os.fstat(stream.fileno())):
            return None
        return stream.read()


class LazyDiskCache(object):
    """The default DiskCache, opened on first use (importing ``bridge`` touches no disk),
    or ahead of it (``prepare``: install() opens it while the handshake runs)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._opened = False
        self._preparing = False
        self._cache = None

    def prepare(self):
        """Open the cache in the background, if nothing opened it yet (once: a Group's
        installs call this for each gateway)."""
        with self._lock:
            if self._opened or self._preparing:
                return
            self._preparing = True
        opening = threading.Thread(target=self._open, name="execnet-bridge-disk")
        opening.daemon = True
        opening.start()

    def _open(self):
        with self._lock:
            if not self._opened:
                self._cache = DiskCache.open_default()
                self._opened = True
        return self._cache

    def get(self, kind, key):
        cache = self._open()
        return cache.get(kind, key) if cache is not None else None

    def put(self, kind, key, payload):
        cache = self._open()
        if cache is not None:
            cache.put(kind, key, payload)


def get_json(disk, kind, key):
    """The JSON data ``disk`` keeps for (kind, key), or None (none, or not JSON: a format
    of another version)."""
    data = disk.get(kind, key)
    try:
        return None if data is None else json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def put_json(disk, kind, key, data):
    disk.put(kind, key, json.dumps(data).encode("utf-8"))
