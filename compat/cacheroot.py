"""The slave's cache root: a folder no one else can change, of bounded size.

Served modules are imported from files below the cache root, so whoever can
change a path there can run code in the slave. A root is used only if it is a
real folder (not a symlink), ours, and not writable by others, if every
entry in it is the same, and if no one else can rename it away: each
ancestor is owned by us or root and not writable by others unless sticky
(``/tmp``). Then nothing below it can change but by us, so what the slave
verified is what it imports, without checking twice. A root that fails is
left untouched; the session uses a fresh private folder instead and says why.

The cache is bounded: eviction removes the least recently used entries until
the rest fit, never one a live session uses. It takes an exclusive lock, or
skips when it cannot have it at once; a session holds a shared one while it
verifies and places files. The entries may be anything: the store that owns
them lists them and removes them.

How files are placed below it is ``files.py``'s.
"""
import contextlib
import errno
import os
import stat
import tempfile
import time

from .neutral import ensure_text


try:
    import fcntl
except ImportError:  # not POSIX: no locks, so nothing is ever evicted
    fcntl = None

LOCK_FILE = "lock"
TRIMMED_FILE = "trimmed"  # its mtime: when the cache was last trimmed
PRIVATE_PREFIX = "execnet-bridge-private-"
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def current_uid():
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid else None


def default_cache_root():
    """A per-user folder in the temporary directory (checked like any other)."""
    uid = current_uid()
    return os.path.join(tempfile.gettempdir(),
                        "execnet-bridge-%s" % ("user" if uid is None else uid))


def entry_problem(path, uid):
    """Why the entry ``path`` (not followed) could be changed by someone else, or None."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "%s is a symlink" % path
    if uid is not None and info.st_uid != uid:
        return "%s is owned by uid %d, not by this user (uid %d)" % (path, info.st_uid, uid)
    if info.st_mode & OTHERS_WRITE:
        return "%s can be written by others (mode %o)" % (path, stat.S_IMODE(info.st_mode))
    return None


def ancestor_problem(folder, uid):
    """Why someone else could rename or replace what lies in the real path ``folder``
    or above it, or None. A sticky folder (``/tmp``) lets no one rename our entries."""
    while True:
        info = os.lstat(folder)
        if uid is not None and info.st_uid not in (uid, 0):
            return "%s is owned by uid %d, neither this user (uid %d) nor root" % (
                folder, info.st_uid, uid)
        if info.st_mode & OTHERS_WRITE and not info.st_mode & stat.S_ISVTX:
            return "%s can be written by others and is not sticky (mode %o)" % (
                folder, stat.S_IMODE(info.st_mode))
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def root_problem(root, uid, each_entry=True):
    """Why the existing folder ``root`` is not ours alone, or None: the root itself and
    (``each_entry``) every entry in it (``blobs/``, session folders, the lock file)."""
    problem = entry_problem(root, uid)
    if problem is None and not os.path.isdir(root):
        problem = "%s is not a folder" % root
    for name in sorted(os.listdir(root)) if problem is None and each_entry else ():
        try:
            problem = entry_problem(os.path.join(root, name), uid)
        except OSError as error:  # another slave removed its session folder meanwhile
            if error.errno != errno.ENOENT:
                raise
        if problem:
            break
    return problem


def claim_root(path, each_entry=True):
    """Make or check the cache root ``path``. Returns ``(root, problem)``: ``root`` is
    the path to use from now on (real parent folders), ``problem`` why it may not be
    used, or None. Without ``each_entry``, the entries are left for the reader to
    check as it opens each (``private_file``): a flat folder of thousands of them."""
    uid = current_uid()
    parent, name = os.path.split(os.path.abspath(path))
    try:
        if not os.path.isdir(parent):
            os.makedirs(parent)
        parent = os.path.realpath(parent)  # a symlinked ancestor cannot be switched later
        root = os.path.join(parent, name)
        problem = ancestor_problem(parent, uid)
        if problem is None:
            try:
                os.mkdir(root, 0o700)  # fails if anyone made it first; checked below
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
            problem = root_problem(root, uid, each_entry)
        return root, problem
    except OSError as error:
        return path, "cannot use %s: %s" % (path, error)


def private_file(info):
    """Is the ``os.fstat`` result ``info`` a regular file only this user can change?"""
    uid = current_uid()
    return (stat.S_ISREG(info.st_mode) and not info.st_mode & OTHERS_WRITE
            and (uid is None or info.st_uid == uid))


def open_root(requested):
    """``(root, problem)``: the requested (or default) cache root once verified, else a
    fresh private one for this session and why, which is logged here and told to the
    master."""
    requested = ensure_text(requested) if requested else default_cache_root()
    root, problem = claim_root(requested)
    if problem is None:
        return root, None
    root = private_root()
    problem = ensure_text("execnet-bridge refused the cache root %s: %s; this session uses "
                          "the private folder %s instead" % (requested, problem, root))
    import logging  # only now: most slaves never need it
    logging.getLogger("bridge.slave").warning(problem)
    return root, problem


def private_root():
    """A fresh folder only we can use, for one session (removed when it ends)."""
    return tempfile.mkdtemp(prefix=PRIVATE_PREFIX)


def _open_lock(root):
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.open(os.path.join(root, LOCK_FILE), flags, 0o600)


@contextlib.contextmanager
def shared_lock(root):
    """Held while a session verifies and places files, so no eviction runs meanwhile.
    A new descriptor each time: flock belongs to it, so threads never release each
    other's lock."""
    if fcntl is None:
        yield
        return
    descriptor = _open_lock(root)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)


