"""One module's record, as one slave may have it: its files (by hash, bodies read
later), the binary chosen for the slave, the package data that goes with it, and
the master-compiled bytecode.

``Composed`` gathers the records of one reply and where each body is read; the
Filler reads the bodies the slave lacks when the reply is sent.
"""
import hashlib

import six

from . import _bytecode
from ._facts import Facts
from ._binaries import binary_tag, extension_problem, slave_tag, suffix_of
from ._requires import python_problem
from .compat import protocol


def would_ask(absent, records):
    """The names of ``absent`` a slave would ask for. A package's record lists all its
    children, and the slave answers any other name below it itself: sympy's ``from
    package import name`` alone made 22,000 absent names of a 486-record reply."""
    children = {}
    for record in records:
        listed = record.get(protocol.CHILDREN)
        children[record[protocol.NAME]] = None if listed is None else frozenset(listed)
    asked = []
    for name in absent:
        parent, _, last = name.rpartition(".")
        listed = children.get(parent)
        if listed is None or last in listed:
            asked.append(name)
    return asked


def file_hash(caches, root, path):
    """(sha256, the bytes where hashing had to read them, else None, the file's stamp:
    its size last): each version of a file is hashed once per master, and bytes read for
    it are not read again to be sent. A file larger than a frame is hashed a chunk at a time and not kept: it is sent
    a chunk at a time too (Stream)."""
    read = []
    stamp = root.stamp(path)

    def digest():
        if stamp[-1] > protocol.CHUNK_BYTES:
            hashed = hashlib.sha256()
            for chunk in root.read_chunks(path, protocol.CHUNK_BYTES):
                hashed.update(chunk)
            return hashed.hexdigest()
        read.append(root.read(path))
        return hashlib.sha256(read[0]).hexdigest()

    sha = caches.digests.get(stamp, digest) if root.settled(stamp) else digest()
    return sha, (read[0] if read else None), stamp


class Refused(Exception):
    """A module exists but may not be served to this slave; the message says why.
    Names are quoted as '%s', not %r: a 2.7 master's names are unicode (u'...')."""


class TooLarge(Refused):
    """Refused for its size: alone, in a reply of its own, it may fit."""


class Body(object):
    """Where a reply reads one body: the bytes hashing read (used once, not held on
    to: the next reply reads the file again), else the file, whole or in chunks."""

    def __init__(self, root, path, data):
        self.root, self.path, self._data = root, path, data

    def kept(self):
        """This Body as a cache keeps it: the file's bytes are read again when sent."""
        return self if self.root is None else Body(self.root, self.path, None)

    def read(self):
        body = self._data  # once: sessions sharing a composed reply read it at once
        if self.root is not None:
            self._data = None
        return body if body is not None else self.root.read(self.path)

    def chunks(self, size):
        """The body, ``size`` bytes at a time: a large file is never read whole."""
        if self._data is not None or self.root is None:
            body = self.read()
            return (body[start:start + size] for start in range(0, max(len(body), 1), size))
        return self.root.read_chunks(self.path, size)


class Composed(object):
    """A reply without bodies: its records, where each body is read, what it read to be
    worked out (checked later with one stat each), the names it sends."""

    def __init__(self, name):
        self.name = name
        self.sizes = {}  # sha -> size of the body
        self._bodies = {}  # sha -> its Body
        self.plans = []  # the Plans it followed: they are part of what it read
        self.watches = []  # the Watches of the records it took from the master's cache
        self.records, self.absent, self.refusals, self.watch = [], [], [], None
        self.names, self.tree = frozenset(), None
        self.checked = 0  # the Tickets number of the last check that found it unchanged
        self.notice = None  # a _notices.Subscription that vouches for it; False: asked for

    def add(self, sha, size, body):
        self.sizes[sha] = size
        self._bodies.setdefault(sha, body)

    def read(self, sha):
        return self._bodies[sha].read()

    def chunks(self, sha):
        return self._bodies[sha].chunks(protocol.CHUNK_BYTES)

    def finish(self, records, absent=(), refusals=(), watch=None, tree=None):
        """``absent``: the names a slave would ask for (``would_ask``); ``tree``: the
        records' tree id where it is known (kept on disk, checked)."""
        self.records, self.absent, self.refusals = records, list(absent), list(refusals)
        self.watch = watch
        self.names = frozenset(record[protocol.NAME] for record in records)
        self.tree = tree or protocol.tree_id(records)
        return self

    def lacking(self, held):
        """Bytes of the bodies outside ``held``."""
        return sum(size for sha, size in self.sizes.items() if sha not in held)

    def without(self, names, asked):
        """This reply less the records of ``names`` (a session had them already), but for
        the one ``asked`` for: what one session is sent of a reply every slave shares."""
        records = [record for record in self.records
                   if record[protocol.NAME] == asked or record[protocol.NAME] not in names]
        return self if len(records) == len(self.records) else self.only(records)

    def only(self, records):
        """This reply with ``records`` (some of its own) alone. Its absent names stay:
        a package whose record it drops is one the session had, with its children."""
        part = Composed(self.name)
        part.sizes, part._bodies = self.sizes, self._bodies
        part.plans, part.watches = self.plans, self.watches
        return part.finish(records, self.absent, self.refusals, self.watch)

    def all_watches(self):
        """What it read: its own Watch, its Plans', its cached records'."""
        return [self.watch] + [plan.watch for plan in self.plans] + self.watches

    def reusable(self):
        return all(watch.settled for watch in self.all_watches())

    def unchanged(self):
        return all(watch.unchanged() for watch in self.all_watches())


