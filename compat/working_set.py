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
then on ``importlib.metadata``'s own path finder sees the mirrored folders, so the
bridge's finders stop listing them (nothing is listed twice); the watcher,
asked first, makes a folder whole when its distribution is asked for by name.
"""
import shutil
import sys

from . import protocol
from .metadata import local_distributions
from .neutral import ensure_text, string_types

WATCHED = "pkg_resources"


def expose(session):
    """Put every served distribution where pkg_resources looks (see above)."""
    if session.exposed:
        return
    try:
        session.distribution_folders(None)
    except ImportError:  # a body that did not arrive intact: pkg_resources still imports
        pass
    for folder in session.forget_distributions(local_distributions()):
        if session.mirror.contains(folder):  # a tree's stays: trees never change
            shutil.rmtree(folder, True)  # the slave's own: not listed twice
    session.place_distributions()
    if session.mirror.root not in sys.path:
        sys.path.append(session.mirror.root)
    session.exposed = True


class DistributionWatcher(object):
    """First on ``sys.meta_path``, it finds no module: it sees pkg_resources coming,
    and readies a distribution's metadata before the path finder reads it."""

    def __init__(self, session):
        self._session = session  # private: "the finder with a session" is the importer

    def find_spec(self, fullname, path=None, target=None):
        if fullname == WATCHED:
            expose(self._session)
        return None

    def find_module(self, fullname, path=None):
        """Python 2.7's question (3.x asks find_spec)."""
        return self.find_spec(fullname, path)

    def find_distributions(self, context=None):
        """Once exposed, a distribution asked for by name gets the files its listing
        left out, before importlib.metadata's path finder reads its folder."""
        name = getattr(context, "name", None)
        if self._session.exposed and isinstance(name, string_types) and \
                protocol.distribution_name_problem(ensure_text(name)) is None:
            self._session.complete_distribution(
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
        loaded.working_set.add_entry(session.mirror.root)
    return watcher


def uninstall(session):
    """Take ``session``'s watcher off ``sys.meta_path`` and its mirror off ``sys.path``."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not (
        isinstance(finder, DistributionWatcher) and finder._session is session)]
    while session.mirror.root in sys.path:
        sys.path.remove(session.mirror.root)
