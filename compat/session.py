"""What the slave asks the master, and what it does with the answers.

Shared by the 2.7 and 3.x importers: they differ in how the import system
calls them, not in when to ask or how a reply becomes files in the cache.
"""
import contextlib
import marshal
import os
import sys
import threading

from . import cacheroot, protocol
from .files import inside
from .client import BridgeUnavailable, ImportLockDuringWait, NotIntact
from .distributions import ServedDistributions
from .neutral import ModuleNotFoundError, dotted, ensure_text, import_error, native_path
from .trees import TreeStore


# Standard library modules of other platforms and implementations, which the
# standard library itself probes for (subprocess: _winapi; mimetypes: winreg;
# 2.7's copy: org.python.core). 3.10+ also list every stdlib name themselves.
OTHER_PLATFORMS = frozenset([
    "_winapi", "winreg", "_winreg", "nt", "msvcrt", "_msi", "msilib", "_overlapped",
    "winsound", "_wmi", "_scproxy", "org", "java", "riscos", "riscosenviron", "ce", "os2",
    "vms_lib", "MacOS",
])

# A session waits this long at most for another session of its cache root to finish asking
# the same request (``ImportSession.alone``), then asks anyway: a hung slave costs the
# others this, never their import.
ALONE_SECONDS = 60.0


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


def lean_answer(reply, records, placed):
    """A MODULE reply's lean form: each record names the tree that holds its files
    (``placed``: record name -> its tree's folder)."""
    return protocol.module_reply(
        None, [protocol.in_tree(record, os.path.basename(placed[ensure_text(
            record[protocol.NAME])])) for record in records],
        reply.get(protocol.ABSENT) or (), reply.get(protocol.REFUSALS) or ())


def _by_tree(reply, records):
    """({tree id: the records it holds}, the records that carry their files): a lean
    reply's ``tree`` holds them all; a lean record names its own (ValueError: no id)."""
    whole = reply.get(protocol.TREE)
    if whole is not None:
        return {ensure_text(whole): list(records)}, []
    held, rest = {}, []
    for record in records:
        tree = protocol.tree_of(record)
        if tree is None:
            rest.append(record)
        else:
            held.setdefault(tree, []).append(record)
    return held, rest


def refusal_error(fullname, reason):
    return import_error("execnet-bridge cannot import '%s': %s" % (fullname, reason),
                        fullname, RemoteImportError)


class ServedModule(object):
    """Where a module the master served sits in its tree."""

    __slots__ = ("name", "type", "directory", "filename")  # one per module: no dict each

    def __init__(self, name, module_type, directory, filename):
        self.name = name
        self.type = module_type
        self.directory = native_path(directory)  # the folder holding its file or folder
        self.filename = native_path(filename)  # the module's file, its folder for a namespace

    @property
    def is_package(self):
        return self.type in (protocol.PACKAGE, protocol.NAMESPACE)


