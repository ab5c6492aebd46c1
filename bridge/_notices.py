"""Which folders changed since a kept reply was last checked: Linux's inotify, read
without waiting, so a long-lived master answers a warm session without a stat per file.

A kept reply is current while every folder and file it read is unchanged (``Watch``):
one stat each, 15-25 ms for an SDK of 2,459 files, most of what a warm session costs
the master. Here the kernel is asked to note every change in the folders that hold
those paths and along the way to them; a reply whose folders saw no change since a
stat check of it passed is current without another. A change after a stat check began
is seen by that check or noted for the next one (subscriptions are armed before it).

Where a change could escape the kernel's notice, the stat check goes on as before: a
path with a symbolic link on the way (the link's target can change elsewhere), a file
with other hard links (written through another folder), a file system not on this host
(NFS, FUSE, overlays), the mount table changing, the event queue overflowing, or the
kernel refusing more watches.
"""
import ctypes
import errno
import os
import stat
import struct
import sys
import threading
import weakref

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue

# <sys/inotify.h>
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR = 0x4000, 0x8000, 0x01000000
CHANGES = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
           | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
EVENT = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows

# Where every change is made by this host's kernel, so inotify sees it. devtmpfs is
# /dev: on the way to /dev/shm, a tmpfs (without it every check there was a stat).
LOCAL_FILE_SYSTEMS = frozenset(["ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs",
                                "jfs", "reiserfs", "bcachefs", "zfs", "devtmpfs"])
MOUNTS = "/proc/self/mountinfo"
ANY_NAME = "<any name>"  # a folder whose every entry counts (listed, or asked about)
MOST_WATCHES = 65536  # this process's watches, at most; past that, stat checks
USER_WATCHES = "/proc/sys/fs/inotify/max_user_watches"  # shared by the user's programs


class Subscription(object):
    """One kept reply's folders. Clean: no change noted since it was armed."""

    def __init__(self, notices):
        self.notices = notices
        self.clean = False
        self.live = True  # False for good: a watch of it went (a folder removed)

    def arm(self):
        """Count changes from now on: called before the stat check that vouches."""
        self.notices.arm(self)

    def vouches(self):
        """Nothing it read has changed since it was armed (and a check passed then)."""
        return self.notices.vouches(self)


