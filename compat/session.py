"""What the slave asks the master, and what it does with the answers.

Shared by the 2.7 and 3.x importers: they differ in how the import system
calls them, not in when to ask or how a reply becomes files in the mirror.
"""
import sys
import threading

from . import protocol
from .client import BridgeUnavailable, ImportLockReleased
from .neutral import ModuleNotFoundError, ensure_text, import_error


class RemoteImportError(ModuleNotFoundError):
    """The bridge could not serve a module; the message says why."""


class ServedModule(object):
    """Where a module the master served sits in the mirror."""

    def __init__(self, name, module_type, directory, filename, origin):
        self.name = name
        self.type = module_type
        self.directory = directory  # the folder that holds the module's file or folder
        self.filename = filename  # the module's file, or its folder for a namespace
        self.origin = origin

    @property
    def is_package(self):
        return self.type in (protocol.PACKAGE, protocol.NAMESPACE)


class ImportSession(object):
    """One install's state on the slave: the mirror, the client, the answers so far."""

    def __init__(self, client, mirror):
        self.client = client
        self.mirror = mirror
        self.served = {}
        self.missing = {}
        self._lock = threading.Lock()
        self._fetching = {}

    def is_served_package(self, name):
        """Did a bridge serve package ``name`` (so its children are ours to ask)?

        An earlier install's packages count: after a reinstall, ``import pkg``
        is the old module, and ``pkg.child`` must still be served.
        """
        module = sys.modules.get(name)
        path = getattr(module, "__path__", None) or ()
        return any(self.mirror.in_cache(entry) for entry in path)

    def should_ask(self, fullname):
        """Top-level names, and children of packages this bridge served."""
        parent = fullname.rpartition(".")[0]
        return not parent or self.is_served_package(parent)

    def fetch(self, fullname):
        """Return the ServedModule for ``fullname``, or None if the master has none.

        Concurrent imports of one name share a single request, except where this
        thread may not release the import lock (2.7, nested in a module's
        execution): waiting there would keep the asking thread from finishing,
        so it asks for itself.
        """
        while True:
            with self._lock:
                if fullname in self.served:
                    return self.served[fullname]
                if fullname in self.missing:
                    return None
                event = self._fetching.get(fullname)
                if event is None:
                    event = self._fetching[fullname] = threading.Event()
                    break
            with ImportLockReleased() as released:
                if released:  # another thread asks; wait for it, then look again
                    event.wait(self.client.timeout)
            if not released:
                return self._ask(fullname)
        try:
            return self._ask(fullname)
        finally:
            with self._lock:
                del self._fetching[fullname]
            event.set()

    def _ask(self, fullname):
        try:
            reply = self.client.request(protocol.find_request(fullname))
        except BridgeUnavailable as error:
            raise import_error("execnet-bridge cannot import %r: %s" % (fullname, error),
                               fullname, RemoteImportError)
        kind = protocol.kind_of(reply)
        if kind == protocol.MODULE:
            served = self._store(fullname, reply)
            self.served[fullname] = served
            return served
        reason = ensure_text(reply.get(protocol.REASON, "")) if kind else "malformed reply"
        if kind == protocol.MISSING:
            self.missing[fullname] = reason
            return None
        raise import_error("execnet-bridge cannot import %r: %s" % (fullname, reason),
                           fullname, RemoteImportError)

    def _store(self, fullname, reply):
        """Write the reply's files and folders into the mirror."""
        for relative in reply.get(protocol.DIRS) or ():
            self.mirror.make_dir(ensure_text(relative))
        for relative, data in reply.get(protocol.FILES) or ():
            self.mirror.write(ensure_text(relative), data)
        module_type = ensure_text(reply[protocol.TYPE])
        relative = ensure_text(reply[protocol.PATH])
        # A package's own place is its folder, not its __init__ file.
        own = relative.rpartition("/")[0] if module_type == protocol.PACKAGE else relative
        holder = own.rpartition("/")[0]
        directory = self.mirror.path(holder) if holder else self.mirror.root
        return ServedModule(fullname, module_type, directory, self.mirror.path(relative),
                            ensure_text(reply.get(protocol.ORIGIN, "")))
