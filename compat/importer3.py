"""The PEP 451 hook for Python 3.4+ slaves.

The finder goes first on ``sys.meta_path`` and asks the finders after it
itself, before it asks the master: local modules win. Asking them inside its
own ``find_spec`` keeps the global import lock held from the local search to
the master's reply in one piece. Appended, it would be taken again after the
local finders, and a thread queued on it meanwhile (the local finders wait
for the disk) could take a submodule's lock while this thread holds the
package's: the ``_DeadlockError`` of compat/client.py.

Once the master's files are in a tree of the cache, the spec is built by a
``FileFinder`` over the tree, so the module is executed, read and
traced by CPython's own file loaders (``exec_module``, ``get_source``,
``get_resource_reader``) exactly as if it were installed.

The held lock queues the threads that want to start an import behind the
reply, and they all wake when ``find_spec`` returns: right in the moment
before the import system puts the new module in ``sys.modules``. A woken
thread importing ``pkg.core`` then takes that module's lock, finds no ``pkg``
and waits for it, while ``pkg/__init__`` is about to need ``pkg.core``: the
same ``_DeadlockError``, which an installed package does not meet (docs/design.md
has the figures). So a served source module's ``find_spec``, asked by an import
statement, keeps the lock one level deeper until its loader's ``exec_module``
begins, when the module is in ``sys.modules``: ``ImportLockHold``.

CPython 3.14 alone (3.15 takes a module's parents' locks first) imports a parent
that is still initialising again while it holds the child's module lock, so a
thread importing ``pkg.core`` while another runs ``pkg/__init__``, which imports
``pkg.core``, deadlocks with installed packages too. The crowd woken at
``exec_module`` meets that moment every time, so on 3.14 the thread that runs a
served package keeps its listed submodules' locks until it has run it:
``SubmoduleLocks``, 3.15's lock order for served packages.
"""
import sys
import threading
from importlib.util import spec_from_loader
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
                                 ExtensionFileLoader, FileFinder, SourceFileLoader,
                                 SourcelessFileLoader)

import _imp

from importlib import _bootstrap  # the frozen bootstrap itself: module locks, _resolve_parents

from . import listing
from .listing import ServedResources
from .metadata import find_distributions
from .neutral import import_error
from .session import RemoteImportError, version_mismatch


class ImportLockHold(object):
    """The global import lock, kept by a thread from a served module's ``find_spec`` to
    the start of its ``exec_module`` (module docstring).

    Between the two, the import system only makes the module object and puts it in
    ``sys.modules``: nothing imports, so a hold still open when the same thread asks
    again was left by an import that failed in between, and is let go then.
    """

    def __init__(self):
        self._local = threading.local()

    def _held(self):
        if not hasattr(self._local, "names"):
            self._local.names = []
        return self._local.names

    def begin(self, fullname):
        _imp.acquire_lock()
        self._held().append(fullname)

    def end(self, fullname):
        held = self._held()
        if fullname in held:
            held.remove(fullname)
            _imp.release_lock()

    def end_stale(self):
        held = self._held()
        while held:
            held.pop()
            _imp.release_lock()


def asked_by_an_import(frame):
    """Whether ``frame`` (the caller of ``find_spec``) is the import system's search for
    an import statement, which loads the spec it gets at once (``importlib.util
    .find_spec`` and ``reload`` do not come this way)."""
    caller = frame.f_back
    return (frame.f_code.co_name == "_find_spec" and caller is not None
            and caller.f_code.co_name == "_find_and_load_unlocked")


# 3.14's _find_and_load_unlocked waits for an initialising parent under the child's lock.
PARENT_AWAITED_UNDER_CHILD_LOCK = (sys.version_info[:2] == (3, 14)
                                   and not hasattr(_bootstrap, "_resolve_parents"))


class SubmoduleLocks(object):
    """On 3.14, the module locks of a served package's submodules, kept by the thread that
    runs the package from before the hold ends until the package has run (module
    docstring): another thread importing one waits without holding its lock."""

    def __init__(self, children):
        self.children = children  # the session's: package -> its submodules' last names
        self._local = threading.local()  # each thread's taken locks, innermost run last

    def take(self, name, module):
        """Take the locks for ``module`` about to run (none off 3.14, nor for a module that
        is no package), until ``release``. Kept here, not by the loader's frame, which
        has no local more than an installed module's (``EndsHold.exec_module``)."""
        taken = []
        if PARENT_AWAITED_UNDER_CHILD_LOCK and hasattr(module, "__path__"):
            me = threading.current_thread().ident
            for child in self._submodules(name):
                lock = _bootstrap._get_module_lock(child)
                if lock.count and lock.owner != me:
                    continue  # another thread began it before this package's search: its race
                lock.acquire()
                taken.append(lock)
        self._taken().append(taken)

    def release(self):
        """Give back what the innermost ``take`` of this thread took."""
        for lock in reversed(self._taken().pop()):
            lock.release()

    def _taken(self):
        if not hasattr(self._local, "taken"):
            self._local.taken = []
        return self._local.taken

    def _submodules(self, package):
        """Every submodule the master listed under ``package`` that is not imported yet."""
        pending, found = [package], []
        while pending:
            parent = pending.pop()
            for last in sorted(self.children.get(parent, ())):
                name = parent + "." + last
                if name not in sys.modules:
                    found.append(name)
                pending.append(name)
        return found


