"""Served distributions for ``pkg_resources``, which scans ``sys.path`` itself.

``pkg_resources`` never asks ``sys.meta_path`` about distributions: when it
is first imported, it lists every ``sys.path`` entry for metadata folders, and
``declare_namespace`` looks for a namespace package's portions in those same
entries. Two designs were weighed:

- registering ``Distribution`` objects in ``pkg_resources.working_set`` once it
  is imported: that needs a hook after the import and the internals of
  setuptools versions from 2.7's to today's, and pkg_resources puts the folder
  of every distribution it holds on ``sys.path`` anyway (``activate``);
- making the served metadata appear where pkg_resources looks. Chosen: the
  metadata folders are linked from their trees into the session folder, at the
  paths they have on the master, which is what an installed distribution looks
  like (until then they are read in their trees, and nothing is placed). No pkg_resources internals are touched (only the public
  ``working_set.add_entry``, for a pkg_resources imported before the bridge).

So just before ``pkg_resources`` is first imported (the slave's own or a
served one), the watcher, first on ``sys.meta_path``, has every distribution
listed (one round trip, once; the listing brings ``requires.txt`` and
``namespace_packages.txt``), links their folders into the session folder and
appends it to ``sys.path``: last, so the slave's own modules still win; the
metadata of distributions the slave has itself is left out, so they are not there
twice. From
then on ``importlib.metadata``'s own path finder sees the placed folders, so the
bridge's finders stop listing them (nothing is listed twice); the watcher,
asked first, makes a folder whole when its distribution is asked for by name.
"""
import shutil
import sys
import threading

from . import listing, protocol
from .metadata import local_distributions
from .neutral import PY2, ensure_text, string_types

WATCHED = "pkg_resources"


def expose(session):
    """Put every served distribution where pkg_resources looks (see above)."""
    distributions = session.distributions
    if distributions.exposed:
        return
    try:
        distributions.folders(None)
    except ImportError:  # a body that did not arrive intact: pkg_resources still imports
        pass
    for folder in distributions.forget(local_distributions()):
        if session.session_folder.contains(folder):  # a tree's stays: trees never change
            shutil.rmtree(folder, True)  # the slave's own: not listed twice
    distributions.place_all()
    if session.session_folder.root not in sys.path:
        sys.path.append(session.session_folder.root)
    distributions.exposed = True


def served_provider(pkg_resources, session):
    """pkg_resources' provider for served packages: its DefaultProvider, except that a
    folder lists, and a file reads, as the package has them on the master
    (compat/listing.py), not only what came."""
    base = pkg_resources.DefaultProvider

    class ServedProvider(base):
        def _has(self, path):
            place = listing.traversable_at(session, path)
            if place is None:
                return base._has(self, path)
            return place.is_file() or place.is_dir()

        def _isdir(self, path):
            place = listing.traversable_at(session, path)
            return base._isdir(self, path) if place is None else place.is_dir()

        def _listdir(self, path):
            place = listing.traversable_at(session, path)
            if place is None or not place.is_dir():
                return base._listdir(self, path)
            return [child.name for child in place.iterdir()]

        def _get(self, path):
            place = listing.traversable_at(session, path)
            if place is None or not place.is_file():
                return base._get(self, path)
            return place.read_bytes()

    return ServedProvider


def register_provider(pkg_resources, session):
    """Once pkg_resources exists: the served loaders get the ServedProvider (its public
    ``register_loader_type``)."""
    provider = served_provider(pkg_resources, session)
    for loader_type in session.served_loader_types:
        pkg_resources.register_loader_type(loader_type, provider)


class AfterImport(object):
    """A loader that runs the one it wraps, then ``then(module)``."""

    def __init__(self, loader, then):
        self._loader = loader
        self._then = then

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._then(module)

    def load_module(self, fullname):
        """PEP 302 (2.7)."""
        module = self._loader.load_module(fullname)
        self._then(module)
        return module

    def __getattr__(self, name):
        return getattr(self._loader, name)


class DistributionWatcher(object):
    """First on ``sys.meta_path``, it finds no module of its own: it sees pkg_resources
    coming, readies a distribution's metadata before the path finder reads it, and gives
    the served loaders their pkg_resources provider once pkg_resources has run."""

    def __init__(self, session):
        self._session = session  # private: "the finder with a session" is the importer
        self._finding = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname != WATCHED or getattr(self._finding, "now", False):
            return None
        expose(self._session)
        spec = self._found_elsewhere(fullname)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = AfterImport(spec.loader, self._registered)
        return spec

    def find_module(self, fullname, path=None):
        """Python 2.7's question (3.x asks find_spec)."""
        if fullname != WATCHED or getattr(self._finding, "now", False):
            return None
        expose(self._session)
        loader = self._found_elsewhere(fullname)
        return None if loader is None else AfterImport(loader, self._registered)

    def _found_elsewhere(self, fullname):
        """What the import system would find for ``fullname`` without this watcher: a
        spec (3.x) or a loader (2.7)."""
        self._finding.now = True
        try:
            if PY2:
                import pkgutil
                return pkgutil.find_loader(fullname)
            import importlib.util
            return importlib.util.find_spec(fullname)
        finally:
            self._finding.now = False

    def _registered(self, module):
        if getattr(module, "register_loader_type", None) is not None:
            register_provider(module, self._session)

    def find_distributions(self, context=None):
        """Once exposed, a distribution asked for by name gets the files its listing
        left out, before importlib.metadata's path finder reads its folder."""
        name = getattr(context, "name", None)
        if self._session.distributions.exposed and isinstance(name, string_types) and \
                protocol.distribution_name_problem(ensure_text(name)) is None:
            self._session.distributions.complete(
                protocol.normalized_distribution(ensure_text(name)))
        return iter(())

    def invalidate_caches(self):
        """Nothing is cached."""


def install(session):
    """Watch for pkg_resources; one imported before the bridge sees the served
    distributions at once (its working set takes the new entry)."""
    watcher = DistributionWatcher(session)
    sys.meta_path.insert(0, watcher)
    loaded = sys.modules.get(WATCHED)
    if loaded is not None and getattr(loaded, "working_set", None) is not None:
        expose(session)
        loaded.working_set.add_entry(session.session_folder.root)
        register_provider(loaded, session)
    return watcher


def uninstall(session):
    """Take ``session``'s watcher off ``sys.meta_path`` and its session folder off ``sys.path``."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not (
        isinstance(finder, DistributionWatcher) and finder._session is session)]
    while session.session_folder.root in sys.path:
        sys.path.remove(session.session_folder.root)
