"""The master's path entries as roots: a folder or a zip archive, read without importing.

Every read is confined to its entry: a symlink that points outside is refused
(OutsideRoot). A Watch records, per thread, what a walk listed and read, so work
derived from it can be checked later with one stat each.
"""
import os
import stat
import threading
import time
import zipfile


class OutsideRoot(Exception):
    """A file resolves to a place outside the search path entry it was found in."""


class Root(object):
    """What both kinds of root share: a Watch per thread (one root serves every slave
    whose search path holds it, each on its own receiver thread)."""

    def __init__(self):
        self._thread = threading.local()
        self.metadata = None  # (version, MetadataIndex): _metadata.metadata_index's

    @property
    def watch(self):
        """The Watch this thread's walk records into, or None."""
        return getattr(self._thread, "watch", None)

    @watch.setter
    def watch(self, value):
        self._thread.watch = value

    SETTLED = 2.0  # seconds: file times are coarse (a tick), a change within one unseen

    def settled(self, stamp):
        """Is the version ``stamp`` (``stamp()``) old enough that work keyed by it may be
        kept? A file rewritten within one tick of the clock keeps its mtime, and if it
        kept its size too, only its bytes tell; so a recent file is read every time."""
        return time.time() - stamp[self.STAMP_MTIME] > self.SETTLED


