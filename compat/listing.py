"""A served package lists as installed: every module, subpackage and data file the
package has on the master, before any of it came.

A package's folder on the slave is a tree (compat/trees.py) holding what its replies
brought, and its record carries the names in its folder on the master (``entries``).
The listings are made from those names:

- ``pkgutil.iter_modules`` and ``walk_packages`` ask the path entry finder of each
  ``__path__`` folder: a path hook gives a served package's folder one whose
  ``iter_modules`` yields the package's modules from its entries. It finds modules as
  the bridge's finder does, so ``runpy``'s search on ``__path__`` (2.7's ``-m pkg.mod``)
  reaches what has not come yet.
- ``importlib.resources`` asks the package's loader for a resource reader: the served
  loaders give one whose ``files()`` is a Traversable over the entries. Reading a file
  that has not come fetches the module or subpackage it belongs to (one request, as
  importing it would; nothing runs).

A served file is a file on the slave's disk that never gets other bytes, so
``importlib.resources.as_file`` yields its path, as for an installed package, where it
would copy a Traversable's bytes to a temporary file (certifi's CA bundle, 290 KB, at
every ``import requests``).

A listing is names: nothing is sent for it. ``os.listdir`` of the folder shows the
files that came, and ``open()`` of a path beside ``__file__`` reaches the data files
(they come with their package) but not a module's source that has not come.
"""
import io
import os
import sys

from . import protocol
from .files import inside
from .neutral import FileNotFoundError, NotADirectoryError, native_path

try:  # the suffixes a module file may have, as importlib names them
    from importlib.machinery import all_suffixes as _all_suffixes
except ImportError:  # 2.7
    import imp

    def _all_suffixes():
        return [suffix for suffix, _, _ in imp.get_suffixes()]


def module_name_of(filename):
    """``core`` for ``core.py``, ``core.cpython-311-x86_64-linux-gnu.so``; None for data."""
    for suffix in sorted(_all_suffixes(), key=len, reverse=True):
        if filename.endswith(suffix) and len(filename) > len(suffix):
            stem = filename[:-len(suffix)]
            return stem if protocol.module_name_problem(stem) is None else None
    return None


def listed_modules(entries):
    """[(name, is_package)] of a package's entries, as pkgutil lists a folder."""
    found = {}
    for name, kind in entries.items():
        if kind == protocol.ENTRY_PACKAGE:
            found[name] = True
        elif kind == protocol.ENTRY_FILE:
            stem = module_name_of(name)
            if stem is not None and stem != "__init__":
                found.setdefault(stem, False)
    return sorted(found.items())


class ServedPackageFolder(object):
    """The path entry finder of a served package's folder (PEP 302, PEP 451)."""

    def __init__(self, finder, package, folder):
        self.finder = finder  # the bridge's meta path finder
        self.package = package
        self.path = folder
        self._files = None

    def find_spec(self, fullname, target=None):
        """PEP 451 (3.x): what came, with the served loaders. What has not come is the
        meta path finder's to ask for: it goes first, and keeps the import lock."""
        if fullname.rpartition(".")[0] != self.package:
            return None
        if self._files is None:
            self._files = self.finder.folder_finder(self.path)
        return self._files.find_spec(fullname, target)

    def find_module(self, fullname, path=None):
        """PEP 302 (2.7), whose ``pkgutil`` and ``runpy`` look for ``pkg.mod`` on
        ``pkg.__path__`` alone: as the bridge's importer finds it."""
        if fullname.rpartition(".")[0] != self.package:
            return None
        return self.finder.find_module(fullname, [self.path])

    def iter_modules(self, prefix=""):
        """pkgutil's question: (name, is_package) of every module the package has."""
        entries = self.finder.session.entries.get(self.package) or {}
        for name, is_package in listed_modules(entries):
            yield prefix + name, is_package

    def invalidate_caches(self):
        """PEP 451: a tree never changes."""


def register_traversable():
    """Tell importlib.resources' Traversable that ServedTraversable is one (3.9+), and its
    ``as_file`` where a served file is. Its import costs a handshake 5 ms (inspect,
    pathlib): done when the first is made."""
    for module in ("importlib.resources.abc", "importlib.abc"):
        try:
            traversable = getattr(__import__(module, fromlist=["Traversable"]), "Traversable")
        except (ImportError, AttributeError):
            continue
        if hasattr(traversable, "register"):
            traversable.register(ServedTraversable)
        break
    _register_as_file()


def _register_as_file():
    """``as_file`` (3.9+, a singledispatch function) of a served file yields its path on
    the slave, not a temporary copy. A folder is still copied: a package's folder holds
    only the modules that came. 3.7 and 3.8's ``path()`` asks ``resource_path``."""
    try:
        from importlib.resources import as_file
    except ImportError:
        return
    if not hasattr(as_file, "register"):
        return
    import contextlib
    import pathlib
    copy = as_file.dispatch(object)

    def served_as_file(traversable):
        path = traversable.file_path()
        if path is None:
            return copy(traversable)
        return contextlib.nullcontext(pathlib.Path(path))

    as_file.register(ServedTraversable, served_as_file)


def path_hook_for(finder):
    """A ``sys.path_hooks`` entry: served package folders get a ServedPackageFolder."""
    def served_package_folder(entry):
        package = finder.session.package_folders.get(entry)
        if package is None:
            raise ImportError("not a served package's folder")
        return ServedPackageFolder(finder, package, entry)
    return served_package_folder