REFUSED_BINARY = "refused binary"  # a verdict of RecordBuilder._module_beside


class RecordBuilder(object):
    """Builds module records for one slave: which file of a module it gets (a binary
    its tags allow, else the .py beside it), which package data, which bytecode."""

    def __init__(self, search_path, facts, caches, policy, master, allow_extensions,
                 slave_kind=""):
        self.search_path = search_path
        self.facts = Facts.of(facts)  # the slave's, from its HELLO
        self.caches = caches
        self.policy = policy
        self.master = master  # the master's own tags: what its binaries were built for
        self.allow_extensions = allow_extensions
        # what decides a record besides the module: its slave's kind and these settings
        self._kind = (slave_kind, repr(sorted(Facts.of(master).data.items())), policy.key,
                      bool(allow_extensions))

    def record(self, name, located, budget, composing):
        """(record, the bytes of its files ``composing`` has not, names of modules that
        must go with it) of one module, its files listed without bodies (the Filler adds
        them); Refused if it may not go to this slave, TooLarge past ``budget`` (a body
        two records share counts once: numpy's extensions share 28 MB of libraries).
        Built once per version of what it read, for every slave of a kind (a second
        session's reply brings other modules together, the same records)."""
        read = []  # a record built now: its bodies as hashing read them, sent unread

        def build():
            made, bodies = self._built(name, located)
            read.extend(bodies)
            return made

        record, _, companions, bodies, watch = self.caches.records.get(
            self._record_key(name, located), build,
            valid=lambda made: made[4].settled and made[4].unchanged())
        bodies = read or bodies
        size = sum(body_size for sha, body_size, _ in bodies if sha not in composing.sizes)
        if budget is not None and size > budget:
            raise TooLarge("'%s' is too large to send: %d bytes, the master's limit is %d"
                           % (name, size, budget))
        for sha, body_size, body in bodies:
            composing.add(sha, body_size, body)
        composing.watches.append(watch)
        return record, size, companions

    def _record_key(self, name, located):
        places = tuple((root.path, folder) for root, folder in located.places)
        return (name, located.type, located.root.path, located.path, places,
                tuple(located.extensions), located.source) + self._kind

    def _built(self, name, located):
        """((record, size, companions, [(sha, size, Body)] as kept, the Watch of what it
        read), [(sha, size, Body)] as read now). What changed in the last seconds is
        built again next time (an unsettled Watch is not valid)."""
        scratch = Composed(name)
        with self.search_path.watching() as watch:
            record, size, companions = self._build(name, located, scratch)
        bodies = [(sha, body_size, scratch._bodies[sha])
                  for sha, body_size in scratch.sizes.items()]
        kept = [(sha, body_size, body.kept()) for sha, body_size, body in bodies]
        return (record, size, companions, kept, watch), bodies

    def _build(self, name, located, composing):
        if located.type == protocol.NAMESPACE and self.facts.python < (3, 3):
            raise Refused("'%s' is a namespace package (PEP 420), which Python %d.%d cannot "
                          "import" % ((name,) + self.facts.python[:2]))
        problem = python_problem(self.search_path.distribution_of(located), self.facts)
        if problem:
            raise Refused("'%s' is not served to this slave: %s" % (name, problem))
        module_type, path, extra, companions = located.type, located.path, [], []
        if located.type == protocol.EXTENSION:
            module_type, path, extra = self._extension(name, located)
        root = located.root
        if module_type == protocol.NAMESPACE:
            paths, dirs = [], [path]
        else:
            data, companions = self._folders_named_like_modules(
                name, located, self.search_path.data_files(located, self.policy.allows))
            paths, dirs = [path] + extra + data, []
        files, size = self.listed(root, paths, composing)
        if module_type in (protocol.SOURCE, protocol.PACKAGE) and _bytecode.fits(self.facts):
            size += self._add_bytecode(root, path, files, composing)
        children = self.search_path.children(located) if located.places else []
        record = protocol.module_record(name, module_type, path, files, dirs, children,
                                        root.local(path))
        if module_type == protocol.PACKAGE:
            protocol.add_entries(record, self.search_path.folder_entries(located))
        return record, size, companions

    def listed(self, root, paths, composing):
        """([[path, sha, None]], their bytes): each file's hash, and where to read it."""
        files, size = [], 0
        for path in paths:
            sha, data, stamp = file_hash(self.caches, root, path)
            file_size = stamp[-1]
            if root.watch is not None:  # a file changed within a tick may change unseen
                root.watch.file(root, path)
                root.watch.settled = root.watch.settled and root.settled(stamp)
            composing.add(sha, file_size, Body(root, path, data))
            files.append([six.text_type(path), six.text_type(sha), None])
            size += file_size
        return files, size

    def _add_bytecode(self, root, path, files, composing):
        """Append the master-compiled .pyc of ``path`` to ``files``; its size."""
        compiled = _bytecode.compiled(self.caches.bytecode, files[0][protocol.FILE_SHA],
                                      lambda: root.read(path), self.caches.disk)
        if compiled is None:
            return 0
        pyc, sha = compiled
        composing.add(sha, len(pyc), Body(None, None, pyc))
        files.append([six.text_type(_bytecode.pyc_path(path, self.facts.cache_tag)),
                      six.text_type(sha), None])
        return len(pyc)

    def _extension(self, name, located):
        """(type, path, libraries) of the first binary the send rule allows; else the .py
        beside it; else Refused with every binary's tag and the slave's."""
        path, found = self._binary_for_slave(name, located)
        if path is not None:
            return protocol.EXTENSION, path, found
        if located.source:  # mypyc wheels and accelerators keep the .py beside the binary
            return protocol.SOURCE, located.source, []
        raise Refused("no compiled module '%s' for this slave, %s: %s"
                      % (name, slave_tag(self.facts), "; ".join(found)))

    def _binary_for_slave(self, name, located):
        """(path, libraries) of the first binary the send rule allows, else
        (None, [why each one is refused])."""
        module = name.rpartition(".")[2]
        if not self.allow_extensions:
            return None, ["compiled modules are not served (install with "
                          "allow_extensions=True)"]
        problems = []
        for path in self._by_preference(located.extensions, module):
            filename = path.rpartition("/")[2]
            tags = self.search_path.wheel_tags(located.root, path)
            problem, libraries = extension_problem(located.root, path, module, self.facts,
                                                   self.master, tags)
            if problem is None:
                return path, libraries
            problems.append("%s is built for %s: %s" % (
                filename, binary_tag(suffix_of(filename, module), tags, self.master), problem))
        return None, problems

    def _by_preference(self, paths, module):
        """In the slave's own suffix order; suffixes it does not know go last."""
        order = self.facts.extension_suffixes or []

        def rank(path):
            suffix = suffix_of(path.rpartition("/")[2], module)
            return order.index(suffix) if suffix in order else len(order)

        return sorted(paths, key=rank)

    def _folders_named_like_modules(self, name, located, data):
        """(the package data to send, names of modules that must travel with it).

        A data folder named like a module beside it (pydantic_core's
        ``_pydantic_core/`` of ``.pyi`` stubs beside ``_pydantic_core.*.so``) is, alone
        in the slave's tree, a namespace package that CPython's PathFinder (asked
        before the bridge) imports in the module's place: "cannot import name ...
        (unknown location)". So where a binary of that name is refused for this slave,
        the folder is left out and the import reaches the bridge, which names the
        refusal; otherwise the module goes with the folder, so the tree holds both.
        """
        top = located.path.rpartition("/")[0]
        verdicts = {}  # root-relative folder -> None, REFUSED_BINARY or the module's Located
        kept, companions = [], []
        for path in data:
            folders = path[len(top) + 1:].split("/")[:-1]
            below = [top + "/" + "/".join(folders[:depth]) for depth in range(1, len(folders) + 1)]
            for folder in below:
                if folder not in verdicts:
                    verdicts[folder] = self._module_beside(located.root, folder)
                    module = name + "." + folder[len(top) + 1:].replace("/", ".")
                    if verdicts[folder] not in (None, REFUSED_BINARY) and \
                            protocol.module_name_problem(module) is None:
                        companions.append(module)
            if all(verdicts[folder] != REFUSED_BINARY for folder in below):
                kept.append(path)
        return kept, companions

    def _module_beside(self, root, folder):
        """What a module of ``folder``'s name beside it is: REFUSED_BINARY when it is a
        binary (without a .py twin) this slave may not have, its Located when it is
        served, None when there is none."""
        parent, _, module = folder.rpartition("/")
        found = self.search_path.locate_in(root, parent, module)
        if found is None or found.type not in (protocol.EXTENSION, protocol.SOURCE):
            return None
        if found.type == protocol.EXTENSION and found.source is None and \
                self._binary_for_slave(module, found)[0] is None:
            return REFUSED_BINARY
        return found