class DirectoryRoot(Root):
    """A folder on the search path.

    Serving one import asks thousands of questions about the same few folders (a
    large package's prefetch candidates), so each folder is listed once
    per version of it: the listing is kept until the folder's mtime, inode or link
    count changes, checked once per request (``request_number``, one reply). A folder changed in
    the last ``SETTLED`` seconds is not kept: file times are coarse, and a second
    change within one tick would go unseen.
    """

    STAMP_MTIME = 1  # stamp(): (local path, mtime, size)

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.real = os.path.join(os.path.realpath(self.path), "")
        self._listings = {}  # relative folder -> [stat key, {name: kind}, request checked in]
        self._real_folders = {}  # relative folder -> (request number, its realpath + "/")
        self._binaries = {}  # relative folder -> (the listing, binaries_by_module of it)
        self.request_number = 0  # the request being answered: listings are checked once per
        # request
        Root.__init__(self)

    def __repr__(self):
        return "DirectoryRoot(%r)" % self.path

    def local(self, relative):
        return os.path.join(self.path, *relative.split("/"))

    def version(self):
        """What identifies this version of the folder's own listing, or None while it
        may still change unseen (changed in the last SETTLED seconds, or gone)."""
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        if time.time() - status.st_mtime <= self.SETTLED:
            return None
        return status.st_mtime, status.st_ino, status.st_nlink

    def _listed(self, relative):
        """(local path, key, {name: DIR, FILE or None} or None where it is not a folder,
        settled) of folder ``relative``: listed once per version of it, and once per
        request while it may still change unseen (one request sees one listing)."""
        known = self._listings.get(relative)  # [key, entries, request, local, settled]
        if known is not None and known[2] == self.request_number:
            return known[3], known[0], known[1], known[4]  # the hot path of every walk
        local = self.local(relative)
        key = folder_key(local)
        if key is None:
            return local, None, None, True
        if known is not None and known[4] and known[0] == key:
            known[2] = self.request_number
            return local, key, known[1], True
        entries = _entries(local)
        settled = time.time() - key[0] > self.SETTLED
        self._listings[relative] = [key, entries, self.request_number, local, settled]
        return local, key, entries, settled

    def _listing(self, relative):
        """The whole listing of folder ``relative`` (``_listed``), recorded as read whole."""
        local, key, entries, settled = self._listed(relative)
        watch = self.watch
        if watch is not None:
            watch.folder(local, key, settled)
        return entries

    def _probed(self, relative, probe, answer):
        """``answer`` to one question about folder ``relative``, recorded as asked."""
        local, key, entries, settled = self._listed(relative)
        found = answer(entries or {})
        watch = self.watch
        if watch is not None:
            watch.probe(local, key, settled, probe, found)
        return found

    def _kind(self, relative):
        if not relative:
            return DIR if os.path.isdir(self.path) else None
        folder, _, name = relative.rpartition("/")
        local, key, entries, settled = self._listed(folder)  # as _probed, inline: the
        kind = entries.get(name) if entries is not None else None  # walks' hot path
        watch = self.watch
        if watch is not None:
            watch.probe(local, key, settled, name, kind)
        return kind

    def isdir(self, relative):
        return self._kind(relative) == DIR

    def isfile(self, relative):
        return self._kind(relative) == FILE

    def confined(self, relative):
        """The local path of ``relative``, refusing one that resolves outside the root."""
        return self._checked(relative)[0]

    def _checked(self, relative):
        """(local path, os.stat of it) of ``relative``, refusing one that resolves outside
        the root. A file that is no link is where its folder is: folders are resolved
        once a request, and one lstat per file tells a link and stats the rest."""
        local = self.local(relative)
        status = os.lstat(local)
        link = stat.S_ISLNK(status.st_mode)
        if link or not self._real_folder(relative.rpartition("/")[0]).startswith(self.real):
            if not os.path.realpath(local).startswith(self.real):
                raise OutsideRoot("%s resolves outside %s" % (local, self.path))
        return local, (os.stat(local) if link else status)

    def _real_folder(self, relative):
        known = self._real_folders.get(relative)
        if known is None or known[0] != self.request_number:
            real = os.path.join(os.path.realpath(self.local(relative)), "")
            known = self._real_folders[relative] = (self.request_number, real)
        return known[1]

    def size(self, relative):
        return self._checked(relative)[1].st_size

    def stamp(self, relative):
        """What identifies this version of a file: path, mtime, size (as file_key has it)."""
        local, status = self._checked(relative)
        return local, status.st_mtime, status.st_size

    def read(self, relative):
        with open(self.confined(relative), "rb") as stream:
            return stream.read()

    def read_chunks(self, relative, size):
        """The file's bytes, ``size`` at a time (a generator: opened when first asked)."""
        with open(self.confined(relative), "rb") as stream:
            for chunk in iter(lambda: stream.read(size), b""):
                yield chunk

    def names(self, relative):
        """Every name directly inside ``relative``."""
        return list(self._listing(relative) or ())

    def binaries(self, relative, module):
        """The file names of compiled module ``module`` in folder ``relative``, sorted
        (binaries_by_module, worked out once per listing)."""
        return self._probed(relative, BINARIES_PROBE + module,
                            lambda listing: self._binaries_of(relative, listing, module))

    def _binaries_of(self, relative, listing, module):
        known = self._binaries.get(relative)
        if known is None or known[0] is not listing:
            known = self._binaries[relative] = (listing, binaries_by_module(listing))
        return known[1].get(module, [])

    def listdir(self, relative):
        """(folders, files) directly inside ``relative``, each sorted."""
        listing = self._listing(relative) or {}
        names = sorted(listing)
        return ([name for name in names if listing[name] == DIR],
                [name for name in names if listing[name] != DIR])


DIR, FILE = "dir", "file"
EXTENSION_SUFFIX = ".so"


BINARIES_PROBE = "/binaries/"  # a Watch's probe of a module's binaries: no file name


def binaries_by_module(names):
    """{module name: [file names, sorted]} of the compiled modules among ``names``
    (``name.so``, ``name.<tag>.so``)."""
    found = {}
    for entry in sorted(names):
        if entry.endswith(EXTENSION_SUFFIX) and "/" not in entry:
            found.setdefault(entry.split(".")[0], []).append(entry)
    return found


def answering(entries):
    """What a probe (a name, or BINARIES_PROBE and a module) finds in ``entries``, as a
    function of the probe."""
    binaries = []

    def answer(probe):
        if not probe.startswith(BINARIES_PROBE):
            return entries.get(probe)
        if not binaries:
            binaries.append(binaries_by_module(entries))
        return binaries[0].get(probe[len(BINARIES_PROBE):], [])
    return answer


def folder_key(local):
    """What identifies one version of a folder's listing; None: not a folder."""
    try:
        status = os.stat(local)
    except OSError:
        return None
    if not stat.S_ISDIR(status.st_mode):
        return None
    return (status.st_mtime, status.st_ino, status.st_nlink)


