"""The PEP 451 hook for Python 3.4+ slaves.

The finder goes first on ``sys.meta_path`` and asks the finders after it
itself, before it asks the master: local modules win. Asking them inside its
own ``find_spec`` keeps the global import lock held from the local search to
the master's reply in one piece. Appended, it would be taken again after the
local finders, and a thread queued on it meanwhile (the local finders wait
for the disk) could take a submodule's lock while this thread holds the
package's: the ``_DeadlockError`` of compat/client.py.

Once the master's files are in the mirror, the spec is built by a
``FileFinder`` over the mirror folder, so the module is executed, read and
traced by CPython's own file loaders (``exec_module``, ``get_source``,
``get_resource_reader``) exactly as if it were installed.
"""
import sys
from importlib.util import spec_from_loader
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
                                 ExtensionFileLoader, FileFinder, SourceFileLoader,
                                 SourcelessFileLoader)

from .metadata import find_distributions
from .neutral import import_error
from .session import RemoteImportError, version_mismatch


class ServedSourceLoader(SourceFileLoader):
    """CPython's source loader, except that a module which does not parse because it was
    made for another Python fails with an ImportError that says so."""

    environment = None  # [major, minor] of the served environment: see loader_details()

    def source_to_code(self, data, path, *args, **kwargs):
        """PEP 302's InspectLoader step that ``get_code`` calls: compile, or say why not."""
        try:
            return SourceFileLoader.source_to_code(self, data, path, *args, **kwargs)
        except SyntaxError as error:
            problem = version_mismatch(self.name, error, self.environment)
            if problem is None:
                raise
            raise problem


def loader_details(environment):
    """FileFinder's loaders for one session: its source loader knows the environment the
    session's modules were made for (a class per session, never shared state)."""
    source_loader = type("ServedSourceLoader", (ServedSourceLoader,),
                         {"environment": environment})
    return ((ExtensionFileLoader, EXTENSION_SUFFIXES), (source_loader, SOURCE_SUFFIXES),
            (SourcelessFileLoader, BYTECODE_SUFFIXES))


LEGACY_FINDERS = sys.version_info < (3, 12)  # PEP 302 find_module: ignored from 3.12


class BridgeFinder(object):
    """PEP 451 meta path finder that asks the master for what is missing here."""

    def __init__(self, session):
        self.session = session
        self.loader_details = loader_details(session.environment)

    def find_spec(self, fullname, path=None, target=None):
        """PEP 451: the spec of a module the master served, built by a FileFinder over the
        mirror, or None (the master has none, or it is not ours to ask)."""
        if not self.session.should_ask(fullname, path):
            return None
        local = self._find_locally(fullname, path, target)
        if local is not None:
            return local
        served = self.session.fetch(fullname)
        if served is None:
            return None
        spec = FileFinder(served.directory, *self.loader_details).find_spec(fullname, target)
        if spec is None:
            raise import_error("execnet-bridge wrote '%s' to %s but cannot find it there"
                               % (fullname, served.filename), fullname, RemoteImportError)
        return spec

    def _find_locally(self, fullname, path, target):
        """What the finders after this one find, asked as CPython would ask them."""
        finders = sys.meta_path
        later = finders[finders.index(self) + 1:] if self in finders else ()
        for finder in later:
            if hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
            elif hasattr(finder, "find_module") and LEGACY_FINDERS:
                loader = finder.find_module(fullname, path)
                spec = spec_from_loader(fullname, loader) if loader is not None else None
            else:
                continue
            if spec is not None:
                return spec
        return None

    def find_distributions(self, context=None):
        """importlib.metadata's question (its DistributionFinder protocol, which extends
        PEP 451's MetaPathFinder): the master's metadata of served distributions."""
        return find_distributions(self.session, context)

    def invalidate_caches(self):
        """PEP 451's ``importlib.invalidate_caches()`` hook: nothing is cached here that a
        local change could make stale."""


def install(session):
    """Put the finder first: it asks the local finders itself (local modules win)."""
    finder = BridgeFinder(session)
    sys.meta_path.insert(0, finder)
    return finder
