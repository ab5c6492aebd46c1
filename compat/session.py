"""What the slave asks the master, and what it does with the answers.

Shared by the 2.7 and 3.x importers: they differ in how the import system
calls them, not in when to ask or how a reply becomes files in the mirror.
"""
import sys
import threading

from . import protocol
from .client import BridgeUnavailable, ImportLockDuringWait
from .neutral import ModuleNotFoundError, ensure_text, import_error


# Standard library modules of other platforms and implementations, which the
# standard library itself probes for (subprocess: _winapi; mimetypes: winreg;
# 2.7's copy: org.python.core). 3.10+ also list every stdlib name themselves.
OTHER_PLATFORMS = frozenset([
    "_winapi", "winreg", "_winreg", "nt", "msvcrt", "_msi", "msilib", "_overlapped",
    "winsound", "_wmi", "_scproxy", "org", "java", "riscos", "riscosenviron", "ce", "os2",
    "vms_lib", "MacOS",
])


def never_served(name):
    """A top-level standard library name this slave lacks: it belongs to another
    platform, and the master never serves the standard library."""
    return name in OTHER_PLATFORMS or name in getattr(sys, "stdlib_module_names", ())


class RemoteImportError(ModuleNotFoundError):
    """The bridge could not serve a module; the message says why."""


