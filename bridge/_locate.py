"""Finding modules on the master's search path without importing anything.

``importlib.util.find_spec("a.b")`` would import ``a`` to read its
``__path__``; serving must never execute a served module on the master. So
this module answers the question from the file system (and zip archives)
alone, in the order CPython's ``FileFinder`` uses inside one path entry: a
package folder with ``__init__.py``, then compiled extensions, then a ``.py``
file, then a namespace portion (a folder without ``__init__``), which counts
only if no entry has a regular module or package of that name (PEP 420).
Which extension file suits a slave is the responder's decision, not ours.

Every read is confined to its path entry: a name cannot climb out of it (it
is a dotted identifier), and a symlink that points outside is refused.
"""
import ast
import contextlib
import csv
import os
import stat
import threading
import time
import zipfile

import six

from .compat import protocol
from .compat.paths import search_path as default_search_path  # noqa: F401 - re-exported

SOURCE_SUFFIX = ".py"
EXTENSION_SUFFIX = ".so"
# Files that are code, not package data: imported on demand, never sent as data.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so")
SKIPPED_FOLDERS = ("__pycache__",)


class OutsideRoot(Exception):
    """A file resolves to a place outside the search path entry it was found in."""


class Root(object):
    """What both kinds of root share: a Watch per thread (one root serves every slave
    whose search path holds it, each on its own receiver thread)."""

    def __init__(self):
        self._thread = threading.local()

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

    Serving one import asks thousands of questions about the same few folders
    (sympy: 4,000 lookups of prefetch candidates), so each folder is listed once
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

    def _listing(self, relative):
        """{name: DIR, FILE or None (neither, e.g. a broken link)} inside folder
        ``relative``, or None if it is not a folder."""
        known = self._listings.get(relative)  # [key, entries, request number, local path]
        if known is not None and known[2] == self.request_number:
            self._watched(known[3], known[0], True)  # the hot path of every walk
            return known[1]
        local = self.local(relative)
        key = folder_key(local)
        if key is None:
            self._watched(local, None, True)
            return None
        if known is not None and known[0] == key:
            known[2] = self.request_number
            self._watched(local, key, True)
            return known[1]
        entries = _entries(local)
        settled = time.time() - key[0] > self.SETTLED
        if settled:
            self._listings[relative] = [key, entries, self.request_number, local]
        self._watched(local, key, settled)
        return entries

    def _watched(self, local, key, settled):
        watch = self.watch
        if watch is not None:
            watch.folder(local, key, settled)

    def _kind(self, relative):
        if not relative:
            return DIR if os.path.isdir(self.path) else None
        folder, _, name = relative.rpartition("/")
        listing = self._listing(folder)
        return listing.get(name) if listing is not None else None

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

    def binaries(self, relative):
        """binaries_by_module of folder ``relative``, worked out once per listing."""
        listing = self._listing(relative) or {}
        known = self._binaries.get(relative)
        if known is None or known[0] is not listing:
            known = self._binaries[relative] = (listing, binaries_by_module(listing))
        return known[1]

    def listdir(self, relative):
        """(folders, files) directly inside ``relative``, each sorted."""
        listing = self._listing(relative) or {}
        names = sorted(listing)
        return ([name for name in names if listing[name] == DIR],
                [name for name in names if listing[name] != DIR])


