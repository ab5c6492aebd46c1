"""The slave's package trees: the files of one reply, placed once, reused by every session.

A tree is a folder ``trees/<id>`` holding one reply's files at the paths they
have under the master's search path entry; its id is a hash of those paths
and of the files' hashes (``protocol.tree_id``). It is built from verified
blobs in a temporary folder and renamed into place whole, and it never
changes after, so a path never gets different bytes (glibc hands back a
shared library already loaded from a path) and a warm session uses it as it
is: one ``lstat``, no file read, hashed or linked. Its files are hard links of
the blobs, so a tree costs folders, not bytes.

Each session checks a tree's code files (one ``lstat`` each against what
they were when built), so a module rewritten in the cache is fetched again,
never loaded. A session names the trees it uses in its own folder (``.uses``), so eviction
never removes one under a live session. Per request, ``replies/`` keeps the
ids of the trees its last replies made: the next session's ``have``.
"""
import os
import shutil
import stat
import tempfile

from . import cacheroot, files, packs
from .blobs import check, digest
from .files import PART_PREFIX, inside
from .neutral import ensure_text
from .protocol import COMPRESSED, DIRS, FILES, inflated, is_sha256_hex

FOLDER = "trees"
REPLIES = "replies"  # per request: ids of the trees its last replies made, newest first
USES = ".uses"  # in a session folder: an empty file per tree the session uses
MANIFEST_SUFFIX = ".files"  # beside a tree: its files' hashes, for eviction
PACKED = u"pack:"  # before a manifest stamp: the file is in the tree's pack (packs.py)
LOCK_SUFFIX = ".lock"  # beside a request's tree ids: held while one session asks it
RECALLED = 64  # trees named per request, at most (a reply may use many: IN_TREE)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd", ".dylib", ".dll", ".pyw")


