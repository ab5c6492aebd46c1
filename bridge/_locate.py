"""Finding modules on the master's search path without importing anything.

``importlib.util.find_spec("a.b")`` would import ``a`` to read its
``__path__``; serving must never execute a served module on the master. So
this module answers the question from the file system (and zip archives)
alone, in the order CPython's ``FileFinder`` uses inside one path entry: a
package folder with ``__init__.py``, then compiled extensions, then a ``.py``
file, then a namespace portion (a folder without ``__init__``), which counts
only if no entry has a regular module or package of that name (PEP 420).
Which extension file suits a slave is the RecordBuilder's decision (_records.py).

Every read is confined to its path entry: a name cannot climb out of it (it
is a dotted identifier), and a symlink that points outside is refused.
"""
import ast
import contextlib

import six

from ._metadata import METADATA_DEPTH, metadata_index
from ._roots import EXTENSION_SUFFIX, OutsideRoot, Watch, make_root
from .compat import protocol
from .compat.paths import search_path as default_search_path  # noqa: F401 - re-exported

SOURCE_SUFFIX = ".py"
# Files that are code, not package data: imported on demand, never sent as data.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so")
SKIPPED_FOLDERS = ("__pycache__",)


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


def _extensions_in(root, folder, name):
    """Root-relative paths of compiled modules ``name``: ``name.so``, ``name.<tag>.so``."""
    return sorted(_join(folder, entry) for entry in root.binaries(folder, name)
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