DIR, FILE = "dir", "file"


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
    of them are unchanged (one stat each)."""

    def __init__(self):
        self.folders = {}
        self.files = {}
        self.settled = True  # False: something changed too recently to trust times

    def folder(self, local, key, settled):
        self.folders[local] = key
        self.settled = self.settled and settled

    def file(self, root, relative):
        """A file the walk read: for a zip, the archive is the version that counts."""
        local = root.local(relative) if isinstance(root, DirectoryRoot) else root.archive
        self.files[local] = file_key(local)

    def unchanged(self):
        return (all(folder_key(local) == key for local, key in self.folders.items())
                and all(file_key(local) == stamp for local, stamp in self.files.items()))

    @classmethod
    def merged(cls, watches):
        """One Watch of everything ``watches`` read."""
        merged = cls()
        for watch in watches:
            merged.folders.update(watch.folders)
            merged.files.update(watch.files)
            merged.settled = merged.settled and watch.settled
        return merged

    def as_data(self):
        """What a later master process needs to check this Watch, as JSON data."""
        return {"folders": [[local, key and list(key)] for local, key in self.folders.items()],
                "files": [[local, stamp and list(stamp)] for local, stamp in self.files.items()]}

    @classmethod
    def from_data(cls, data):
        """The settled Watch ``as_data`` described (ValueError, TypeError: not one)."""
        watch = cls()
        for local, key in data["folders"]:
            watch.folders[local] = key and tuple(key)
        for local, stamp in data["files"]:
            watch.files[local] = stamp and tuple(stamp)
        return watch


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

    def binaries(self, relative):
        return binaries_by_module(self.names(relative))

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


class Located(object):
    """A module found on the search path: what it is and where its files are."""

    def __init__(self, module_type, root, path, places, extensions=(), source=None):
        self.type = module_type
        self.root = root  # the root of the file (the first portion for a namespace)
        self.path = path  # root-relative: the .py file, __init__.py, or namespace folder
        self.places = places  # [(root, folder)] where its submodules are looked for
        self.extensions = list(extensions)  # EXTENSION: the binaries found, any tag
        self.source = source  # EXTENSION: a .py of the same module beside them, if any


def _join(folder, name):
    return folder + "/" + name if folder else name


def binaries_by_module(names):
    """{module name: [file names]} of the compiled modules among ``names``
    (``name.so``, ``name.<tag>.so``)."""
    found = {}
    for entry in names:
        if entry.endswith(EXTENSION_SUFFIX) and "/" not in entry:
            found.setdefault(entry.split(".")[0], []).append(entry)
    return found


def _extensions_in(root, folder, name):
    """Root-relative paths of compiled modules ``name``: ``name.so``, ``name.<tag>.so``."""
    return sorted(_join(folder, entry) for entry in root.binaries(folder).get(name, ())
                  if root.isfile(_join(folder, entry)))


def _find_in(places, name):
    """Find ``name`` in one of ``places``, in FileFinder's order (PEP 420 last)."""
    portions = []
    for root, folder in places:
        base = _join(folder, name)
        if root.isdir(base) and root.isfile(base + "/__init__.py"):
            return Located(protocol.PACKAGE, root, base + "/__init__.py",
                           _package_places(places, name, root, base))
        extensions = _extensions_in(root, folder, name)
        if extensions:
            source = base + SOURCE_SUFFIX if root.isfile(base + SOURCE_SUFFIX) else None
            return Located(protocol.EXTENSION, root, extensions[0], [], extensions, source)
        if root.isfile(base + SOURCE_SUFFIX):
            return Located(protocol.SOURCE, root, base + SOURCE_SUFFIX, [])
        if root.isdir(base):
            portions.append((root, base))
    if portions:
        return Located(protocol.NAMESPACE, portions[0][0], portions[0][1], portions)
    return None


# What an __init__.py calls to spread its package over every path entry at run time.
NAMESPACE_DECLARATIONS = (b"declare_namespace", b"extend_path")


def _package_places(places, name, root, base):
    """Where a package's submodules are looked for: its own folder, and, if its
    ``__init__`` declares a namespace (``pkg_resources.declare_namespace``,
    ``pkgutil.extend_path``: ``backports``, ``zope`` over several distributions),
    the folder of that name in every other place, as its ``__path__`` would be
    at run time. The source is read only when another place has such a folder."""
    own = [(root, base)]
    others = [(other, _join(folder, name)) for other, folder in places
              if other is not root and other.isdir(_join(folder, name))]
    if not others or not _inside(root, base + "/__init__.py"):
        return own
    source = root.read(base + "/__init__.py")
    if any(word in source for word in NAMESPACE_DECLARATIONS):
        return own + others
    return own


def _inside(root, relative):
    """Data that resolves outside the root is left out, never sent."""
    try:
        root.confined(relative)
    except OutsideRoot:
        return False
    return True