class TreeStore(object):
    """``trees/`` of one verified cache root, over its BlobStore."""

    def __init__(self, cache_root, blobs):
        self.cache_root = cache_root
        self.blobs = blobs
        self.root = os.path.join(cache_root, FOLDER)
        self._packs = {}  # tree id -> its Pack

    def path(self, tree):
        return os.path.join(self.root, tree)

    def open(self, tree):
        """The tree's folder if it is there, marked used now; else None. One ``lstat``:
        the cache root is verified private, and a tree changes only by being removed."""
        if not is_sha256_hex(tree):
            return None
        folder = self.path(tree)
        try:
            info = os.lstat(folder)
        except OSError:
            return None
        uid = cacheroot.current_uid()
        if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
            return None
        try:
            os.utime(folder, None)  # its last use, for eviction
        except OSError:
            return None
        return folder

    def build(self, tree, records, bodies, blob_of):
        """Build tree ``tree`` from ``records``' folders and files: ``bodies`` {sha: bytes}
        are written there (then linked into the blob store), other files are links of
        the verified blob ``blob_of(sha)``; the master's .pyc go in the tree's pack, from
        ``bodies`` (``received_bodies`` puts them all there). Its folder. Whole or not
        at all: built aside, then renamed; where another slave renamed the same tree
        first, that one is used."""
        files.make_folder(self.root)
        files.make_folder(self.blobs.root)
        building = tempfile.mkdtemp(dir=self.root, prefix=PART_PREFIX)
        pack = None
        try:
            lines, placed, folders, packed = set(), {}, set([building]), {}
            for record in records:
                for folder in record.get(DIRS) or ():
                    _make_dirs(inside(building, ensure_text(folder)), folders)
                for path, sha, _ in record.get(FILES) or ():
                    sha, path = ensure_text(sha), ensure_text(path)
                    target = inside(building, path)
                    if packs.is_shipped_bytecode(path):
                        if packed.setdefault(path, (sha, bodies[sha]))[0] != sha:
                            raise ValueError("refusing two bodies for %s" % target)
                        continue
                    _make_dirs(os.path.dirname(target), folders)
                    if sha in placed:
                        _link(placed[sha], target)
                    elif sha in bodies:
                        _create(target, bodies[sha])
                        self.blobs.adopt(sha, target)
                    else:
                        _link(blob_of(sha), target)
                    placed.setdefault(sha, target)
                    lines.add(u"%s %s %s" % (sha, _stamp(os.lstat(target)), path))
            if packed:
                pack = building + packs.SUFFIX
                packs.write(pack, packed)
                stamp = PACKED + _stamp(os.lstat(pack))
                lines.update(u"%s %s %s" % (sha, stamp, path)
                             for path, (sha, _) in packed.items())
            try:
                os.rename(building, self.path(tree))
            except OSError:  # another slave's is in place: its manifest is the one
                if self.open(tree) is None:
                    raise
            else:
                if pack is not None:
                    os.rename(pack, self.path(tree) + packs.SUFFIX)
                    self._packs.pop(tree, None)  # read before: the one set aside, or none
                files.write_atomically(self.path(tree) + MANIFEST_SUFFIX,
                                           u"\n".join(sorted(lines)).encode("utf-8"))
        finally:
            if os.path.isdir(building):
                shutil.rmtree(building, True)
            if pack is not None:
                files.remove_file(pack)
        return self.path(tree)

    def pack(self, tree):
        """The Pack of ``tree`` (packs.py), its index read once a session."""
        found = self._packs.get(tree)
        if found is None:
            found = self._packs[tree] = packs.Pack(self.path(tree) + packs.SUFFIX)
        return found

    def open_intact(self, tree):
        """(the tree's folder, []) if it is here and intact; else (None, the hashes of
        its damaged files, whose blobs go: the tree is set aside and built again)."""
        folder = self.open(tree)
        if folder is None:
            return None, []
        damaged = self.damaged(tree)
        if not damaged:
            return folder, []
        self.set_aside(tree)
        for sha in damaged:
            self.blobs.remove(sha)
        return None, damaged

    def received_bodies(self, records, intact, held=None, nearby=()):
        """({sha: bytes} of the bodies that came in ``records``, checked against their
        hashes; the hashes we were sent no body for and lack). ``intact``: hashes whose
        blobs were checked in this session; those found intact now join it. ``held``:
        {sha: checked bytes} that came ahead and were kept in memory (``Incoming``),
        taken from it. The master's .pyc go in the tree's pack: their bytes are read
        from the blob store, or the pack of a tree of ``nearby`` (ids) that has them."""
        bodies, missing = {}, []
        held = {} if held is None else held
        for record in records:
            compressed = set(ensure_text(sha) for sha in record.get(COMPRESSED) or ())
            for path, sha, data in record.get(FILES) or ():
                sha = ensure_text(sha)
                if data is not None:
                    if sha not in bodies:
                        data = inflated(data, sha) if sha in compressed else data
                        check(sha, data)
                        bodies[sha] = data
                elif sha in bodies:
                    continue
                elif sha in held:  # in no blob: taken, it is intact no more
                    bodies[sha] = held.pop(sha)
                    intact.discard(sha)
                elif packs.is_shipped_bytecode(ensure_text(path)):
                    data = self.checked_bytecode(sha, intact, nearby)
                    if data is None:
                        missing.append(sha)
                    else:
                        bodies[sha] = data
                elif sha not in intact:
                    if self.blobs.verified(sha) is None:
                        missing.append(sha)
                    else:
                        intact.add(sha)
        return bodies, missing

    def checked_bytecode(self, sha, intact, nearby):
        """The bytes of the .pyc ``sha`` from the blob store (written ahead of the reply
        beyond what memory holds, or by a cache of before packs) or a pack of ``nearby``
        trees, checked against their hash; or None."""
        data = None
        if sha in intact:  # checked in this session
            try:
                with open(self.blobs.path(sha), "rb") as stream:
                    data = stream.read()
            except (IOError, OSError):
                pass
        if data is None:
            data = self.blobs.read_verified(sha)
        if data is not None:
            return data
        for tree in nearby:
            data = self.pack(tree).read_sha(sha)
            if data is not None and digest(data) == sha:
                return data
        return None

    def damaged(self, tree):
        """Hashes of the tree's code files (what an import executes or loads) that changed
        since it was built: an ``lstat`` each, against the inode, size and mtime it had.
        Data files were checked when the tree was built, and are not read at import."""
        folder, bad, pack = self.path(tree), [], []  # pack: its stamp, taken once
        for sha, stamp, path in self._manifest(tree):
            if not path.endswith(CODE_SUFFIXES) and ".so." not in path:
                continue
            try:
                if stamp.startswith(PACKED):
                    if not pack:
                        pack.append(_stamp(os.lstat(folder + packs.SUFFIX)))
                    stamp, now = stamp[len(PACKED):], pack[0]
                else:
                    now = _stamp(os.lstat(inside(folder, path)))
                if now != stamp:
                    bad.append(sha)
            except (OSError, ValueError):
                bad.append(sha)
        return bad

    def set_aside(self, tree):
        """Take a damaged tree out of use (a live session may still read it): it goes
        with the next eviction's sweep."""
        try:
            os.rename(self.path(tree), tempfile.mktemp(dir=self.root, prefix=PART_PREFIX))
        except OSError:
            pass

    def use(self, tree, session_folder):
        """Name ``tree`` as used by the session of ``session_folder``, so no eviction
        removes it while that session lives."""
        uses = os.path.join(session_folder, USES)
        if not os.path.isdir(uses):
            files.make_folder(uses)
        marker = os.path.join(uses, tree)
        if not os.path.exists(marker):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o600))

    def recalled(self, request):
        """Ids of the trees the last replies to ``request`` (text naming it) made that are
        still there, newest first: the request's ``have``."""
        return [tree for tree in self.named(request) if os.path.isdir(self.path(tree))]

    def named(self, request):
        """Ids of the trees the last replies to ``request`` made, newest first, whether
        there or not (a tree set aside leaves its pack: ``checked_bytecode`` reads it)."""
        try:
            with open(self._reply_file(request)) as stream:
                trees = stream.read().split()
        except (IOError, OSError):
            return []
        return [tree for tree in trees if is_sha256_hex(tree)]

    def remember(self, request, trees):
        """Put ``trees`` first, in this order, among those kept for ``request``: written
        only where that changes what is kept (a warm session's replies change nothing)."""
        recalled = self.recalled(request)
        kept = list(trees) + [each for each in recalled if each not in trees]
        if kept[:RECALLED] == recalled[:RECALLED]:
            return
        files.make_folder(os.path.join(self.cache_root, REPLIES))
        files.write_atomically(self._reply_file(request),
                                   u"\n".join(kept[:RECALLED]).encode("utf-8"))

    def request_lock(self, request):
        """The path of the lock the sessions of this cache root take, one at a time, to
        ask ``request`` (text naming it) of a master (``ImportSession.alone``)."""
        files.make_folder(os.path.join(self.cache_root, REPLIES))
        return self._reply_file(request) + LOCK_SUFFIX

    def _reply_file(self, request):
        return os.path.join(self.cache_root, REPLIES, digest(request.encode("utf-8")))

    def entries(self, in_use):
        """``(last used, size, key, in use)`` of every tree, for ``cacheroot.evict``. A
        tree's size is its share of its blobs: a blob linked by k trees counts 1/k in
        each, so the trees' sizes add up to the bytes they hold."""
        found = []
        for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
            if not is_sha256_hex(name):
                continue
            try:
                last_used = os.lstat(self.path(name)).st_mtime
            except OSError:
                continue
            size = _size(self.path(name) + packs.SUFFIX)
            for sha in self.hashes(name):
                try:
                    info = os.lstat(self.blobs.path(sha))
                except OSError:
                    continue
                size += info.st_size // max(info.st_nlink - 1, 1)
            found.append((last_used, size, FOLDER + "/" + name, name in in_use))
        return found

    def remove(self, tree):
        """Remove a tree, then the blobs no other tree or session links."""
        hashes = self.hashes(tree)
        shutil.rmtree(self.path(tree), True)
        files.remove_file(self.path(tree) + MANIFEST_SUFFIX)
        files.remove_file(self.path(tree) + packs.SUFFIX)
        self._packs.pop(tree, None)
        for sha in hashes:
            try:
                if os.lstat(self.blobs.path(sha)).st_nlink == 1:
                    self.blobs.remove(sha)
            except OSError:
                continue

    def hashes(self, tree):
        """The hashes of the files of ``tree``, from its manifest."""
        return [sha for sha, _, _ in self._manifest(tree)]

    def _manifest(self, tree):
        """``[(sha, stamp, path)]`` of the tree's files, as ``build`` wrote them."""
        try:
            with open(self.path(tree) + MANIFEST_SUFFIX, "rb") as stream:
                lines = stream.read().decode("utf-8").splitlines()
        except (IOError, OSError, ValueError):
            return []
        return [tuple(line.split(u" ", 2)) for line in lines if line.count(u" ") >= 2]

    def sweep(self):
        """Remove what slaves that died while building left (``PART_PREFIX``): eviction
        runs under the exclusive lock, and building under the shared one, so none is live."""
        for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
            if name.startswith(PART_PREFIX):
                path = os.path.join(self.root, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, True)
                else:
                    files.remove_file(path)


