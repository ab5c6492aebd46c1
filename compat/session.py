"""What the slave asks the master, and what it does with the answers.

Shared by the 2.7 and 3.x importers: they differ in how the import system
calls them, not in when to ask or how a reply becomes files in the mirror.
"""
import os
import sys
import threading

from . import protocol
from .client import BridgeUnavailable, ImportLockDuringWait
from .neutral import ModuleNotFoundError, dotted, ensure_text, import_error
from .blobs import digest
from .trees import TreeStore, inside


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


class NotIntact(Exception):
    """What the master sent did not arrive intact, asked for twice."""


def lean_answer(reply, records, folder):
    """A MODULE reply's lean form, naming the tree ``folder`` that holds its files."""
    return protocol.module_reply(None, protocol.lean(records), reply.get(protocol.ABSENT) or (),
                                 reply.get(protocol.REFUSALS) or (),
                                 tree=os.path.basename(folder))


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
    """One install's state on the slave: the client, the answers so far, the caches
    (blobs, trees) and its own folder (the mirror of metadata, the trees it uses)."""

    def __init__(self, client, mirror, blobs, environment=None):
        self.environment = environment  # [major, minor] the served packages were made for
        self.client = client
        self.mirror = mirror
        self.blobs = blobs
        self.trees = TreeStore(blobs.cache_root, blobs)
        self.tree_folders = []  # the trees this session uses, in the order it met them
        self.served = {}
        self.missing = {}
        self.refused = {}  # name -> the master's reason: it holds for the whole session
        self.children = {}  # package -> the names of all its submodules, from the master
        self.entries = {}  # package -> {name: kind} of its folder on the master (listing.py)
        self.package_folders = {}  # a served package's folder here -> the package
        self.served_loader_types = ()  # the importer's loader classes (working_set.py)
        # hashes whose blobs were checked (or written) in this session: the bodies that
        # came ahead of replies, and those checked since
        self.intact = client.incoming.intact if client.incoming is not None else set()
        self.distributions = {}  # normalized name -> its metadata folder, or None
        self.metadata_sources = {}  # normalized name -> (tree folder, root-relative folder)
        self.listed_all = False  # has the master sent every distribution's metadata?
        self.left_out = {}  # normalized name -> files of its folder a listing did not send
        self.distribution_classes = {}  # metadata API's module name -> its distribution class
        self.exposed = False  # are the served distributions on sys.path, for pkg_resources?
        self._lock = threading.Lock()
        self._fetching = {}
        self.answers = {}  # name -> the lean MODULE reply that served it, for a child
        self.processes = None  # compat/children.py's ChildProcesses, once it watches
        self.before_import = {}  # module name -> what to do before this Python imports it

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
        self.notice_fork()
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
        """Send ``request`` (FIND or DISTRIBUTIONS) naming the trees the cache holds from
        earlier replies to it (a retry, with ``lost``, names none: the master sends all);
        (its reply, the request's keys)."""
        self.notice_fork()
        keys = protocol.request_keys(request)
        if not lost:
            have = []
            for key in keys:
                have.extend(tree for tree in self.trees.recalled(key) if tree not in have)
            protocol.add_have(request, have)
        return self.client.request(request), keys

    def _exchange(self, request_for, lost=()):
        """(reply, the tree folder of a MODULE reply's files, else None) for the request
        ``request_for(lost)`` makes; what this cache lost is asked for once more. Raises
        BridgeUnavailable, ValueError (bytes that do not match, a bad path) or NotIntact."""
        reply, keys = self._request(request_for(lost), lost)
        if protocol.kind_of(reply) != protocol.MODULE:
            return reply, None
        folder, lacking = self._tree_for(reply, reply.get(protocol.MODULES) or [], keys)
        if not lacking:
            return reply, folder
        if lost:
            raise NotIntact()
        return self._exchange(request_for, lacking)  # our cache lost what the master named

    def _ask(self, fullname):
        try:
            reply, folder = self._exchange(lambda lost: protocol.find_request(fullname, lost))
        except BridgeUnavailable as error:
            raise import_error("execnet-bridge cannot import '%s': %s" % (fullname, error),
                               fullname, RemoteImportError)
        except NotIntact:
            raise self._not_intact(fullname)
        except ValueError as error:  # bytes that do not match their hash, a bad path
            raise import_error("execnet-bridge cannot import '%s': %s" % (fullname, error),
                               fullname, RemoteImportError)
        kind = protocol.kind_of(reply)
        if kind == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
            answer = lean_answer(reply, records, folder)
            for record in records:
                served = self._served(record, folder)
                self.served.setdefault(served.name, served)
                self.answers.setdefault(served.name, answer)
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

    def project_folder(self):
        """The folder of the project's files the master offers: a tree of this cache.
        Names the files of the project trees it holds, so only changed ones move, from
        any master process. ValueError: why there is none."""
        request = protocol.project_request()
        holds = []
        for key in protocol.request_keys(request):
            for tree in self.trees.recalled(key):
                holds.extend(self.trees.hashes(tree))
        try:
            reply, folder = self._exchange(
                lambda lost: protocol.project_request(lost, holds=() if lost else holds))
        except BridgeUnavailable as error:
            raise ValueError("execnet-bridge cannot fetch the project: %s" % error)
        except NotIntact:
            raise ValueError("execnet-bridge cannot fetch the project: what the master "
                             "sent did not arrive intact")
        if folder is None:
            reason = reply.get(protocol.REASON) if isinstance(reply, dict) else None
            raise ValueError("execnet-bridge cannot fetch the project: %s"
                             % (ensure_text(reason) if reason else "malformed reply"))
        return folder

    def answer_child(self, request):
        """A child process's FIND or DISTRIBUTIONS (compat/children.py): a module from what
        this session was served, asking the master only for what it was not; metadata from
        the master. Lean either way: the tree it names is in the cache the child shares."""
        problem = protocol.request_problem(request)
        request_id, name = request.get(protocol.ID), request.get(protocol.NAME)
        if problem is not None:
            return protocol.refusal(protocol.ERROR, request_id, name, problem)
        name = None if name is None else ensure_text(name)
        if protocol.kind_of(request) == protocol.DISTRIBUTIONS:
            return self._answer_child_distributions(request_id, name)
        try:
            self.fetch(name)
        except ImportError as error:
            why = ensure_text(str(error))
            said = "execnet-bridge cannot import '%s': " % name  # the child says it again
            reason = self.refused.get(name) or (why[len(said):] if why.startswith(said) else why)
            return protocol.refusal(protocol.REFUSED, request_id, name, reason)
        answer = self.answers.get(name)
        if answer is None:
            return protocol.refusal(protocol.MISSING, request_id, name,
                                    self.missing.get(name) or "the master has none")
        return dict(answer, id=request_id)

    def _answer_child_distributions(self, request_id, name):
        try:
            reply, folder = self._exchange(
                lambda lost: protocol.distributions_request(name, lost))
        except (BridgeUnavailable, NotIntact, ValueError) as error:
            return protocol.refusal(protocol.MISSING, request_id, name, str(error))
        if folder is None:
            return dict(reply, id=request_id)
        return dict(lean_answer(reply, reply.get(protocol.MODULES) or [], folder),
                    id=request_id)

    def notice_fork(self):
        """Before 3.7 (no ``os.register_at_fork``) a forked child finds out here."""
        if self.processes is not None:
            self.processes.notice_fork()

    def become_child(self, client):
        """In a forked child: ask the slave that forked it through ``client``; execnet's
        channel is the slave's. The locks other threads of the slave held at the fork
        stay held in the copy: new ones."""
        self.client = client
        self._lock = threading.Lock()
        self._fetching = {}

    def _tree_for(self, reply, records, keys):
        """(the folder of the tree that holds ``records``' files, []), or (None, what this
        cache lacks of what the reply says it holds: a tree id, or hashes).

        A lean reply names a tree we hold: one ``lstat``. Otherwise the tree of the
        records is used if it is there already, or built from the bodies that came and
        the blobs we hold."""
        with self.blobs.in_use():  # no eviction between a check and its use
            tree = reply.get(protocol.TREE)
            if tree is not None:
                tree = ensure_text(tree)
                folder, damaged = self._open_tree(tree)
                if folder is None:
                    return None, damaged or [tree]
            else:
                tree = protocol.tree_id(records)
                folder, _ = self._open_tree(tree)
                if folder is None:
                    bodies, missing = self._bodies(records)
                    if missing:
                        return None, missing
                    folder = self.trees.build(tree, records, bodies, self._intact_blob)
            self.trees.use(tree, self.mirror.root)
        for key in keys:
            self.trees.remember(key, tree)
        with self._lock:
            if folder not in self.tree_folders:
                self.tree_folders.append(folder)
        return folder, []

    def locate(self, relative):
        """The local path of a root-relative file in one of this session's trees, or
        None (the master has not sent it)."""
        with self._lock:
            folders = list(self.tree_folders)
        for folder in folders:
            try:
                path = inside(folder, relative)
            except ValueError:
                return None
            if os.path.exists(path):
                return path
        return None

    def _open_tree(self, tree):
        """(the tree's folder, []) if it is here and intact; else (None, the hashes of
        its damaged files, whose blobs go: the tree is set aside and built again)."""
        folder = self.trees.open(tree)
        if folder is None:
            return None, []
        damaged = self.trees.damaged(tree)
        if not damaged:
            return folder, []
        self.trees.set_aside(tree)
        for sha in damaged:
            self.blobs.remove(sha)
        return None, damaged

    def _intact_blob(self, sha):
        if sha not in self.intact:
            raise ValueError("the body %s did not arrive intact" % sha)
        return self.blobs.path(sha)

    def _not_intact(self, fullname):
        incoming = self.client.incoming
        why = incoming.failed[-1] if incoming is not None and incoming.failed else ""
        return import_error("execnet-bridge cannot import '%s': what the master sent did "
                            "not arrive intact%s" % (fullname, ": " + why if why else ""),
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

    def complete_distribution(self, normalized, filename=None):
        """Before ``filename`` (None: any file) of a listed distribution is read: if the
        listing left it out, fetch the whole folder (one round trip, once)."""
        with self._lock:
            left_out = self.left_out.get(normalized, ())
            needed = filename in left_out if filename is not None else bool(left_out)
        if needed:
            self._ask_distributions(normalized, normalized)

    def distribution_folder(self, normalized):
        """Where the metadata of distribution ``normalized`` is now, or None."""
        with self._lock:
            return self.distributions.get(normalized)

    def place_distributions(self):
        """Link the metadata folder of every served distribution known so far from its
        tree into the session folder, and read it there from now on: pkg_resources
        scans one path entry (``working_set.expose``)."""
        with self._lock:
            known = [(name, self.metadata_sources.get(name)) for name, folder in
                     self.distributions.items() if folder]
        placed = {}
        for name, source in known:
            if source is not None:
                tree, relative = source
                self.mirror.link_tree(relative, tree)
                placed[name] = self.mirror.path(relative)
        with self._lock:
            self.distributions.update(placed)

    def forget_distributions(self, names):
        """Drop what the master said of the distributions ``names`` (normalized): the
        slave has them itself. Returns their folders (in a tree, or the session folder)."""
        with self._lock:
            folders = [self.distributions.pop(name, None) for name in names]
            for name in names:
                self.distributions[name] = None  # known: not the master's to serve
                self.left_out.pop(name, None)
        return [folder for folder in folders if folder]

    def _ask_distributions(self, name, key):
        """Metadata is looked up, never imported: a master that cannot answer means
        "not found" (importlib.metadata's PackageNotFoundError), not an ImportError."""
        try:
            reply, folder = self._exchange(
                lambda lost: protocol.distributions_request(name, lost))
        except (BridgeUnavailable, NotIntact):
            return
        records = []
        if protocol.kind_of(reply) == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
        found, left_out, sources = {}, {}, {}
        for record in records:
            normalized = ensure_text(record[protocol.NAME])
            relative = ensure_text(record[protocol.PATH])
            sources[normalized] = (folder, relative)
            if self.exposed:  # pkg_resources reads the session folder: place it there
                self._place(record, folder)
                found[normalized] = self.mirror.path(relative)
            else:  # read where the tree holds it: nothing placed
                found[normalized] = inside(folder, relative)
            left_out[normalized] = set(ensure_text(path) for path in
                                       record.get(protocol.LEFT_OUT) or ())
        with self._lock:
            self.metadata_sources.update(sources)
            self.distributions.update(found)
            self.left_out.update(left_out)
            if key is None:
                self.listed_all = True
            else:
                self.distributions.setdefault(key, None)

    def _bodies(self, records):
        """({sha: bytes} of the bodies that came, checked against their hashes; the hashes
        we were sent no body for and lack)."""
        bodies, missing = {}, []
        for record in records:
            compressed = set(ensure_text(sha) for sha in record.get(protocol.COMPRESSED) or ())
            for _, sha, data in record.get(protocol.FILES) or ():
                sha = ensure_text(sha)
                if data is not None:
                    if sha not in bodies:
                        data = protocol.inflated(data, sha) if sha in compressed else data
                        if digest(data) != sha:
                            raise ValueError("received bytes do not match their sha256 %s"
                                             % sha)
                        bodies[sha] = data
                elif sha not in self.intact and sha not in bodies:
                    if self.blobs.verified(sha) is None:
                        missing.append(sha)
                    else:
                        self.intact.add(sha)
        return bodies, missing

    def _place(self, record, folder):
        """Place a metadata record's folder and files in the session's mirror, from the
        tree ``folder`` (pkg_resources reads metadata from one path entry)."""
        if not record.get(protocol.FILES):  # a lean reply: the record's path, whole
            self.mirror.link_tree(ensure_text(record[protocol.PATH]), folder)
            return
        for each in record.get(protocol.DIRS) or ():
            self.mirror.make_dir(ensure_text(each))
        for placed, sha, _ in record.get(protocol.FILES) or ():
            placed = ensure_text(placed)
            self.mirror.place(placed, inside(folder, placed), ensure_text(sha))

    def _served(self, record, folder):
        """The ServedModule of a module's record, whose files are in the tree ``folder``."""
        fullname = ensure_text(record[protocol.NAME])
        module_type = ensure_text(record[protocol.TYPE])
        relative = ensure_text(record[protocol.PATH])
        # A package's own place is its folder, not its __init__ file.
        own = relative.rpartition("/")[0] if module_type == protocol.PACKAGE else relative
        holder = own.rpartition("/")[0]
        directory = inside(folder, holder) if holder else folder
        served = ServedModule(fullname, module_type, directory, inside(folder, relative))
        if served.is_package and record.get(protocol.CHILDREN) is not None:
            self.children[fullname] = set(ensure_text(name) for name in record[protocol.CHILDREN])
        entries = protocol.entries_of(record)
        if module_type == protocol.PACKAGE and entries is not None:
            self.entries[fullname] = entries
            self.package_folders.setdefault(inside(folder, own), fullname)
        return served

    def package_folder(self, package):
        """The folder of served package ``package`` here, or None."""
        served = self.served.get(package)
        if served is None or served.type != protocol.PACKAGE:
            return None
        return os.path.dirname(served.filename)