class SearchPath(object):
    """The entries the master serves from, each a folder or a zip. ``root_for(entry)``
    makes (or shares: MasterCaches.root) each entry's root."""

    def __init__(self, entries, root_for=None):
        self.entries = list(entries)
        roots = ((root_for or make_root)(entry) for entry in self.entries)
        self.roots = [root for root in roots if root is not None]
        self._metadata = {}  # root -> (its request number, MetadataIndex): once a reply
        self._resource_inits = {}  # stamp of an __init__.py -> has it no statements?

    def begin_request(self):
        """Start answering one request: folders listed before are checked again, once."""
        for root in self.roots:
            root.request_number = getattr(root, "request_number", 0) + 1

    @contextlib.contextmanager
    def watching(self):
        """Record every folder listed and file read meanwhile, in the Watch yielded."""
        watch = Watch()
        outer = [root.watch for root in self.roots]  # a walk inside another walk
        for root in self.roots:
            root.watch = watch
        try:
            yield watch
        finally:
            for root, previous in zip(self.roots, outer):
                root.watch = previous

    def metadata_index(self, root):
        """The MetadataIndex of ``root``'s installed distributions, as they are now."""
        known = self._metadata.get(root)
        number = getattr(root, "request_number", 0)
        if known is None or known[0] != number:
            known = self._metadata[root] = (number, metadata_index(root))
        return known[1]

    def wheel_tags(self, root, path):
        """The ``Tag:`` lines of the wheel that installed root-relative ``path``,
        as ``[(interpreter, abi, platform)]``; empty if no distribution lists it."""
        owner = self.metadata_index(root).owner(path)
        return owner.tags if owner is not None else []

    def distribution_of(self, located):
        """The InstalledDistribution that ``located`` belongs to, or None if unknown
        (a top-level name several distributions share counts as unknown)."""
        return self.metadata_index(located.root).owner(located.path, shared=False)

    def locate_in(self, root, folder, name):
        """The Located of ``name`` inside root-relative ``folder`` alone, or None."""
        return _find_in([(root, folder)], name)

    def locate(self, fullname):
        """Return the Located for dotted ``fullname``, or None. Nothing is imported."""
        places = [(root, "") for root in self.roots]
        found = None
        for part in fullname.split("."):
            found = _find_in(places, part)
            if found is None:
                return None
            places = found.places
        return found

    def children(self, located):
        """Every submodule name of a package or namespace, from all its folders, so the
        slave can answer "no such submodule" without asking."""
        found = set()
        for root, folder in located.places:
            for entry in root.names(folder):
                stem = entry.split(".")[0]
                if entry.endswith(SOURCE_SUFFIX) or entry.endswith(EXTENSION_SUFFIX):
                    found.add(stem)
                elif "." not in entry and root.isdir(_join(folder, entry)):
                    found.add(entry)
        found.discard("__init__")
        found.discard("__pycache__")
        return sorted(name for name in found if protocol.module_name_problem(name) is None)

    def folder_entries(self, located):
        """[[name, kind]] of everything in a package's folders (FILE, FOLDER, or PACKAGE: a
        folder with an ``__init__``), so the slave lists the package as installed before
        any of it came (pkgutil, importlib.resources). Bytecode caches are not listed."""
        found = {}
        for root, folder in located.places:
            folders, files = root.listdir(folder)
            for name in files:
                found.setdefault(name, protocol.ENTRY_FILE)
            for name in folders:
                if name == "__pycache__":
                    continue
                inside = root.names(_join(folder, name))
                is_package = any(entry.split(".")[0] == "__init__" for entry in inside)
                found[name] = protocol.ENTRY_PACKAGE if is_package else protocol.ENTRY_FOLDER
        return [[six.text_type(name), six.text_type(kind)] for name, kind in sorted(found.items())]

    def data_files(self, located, admitted=None):
        """Root-relative paths of a package's data: every file that is not code, in its
        folder, in subfolders that are not packages, and in its resource subpackages
        (see ``resource_package``), whose ``__init__.py`` comes along so that the slave
        imports them as the packages they are, not as PEP 420 namespaces. So
        ``files(pkg) / "zoneinfo/Europe/Paris"``, ``pkgutil.get_data`` and ``open()``
        relative to ``__file__`` reach them before anyone imports them.
        ``admitted(dotted name)`` (the policy) may keep a subpackage out, with all in it."""
        if located.type != protocol.PACKAGE:
            return []
        root = located.root
        found = []
        pending = [located.path.rpartition("/")[0]]
        while pending:
            folder = pending.pop()
            folders, files = root.listdir(folder)
            found.extend(_join(folder, name) for name in files
                         if not name.endswith(CODE_SUFFIXES) and _inside(root, _join(folder, name)))
            for name in folders:
                inner = _join(folder, name)
                if name in SKIPPED_FOLDERS:
                    continue
                if not root.isfile(inner + "/__init__.py"):
                    pending.append(inner)
                elif self.resource_package(root, inner) and (
                        admitted is None or admitted(inner.replace("/", "."))):
                    found.append(inner + "/__init__.py")
                    pending.append(inner)
        return sorted(found)

    def resource_package(self, root, folder):
        """Is package ``folder`` a holder of data, with no code: no module but an
        ``__init__.py`` without statements (empty, comments, a docstring)? That is the
        shape ``importlib.resources`` required before 3.9 (tzdata's ``zoneinfo/Europe``).
        A subpackage with code keeps its data until it is imported, as its code reads
        it: so serving docutils or sympy sends no more than before."""
        for name in root.names(folder):
            if name != "__init__.py" and name.endswith(CODE_SUFFIXES):
                return False
        init = folder + "/__init__.py"
        if not _inside(root, init):
            return False
        stamp = root.stamp(init)
        if stamp not in self._resource_inits:
            self._resource_inits[stamp] = root.size(init) <= RESOURCE_INIT_BYTES and \
                _no_statements(root.read(init))
        return self._resource_inits[stamp]

    def distributions(self, name=None):
        """[(root, folder, normalized name)] of distribution metadata folders
        (``*.dist-info``, ``*.egg-info``): the first on the path for each name, as
        importlib.metadata finds them; only ``name``'s when given."""
        wanted = None if name is None else protocol.normalized_distribution(name)
        found, seen = [], set()
        for root in self.roots:
            for entry in sorted(root.names("")):
                normalized = protocol.distribution_of(entry)
                if (normalized is None or normalized in seen
                        or wanted not in (None, normalized) or not root.isdir(entry)):
                    continue
                seen.add(normalized)
                found.append((root, entry, normalized))
        return found

    def metadata_files(self, root, folder):
        """Root-relative paths of every file in a metadata folder and its subfolders
        (``licenses/``), leaving out what resolves outside the root."""
        found, pending = [], [(folder, 0)]
        while pending:
            current, depth = pending.pop()
            folders, files = root.listdir(current)
            found.extend(path for path in (_join(current, name) for name in files)
                         if _inside(root, path))
            if depth < METADATA_DEPTH:
                pending.extend((_join(current, name), depth + 1) for name in folders)
        return sorted(found)