class Notices(object):
    """This process's inotify instance, shared by every kept reply; opened on first use
    (and again in a forked child: events read there would be lost to the parent)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._later = None  # the queue of later(), once its thread runs
        self._reset()
        self.vouched = 0  # checks answered without a stat (tests and figures)

    def _reset(self):
        self._pid = None  # the process that opened _fd
        self._fd = None
        self._failed = not sys.platform.startswith("linux")
        self._watches = {}  # folder -> wd
        self._folders = {}  # wd -> folder
        self._wanted = {}  # wd -> set of names whose change counts, or ANY_NAME
        self._subscribers = {}  # wd -> the Subscriptions of kept replies still kept
        self._mounts = None  # the mount table's text when it was last read
        self._on_local = {}  # folder -> is it on a LOCAL_FILE_SYSTEMS mount?
        self._file_systems = {}  # mount point -> type
        self._most = 0  # watches this process may hold

    def later(self, kept):
        """Subscribe ``kept`` (a Composed) on a thread of its own, then arm it and check
        it once with a stat of everything: from then on ``kept.notice`` vouches for it.
        Off the request's way: it lstats every path and adds a watch per folder."""
        with self._lock:
            if self._failed or kept.notice is not None:
                return
            kept.notice = False  # asked for: once
            if self._later is None:
                self._later = queue.Queue()
                thread = threading.Thread(target=self._subscribing, args=(self._later,))
                thread.daemon = True
                thread.start()
        self._later.put(kept)

    def leave_to_stats(self):
        """Check every kept reply with stats from now on: in a master that lives for one
        run (a pytest-xdist controller) slaves ask for the same replies at once, and a
        subscription, made after, costs more than the checks it would spare."""
        with self._lock:
            self._failed = True
            self._dirty_all(live=False)

    def settle(self):
        """Wait until what later() was given is subscribed (tests, benchmarks)."""
        if self._later is not None:
            self._later.join()

    def _subscribing(self, kept_queue):
        while True:
            kept = kept_queue.get()
            try:
                subscription = self.subscribe(kept.all_watches())
                if subscription is not None:
                    subscription.arm()
                    if kept.unchanged():
                        kept.notice = subscription
            except Exception:  # never in a request's way: it is checked with stats
                pass
            finally:
                kept_queue.task_done()

    def subscribe(self, watches):
        """A Subscription to the folders of what ``watches`` read, not yet armed; None
        where the kernel could miss a change of it (module docstring)."""
        wanted = wanted_folders(watches)
        if wanted is None:
            return None
        with self._lock:
            if not self._open() or not self._drain():  # a watch gone is forgotten first
                return None
            if not all(self._local(folder) for folder in wanted):
                return None
            if len(self._watches) + len(wanted) > self._most:
                return None
            descriptors = set()
            for folder, names in wanted.items():
                wd = self._watch(folder)
                if wd is None:
                    return None
                descriptors.add(wd)
                _add_names(self._wanted, wd, names)  # several replies may watch a folder
            subscription = Subscription(self)
            for wd in descriptors:
                self._subscribers.setdefault(wd, weakref.WeakSet()).add(subscription)
            return subscription

    def arm(self, subscription):
        with self._lock:
            if self._drain():
                subscription.clean = subscription.live

    def vouches(self, subscription):
        with self._lock:
            if self._drain() and subscription.clean and subscription.live:
                self.vouched += 1
                return True
            return False

    def _open(self):
        if self._pid is not None and self._pid != os.getpid():  # forked: start afresh
            self._dirty_all(live=False)
            self._reset()
        if self._fd is not None or self._failed:
            return not self._failed
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the C library Python runs on
            self._add = libc.inotify_add_watch
            self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            fd = libc.inotify_init1(os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (AttributeError, OSError):
            fd = -1
        if fd < 0:
            self._failed = True
            return False
        self._fd, self._pid = fd, os.getpid()
        self._most = min(MOST_WATCHES, _user_watches() // 4)  # leave the rest to others
        self._mounts_changed()
        return True

    def _watch(self, folder):
        wd = self._watches.get(folder)
        if wd is None:
            wd = self._add(self._fd, _encoded(folder), CHANGES)
            if wd < 0:
                return None
            self._watches[folder], self._folders[wd] = wd, folder
        return wd

    def _local(self, folder):
        """Is ``folder`` on a file system whose every change this kernel makes?"""
        known = self._on_local.get(folder)
        if known is None:
            kind = self._file_systems.get(folder)
            parent = os.path.dirname(folder)
            if kind is not None:
                known = kind in LOCAL_FILE_SYSTEMS
            else:
                known = parent != folder and self._local(parent)
            self._on_local[folder] = known
        return known

    def _mounts_changed(self):
        """A mount over a watched path changes what it names without an event."""
        mounts = _read_mounts()
        if mounts == self._mounts and mounts is not None:
            return False
        self._dirty_all()
        self._mounts, self._on_local = mounts, {}
        self._file_systems = file_systems(mounts)
        return True

    def _drain(self):
        """Read every pending event: the subscriptions they touch are no longer clean.
        False where this process has no instance (forked since) or the mounts moved."""
        if self._fd is None or self._pid != os.getpid() or self._mounts_changed():
            return False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return True
                if error.errno != errno.EINTR:  # never in a request's way: stats
                    self._dirty_all(live=False)
                    self._failed = True
                    return False
            else:
                self._noted(data)

    def _noted(self, data):
        offset = 0
        while offset + EVENT.size <= len(data):
            wd, mask, _, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size:offset + EVENT.size + length].rstrip(b"\0")
            offset += EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                self._dirty_all()
                continue
            wanted = self._wanted.get(wd, ())
            if not name or wanted is ANY_NAME or _decoded(name) in wanted:
                for subscription in self._subscribers.get(wd, ()):
                    subscription.clean = False
                    if mask & IN_IGNORED:  # the folder went, and its watch with it
                        subscription.live = False
            if mask & IN_IGNORED:
                self._subscribers.pop(wd, None)
                self._wanted.pop(wd, None)
                self._watches.pop(self._folders.pop(wd, None), None)

    def _dirty_all(self, live=True):
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.clean = False
                subscription.live = subscription.live and live


def wanted_folders(watches):
    """{folder: the names in it whose change counts, or ANY_NAME} for what ``watches``
    read: each folder listed or asked about, each file's folder, and every folder on
    the way to them (there only the next name on the way counts); None where a change
    could escape notice (a symbolic link on the way, a file with other hard links)."""
    wanted, kinds = {}, {}
    try:
        for watch in watches:
            for folder in list(watch.folders) + list(watch.probes):
                if not _add_way(wanted, kinds, os.path.abspath(folder), ANY_NAME):
                    return None
            for path in watch.files:
                if not _add_way(wanted, kinds, os.path.abspath(path), FILE):
                    return None
    except OSError:
        return None
    return wanted


FILE = "file"  # _add_way's ``names`` for a file: its own name in its folder counts


def _add_way(wanted, kinds, path, names):
    """Add ``path`` (a folder, every name in it counting, or a FILE) and the folders on
    the way to it; False where a change of it could escape notice."""
    while True:
        kind = _kind(kinds, path)
        if kind == LINK or (names is FILE and kind == LINKED_FILE):
            return False
        if kind == DIR and names is ANY_NAME:
            _add_names(wanted, path, ANY_NAME)
        parent, name = os.path.split(path)
        if parent == path or not name:
            return True
        seen = parent in wanted
        if _kind(kinds, parent) == DIR:
            _add_names(wanted, parent, (name,))
        if seen:  # its way is in already
            return True
        path, names = parent, None


def _add_names(table, key, names):
    """Count ``names`` (some names, or ANY_NAME) at ``table[key]`` besides those there."""
    known = table.get(key, ())
    if names is ANY_NAME or known is ANY_NAME:
        table[key] = ANY_NAME
    else:
        table[key] = known = known or set()
        known.update(names)


DIR, PLAIN_FILE, LINKED_FILE, LINK = "dir", "file", "linked file", "link"


def _kind(kinds, path):
    """DIR, PLAIN_FILE, LINKED_FILE (hard links elsewhere), LINK, or None (nothing)."""
    try:
        return kinds[path]
    except KeyError:
        pass
    try:
        status = os.lstat(path)
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
        kind = None
    else:
        if stat.S_ISLNK(status.st_mode):
            kind = LINK
        elif stat.S_ISDIR(status.st_mode):
            kind = DIR
        else:
            kind = PLAIN_FILE if status.st_nlink == 1 else LINKED_FILE
    kinds[path] = kind
    return kind


def _user_watches():
    try:
        with open(USER_WATCHES) as stream:
            return int(stream.read())
    except (IOError, OSError, ValueError):
        return 8192  # the kernel's default before 5.11


def _read_mounts():
    try:
        with open(MOUNTS, "rb") as stream:
            return stream.read()
    except (IOError, OSError):
        return None


def file_systems(mounts):
    """{mount point: file system type} of /proc/self/mountinfo's text."""
    found = {}
    for line in (mounts or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(" ")
        if " - " in line and len(fields) >= 5:
            found[_unescaped(fields[4])] = line.split(" - ", 1)[1].split(" ")[0]
    return found


def _unescaped(field):
    """A mountinfo path: space, tab, newline and backslash are written as \\ooo."""
    parts = field.split("\\")
    text = parts[0]
    for part in parts[1:]:
        if len(part) >= 3 and part[:3].isdigit():
            text += chr(int(part[:3], 8)) + part[3:]
        else:
            text += "\\" + part
    return text


def _encoded(path):
    if isinstance(path, bytes):
        return path
    if hasattr(os, "fsencode"):
        return os.fsencode(path)
    return path.encode(sys.getfilesystemencoding() or "utf-8")  # 2.7 unicode


def _decoded(name):
    if hasattr(os, "fsdecode"):
        return os.fsdecode(name)
    return name  # 2.7: paths are byte strings