LOCK_POLL = 0.01  # seconds between tries of a busy request lock


def wait_for_lock(path, seconds):
    """A descriptor holding an exclusive ``flock`` on ``path`` (made if need be), taken
    within ``seconds`` (tried every LOCK_POLL), else None: busy all that time, or no locks
    here. Closing it releases the lock; so does the end of its process, however it ends."""
    if fcntl is None:
        return None
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                             0o600)
    except (IOError, OSError):
        return None
    deadline = time.time() + seconds
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return descriptor
        except (IOError, OSError) as error:
            if (error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
                    or time.time() >= deadline):
                os.close(descriptor)
                return None
        time.sleep(LOCK_POLL)


def exclusive_lock(root):
    """The eviction lock's descriptor, or None if someone holds the lock now."""
    if fcntl is None:
        return None
    descriptor = _open_lock(root)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as error:
        os.close(descriptor)
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return descriptor


def pick_evictions(entries, limit):
    """Which entries go, least recently used first, until the rest fit in ``limit`` bytes.

    ``entries``: ``(last_used, size, key, in_use)`` tuples. An entry in use is never
    picked, but its size counts.
    """
    total = sum(entry[1] for entry in entries)
    picked = []
    for last_used, size, key, in_use in sorted(entries):
        if total <= limit:
            break
        if not in_use:
            picked.append(key)
            total -= size
    return picked


def evict(root, limit, sweep, entries, remove):
    """Trim the cache under ``root`` to ``limit`` bytes, if no one holds the lock.

    ``sweep()`` runs first (dead sessions' folders go, so their entries are no longer
    in use), then ``remove(key)`` for each key ``pick_evictions`` picks from
    ``entries()``. Returns the number removed, or None when the lock was busy. Once
    the rest fits, the time is noted, so that the next trim may be skipped when
    nothing changed (``fits_since_trim``).
    """
    descriptor = exclusive_lock(root)
    if descriptor is None:
        return None
    try:
        sweep()
        found = entries()
        picked = pick_evictions(found, limit)
        for key in picked:
            remove(key)
        chosen = set(picked)
        if sum(entry[1] for entry in found if entry[2] not in chosen) <= limit:
            _note_trim(root, limit)  # else trim again next time
        return len(picked)
    finally:
        os.close(descriptor)


def fits_since_trim(root, folder, limit):
    """Did the last trim get the cache within ``limit`` or less, with no entry of
    ``folder`` gained or lost since? Its mtime moves when one is: a stat and a read
    instead of a scan of every entry."""
    marker = os.path.join(root, TRIMMED_FILE)
    try:
        if os.lstat(folder).st_mtime >= os.lstat(marker).st_mtime:
            return False
        with open(marker) as stream:
            return 0 <= int(stream.read() or -1) <= limit
    except (IOError, OSError, ValueError):
        return False


def _note_trim(root, limit):
    """Write the limit the cache now fits in; the file's mtime says when."""
    path = os.path.join(root, TRIMMED_FILE)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.write(descriptor, str(limit).encode("ascii"))
    finally:
        os.close(descriptor)
