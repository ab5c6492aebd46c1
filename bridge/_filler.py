"""What one slave holds, and the bodies a reply carries to it.

A body the slave holds travels as its hash alone; one it lacks goes in the reply
(zlib-compressed where that saves time on the link) or, when large, in chunks
ahead of it (Stream). A reply whose whole tree the slave holds goes lean: records
without files.
"""
import six

from ._disk import get_json, put_json
from ._stream import Stream
from .compat import protocol
from .compat.neutral import ensure_text

FILES_KEY = six.text_type(protocol.FILES)


class TreeFacts(object):
    """What the master knows of one tree the slave may hold: the hashes of its files and,
    per record it holds, the record's signature (``protocol.record_signature``)."""

    __slots__ = ("hashes", "records")

    def __init__(self, hashes=(), records=None):
        self.hashes = frozenset(hashes)
        self.records = records or {}

    @classmethod
    def of(cls, records):
        return cls((sha for record in records for _, sha, _ in record[protocol.FILES]),
                   dict((record[protocol.NAME], protocol.record_signature(record))
                        for record in records))

    def as_data(self):
        return {"hashes": sorted(self.hashes), "records": self.records}

    @classmethod
    def from_data(cls, data):
        """The TreeFacts ``as_data`` described; an empty one for None or what is not."""
        try:
            return cls(data["hashes"], dict(data["records"]))
        except (KeyError, TypeError, ValueError):
            return cls()


