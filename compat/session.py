"""What the slave asks the master, and what it does with the answers.

Shared by the 2.7 and 3.x importers: they differ in how the import system
calls them, not in when to ask or how a reply becomes files in the mirror.
"""
import sys
import threading

from . import protocol
from .client import BridgeUnavailable, ImportLockDuringWait
from .neutral import ModuleNotFoundError, dotted, ensure_text, import_error


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
                                                        dotted(environment))),
        fullname, RemoteImportError)
    problem.__cause__ = error
    return problem


def refusal_error(fullname, reason):
    return import_error("execnet-bridge cannot import '%s': %s" % (fullname, reason),
                        fullname, RemoteImportError)


class ServedModule(object):
    """Where a module the master served sits in the mirror."""

    def __init__(self, name, module_type, directory, filename):
        self.name = name
        self.type = module_type
        self.directory = directory  # the folder that holds the module's file or folder
        self.filename = filename  # the module's file, or its folder for a namespace

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
        self.refused = {}  # name -> the master's reason: it holds for the whole session
        self.children = {}  # package -> the names of all its submodules, from the master
        self.intact = set()  # hashes whose blobs were checked (or written) in this session
        self.distributions = {}  # normalized name -> its metadata folder in the mirror, or None
        self.listed_all = False  # has the master sent every distribution's metadata?
        self.left_out = {}  # normalized name -> files of its folder a listing did not send
        self.distribution_classes = {}  # metadata API's module name -> its distribution class
        self.exposed = False  # are the served distributions on sys.path, for pkg_resources?
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
                if fullname in self.refused:  # said in a reply: REFUSED, or along the way
                    raise refusal_error(fullname, self.refused[fullname])
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

    def _request(self, request, lost):
        """Send ``request`` (FIND or DISTRIBUTIONS) naming what the cache holds of its last
        reply (a retry, with ``lost``, names nothing: the master resends); its reply."""
        key = protocol.request_key(request)
        if not lost:
            protocol.add_have(request, self.blobs.recalled(key))
        reply = self.client.request(request)
        if protocol.kind_of(reply) == protocol.MODULE:
            self.blobs.remember(key, [ensure_text(sha) for record in
                                      reply.get(protocol.MODULES) or ()
                                      for _, sha, _ in record.get(protocol.FILES) or ()])
        return reply

    def _ask(self, fullname, lost=()):
        try:
            reply = self._request(protocol.find_request(fullname, lost), lost)
        except BridgeUnavailable as error:
            raise import_error("execnet-bridge cannot import '%s': %s" % (fullname, error),
                               fullname, RemoteImportError)
        kind = protocol.kind_of(reply)
        if kind == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
            with self.blobs.in_use():  # no eviction between a blob's check and its link
                missing = self._missing_blobs(records)
                if not missing or lost:
                    for record in records:
                        served = self._store(record)
                        self.served.setdefault(served.name, served)
            if missing and not lost:  # our cache lost bodies the master thought we had
                return self._ask(fullname, missing)
            for name in reply.get(protocol.ABSENT) or ():  # no round trip for these later
                self.missing.setdefault(ensure_text(name), "the master has none")
            for name, reason in reply.get(protocol.REFUSALS) or ():
                self.refused.setdefault(ensure_text(name), ensure_text(reason))
            return self.served.get(fullname)
        reason = ensure_text(reply.get(protocol.REASON, "")) if kind else "malformed reply"
        if kind == protocol.MISSING:
            self.missing[fullname] = reason
            return None
        if kind == protocol.REFUSED:
            self.refused[fullname] = reason
        raise refusal_error(fullname, reason)

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

    def complete_distribution(self, normalized, filename=None):
        """Before ``filename`` (None: any file) of a listed distribution is read: if the
        listing left it out, fetch the whole folder (one round trip, once)."""
        with self._lock:
            left_out = self.left_out.get(normalized, ())
            needed = filename in left_out if filename is not None else bool(left_out)
        if needed:
            self._ask_distributions(normalized, normalized)

    def forget_distributions(self, names):
        """Drop what the master said of the distributions ``names`` (normalized): the
        slave has them itself. Returns their folders in the mirror."""
        with self._lock:
            folders = [self.distributions.pop(name, None) for name in names]
            for name in names:
                self.distributions[name] = None  # known: not the master's to serve
                self.left_out.pop(name, None)
        return [folder for folder in folders if folder]

    def _ask_distributions(self, name, key, lost=()):
        """Metadata is looked up, never imported: a master that cannot answer means
        "not found" (importlib.metadata's PackageNotFoundError), not an ImportError."""
        try:
            reply = self._request(protocol.distributions_request(name, lost), lost)
        except BridgeUnavailable:
            return
        records = []
        if protocol.kind_of(reply) == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
        with self.blobs.in_use():  # no eviction between a blob's check and its link
            missing = self._missing_blobs(records)
            if not missing or lost:
                for record in records:
                    self._place(record)
        if missing and not lost:
            return self._ask_distributions(name, key, missing)
        found, left_out = {}, {}
        for record in records:
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
            compressed = set(ensure_text(sha) for sha in record.get(protocol.COMPRESSED) or ())
            for _, sha, data in record.get(protocol.FILES) or ():
                sha = ensure_text(sha)
                if data is not None:
                    if sha in compressed:
                        data = protocol.inflated(data, sha)
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
        served = ServedModule(fullname, module_type, directory, self.mirror.path(relative))
        if served.is_package and record.get(protocol.CHILDREN) is not None:
            self.children[fullname] = set(ensure_text(name) for name in record[protocol.CHILDREN])
        return served