RESOURCE_INIT_BYTES = 4096  # a larger __init__.py is taken for code, unread


def _no_statements(source):
    """Does this module source hold nothing that runs (a docstring at most)? Source this
    Python cannot parse counts as code."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, TypeError):
        return False
    # A docstring is an ast.Str before 3.8, an ast.Constant after (ast.Str warns on 3.12).
    return all(isinstance(node, ast.Expr) and type(node.value).__name__ in ("Str", "Constant")
               for node in body)

METADATA_DEPTH = 8  # folders inside a metadata folder, at most (a symlink loop ends here)


class InstalledDistribution(object):
    """What serving needs from one distribution's installed metadata."""

    def __init__(self, folder, name, version, requires_python, tags):
        self.folder = folder  # root-relative: foo-1.0.dist-info
        self.name = name
        self.version = version
        self.requires_python = requires_python  # the header's text, or None
        self.tags = tags  # [(interpreter, abi, platform)] from WHEEL

    def __repr__(self):
        return "InstalledDistribution(%r)" % self.folder


class MetadataIndex(object):
    """Which installed distribution each file of a root belongs to: the RECORD that
    lists it, else the distribution that declares its top-level name (RECORD or
    ``top_level.txt``)."""

    def __init__(self):
        self.distributions = []  # [(InstalledDistribution, [root-relative files])]
        self.by_file = {}
        self.by_top = {}  # top-level module name -> [InstalledDistribution]

    def add(self, distribution, files, top_level):
        self.distributions.append((distribution, files))
        for path in files:
            self.by_file.setdefault(path, distribution)
        for top in set(_top_name(path) for path in files) | set(top_level):
            self.by_top.setdefault(top, []).append(distribution)

    def owner(self, path, shared=True):
        """The distribution that installed root-relative ``path``, or None. By top-level
        name, the first one; with ``shared=False`` only one no other declares too."""
        if path in self.by_file:
            return self.by_file[path]
        candidates = self.by_top.get(_top_name(path), [])
        return candidates[0] if candidates and (shared or len(candidates) == 1) else None