class Filler(object):
    """Owns what one slave holds: ``bodies`` (hashes it holds, or was sent), ``stored``
    (of those, what it said it stored) and ``modules`` (names whose records this session
    had)."""

    def __init__(self, caches, stats, link, bodies=()):
        self.caches = caches
        self.stats = stats
        self.link = link  # which bodies travel compressed
        self.bodies = set(bodies)
        self.stored = set(bodies)
        self.modules = set()

    def holds(self, sha):
        return sha in self.bodies

    def forget(self, hashes):
        """Bodies the slave turned out not to hold (a hop could not pass them on)."""
        self.bodies.difference_update(hashes)
        self.stored.difference_update(hashes)

    def note_request(self, msg):
        """What the slave holds, from a request: the blobs of the trees it names in
        ``have`` (where this master knows them), and those it ``holds``, less what it
        says it ``lost``. A retry (``lost``) placed nothing of the last reply."""
        for each in msg.get(protocol.LOST) or ():  # a tree this master named, or a hash
            each = ensure_text(each)
            known = self.caches.trees.peek(each)
            self.forget(known.hashes if known is not None and known.hashes else (each,))
        for tree in msg.get(protocol.HAVE) or ():
            self._add(self._tree(ensure_text(tree)).hashes)
        self._add([ensure_text(sha) for sha in msg.get(protocol.HOLDS) or ()])
        if msg.get(protocol.LOST):
            self.modules.clear()

    def _add(self, hashes):
        self.bodies.update(hashes)
        self.stored.update(hashes)

    def holds_tree(self, msg, composed):
        """Did the slave name ``composed``'s tree in ``have``? This master learns what the
        tree holds either way (a later ``have`` may name it)."""
        self._learn_tree(composed)
        return composed.tree in _named_trees(msg)

    def _tree(self, tree):
        """The TreeFacts of ``tree`` where this master, or an earlier one (its disk
        cache), made it; else an empty one. A tree id names its content: what is known
        of it never goes stale."""
        return self.caches.trees.get(tree, lambda: TreeFacts.from_data(
            get_json(self.caches.disk, "tree", tree)))

    def _learn_tree(self, composed):
        if self._tree(composed.tree).records:
            return
        facts = TreeFacts.of(composed.records)
        self.caches.trees.put(composed.tree, facts)
        put_json(self.caches.disk, "tree", composed.tree, facts.as_data())

    def held_records(self, msg, composed, whole):
        """({record name: the tree of ``have`` that holds its files just so}, the Composed
        of the other records). A tree serves only if every record it holds is in the
        ``whole`` reply (``composed`` and what the session had of it) just so: a package's
        ``__path__`` is its tree's folder, so a tree must not hold a module this reply
        would serve otherwise (an edited one), nor one it leaves out."""
        held = self._held(msg, composed, whole)
        if not held:
            return held, composed
        rest = composed.only([record for record in composed.records
                              if record[protocol.NAME] not in held])
        if rest.records:
            self._learn_tree(rest)
        return held, rest

    def holds_all(self, msg, composed, whole):
        """Whether the slave holds every record of ``composed``: its tree, or each in a
        tree of ``have`` (``held_records``). A reply kept without bodies serves then."""
        if composed.tree in _named_trees(msg):
            return True
        held = self._held(msg, composed, whole)
        return all(record[protocol.NAME] in held for record in composed.records)

    def _held(self, msg, composed, whole):
        kept = [(ensure_text(tree), self._tree(ensure_text(tree)).records)
                for tree in msg.get(protocol.HAVE) or ()]
        held = {}
        if any(its_records for _, its_records in kept):
            signatures = dict((record[protocol.NAME], protocol.record_signature(record))
                              for record in whole.records)
            for tree, its_records in kept:
                if its_records and all(signatures.get(name) == signature
                                       for name, signature in its_records.items()):
                    for name in its_records:
                        if name in composed.names:
                            held.setdefault(name, tree)
        return held

    def in_trees(self, composed, held):
        """The records of ``composed`` named in ``held``, lean on their own; counted as
        files the slave already has."""
        records = [record for record in composed.records if record[protocol.NAME] in held]
        self._count_held(composed, records)
        return [protocol.in_tree(record, held[record[protocol.NAME]]) for record in records]

    def lean(self, composed):
        """The records of a reply whose tree the slave holds: without files; counted as
        files the slave already has."""
        self._count_held(composed, composed.records)
        self.stats.add(lean=1)
        return protocol.lean(composed.records)

    def _count_held(self, composed, records):
        """``records``' files, which the slave holds: known as held, counted as cached."""
        held = set(sha for record in records for _, sha, _ in record[protocol.FILES])
        self._add(held)
        self.stats.add(files=sum(len(record[protocol.FILES]) for record in records),
                       bytes_cached=sum(composed.sizes[sha] for sha in held))

    def stream(self, request_id, send, report=None):
        """The Stream of a reply, or None where every body goes in it (no ``send``)."""
        if send is None:
            return None
        return Stream(request_id, send, self.link, self.caches.deflater, report)

    def filled(self, composed, stream=None, upstream=None, retry=False):
        """Copies of ``composed``'s records with the bodies the slave lacks, compressed
        where that pays; counts them.

        With a ``stream``, what the reply does not carry itself is sent ahead of it and
        named with None, as held. Behind a hop (``upstream``), what the hop holds is named
        AT_HOP instead, with None. A ``retry`` carries every body the slave has not said
        it stored: one this master sent in another reply may not be stored yet by the
        slave thread that got it (two imports at once), and would be lacked again."""
        records, sent, cached, count, in_reply = [], 0, 0, 0, set()
        held = self.stored if retry else self.bodies
        for record in composed.records:
            files, at_hop = [], []
            for path, sha, _ in record[protocol.FILES]:
                data, size = None, composed.sizes[sha]
                if sha in held or sha in in_reply:
                    cached += size
                elif upstream is not None and upstream.holds(sha):
                    at_hop.append(sha)
                    sent += size
                else:
                    if stream is None or stream.carries(size):
                        data = self._read(composed, sha, size)
                    elif size <= protocol.CHUNK_BYTES:
                        stream.add(path, sha, size, [self._read(composed, sha, size)])
                    else:
                        stream.add(path, sha, size, composed.chunks(sha))
                    sent += size
                    if upstream is not None:
                        upstream.sent(sha)
                in_reply.add(sha)
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
        self.bodies.update(in_reply)  # not what a record left out of the reply listed
        self.stats.add(files=count, bytes_sent=sent, bytes_cached=cached)
        return self._encoded(records)

    def _read(self, composed, sha, size):
        return self.caches.recent.read(sha, size, lambda: composed.read(sha))

    def _encoded(self, records):
        """``records`` with each body zlib-compressed where that saves time on this
        link; counts the bytes that travel."""
        entries = [entry for record in records for entry in record[protocol.FILES]
                   if entry[protocol.FILE_BODY] is not None]
        bodies = self.caches.deflater.wire_bodies(self.link, entries)
        compressed = set()
        for entry, body in zip(entries, bodies):
            if body is not None:
                entry[protocol.FILE_BODY] = body
                compressed.add(entry[protocol.FILE_SHA])
        for record in records:
            protocol.mark_compressed(record, [sha for _, sha, data in record[protocol.FILES]
                                              if data is not None and sha in compressed])
        self.stats.add(bytes_wire=sum(len(entry[protocol.FILE_BODY]) for entry in entries))
        return records


def _named_trees(msg):
    """The trees a request names in ``have``: the slave holds them."""
    return set(ensure_text(tree) for tree in msg.get(protocol.HAVE) or ())