def version_mismatch(fullname, error, environment):
    """The ImportError to raise for a served module that does not parse here because it
    came from an environment made for another Python, or None (a plain SyntaxError)."""
    if not environment or list(environment)[:2] == list(sys.version_info[:2]):
        return None
    problem = import_error(
        "execnet-bridge cannot import '%s': it does not parse on Python %d.%d (%s, line %s: "
        "%s); it was served from the master's Python %s environment. Serve this slave "
        "from an environment of its own version: bridge.install(gateway, python=...)"
        % ((fullname,) + tuple(sys.version_info[:2]) + (error.filename, error.lineno,
                                                        error.msg,
                                                        ".".join(map(str, environment)))),
        fullname, RemoteImportError)
    problem.__cause__ = error
    return problem


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

    def __init__(self, client, mirror, blobs, environment=None):
        self.environment = environment  # [major, minor] the served packages were made for
        self.client = client
        self.mirror = mirror
        self.blobs = blobs
        self.served = {}
        self.missing = {}
        self.children = {}  # package -> the names of all its submodules, from the master
        self.intact = set()  # hashes whose blobs were checked (or written) in this session
        self.distributions = {}  # normalized name -> its metadata folder in the mirror, or None
        self.listed_all = False  # has the master sent every distribution's metadata?
        self.left_out = {}  # normalized name -> files of its folder a listing did not send
        self.distribution_classes = {}  # metadata API's module name -> its distribution class
        self._lock = threading.Lock()
        self._fetching = {}

    def is_served_package(self, name, path=None):
        """Did a bridge serve package ``name`` (so its children are ours to ask)?

        ``path`` is its ``__path__`` as the import system passed it: another
        thread's failed import may have taken the package out of ``sys.modules``
        meanwhile. An earlier install's packages count: after a reinstall,
        ``import pkg`` is the old module, and ``pkg.child`` must still be served.
        """
        if path is None:
            path = getattr(sys.modules.get(name), "__path__", None)
        return any(self.mirror.in_cache(entry) for entry in path or ())

    def should_ask(self, fullname, path=None):
        """Top-level names, and children of packages this bridge served that the
        package's listing has (2.7's implicit-relative guesses cost nothing)."""
        parent, _, last = fullname.rpartition(".")
        if not parent:
            return not never_served(fullname)
        if not self.is_served_package(parent, path):
            return False
        children = self.children.get(parent)
        return children is None or last in children

    def fetch(self, fullname):
        """Return the ServedModule for ``fullname``, or None if the master has none.

        Concurrent requests for one name share a single round trip, except where
        this thread keeps a lock the asking thread may need (2.7, nested in a
        module's execution): waiting there would keep the asking thread from
        finishing, so it asks for itself.
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
            with ImportLockDuringWait() as others_can_finish:
                if others_can_finish:  # another thread asks; wait for it, then look again
                    event.wait(self.client.timeout)
            if not others_can_finish:
                return self._ask(fullname)
        try:
            return self._ask(fullname)
        finally:
            with self._lock:
                del self._fetching[fullname]
            event.set()

    def _ask(self, fullname, lost=()):
        try:
            reply = self.client.request(protocol.find_request(fullname, lost))
        except BridgeUnavailable as error:
            raise import_error("execnet-bridge cannot import '%s': %s" % (fullname, error),
                               fullname, RemoteImportError)
        kind = protocol.kind_of(reply)
        if kind == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
            missing = self._missing_blobs(records)
            if missing and not lost:  # our cache lost bodies the master thought we had
                return self._ask(fullname, missing)
            for record in records:
                served = self._store(record)
                self.served.setdefault(served.name, served)
            for name in reply.get(protocol.ABSENT) or ():  # no round trip for these later
                self.missing.setdefault(ensure_text(name), "the master has none")
            return self.served.get(fullname)
        reason = ensure_text(reply.get(protocol.REASON, "")) if kind else "malformed reply"
        if kind == protocol.MISSING:
            self.missing[fullname] = reason
            return None
        raise import_error("execnet-bridge cannot import '%s': %s" % (fullname, reason),
                           fullname, RemoteImportError)

    def distribution_folders(self, name=None):
        """[(normalized name, mirror folder)] of the master's metadata for distribution
        ``name``, or for all when None; asked once, then answered from memory."""
        if protocol.distribution_name_problem(name):
            return []
        key = None if name is None else protocol.normalized_distribution(ensure_text(name))
        with self._lock:
            known = self.listed_all if key is None else key in self.distributions
        if not known:
            self._ask_distributions(name, key)
        with self._lock:
            wanted = sorted(self.distributions) if key is None else [key]
            return [(each, self.distributions[each]) for each in wanted
                    if self.distributions.get(each)]

    def complete_distribution(self, normalized, filename):
        """Before ``filename`` of a listed distribution is read: if the listing left it
        out, fetch the whole folder (one round trip, once)."""
        with self._lock:
            needed = filename in self.left_out.get(normalized, ())
        if needed:
            self._ask_distributions(normalized, normalized)

    def _ask_distributions(self, name, key, lost=()):
        """Metadata is looked up, never imported: a master that cannot answer means
        "not found" (importlib.metadata's PackageNotFoundError), not an ImportError."""
        try:
            reply = self.client.request(protocol.distributions_request(name, lost))
        except BridgeUnavailable:
            return
        records = []
        if protocol.kind_of(reply) == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
        missing = self._missing_blobs(records)
        if missing and not lost:
            return self._ask_distributions(name, key, missing)
        found, left_out = {}, {}
        for record in records:
            self._place(record)
            normalized = ensure_text(record[protocol.NAME])
            found[normalized] = self.mirror.path(ensure_text(record[protocol.PATH]))
            left_out[normalized] = set(ensure_text(path) for path in
                                       record.get(protocol.LEFT_OUT) or ())
        with self._lock:
            self.distributions.update(found)
            self.left_out.update(left_out)
            if key is None:
                self.listed_all = True
            else:
                self.distributions.setdefault(key, None)

    def _missing_blobs(self, records):
        """Store the bodies that came; return the hashes we were sent none for and lack."""
        missing = []
        for record in records:
            for _, sha, data in record.get(protocol.FILES) or ():
                sha = ensure_text(sha)
                if data is not None:
                    self.blobs.put(sha, data)  # checks the bytes against the hash
                    self.intact.add(sha)
                elif sha not in self.intact:
                    if self.blobs.verified(sha) is None:
                        missing.append(sha)
                    else:
                        self.intact.add(sha)
        return missing

    def _place(self, record):
        """Place a record's folders and files in the mirror."""
        fullname = ensure_text(record[protocol.NAME])
        for folder in record.get(protocol.DIRS) or ():
            self.mirror.make_dir(ensure_text(folder))
        for placed, sha, _ in record.get(protocol.FILES) or ():
            sha = ensure_text(sha)
            blob = self.blobs.path(sha) if sha in self.intact else None
            if blob is None:
                raise import_error("execnet-bridge cannot import '%s': the body of %s did not "
                                   "arrive intact" % (fullname, placed), fullname,
                                   RemoteImportError)
            self.mirror.place(ensure_text(placed), blob, sha)

    def _store(self, record):
        """Place a module's record in the mirror; its ServedModule."""
        self._place(record)
        fullname = ensure_text(record[protocol.NAME])
        module_type = ensure_text(record[protocol.TYPE])
        relative = ensure_text(record[protocol.PATH])
        # A package's own place is its folder, not its __init__ file.
        own = relative.rpartition("/")[0] if module_type == protocol.PACKAGE else relative
        holder = own.rpartition("/")[0]
        directory = self.mirror.path(holder) if holder else self.mirror.root
        served = ServedModule(fullname, module_type, directory, self.mirror.path(relative),
                              ensure_text(record.get(protocol.ORIGIN, "")))
        if served.is_package and record.get(protocol.CHILDREN) is not None:
            self.children[fullname] = set(ensure_text(name) for name in record[protocol.CHILDREN])
        return served
