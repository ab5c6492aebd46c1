"""The master's answer to one slave's requests.

A Responder belongs to one gateway. It runs on that gateway's execnet
receiver thread, so a slow or faulty slave never delays another, and it never
lets an exception escape: every request gets exactly one reply.

A MODULE reply holds the requested module's record and, prefetched, the
records of what it will import from the same top-level package (scanned with
``ast``, never run), as far as the prefetch budget goes. Bodies the slave
already holds (its cache, or earlier replies) are sent as their hash alone.
"""
import collections
import hashlib
import json
import logging
import time

import six

from . import _bytecode
from ._caches import MasterCaches
from ._counters import Counters
from ._deflate import Link
from ._binaries import binary_tag, extension_problem, slave_tag, suffix_of
from ._imports import imported_names
from ._locate import OutsideRoot, Watch
from ._policy import Policy
from ._requires import python_problem
from ._stream import SlaveGone, Stream
from .compat import protocol
from .compat.neutral import ensure_text

log = logging.getLogger("bridge.responder")

PREFETCH_MODULES = 2000  # records in one reply, at most
PREFETCH_BYTES = 64 * 1024 * 1024  # bodies prefetched into one reply, at most

def file_hash(caches, root, path):
    """(sha256, the bytes where hashing had to read them, else None, size): each version
    of a file is hashed once per master, and bytes read for it are not read again to be
    sent. A file larger than a frame is hashed a chunk at a time and not kept: it is sent
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
    return sha, (read[0] if read else None), stamp[-1]


class Stats(Counters):
    """Counters of one install, readable while it serves."""

    FIELDS = ("requests", "modules", "prefetched", "distributions", "missing", "refused",
              "errors", "files", "bytes_sent", "bytes_cached", "bytes_wire", "lean", "streamed",
              "seconds")

    def __str__(self):
        data = self.as_dict()
        return ("%(requests)d requests, %(modules)d modules + %(prefetched)d prefetched, "
                "%(distributions)d distributions' metadata, %(files)d files, "
                "%(sent).2f MB sent (%(wire).2f MB on the wire), %(cached).2f MB already cached, "
                "%(missing)d missing, %(refused)d refused, %(errors)d errors, %(seconds).3f s"
                % dict(data, sent=data["bytes_sent"] / 1e6, cached=data["bytes_cached"] / 1e6,
                       wire=data["bytes_wire"] / 1e6))


class Refused(Exception):
    """A module exists but may not be served to this slave; the message says why.
    Names are quoted as '%s', not %r: a 2.7 master's names are unicode (u'...')."""


class TooLarge(Refused):
    """Refused for its size: alone, in a reply of its own, it may fit."""


class Plan(object):
    """What importing a module brings along: the modules its module-level imports reach
    (in the order a breadth-first walk met them), the names found nowhere, and the Watch
    of what the walk read."""

    def __init__(self, found, absent, watch):
        self.found = found
        self.absent = absent
        self.watch = watch

class Composed(object):
    """A reply to one FIND, without bodies: its records, where each body is read, what it
    read to be worked out (checked later with one stat each), the names it sends."""

    def __init__(self, name):
        self.name = name
        self.sizes = {}  # sha -> size of the body
        self._bodies = {}  # sha -> its Body
        self.plans = []  # the Plans it followed: they are part of what it read
        self.records, self.absent, self.refusals, self.watch = [], [], [], None
        self.names, self.tree = frozenset(), None

    def add(self, sha, size, body):
        self.sizes[sha] = size
        self._bodies.setdefault(sha, body)

    def read(self, sha):
        return self._bodies[sha].read()

    def chunks(self, sha):
        return self._bodies[sha].chunks(protocol.CHUNK_BYTES)

    def finish(self, records, absent, refusals, watch):
        self.records, self.absent, self.refusals, self.watch = records, absent, refusals, watch
        self.names = frozenset(record[protocol.NAME] for record in records)
        self.tree = protocol.tree_id(records)

    def without(self, names, asked):
        """This reply less the records of ``names`` (a session had them already), but for
        the one ``asked`` for: what one session is sent of a reply every slave shares."""
        records = [record for record in self.records
                   if record[protocol.NAME] == asked or record[protocol.NAME] not in names]
        if len(records) == len(self.records):
            return self
        part = Composed(self.name)
        part.sizes, part._bodies, part.plans = self.sizes, self._bodies, self.plans
        part.finish(records, self.absent, self.refusals, self.watch)
        return part

    def reusable(self):
        return self.watch.settled and all(plan.watch.settled for plan in self.plans)

    def unchanged(self):
        return self.watch.unchanged() and all(plan.watch.unchanged() for plan in self.plans)