def used_by_live_sessions(cache_root, session_prefix):
    """Ids of the trees any session folder still in ``cache_root`` names in ``.uses``
    (dead sessions' folders are removed before this is asked)."""
    used = set()
    for name in os.listdir(cache_root):
        if name.startswith(session_prefix):
            try:
                used.update(os.listdir(os.path.join(cache_root, name, USES)))
            except OSError:
                continue
    return used


def _make_dirs(target, made=None):
    """Make folder ``target`` and its parents; ``made``: the folders known to exist."""
    if made is not None and target in made:
        return
    if not os.path.isdir(target):
        os.makedirs(target)
    if made is not None:
        made.add(target)


def _create(target, data):
    """Write a new file: one create, in a folder of a few files (no rename; in the flat
    blob store a create costs several times more)."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


def _link(blob, target):
    """The verified ``blob`` at ``target`` (``files.link_or_copy``: the tree is built
    aside, so a copy need not be atomic), once: one path, one body."""
    if os.path.exists(target):
        if os.path.samefile(target, blob):
            return
        raise ValueError("refusing two bodies for %s" % target)
    files.link_or_copy(blob, target)


def _size(path):
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _stamp(info):
    """What changes when a file is rewritten or replaced: inode, size, mtime."""
    return u"%d:%d:%r" % (info.st_ino, info.st_size, info.st_mtime)