class ImportSession(object):
    """One install's state on the slave: the client, the answers so far, the caches
    (blobs, trees) and its session folder (the served metadata, the trees it uses)."""

    def __init__(self, client, session_folder, blobs, environment=None):
        self.environment = environment  # [major, minor] the served packages were made for
        self.client = client
        self.session_folder = session_folder
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
        # bodies that came ahead of replies, kept in memory for the reply's tree
        self.held = client.incoming.held if client.incoming is not None else {}
        self.distributions = ServedDistributions(self)
        self._lock = threading.Lock()
        self._fetching = {}
        # name -> the lean MODULE reply that served it, for a child, marshalled: thousands
        # of lists and dicts a collector would walk in every full collection and at exit
        self.answers = {}
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
        return any(self.session_folder.under_cache_root(entry) for entry in path or ())

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
        mine = None
        while True:
            with self._lock:  # nothing is made under it (``_folders_now``)
                if fullname in self.served:
                    return self.served[fullname]
                if fullname in self.missing:
                    return None
                refused = fullname in self.refused  # said in a reply: REFUSED, or on the way
                event = None if refused else self._fetching.get(fullname)
                if not refused and event is None and mine is not None:
                    event = self._fetching[fullname] = mine
            if refused:
                raise refusal_error(fullname, self.refused[fullname])
            if event is None:  # no one asks: this thread will, with an event made here
                mine = threading.Event()
                continue
            if event is mine:
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

    def exchange(self, request_for, lost=()):
        """(reply, {record name: the tree folder of its files} of a MODULE reply, else
        None) for the request ``request_for(lost)`` makes; what this cache lost is asked
        for once more. Raises BridgeUnavailable, ValueError (bytes that do not match, a
        bad path) or NotIntact."""
        reply, keys = self._request(request_for(lost), lost)
        if protocol.kind_of(reply) != protocol.MODULE:
            return reply, None
        placed, lacking = self._trees_for(reply, reply.get(protocol.MODULES) or [], keys)
        if not lacking:
            return reply, placed
        if lost:
            raise NotIntact()
        return self.exchange(request_for, lacking)  # our cache lost what the master named

    def _ask(self, fullname):
        with self.alone(protocol.find_request(fullname)):
            return self._asked(fullname)

    @contextlib.contextmanager
    def alone(self, request):
        """Ask ``request`` of the master while no other session of this cache root does:
        slaves on one host share its default root, and those that start together (xdist
        workers, a fleet) would each be sent every body of the same reply, and hash and
        write it. The next one asks once the first has placed its tree, and is answered
        lean. Waited for at most ALONE_SECONDS, import locks let go as in any wait (a
        thread that keeps one another needs does not wait); a child asks its slave, which
        takes the lock itself."""
        descriptor = None
        if getattr(self.client, "asks_a_master", False):
            path = self.trees.request_lock(protocol.request_keys(request)[0])
            with ImportLockDuringWait() as may_wait:
                descriptor = cacheroot.wait_for_lock(path, ALONE_SECONDS if may_wait else 0)
        try:
            yield
        finally:
            if descriptor is not None:
                os.close(descriptor)

    def _asked(self, fullname):
        try:
            reply, placed = self.exchange(lambda lost: protocol.find_request(fullname, lost))
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
            answer = marshal.dumps(lean_answer(reply, records, placed))
            for record in records:
                served = self._served(record, placed[ensure_text(record[protocol.NAME])])
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

    def answer(self, name):
        """The lean MODULE reply that served ``name`` (a child's answer), or None."""
        kept = self.answers.get(name)
        return None if kept is None else marshal.loads(kept)

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
            reply, placed = self.exchange(
                lambda lost: protocol.project_request(lost, holds=() if lost else holds))
        except BridgeUnavailable as error:
            raise ValueError("execnet-bridge cannot fetch the project: %s" % error)
        except NotIntact:
            raise ValueError("execnet-bridge cannot fetch the project: what the master "
                             "sent did not arrive intact")
        if not placed:
            reason = reply.get(protocol.REASON) if isinstance(reply, dict) else None
            raise ValueError("execnet-bridge cannot fetch the project: %s"
                             % (ensure_text(reason) if reason else "malformed reply"))
        return list(placed.values())[0]  # one FOLDER record

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

    def _trees_for(self, reply, records, keys):
        """({record name: the folder of the tree that holds its files}, []), or (None,
        what this cache lacks of what the reply says it holds: tree ids, or hashes).

        A lean reply names a tree we hold, and a lean record its own: one ``lstat`` each.
        The other records' tree is used if it is there already, or built from the bodies
        that came and the blobs we hold."""
        held, rest = _by_tree(reply, records)
        placed, used = {}, []
        with self.blobs.in_use():  # no eviction between a check and its use
            for tree in sorted(held):
                folder, damaged = self.trees.open_intact(tree)
                if folder is None:
                    return None, damaged or [tree]
                used.append((tree, folder, held[tree]))
            if rest:
                tree = protocol.tree_id(rest)
                folder, _ = self.trees.open_intact(tree)
                if folder is None:
                    bodies, missing = self.trees.received_bodies(
                        rest, self.intact, self.held, self._nearby_trees(tree, keys))
                    if missing:
                        return None, missing
                    folder = self.trees.build(tree, rest, bodies, self._intact_blob)
                used.append((tree, folder, rest))
            for tree, folder, its_records in used:
                self.trees.use(tree, self.session_folder.root)
                placed.update((ensure_text(record[protocol.NAME]), folder)
                              for record in its_records)
        newest_first = [tree for tree, _, _ in reversed(used)]  # the reply's own tree
        for key in keys:  # (used last) first in the next ``have``
            self.trees.remember(key, newest_first)
        with self._lock:
            for _, folder, _ in used:
                if folder not in self.tree_folders:
                    self.tree_folders.append(folder)
        return placed, []

    def _nearby_trees(self, tree, keys):
        """Ids of the trees whose packs may hold the .pyc the new tree ``tree`` needs: its
        own (set aside, damaged, it left its pack), those the request named as held (the
        master sent no body for what they hold), this session's."""
        return [tree] + [each for key in keys for each in self.trees.named(key)] + \
            self._tree_ids()

    def _tree_ids(self):
        return [os.path.basename(folder) for folder in self._folders_now()]

    def _folders_now(self):
        """A copy of ``tree_folders``, taken without the lock: a copy is one step under
        the GIL, and the lock is not for a thread running a module's code (no import
        lock held) to take. Anything made under it may start a collection, whose
        weakref callbacks (a module lock's) wait for the import lock, while the thread
        holding that lock, in ``find_spec``, waits for this one."""
        return list(self.tree_folders)

    def bytecode_body(self, sha):
        """The checked bytes of the .pyc ``sha`` from a pack of this session's trees, or
        None: a hop fills a leaf's reply with what the master sent the hop itself."""
        return self.trees.checked_bytecode(sha, (), self._tree_ids())

    def bytecode(self, path):
        """The master's .pyc at ``path``, in one of this session's trees, from the tree's
        pack (packs.py); None where it has none (the source is compiled)."""
        for folder in self._folders_now():
            if path.startswith(folder + os.sep):
                relative = path[len(folder) + 1:].replace(os.sep, "/")
                return self.trees.pack(os.path.basename(folder)).read(relative)
        return None

    def locate(self, relative):
        """The local path of a root-relative file in one of this session's trees, or
        None (the master has not sent it)."""
        for folder in self._folders_now():
            try:
                path = inside(folder, relative)
            except ValueError:
                return None
            if os.path.exists(path):
                return path
        return None

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