def install(finder):
    """Put the path hook first (served package folders appear only after it)."""
    hook = path_hook_for(finder)
    sys.path_hooks.insert(0, hook)
    return hook


def uninstall(hook):
    if hook in sys.path_hooks:
        sys.path_hooks.remove(hook)


def traversable_at(session, path):
    """The ServedTraversable of ``path`` if it lies in a served package's folder here (the
    innermost), else None: for readers that go by path (pkg_resources' providers)."""
    path = os.path.normpath(path)
    best = None
    for folder, package in list(session.package_folders.items()):
        if (path == folder or path.startswith(folder + os.sep)) and (
                best is None or len(folder) > len(best[0])):
            best = (folder, package)
    if best is None:
        return None
    folder, package = best
    parts = [part for part in path[len(folder):].split(os.sep) if part]
    return ServedTraversable(session, package, parts)


class ServedResources(object):
    """A package's resource reader (importlib.resources' ``files()``, 3.9+, and the
    ResourceReader methods of 3.7 and 3.8) over its listing."""

    def __init__(self, session, package):
        self.session = session
        self.package = package

    def files(self):
        return ServedTraversable(self.session, self.package, ())

    def open_resource(self, resource):
        return self.files().joinpath(resource).open("rb")

    def resource_path(self, resource):
        path = self.files().joinpath(resource).local_path()
        if path is None:
            raise FileNotFoundError(resource)
        return path

    def is_resource(self, name):
        return self.files().joinpath(name).is_file()

    def contents(self):
        return [child.name for child in self.files().iterdir()]


class ServedTraversable(object):
    """A file or folder of a served package, by its place in the package's listing:
    ``importlib.resources.abc.Traversable``."""

    registered = False  # as a Traversable: when the first is made, not at every handshake

    def __init__(self, session, package, parts):
        if not ServedTraversable.registered:
            ServedTraversable.registered = True
            register_traversable()
        self.session = session
        self.package = package  # the served package that holds it
        self.parts = tuple(parts)  # its path below the package's folder

    @property
    def name(self):
        return self.parts[-1] if self.parts else self.package.rpartition(".")[2]

    def __repr__(self):
        return "<served %s: %s>" % (self.package, "/".join(self.parts) or ".")

    def _kind(self):
        """ENTRY_FILE, ENTRY_FOLDER, ENTRY_PACKAGE, or None: not in the listing."""
        if not self.parts:
            return protocol.ENTRY_PACKAGE
        if len(self.parts) == 1:
            entries = self.session.entries.get(self.package) or {}
            if self.parts[0] in entries:
                return entries[self.parts[0]]
        path = self.local_path()  # deeper: a data folder, which came whole
        if path is None:
            return None
        return protocol.ENTRY_FOLDER if os.path.isdir(path) else protocol.ENTRY_FILE

    def _subpackage(self):
        """The ServedTraversable of a subpackage's own folder, fetched if need be."""
        name = "%s.%s" % (self.package, self.parts[0])
        self.session.fetch(name)
        return ServedTraversable(self.session, name, self.parts[1:])

    def local_path(self):
        """Where the file or folder is on the slave, fetching the module or subpackage
        it belongs to if it has not come; None where it is not."""
        folder = self.session.package_folder(self.package)
        if folder is None:
            return None
        path = inside(folder, "/".join(self.parts)) if self.parts else folder
        if os.path.exists(path):
            return path
        entries = self.session.entries.get(self.package) or {}
        if entries.get(self.parts[0]) == protocol.ENTRY_PACKAGE:
            return self._subpackage().local_path()
        stem = module_name_of(self.parts[0]) if len(self.parts) == 1 else None
        if stem is not None:
            served = self.session.fetch("%s.%s" % (self.package, stem))
            if served is not None:
                path = os.path.join(os.path.dirname(served.filename),
                                    native_path(self.parts[0]))
                if os.path.exists(path):
                    return path
        return None

    def file_path(self):
        """Its path on the slave where it is a file of the package, fetched if need be;
        else None."""
        return self.local_path() if self._kind() == protocol.ENTRY_FILE else None

    def is_dir(self):
        return self._kind() in (protocol.ENTRY_FOLDER, protocol.ENTRY_PACKAGE)

    def is_file(self):
        return self._kind() == protocol.ENTRY_FILE

    def iterdir(self):
        kind = self._kind()
        if kind == protocol.ENTRY_PACKAGE and self.parts:
            for child in self._subpackage().iterdir():
                yield child
            return
        if kind == protocol.ENTRY_PACKAGE:
            names = sorted(self.session.entries.get(self.package) or {})
        elif kind == protocol.ENTRY_FOLDER:
            names = sorted(os.listdir(self.local_path()))
        else:
            raise NotADirectoryError("%r is not a folder" % (self,))
        for name in names:
            yield ServedTraversable(self.session, self.package, self.parts + (name,))

    def joinpath(self, *descendants):
        parts = list(self.parts)
        for each in descendants:
            parts.extend(part for part in str(each).split("/") if part)
        return ServedTraversable(self.session, self.package, parts)

    __truediv__ = joinpath

    def open(self, mode="r", *args, **kwargs):
        path = self.file_path()
        if path is None:
            raise FileNotFoundError("%r is not a file of the package" % (self,))
        if "b" in mode:
            return io.open(path, mode)
        return io.open(path, mode, *args, **kwargs)

    def read_bytes(self):
        with self.open("rb") as stream:
            return stream.read()

    def read_text(self, encoding=None, errors=None):
        with self.open("r", encoding=encoding, errors=errors) as stream:
            return stream.read()
