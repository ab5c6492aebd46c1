"""Distribution metadata of what the master serves, for ``importlib.metadata``.

``importlib.metadata`` (3.8+) and its backport ``importlib_metadata`` (2.7,
3.x) ask every finder on ``sys.meta_path`` for ``find_distributions(context)``.
The master's metadata folders (``*.dist-info``) are placed in the session's
folder at their root-relative place, so a ``PathDistribution`` over one reads
real files, and its ``locate_file()`` points at the served modules' files in
the trees that hold them.
A listing of every distribution (``entry_points()``) brings only the files a
listing reads; the first read of another file fetches its whole folder.
"""
import os
import sys

from . import protocol


def local_distributions():
    """Normalized names of the distributions on the slave's own ``sys.path``: they win."""
    names = set()
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except (OSError, TypeError):
            continue
        names.update(protocol.distribution_of(item) for item in listing)
    names.discard(None)
    return names


def metadata_api(context):
    """The module whose ``Context`` the caller passed (``importlib.metadata`` or the
    backport): its ``PathDistribution`` is the class the caller expects back."""
    module_name = type(context).__module__ if context is not None else "importlib.metadata"
    while module_name:
        module = sys.modules.get(module_name)
        if getattr(module, "PathDistribution", None) is not None:
            return module
        module_name = module_name.rpartition(".")[0]
    return None


def path_type(api):
    """The Path class ``api`` itself works with: every version of importlib.metadata and
    of the backport has ``pathlib`` in its namespace (pathlib2 for the backport on 2.7)."""
    pathlib = getattr(api, "pathlib", None) or sys.modules.get("pathlib")
    return getattr(pathlib, "Path", None)


def served_distribution(api, session):
    """``api``'s PathDistribution, which first fetches a file a listing left out
    (one class per API and session, kept by the session)."""
    classes = session.distributions.classes
    if api.__name__ not in classes:
        base = api.PathDistribution

        class ServedDistribution(base):
            _bridge_name = None  # set per instance: the name the master knows it by

            def read_text(self, filename):
                session.distributions.complete(self._bridge_name, filename)
                current = session.distributions.folder(self._bridge_name)
                if current is not None and current != str(self._path):
                    self._path = type(self._path)(current)  # completed: in another tree
                return base.read_text(self, filename)

            def locate_file(self, path):
                """Where a file the metadata names is: beside the metadata (metadata
                files), else in the tree that holds it (the served modules' files)."""
                beside = base.locate_file(self, path)
                if os.path.exists(str(beside)):
                    return beside
                found = session.locate(str(path).replace(os.sep, "/"))
                return beside if found is None else type(beside)(found)

        classes[api.__name__] = ServedDistribution
    return classes[api.__name__]


def served(cls, folder, normalized):
    distribution = cls(folder)
    distribution._bridge_name = normalized
    return distribution


def find_distributions(session, context=None):
    """The served distributions matching ``context`` (its ``name``, or all of them)
    that the slave does not have itself. A search limited to other paths than
    ``sys.path`` gets none, and so does every search once the session folder is on ``sys.path``
    for pkg_resources (``working_set.py``): the path finders list it then."""
    if session.distributions.exposed:
        return iter(())
    if context is not None and getattr(context, "path", sys.path) is not sys.path:
        return iter(())
    api = metadata_api(context)
    path = path_type(api) if api is not None else None
    if path is None:
        return iter(())
    local, cls = local_distributions(), served_distribution(api, session)
    folders = session.distributions.folders(getattr(context, "name", None))
    return iter([served(cls, path(folder), normalized) for normalized, folder in folders
                 if normalized not in local])
