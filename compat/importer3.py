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

    environment = None  # set by install(): [major, minor] of the served environment

    def source_to_code(self, data, path, *args, **kwargs):
        try:
            return SourceFileLoader.source_to_code(self, data, path, *args, **kwargs)
        except SyntaxError as error:
            problem = version_mismatch(self.name, error, self.environment)
            if problem is None:
                raise
            raise problem


LEGACY_FINDERS = sys.version_info < (3, 12)  # PEP 302 find_module: ignored from 3.12

LOADER_DETAILS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (ServedSourceLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)


class BridgeFinder(object):
    """PEP 451 meta path finder that asks the master for what is missing here."""

    def __init__(self, session):
        self.session = session

    def find_spec(self, fullname, path=None, target=None):
        if not self.session.should_ask(fullname, path):
            return None
        local = self._find_locally(fullname, path, target)
        if local is not None:
            return local
        served = self.session.fetch(fullname)
        if served is None:
            return None
        spec = FileFinder(served.directory, *LOADER_DETAILS).find_spec(fullname, target)
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
        """importlib.metadata's question: the master's metadata of served distributions."""
        return find_distributions(self.session, context)

    def invalidate_caches(self):
        """Nothing is cached that a local change could make stale."""


def install(session):
    ServedSourceLoader.environment = session.environment
    finder = BridgeFinder(session)
    sys.meta_path.insert(0, finder)
    return finder