class Body(object):
    """Where a reply reads one body: the bytes hashing read (used once, not held on
    to: the next reply reads the file again), else the file, whole or in chunks."""

    def __init__(self, root, path, data):
        self.root, self.path, self._data = root, path, data

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


FILES_KEY = six.text_type(protocol.FILES)

REFUSED_BINARY = "refused binary"  # a verdict of Responder._module_beside


COUNTERS = {protocol.MISSING: "missing", protocol.REFUSED: "refused", protocol.ERROR: "errors"}


class Responder(object):
    """Turns FIND and DISTRIBUTIONS requests into replies from a SearchPath."""

    def __init__(self, search_path, facts, stats, master=None, allow_extensions=False,
                 policy=None, max_reply_bytes=None, progress=None, known=(), caches=None,
                 link=None):
        self.search_path = search_path
        self.facts = facts  # the slave's, from its HELLO
        self.stats = stats
        self.caches = caches or MasterCaches()  # install() passes the master's own
        self.master = master or {}  # the master's own tags: what its binaries were built for
        self.allow_extensions = allow_extensions
        self.policy = policy or Policy()
        self.max_reply_bytes = max_reply_bytes
        self.progress = progress  # called (name, bytes of this reply, bytes so far)
        self.link = link or Link(0.0, forced=False)  # which bodies travel compressed
        self.known = set(known)  # hashes the slave holds: its cache, and what we sent it
        self.held = set(known)  # of those, what it said it holds (stored, not in flight)
        self._local = frozenset(facts.get("top_level") or ())  # what the slave has itself
        self._leads = {}  # top-level name -> the first name of it this slave asked for
        self._slave_kind = repr(sorted((key, repr(value)) for key, value in facts.items()
                                       if key not in ("executable", "top_level")))
        self.sent = set()  # names whose records this slave has had
        self.project = None  # the _project.Project this slave may ask for, if any

    def slave_version(self):
        return tuple(self.facts.get("version") or (3,))

    def reply(self, msg, send=None, upstream=None):
        """The reply to ``msg``; never raises. With ``send`` (the request channel's), the
        bodies a reply does not carry itself are sent ahead of it (Stream); None where the
        slave went away meanwhile (nothing to send). ``upstream``: a leaf's hop
        (``_hops.Upstream``), which may hold some bodies already."""
        started = time.time()
        try:
            answer = self._answer(msg, send, upstream)
        except SlaveGone as error:
            log.info("execnet-bridge: the slave went away while its reply was sent: %s", error)
            answer = None
        except Exception as error:  # a bug must not kill the channel: report it
            log.exception("execnet-bridge failed to answer %r", msg)
            answer = self._refuse(protocol.ERROR, msg, "master error: %s" % (error,))
        self.stats.add(requests=1, seconds=time.time() - started)
        return answer

    def _refuse(self, kind, msg, reason):
        fields = msg if isinstance(msg, dict) else {}
        request_id = fields.get(protocol.ID)
        name = fields.get(protocol.NAME)
        self.stats.add(**{COUNTERS[kind]: 1})
        return protocol.refusal(kind, request_id if isinstance(request_id, int) else None,
                                name if isinstance(name, six.string_types) else "", reason)

    def _answer(self, msg, send=None, upstream=None):
        problem = protocol.request_problem(msg)
        if problem:
            return self._refuse(protocol.ERROR, msg, "bad request: %s" % problem)
        self.search_path.begin_request()
        self._note_held(msg)
        if msg.get(protocol.LOST):  # a retry: it placed nothing of the last reply
            self.sent.clear()
        if protocol.kind_of(msg) == protocol.DISTRIBUTIONS:
            return self._distributions(msg, send, upstream)
        if protocol.kind_of(msg) == protocol.PROJECT:
            return self._project(msg, send, upstream)
        name = ensure_text(msg[protocol.NAME])
        refused = self.policy.problem(name)
        if refused:
            return self._refuse(protocol.REFUSED, msg, refused)
        located = self.search_path.locate(name)
        if located is None:
            return self._refuse(protocol.MISSING, msg, "no module named '%s' on the master's "
                                "search path" % name)
        try:
            composed = self._composed(name, located, msg.get(protocol.HAVE) or ())
        except (Refused, OutsideRoot) as error:
            return self._refuse(protocol.REFUSED, msg, str(error))
        composed = composed.without(self.sent, name)
        self._learn(name)
        self.sent.update(composed.names)
        self.stats.add(modules=1, prefetched=len(composed.records) - 1)
        absent, refusals = composed.absent, composed.refusals
        stream = None
        if self._holds_tree(msg, composed.tree, composed.records):
            records, tree = self._lean(composed), composed.tree  # no body read to be dropped
        else:
            stream = self._stream(msg, send, name)
            records, tree = self._encoded(self._filled(composed, stream, upstream,
                                                       msg.get(protocol.LOST))), None
        if self.progress is not None:
            sent = sum(len(data) for each in records for _, _, data in each[protocol.FILES]
                       if data is not None)
            self.progress(name, sent + (stream.streamed if stream else 0), self.stats.bytes_sent)
        return protocol.module_reply(msg[protocol.ID], records, absent, refusals, tree)

    def _note_held(self, msg):
        """What the slave holds, from a request: the blobs of the trees it names in
        ``have`` (where this master knows them), less what it says it ``lost``."""
        for each in msg.get(protocol.LOST) or ():
            lost = self.caches.trees.peek(ensure_text(each)) or (ensure_text(each),)
            self.known.difference_update(lost)
            self.held.difference_update(lost)
        for tree in msg.get(protocol.HAVE) or ():
            named = self.caches.trees.peek(ensure_text(tree)) or ()
            self.known.update(named)
            self.held.update(named)
        holds = [ensure_text(sha) for sha in msg.get(protocol.HOLDS) or ()]
        self.known.update(holds)
        self.held.update(holds)

    def _holds_tree(self, msg, tree, records):
        """Did the slave name ``tree``, the tree of ``records``' files, in ``have``? This
        master learns the tree's hashes either way (a later ``have`` may name it)."""
        self.caches.trees.get(tree, lambda: frozenset(
            sha for record in records for _, sha, _ in record[protocol.FILES]))
        return tree in set(ensure_text(each) for each in msg.get(protocol.HAVE) or ())

    def _lean(self, composed):
        """The records of a reply whose tree the slave holds: without files; counted as
        files the slave already has."""
        held = set(sha for record in composed.records for _, sha, _ in record[protocol.FILES])
        self.known.update(held)
        self.held.update(held)
        self.stats.add(files=sum(len(record[protocol.FILES]) for record in composed.records),
                       bytes_cached=sum(composed.sizes[sha] for sha in held), lean=1)
        return protocol.lean(composed.records)

    def _distributions(self, msg, send=None, upstream=None):
        """The metadata folders of one distribution, or of every one on the path.

        They describe what the master has, as installed: served from the same
        search path as the modules, so from the slave's own environment when
        install() was given ``python=``."""
        name = msg.get(protocol.NAME)
        name = None if name is None else ensure_text(name)
        found = self.search_path.distributions(name)
        if name is not None and not found:
            return self._refuse(protocol.MISSING, msg, "no distribution named '%s' on the "
                                "master's search path" % name)
        composing = Composed(name or "*")  # read nothing before the lean check
        records = []
        for root, folder, normalized in found:
            paths, left_out = self.search_path.metadata_files(root, folder), []
            if name is None:  # a listing: what it reads now, the rest when asked by name
                left_out = [path for path in paths if path[len(folder) + 1:] not in
                            protocol.LISTED]
                paths = [path for path in paths if path not in left_out]
            files, _ = self._listed(root, paths, composing)
            records.append(protocol.metadata_record(
                normalized, folder, files, root.local(folder),
                [path[len(folder) + 1:] for path in left_out]))
        composing.finish(records, [], [], None)
        total = sum(size for sha, size in composing.sizes.items() if sha not in self.known)
        if self.max_reply_bytes is not None and total > self.max_reply_bytes:
            return self._refuse(protocol.REFUSED, msg, "the metadata of %s is too large to "
                                "send: %d bytes, the master's limit is %d" % (
                                    repr(name) if name else "every distribution", total,
                                    self.max_reply_bytes))
        self.stats.add(distributions=len(records))
        if self._holds_tree(msg, composing.tree, records):
            return protocol.module_reply(msg[protocol.ID], self._lean(composing),
                                         tree=composing.tree)
        stream = self._stream(msg, send, name or "metadata")
        return protocol.module_reply(msg[protocol.ID], self._encoded(
            self._filled(composing, stream, upstream, msg.get(protocol.LOST))))

    def _project(self, msg, send=None, upstream=None):
        """The files of the project folder this master offers (``Bridge.place_project``),
        in one FOLDER record: lean where the slave names its tree, else with the bodies
        it does not hold."""
        project = self.project
        if project is None:
            return self._refuse(protocol.MISSING, msg, "the master offers no project folder")
        composing = Composed(project.name)
        try:
            files, _ = self._listed(project.root, project.files, composing)
        except (IOError, OSError, OutsideRoot) as error:
            return self._refuse(protocol.REFUSED, msg, "cannot read the files of %s: %s"
                                % (project.path, error))
        records = [protocol.folder_record(project.name, files, [])]
        composing.finish(records, [], [], None)
        total = sum(size for sha, size in composing.sizes.items() if sha not in self.known)
        if self.max_reply_bytes is not None and total > self.max_reply_bytes:
            return self._refuse(protocol.REFUSED, msg, "the files of %s are too large to "
                                "send: %d bytes, the master's limit is %d"
                                % (project.path, total, self.max_reply_bytes))
        if self._holds_tree(msg, composing.tree, records):
            return protocol.module_reply(msg[protocol.ID], self._lean(composing),
                                         tree=composing.tree)
        stream = self._stream(msg, send, project.name)
        return protocol.module_reply(msg[protocol.ID], self._encoded(
            self._filled(composing, stream, upstream, msg.get(protocol.LOST))))

    def _record(self, name, located, budget, composing):
        """(record, its files' bytes, names of modules that must go with it) of one module,
        its files listed without bodies (``_filled`` adds them); Refused if it may not go
        to this slave."""
        if located.type == protocol.NAMESPACE and self.slave_version() < (3, 3):
            raise Refused("'%s' is a namespace package (PEP 420), which Python %d.%d cannot "
                          "import" % ((name,) + self.slave_version()[:2]))
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
        files, size = self._listed(root, paths, composing)
        if module_type in (protocol.SOURCE, protocol.PACKAGE) and _bytecode.fits(self.facts):
            size += self._add_bytecode(root, path, files, composing)
        if budget is not None and size > budget:
            raise TooLarge("'%s' is too large to send: %d bytes, the master's limit is %d"
                           % (name, size, budget))
        children = self.search_path.children(located) if located.places else []
        record = protocol.module_record(name, module_type, path, files, dirs, children,
                                        root.local(path))
        if module_type == protocol.PACKAGE:
            protocol.add_entries(record, self.search_path.folder_entries(located))
        return record, size, companions

    def _add_bytecode(self, root, path, files, composing):
        """Append the master-compiled .pyc of ``path`` to ``files``; its size."""
        compiled = _bytecode.compiled(self.caches.bytecode, files[0][1],
                                      lambda: root.read(path), self.caches.disk)
        if compiled is None:
            return 0
        pyc, sha = compiled
        composing.add(sha, len(pyc), Body(None, None, pyc))
        files.append([six.text_type(_bytecode.pyc_path(path, self.facts["cache_tag"])),
                      six.text_type(sha), None])
        return len(pyc)

    def _listed(self, root, paths, composing):
        """([[path, sha, None]], their bytes): each file's hash, and where to read it."""
        files, size = [], 0
        for path in paths:
            sha, data, file_size = file_hash(self.caches, root, path)
            if root.watch is not None:
                root.watch.file(root, path)
            composing.add(sha, file_size, Body(root, path, data))
            files.append([six.text_type(path), six.text_type(sha), None])
            size += file_size
        return files, size

    def _stream(self, msg, send, name):
        """The Stream of the reply to ``msg``, or None where every body goes in it."""
        if send is None:
            return None
        report = None
        if self.progress is not None:
            report = lambda streamed: self.progress(name, streamed, self.stats.bytes_sent)
        return Stream(msg[protocol.ID], send, self.link, self.caches.deflater, report)

    def _filled(self, composed, stream=None, upstream=None, retry=False):
        """Copies of ``composed``'s records with the bodies the slave lacks; counts them.
        With a ``stream``, what the reply does not carry itself is sent ahead of it and
        named with None, as held. Behind a hop (``upstream``), what the hop holds is
        named AT_HOP instead, with None. A ``retry`` carries every body the slave has not
        said it holds: one this master sent in another reply may not be stored yet by
        the slave thread that got it (two imports at once), and would be lacked again."""
        records, sent, cached, count, named = [], 0, 0, 0, set()
        known = self.held if retry else self.known
        for record in composed.records:
            files, at_hop = [], []
            for path, sha, _ in record[protocol.FILES]:
                data, size = None, composed.sizes[sha]
                if sha in known or sha in named:
                    cached += size
                elif upstream is not None and upstream.holds(sha):
                    at_hop.append(sha)
                    sent += size
                else:
                    if stream is None or stream.carries(size):
                        data = composed.read(sha)
                    else:
                        stream.add(path, sha, size, composed.chunks(sha))
                    sent += size
                    if upstream is not None:
                        upstream.sent(sha)
                named.add(sha)
                files.append([path, sha, data])
            count += len(files)
            copy = dict(record)
            copy[FILES_KEY] = files
            if at_hop:
                protocol.mark_at_hop(copy, at_hop)
            records.append(copy)
        if stream is not None:
            stream.flush()
            self.stats.add(bytes_wire=stream.wire, streamed=stream.streamed)
        self.known.update(named)  # not what a record left out of the reply listed
        self.stats.add(files=count, bytes_sent=sent, bytes_cached=cached)
        return records

    def _composed(self, name, located, have=()):
        """The Composed reply to a FIND of ``name``: worked out once per version of what
        it read and shared by every slave of the same kind (each session is sent it
        ``without`` what it had already). A master process that has not composed it yet
        takes an earlier one's from its disk cache where the slave holds that reply's tree
        (``have``): then no body is read, so none need be known."""
        key = (name, tuple(self.search_path.entries), self._slave_kind, self.policy.key,
               self._local, self.max_reply_bytes, self.allow_extensions,
               tuple(self.caches.followers.of(self._lead_key(name))))
        with self.caches.composing.held(key):
            kept = self.caches.replies.peek(key)
            if kept is not None and kept.unchanged():
                return kept
            if kept is None and have:
                kept = self._kept_lean(key, set(ensure_text(tree) for tree in have))
                if kept is not None:
                    return kept
            return self._compose(name, located, key)

    def _disk_key(self, key):
        name, entries, kind, policy, local, limit, extensions, followers = key
        return json.dumps([name, list(entries), kind, repr(policy), sorted(local), limit,
                           extensions, list(followers)])

    def _kept_lean(self, key, have):
        """The Composed an earlier master process kept on disk for ``key`` (``_keep``),
        if the slave holds its tree (less what this session had already) and every folder
        and file it read is unchanged (one stat each); else None."""
        data = self._kept_data("composed", self._disk_key(key))
        if data is None:
            return None
        try:
            kept = Composed(key[0])
            kept.sizes = dict(data["sizes"])
            kept.finish(data["records"], data["absent"], data["refusals"],
                        Watch.from_data(data["watch"]))
        except (ValueError, KeyError, TypeError):
            return None
        if kept.tree != data["tree"] or kept.without(self.sent, key[0]).tree not in have \
                or not kept.unchanged():
            return None
        return kept

    def _keep(self, key, composed):
        """Keep a reusable Composed on disk, without bodies (it serves lean replies)."""
        watch = Watch.merged([composed.watch] + [plan.watch for plan in composed.plans])
        self._keep_data("composed", self._disk_key(key), {
            "tree": composed.tree, "records": composed.records, "absent": composed.absent,
            "refusals": composed.refusals, "sizes": composed.sizes,
            "watch": watch.as_data()})

    def _kept_data(self, kind, key):
        """The JSON data the master's disk cache keeps for (kind, key), or None."""
        data = self.caches.disk.get(kind, key)
        try:
            return None if data is None else json.loads(data.decode("utf-8"))
        except ValueError:  # not JSON: a format of another version
            return None

    def _keep_data(self, kind, key, data):
        self.caches.disk.put(kind, key, json.dumps(data).encode("utf-8"))

    def _compose(self, name, located, key):
        composing = Composed(name)
        with self.search_path.watching() as watch:
            record, size, companions = self._record(name, located, self.max_reply_bytes,
                                                    composing)
            related, absent, refusals = self._prefetch(name, located, size, composing,
                                                       companions)
        composing.finish([record] + related, absent, refusals, watch)
        if composing.reusable():
            self.caches.replies.put(key, composing)
            self._keep(key, composing)
        return composing

    def _encoded(self, records):
        """``records`` with each body zlib-compressed where that saves time on this
        link (``Deflater.wire_body``); counts the bytes that travel."""
        entries = [entry for record in records for entry in record[protocol.FILES]
                   if entry[2] is not None]
        bodies = self.caches.deflater.wire_bodies(self.link, entries)
        compressed = set()
        for entry, body in zip(entries, bodies):
            if body is not None:
                entry[2] = body
                compressed.add(entry[1])
        for record in records:
            protocol.mark_compressed(record, [sha for _, sha, data in record[protocol.FILES]
                                              if data is not None and sha in compressed])
        self.stats.add(bytes_wire=sum(len(entry[2]) for entry in entries))
        return records

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

    def _folders_named_like_modules(self, name, located, data):
        """(the package data to send, names of modules that must travel with it).

        A data folder named like a module beside it (pydantic_core's
        ``_pydantic_core/`` of ``.pyi`` stubs beside ``_pydantic_core.*.so``) is, alone
        in the slave's mirror, a namespace package that CPython's PathFinder (asked
        before the bridge) imports in the module's place: "cannot import name ...
        (unknown location)". So where a binary of that name is refused for this slave,
        the folder is left out and the import reaches the bridge, which names the
        refusal; otherwise the module goes with the folder, so the mirror holds both.
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

    def _by_preference(self, paths, module):
        """In the slave's own suffix order; suffixes it does not know go last."""
        order = self.facts.get("extension_suffixes") or []

        def rank(path):
            suffix = suffix_of(path.rpartition("/")[2], module)
            return order.index(suffix) if suffix in order else len(order)

        return sorted(paths, key=rank)

    def _prefetch(self, name, located, used, composing, companions=()):
        """(records, absent names, refusals) of what importing ``name`` will import: from
        its own top-level package, and from distributions the slave does not have itself;
        ``companions`` (modules that must go with a record) first. Modules refused on the
        way are named with their reason (not the too-large: alone, they may fit)."""
        candidates, absent = self._candidates(name, located, composing)
        budget = PREFETCH_BYTES if self.max_reply_bytes is None \
            else min(PREFETCH_BYTES, self.max_reply_bytes - used)
        pending = collections.deque(list(companions) + candidates)
        records, refusals, done = [], [], set([name])
        while pending and len(records) < PREFETCH_MODULES and budget > 0:
            candidate = pending.popleft()
            if candidate in done or self.policy.problem(candidate):
                continue
            done.add(candidate)
            found = self.search_path.locate(candidate)
            if found is None:
                continue
            try:
                record, size, more = self._record(candidate, found, budget, composing)
            except TooLarge:
                continue
            except Refused as error:  # the slave can say why without asking
                refusals.append((candidate, str(error)))
                continue
            except OutsideRoot:
                continue  # asked for explicitly, it gets its reason then
            budget -= size
            records.append(record)
            pending.extendleft(reversed(more))
        return records, absent, refusals

    def _candidates(self, name, located, composing):
        """(names to send along, names found nowhere): ``name``'s Plan, then each name
        slaves asked for after it before (Followers) with its own Plan."""
        plan = self._plan(name, located)
        composing.plans.append(plan)
        candidates, absent = list(plan.found), list(plan.absent)
        for follower in self.caches.followers.of(self._lead_key(name)):
            module = self.search_path.locate(follower)
            if module is not None and not self.policy.problem(follower):
                more = self._plan(follower, module)
                composing.plans.append(more)
                candidates += [follower] + more.found
                absent += more.absent
        return candidates, absent

    def _lead_key(self, name):
        return (tuple(self.search_path.entries), name)

    def _learn(self, name):
        """Remember ``name`` as a follower of the first name of its top-level package
        this slave asked for."""
        lead = self._leads.setdefault(name.split(".")[0], name)
        if lead != name:
            self.caches.followers.learn(self._lead_key(lead), name)

    def _plan(self, name, located):
        """The Plan for ``name``: worked out once per version of the folders and files it
        read, and shared by every slave with the same local packages and policy."""
        key = (name, tuple(self.search_path.entries), self.slave_version() < (3,),
               self.policy.key, self._local)
        kept = json.dumps([name, list(key[1]), key[2], repr(key[3]), sorted(key[4])])
        return self.caches.plans.get(
            key, lambda: self._kept_plan(kept) or self._walked_plan(name, located, kept),
            valid=lambda plan: plan.watch.settled and plan.watch.unchanged())

    def _kept_plan(self, kept):
        """The Plan an earlier master process walked (the disk cache), if every folder and
        file it read is unchanged (one stat each), else None: a master that lives for one
        run (a pytest controller) does not walk every import again."""
        data = self._kept_data("plans", kept)
        if data is None:
            return None
        try:
            plan = Plan(data["found"], data["absent"], Watch.from_data(data["watch"]))
        except (ValueError, KeyError, TypeError):
            return None
        return plan if plan.watch.unchanged() else None

    def _walked_plan(self, name, located, kept):
        plan = self._walk(name, located)
        if plan.watch.settled:  # what changed in the last seconds is walked again
            self._keep_data("plans", kept, {"found": plan.found, "absent": plan.absent,
                                            "watch": plan.watch.as_data()})
        return plan

    def _walk(self, name, located):
        """Follow module-level imports from ``name`` (breadth first), recording what was
        read so the Plan can be checked later without walking again."""
        local = set(self._local)
        with self.search_path.watching() as watch:
            queue = collections.deque(self._imports_of(name, located))
            seen, found, absent = set([name]), [], []
            while queue and len(found) < PREFETCH_MODULES:
                candidate = queue.popleft()
                if candidate in seen or candidate.split(".")[0] in local:
                    continue
                seen.add(candidate)
                if self.policy.problem(candidate):
                    continue
                module = self.search_path.locate(candidate)
                if module is None:
                    absent.append(candidate)
                    continue
                found.append(candidate)
                queue.extend(self._imports_of(candidate, module))
        return Plan(found, absent, watch)

    def _imports_of(self, name, located):
        if located.type not in (protocol.SOURCE, protocol.PACKAGE):
            return []
        python2 = self.slave_version() < (3,)  # only 2.7 guesses implicit relative imports
        root, path = located.root, located.path
        version = root.stamp(path)
        if root.watch is not None:
            root.watch.file(root, path)
            root.watch.settled = root.watch.settled and root.settled(version)
        sha, data, _ = file_hash(self.caches, root, path)
        key = (sha, name, python2)  # by content: relative imports make the name count

        def scan():
            names = imported_names(root.read(path) if data is None else data, name,
                                   located.type == protocol.PACKAGE, python2)
            self.caches.disk.put("imports", "%s %s %d" % key, "\n".join(names).encode("utf-8"))
            return names

        def kept():
            text = self.caches.disk.get("imports", "%s %s %d" % key)
            if text is None:
                return scan()
            return [each for each in text.decode("utf-8").split("\n") if each]

        return self.caches.imports.get(key, kept)
