"""The PEP 302 hook for Python 2.7 slaves.

Python 2.7 consults ``sys.meta_path`` *before* ``sys.path``, so the importer
must first check whether the slave has the module itself (local modules win),
and it must not ask about 2.7's implicit-relative guesses such as
``json.re``: only top-level names and children of packages it served.
"""
import imp
import os
import pkgutil
import sys

from . import listing, protocol
from .metadata import find_distributions
from .session import version_mismatch


def found_locally(name):
    """Would 2.7's normal import find top-level ``name`` on this slave?"""
    if imp.is_builtin(name) or imp.is_frozen(name):
        return True
    try:
        handle = imp.find_module(name)[0]
    except ImportError:
        pass
    else:
        if handle is not None:
            handle.close()
        return True
    for entry in sys.path:  # importers from sys.path_hooks, such as zipimport
        importer = pkgutil.get_importer(entry)
        if importer is not None and not isinstance(importer, pkgutil.ImpImporter):
            if importer.find_module(name) is not None:
                return True
    return False


class BridgeImporter(object):
    """PEP 302 meta path finder that asks the master for what is missing here."""

    def __init__(self, session):
        self.session = session
        self.path_hook = None  # compat/listing.py's, once installed

    def find_module(self, fullname, path=None):
        """PEP 302: a loader for a module the master served (or one that raises why it
        cannot be), or None: the slave has it, or the master has none."""
        existed = fullname in sys.modules  # now, before waiting: only reload() finds one
        if "." in fullname:
            if not self.session.should_ask(fullname):
                return None
        elif found_locally(fullname):
            return None
        try:
            served = self.session.fetch(fullname)
        except ImportError as error:
            return RefusingLoader(error)
        if served is None:
            return None
        return ServedLoader(served, existed, self.session.environment)

    def find_distributions(self, context=None):
        """The importlib_metadata backport's question (its DistributionFinder protocol;
        pluggy and pytest ask it): the master's metadata of served distributions."""
        return find_distributions(self.session, context)


class RefusingLoader(object):
    """Carries the reason a module cannot be served into the import statement.

    2.7 treats an ImportError raised by ``find_module`` as "not found" and
    drops its message; raised by ``load_module``, the user sees it.
    """

    def __init__(self, error):
        self.error = error

    def load_module(self, fullname):
        """PEP 302: raise the reason the module cannot be served."""
        raise self.error


class ServedLoader(object):
    """PEP 302 loader of one served module, from its file in a tree of the cache."""

    def __init__(self, served, reloading=False, environment=None):
        self.served = served
        self.environment = environment
        self.reloading = reloading  # the module existed when it was found: reload()

    def load_module(self, fullname):
        """PEP 302: module into sys.modules before exec, popped on failure.

        2.7 calls this without looking at sys.modules again after
        ``find_module``; if another thread imported the module meanwhile,
        executing it again would make a second copy.
        """
        if not self.reloading and fullname in sys.modules:
            return sys.modules[fullname]
        if self.served.type == protocol.EXTENSION:
            return self._load_extension(fullname)
        module = sys.modules.get(fullname)
        fresh = module is None
        if fresh:
            module = sys.modules[fullname] = imp.new_module(fullname)
        module.__file__ = self.served.filename
        module.__loader__ = self
        if self.served.is_package:
            module.__path__ = [os.path.dirname(self.served.filename)]
            module.__package__ = fullname
        else:
            module.__package__ = fullname.rpartition(".")[0] or None
        try:
            exec(self.get_code(fullname), module.__dict__)
        except BaseException:
            if fresh:
                sys.modules.pop(fullname, None)
            raise
        return sys.modules[fullname]

    def _load_extension(self, fullname):
        """``imp.load_dynamic``: single-phase init only, as 2.7 has no PEP 489; the init
        symbol comes from the name's last part, not from the file name."""
        fresh = fullname not in sys.modules
        try:
            module = imp.load_dynamic(fullname, self.served.filename)
        except BaseException:
            if fresh:
                sys.modules.pop(fullname, None)
            raise
        module.__loader__ = self
        return sys.modules[fullname]

    def get_code(self, fullname):
        """PEP 302 (InspectLoader): the module's code object, compiled under its tree
        path so tracebacks show the master's lines; None for an extension."""
        if self.served.type == protocol.EXTENSION:
            return None
        try:
            return compile(self.get_source(fullname), self.served.filename, "exec",
                           dont_inherit=True)
        except SyntaxError as error:
            problem = version_mismatch(fullname, error, self.environment)
            if problem is None:
                raise
            raise problem

    def get_source(self, fullname):
        """PEP 302 (InspectLoader): the source text, for linecache and inspect."""
        if self.served.type == protocol.EXTENSION:
            return None
        with open(self.served.filename, "rU") as stream:
            return stream.read()

    def get_data(self, path):
        """PEP 302: the bytes of a file, for pkgutil.get_data and package resources."""
        with open(path, "rb") as stream:
            return stream.read()

    def get_filename(self, fullname):
        """PEP 302 (ExecutionLoader): the module's file in its tree, its ``__file__``."""
        return self.served.filename

    def is_package(self, fullname):
        """PEP 302 (InspectLoader): is the served module a package?"""
        return self.served.is_package


def install(session):
    importer = BridgeImporter(session)
    session.served_loader_types = (ServedLoader,)
    sys.meta_path.insert(0, importer)
    importer.path_hook = listing.install(importer)
    return importer