def file_key(local):
    """What identifies one version of a file (as ``stamp`` has it); None: no file."""
    try:
        status = os.stat(local)
    except OSError:
        return None
    return (local, status.st_mtime, status.st_size)


class Watch(object):
    """What one walk over the search path read: folder listings and files, each with the
    key of the version it saw, so a result built from them is reused only while all
    of them are unchanged (one stat each).

    Most questions a walk asks of a folder are whether one name is there (every search
    path entry is asked about every candidate): those are kept as probes, with their
    answers. A folder whose key changed, or that changed too recently to trust its key
    (a script's folder, a project's root where tests write files), is listed again, and
    what was asked of it is asked again: only a different answer makes the result stale."""

    def __init__(self):
        self.folders = {}  # local path -> key: a listing used whole
        self.probes = {}  # local path -> [key, settled, {probe: answer}]
        self.files = {}
        self.settled = True  # False: something changed too recently to trust times

    def folder(self, local, key, settled):
        self.folders[local] = key
        self.settled = self.settled and settled

    def probe(self, local, key, settled, probe, answer):
        known = self.probes.get(local)
        if known is None:
            known = self.probes[local] = [key, settled, {}]
        elif known[0] != key or not settled:
            known[1] = False  # listed again since: the key alone no longer vouches
        known[2][probe] = _frozen(answer)

    def file(self, root, relative):
        """A file the walk read: for a zip, the archive is the version that counts."""
        local = root.local(relative) if isinstance(root, DirectoryRoot) else root.archive
        self.files[local] = file_key(local)

    def unchanged(self):
        return (all(folder_key(local) == key for local, key in self.folders.items())
                and all(file_key(local) == stamp for local, stamp in self.files.items())
                and all(_probes_hold(local, known) for local, known in
                        list(self.probes.items())))

    @classmethod
    def merged(cls, watches):
        """One Watch of everything ``watches`` read."""
        merged = cls()
        for watch in watches:
            merged.folders.update(watch.folders)
            merged.files.update(watch.files)
            merged.settled = merged.settled and watch.settled
            for local, (key, settled, answers) in watch.probes.items():
                for probe, answer in answers.items():
                    seen = merged.probes.get(local, (None, None, {}))[2]
                    if probe in seen and seen[probe] != answer:
                        answer = CONFLICTING
                    merged.probe(local, key, settled, probe, answer)
        return merged

    def as_data(self):
        """What a later master process needs to check this Watch, as JSON data."""
        return {"folders": [[local, key and list(key)] for local, key in self.folders.items()],
                "files": [[local, stamp and list(stamp)] for local, stamp in self.files.items()],
                "probes": [[local, key and list(key), settled, answers]
                           for local, (key, settled, answers) in self.probes.items()]}

    @classmethod
    def from_data(cls, data):
        """The settled Watch ``as_data`` described (ValueError, TypeError: not one)."""
        watch = cls()
        for local, key in data["folders"]:
            watch.folders[local] = key and tuple(key)
        for local, stamp in data["files"]:
            watch.files[local] = stamp and tuple(stamp)
        for local, key, settled, answers in data.get("probes", ()):
            if not isinstance(answers, dict):
                raise TypeError("probes of %r: %r" % (local, answers))
            watch.probes[local] = [key and tuple(key), bool(settled), dict(
                (probe, _frozen(answer)) for probe, answer in answers.items())]
        return watch


CONFLICTING = "<answered differently>"  # a merged probe two walks saw differently: stale


def _frozen(answer):
    """A probe's answer as kept: a tuple for a list of binaries. A master that read
    sympy's, numpy's and pytest's replies from disk held 18,000 empty lists, each
    tracked by the garbage collector (its full collections, and its exit, took 18 ms
    against 8 ms without the bridge); a tuple of text is not."""
    return tuple(answer) if isinstance(answer, list) else answer


