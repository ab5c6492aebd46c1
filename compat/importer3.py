"""The PEP 451 hook for Python 3.4+ slaves.

The finder is appended to ``sys.meta_path``, so it is asked only after every
local finder failed: local modules win. Once the master's files are in the
mirror, the spec is built by a ``FileFinder`` over the mirror folder, so the
module is executed, read and traced by CPython's own file loaders
(``exec_module``, ``get_source``, ``get_resource_reader``) exactly as if it
were installed.
"""
import sys
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


class BridgeFinder(object):
    """PEP 451 meta path finder that asks the master for what is missing here."""

    def __init__(self, session):
        self.session = session
        self.loader_details = loader_details(session.environment)

    def find_spec(self, fullname, path=None, target=None):
        """PEP 451: the spec of a module the master served, built by a FileFinder over the
        mirror, or None (the master has none, or it is not ours to ask)."""
        if not self.session.should_ask(fullname):
            return None
        served = self.session.fetch(fullname)
        if served is None:
            return None
        spec = FileFinder(served.directory, *self.loader_details).find_spec(fullname, target)
        if spec is None:
            raise import_error("execnet-bridge wrote '%s' to %s but cannot find it there"
                               % (fullname, served.filename), fullname, RemoteImportError)
        return spec

    def find_distributions(self, context=None):
        """importlib.metadata's question (its DistributionFinder protocol, which extends
        PEP 451's MetaPathFinder): the master's metadata of served distributions."""
        return find_distributions(self.session, context)

    def invalidate_caches(self):
        """PEP 451's ``importlib.invalidate_caches()`` hook: nothing is cached here that a
        local change could make stale."""


def install(session):
    """Append the finder: asked after every local finder failed (local modules win)."""
    finder = BridgeFinder(session)
    sys.meta_path.append(finder)
    return finder