def _top_name(path):
    """The top-level module name of a root-relative path: ``six.py``, ``six/x.py`` -> six."""
    return path.split("/", 1)[0].split(".", 1)[0]


def metadata_index(root):
    """Read every metadata folder at the top of ``root`` into a MetadataIndex.

    A root's listing changes when a distribution is installed, upgraded or removed
    (its folder's name holds the version), so the index is cached per version of
    that listing, shared by every slave the master serves."""
    version = root.version()
    key = (root.path, version)
    with _metadata_lock:
        known = _metadata_indexes.get(root.path)
    if version is not None and known is not None and known[0] == key:
        return known[1]
    index = MetadataIndex()
    for name in sorted(root.names("")):
        if protocol.distribution_of(name) is not None and root.isdir(name):
            index.add(*_read_distribution(root, name))
    with _metadata_lock:
        _metadata_indexes[root.path] = (key, index)
    return index


_metadata_indexes = {}  # root path -> ((root path, version), MetadataIndex): the latest only
_metadata_lock = threading.Lock()


def _text(root, path):
    return root.read(path).decode("utf-8", "replace") if root.isfile(path) else ""


def _read_distribution(root, folder):
    """(InstalledDistribution, [root-relative files of its RECORD], [top_level.txt names])."""
    wheel = folder.endswith(".dist-info")
    headers = _headers(_text(root, folder + ("/METADATA" if wheel else "/PKG-INFO")))
    name, _, version = folder.rpartition(".")[0].partition("-")
    tags = []
    for line in _text(root, folder + "/WHEEL").splitlines() if wheel else ():
        if line.startswith("Tag:"):
            interpreters, abi, platform = line.split(":", 1)[1].strip().split("-", 2)
            tags.extend((each, abi, platform) for each in interpreters.split("."))
    files = [path for path in (record_paths(root, folder) if wheel else ())
             if not path.startswith(("../", "/", folder + "/"))]
    top_level = _text(root, folder + "/top_level.txt").split()
    distribution = InstalledDistribution(folder, headers.get("name") or name,
                                         headers.get("version") or version,
                                         headers.get("requires-python"), tags)
    return distribution, files, top_level


def _headers(text):
    """The first value of each header of a METADATA / PKG-INFO text, by lower-case name."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the body (the long description) starts here
        key, colon, value = line.partition(":")
        if colon and not line[:1].isspace():
            found.setdefault(key.strip().lower(), value.strip())
    return found


def record_paths(root, folder):
    """The root-relative paths a metadata folder's RECORD lists (PEP 376: CSV rows, the
    path first, quoted when it holds a comma); empty without a RECORD."""
    if not root.isfile(folder + "/RECORD"):
        return []
    lines = root.read(folder + "/RECORD").decode("utf-8", "replace").splitlines()
    if six.PY2:  # 2.7's csv reads bytes only
        rows = ([field.decode("utf-8") for field in row]
                for row in csv.reader(line.encode("utf-8") for line in lines))
    else:
        rows = csv.reader(lines)
    return [row[0] for row in rows if row and row[0]]


def distribution_version(folder):
    """``Foo_Bar-1.0.dist-info`` -> ``1.0``; its name is ``protocol.distribution_of``."""
    return folder.rpartition(".")[0].partition("-")[2]