class EndsHold(object):
    """A loader mixin: the module is in ``sys.modules`` when ``exec_module`` begins."""

    hold = None  # the session's ImportLockHold: see loader_details()
    submodule_locks = None  # the session's SubmoduleLocks: see loader_details()
    session = None  # see loader_details()

    def exec_module(self, module):
        """PEP 451's step, in place of the file loader's own rather than around it: a
        served module's code runs as deep in the stack as an installed one's. One frame
        more at every level of nested imports put sympy's dispatch loops of a warm import
        where 3.11's frame stack takes and frees a chunk at each call (3,000 mmap and
        munmap, 11 ms; docs/performance.md, session 19). ``eval`` runs the module's code
        as ``exec`` would: ``exec`` is a statement on 2.7, where every slave file parses."""
        self.submodule_locks.take(self.name, module)
        self.hold.end(self.name)
        try:  # the locals and stack of the file loader's frame: it takes as many words
            code = self._code(module)
            _bootstrap._call_with_frames_removed(eval, code, module.__dict__)
        finally:
            self.submodule_locks.release()

    def _code(self, module):
        code = self.get_code(module.__name__)
        if code is None:
            raise ImportError("cannot load module %r: get_code() returned None"
                              % (module.__name__,), name=module.__name__)
        return code

    def get_resource_reader(self, name):
        """importlib.resources (3.7+): a served package lists what it has on the master,
        not only what came (compat/listing.py)."""
        if name == self.name and name in self.session.entries:
            return ServedResources(self.session, name)
        return super(EndsHold, self).get_resource_reader(name)


class ServedSourceLoader(EndsHold, SourceFileLoader):
    """CPython's source loader, except that the master's bytecode comes from the tree's
    pack, and a module which does not parse because it was made for another Python
    fails with an ImportError that says so."""

    environment = None  # [major, minor] of the served environment: see loader_details()

    def get_data(self, path):
        """What ``get_code`` reads: the master's .pyc from the tree's pack (packs.py)."""
        if path.endswith(".pyc"):
            data = self.session.bytecode(path)
            if data is not None:
                return data
        return SourceFileLoader.get_data(self, path)

    def source_to_code(self, data, path, *args, **kwargs):
        """PEP 302's InspectLoader step that ``get_code`` calls: compile, or say why not."""
        try:
            return SourceFileLoader.source_to_code(self, data, path, *args, **kwargs)
        except SyntaxError as error:
            problem = version_mismatch(self.name, error, self.environment)
            if problem is None:
                raise
            raise problem


class ServedSourcelessLoader(EndsHold, SourcelessFileLoader):
    """CPython's bytecode loader, ending the hold."""


HOLDING_LOADERS = (ServedSourceLoader, ServedSourcelessLoader)


def loader_details(session, hold, submodule_locks):
    """FileFinder's loaders for one session: its source loader knows the environment the
    session's modules were made for, and both Python loaders end the session's hold (a
    class per session, never shared state). An extension's loader runs its init in
    ``create_module``, which may import: it holds nothing."""
    shared = {"hold": hold, "submodule_locks": submodule_locks, "session": session}
    source_loader = type("ServedSourceLoader", (ServedSourceLoader,),
                         dict(shared, environment=session.environment))
    sourceless_loader = type("ServedSourcelessLoader", (ServedSourcelessLoader,), shared)
    return ((ExtensionFileLoader, EXTENSION_SUFFIXES), (source_loader, SOURCE_SUFFIXES),
            (sourceless_loader, BYTECODE_SUFFIXES))


LEGACY_FINDERS = sys.version_info < (3, 12)  # PEP 302 find_module: ignored from 3.12


class BridgeFinder(object):
    """PEP 451 meta path finder that asks the master for what is missing here."""

    def __init__(self, session):
        self.session = session
        self.hold = ImportLockHold()
        self.loader_details = loader_details(session, self.hold, SubmoduleLocks(session.children))
        self.path_hook = None  # compat/listing.py's, once installed

    def find_spec(self, fullname, path=None, target=None):
        """PEP 451: the spec of a module the master served, built by a FileFinder over the
        tree, or None (the master has none, or it is not ours to ask)."""
        self.hold.end_stale()
        before = self.session.before_import.pop(fullname, None)
        if before is not None:  # compat/children.py: multiprocessing is about to spawn
            before()
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
        if (isinstance(spec.loader, HOLDING_LOADERS) and fullname not in sys.modules
                and asked_by_an_import(sys._getframe(1))):
            self.hold.begin(fullname)
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

    def folder_finder(self, folder):
        """A FileFinder over a served folder, with the session's loaders (listing.py)."""
        return FileFinder(folder, *self.loader_details)


def install(session):
    """Put the finder first: it asks the local finders itself (local modules win)."""
    finder = BridgeFinder(session)
    session.served_loader_types = HOLDING_LOADERS
    sys.meta_path.insert(0, finder)
    finder.path_hook = listing.install(finder)
    return finder
