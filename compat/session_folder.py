"""A session's own folder in the cache: the served metadata, as one path entry.

Served modules live in trees (``trees``), one folder per reply. The metadata
folders (``*.dist-info``) of the distributions a session was told of are
linked from their trees into this one folder, so that ``pkg_resources``,
which scans path entries, finds them all on one entry of ``sys.path``. The
folder also names the trees the session uses (``trees.USES``). Each install
gets a fresh one, so a path is never rewritten with different bytes.
"""
import errno
import os
import shutil
import tempfile

from .files import inside, link_or_copy

SESSION_PREFIX = "s-"
UNDER_REMEMBERED = 4096  # paths whose under_cache_root is remembered, at most


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def remove_stale_sessions(cache_root):
    """Remove session folders whose process has died (a killed slave leaves one);
    the cache's eviction does it first, so their blobs are no longer in use."""
    try:
        names = os.listdir(cache_root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) >= 3 and name.startswith(SESSION_PREFIX) and parts[1].isdigit():
            if not _pid_alive(int(parts[1])):
                shutil.rmtree(os.path.join(cache_root, name), ignore_errors=True)


class SessionFolder(object):
    """One session's folder: the served metadata, shaped like the master's search path
    entries."""

    def __init__(self, cache_root, root):
        self.cache_root = cache_root
        self.root = root
        self.placed = {}  # local path -> sha256 of what was placed there
        self._under = {}  # path -> under_cache_root(path): asked for each import's parent

    @classmethod
    def create(cls, cache_root):
        """A new session folder in ``cache_root``, a root verified by ``cacheroot``."""
        prefix = "%s%d-" % (SESSION_PREFIX, os.getpid())
        return cls(cache_root, tempfile.mkdtemp(prefix=prefix, dir=cache_root))

    def path(self, relative):
        """The local path of a folder-relative path, refusing anything that escapes."""
        return inside(self.root, relative)

    def contains(self, path):
        """Is the local ``path`` inside this session's folder?"""
        return os.path.abspath(path).startswith(os.path.join(self.root, ""))

    def under_cache_root(self, path):
        """Is the local ``path`` in any session's folder (an earlier install's too)?
        Remembered per path: the import of a package's child asks it of the package's
        ``__path__`` (a warm ``import sympy`` asks 517 times: 1.6 -> 0.6 us each)."""
        try:
            return self._under[path]
        except (KeyError, TypeError):  # TypeError: an unhashable entry, asked afresh
            pass
        under = os.path.abspath(path).startswith(os.path.join(self.cache_root, ""))
        try:
            if len(self._under) >= UNDER_REMEMBERED:
                self._under.clear()
            self._under[path] = under
        except TypeError:
            pass
        return under

    def make_dir(self, relative):
        target = self.path(relative)
        if not os.path.isdir(target):
            os.makedirs(target)
        return target

    def link_tree(self, relative, tree):
        """Place the folder ``relative`` of the tree ``tree`` here, file by file."""
        source = inside(tree, relative)
        self.make_dir(relative)
        for folder, _, names in os.walk(source):
            below = os.path.relpath(folder, tree).replace(os.sep, "/")
            for name in names:
                self.place(below + "/" + name, os.path.join(folder, name), None)

    def place(self, relative, blob, sha):
        """Put the verified ``blob`` at ``relative``: a hard link, else a copy, made
        atomically (``link_or_copy``): the session folder is a path entry, read meanwhile.

        A path is placed once: glibc hands back the library already loaded
        from a path, so different bytes there would be silently ignored.
        Blobs are content-addressed, so one inode always holds one content.
        """
        target = self.path(relative)
        if os.path.exists(target):
            if os.path.samefile(target, blob) or (sha and self.placed.get(target) == sha):
                return target
            raise ValueError("refusing to replace %s with different bytes" % target)
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        link_or_copy(blob, target, atomically=True)
        self.placed[target] = sha
        return target