def _probes_hold(local, known):
    """Would what was asked of folder ``local`` be answered as it was? One stat where its
    key vouches for it; else it is listed again (and, once it has settled, its key
    vouches from then on)."""
    key, settled, answers = known
    current = folder_key(local)
    if settled and current == key:
        return True
    try:
        entries = _entries(local) if current is not None else {}
    except OSError:
        return False
    answer_now = answering(entries)
    if any(_frozen(answer_now(probe)) != answer for probe, answer in list(answers.items())):
        return False
    if current is not None and time.time() - current[0] > DirectoryRoot.SETTLED:
        known[0], known[1] = current, True
    return True


def _entries(folder):
    """{name: DIR, FILE or None} of a folder, following symbolic links, as os.path.isdir
    and isfile do (scandir knows most kinds without a stat; 2.7 has no scandir)."""
    if not hasattr(os, "scandir"):
        return dict((name, _path_kind(os.path.join(folder, name)))
                    for name in os.listdir(folder))
    entries = {}
    for entry in os.scandir(folder):
        try:
            entries[entry.name] = DIR if entry.is_dir() else FILE if entry.is_file() else None
        except OSError:
            entries[entry.name] = None
    return entries


def _path_kind(path):
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return DIR if stat.S_ISDIR(mode) else FILE if stat.S_ISREG(mode) else None


class ZipRoot(Root):
    """A zip archive on the search path, or a folder inside one."""

    STAMP_MTIME = 2  # stamp(): (archive, member, the archive's mtime, its size, member size)

    def __init__(self, archive, prefix):
        Root.__init__(self)  # contents are read once: a watch records the archive instead
        self.archive = archive
        self.prefix = prefix  # "" or "inner/folder/"
        self.path = os.path.join(archive, prefix) if prefix else archive
        with zipfile.ZipFile(archive) as opened:
            names = [name[len(prefix):] for name in opened.namelist() if name.startswith(prefix)]
        self.files = set(name for name in names if name and not name.endswith("/"))
        self.folders = set()
        for name in names:
            parts = name.rstrip("/").split("/")
            for depth in range(1, len(parts) + (1 if name.endswith("/") else 0)):
                self.folders.add("/".join(parts[:depth]))

    def __repr__(self):
        return "ZipRoot(%r)" % self.path

    def local(self, relative):
        return os.path.join(self.path, *relative.split("/"))

    def version(self):
        status = os.stat(self.archive)
        return status.st_mtime, status.st_size

    def isdir(self, relative):
        return relative in self.folders

    def isfile(self, relative):
        return relative in self.files

    def confined(self, relative):
        return self.local(relative)  # a zip member cannot point outside its archive

    def size(self, relative):
        with zipfile.ZipFile(self.archive) as opened:
            return opened.getinfo(self.prefix + relative).file_size

    def stamp(self, relative):
        """The archive's version and the member: (archive, member, mtime, size, its size)."""
        status = os.stat(self.archive)
        return (self.archive, self.prefix + relative, status.st_mtime, status.st_size,
                self.size(relative))

    def read(self, relative):
        with zipfile.ZipFile(self.archive) as opened:
            return opened.read(self.prefix + relative)

    def read_chunks(self, relative, size):
        """The member's bytes, ``size`` at a time (a generator)."""
        with zipfile.ZipFile(self.archive) as opened:
            with opened.open(self.prefix + relative) as stream:
                for chunk in iter(lambda: stream.read(size), b""):
                    yield chunk

    def names(self, relative):
        return sum(self.listdir(relative), [])

    def binaries(self, relative, module):
        return binaries_by_module(self.names(relative)).get(module, [])

    def listdir(self, relative):
        start = relative + "/" if relative else ""
        children = set(name[len(start):].split("/")[0]
                       for name in self.files | self.folders if name.startswith(start))
        folders = sorted(name for name in children if start + name in self.folders)
        return folders, sorted(children.difference(folders))


def make_root(entry):
    """The root for one search path entry, or None if nothing can be served from it."""
    entry = os.path.abspath(entry or os.curdir)
    if os.path.isdir(entry):
        return DirectoryRoot(entry)
    archive, prefix = entry, ""
    while archive and not os.path.isfile(archive):
        archive, tail = os.path.split(archive)
        if not tail:
            return None
        prefix = tail + "/" + prefix
    if archive and zipfile.is_zipfile(archive):
        return ZipRoot(archive, prefix)
    return None
