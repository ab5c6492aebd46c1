"""A FIND's reply without bodies, composed once and shared.

The Composer builds the asked module's record and prefetches, into the same reply,
the records of what the Planner says its import will bring along. A Composed reply
is kept in memory and on disk under one ReplyKey: everything that decides it.
"""
import collections
import json

from ._disk import get_json, put_json
from ._roots import OutsideRoot, Watch
from ._planner import PREFETCH_MODULES
from ._records import Composed, Refused, TooLarge, would_ask
from .compat import protocol

PREFETCH_BYTES = 64 * 1024 * 1024  # bodies prefetched into one reply, at most

ReplyKey = collections.namedtuple(
    "ReplyKey", "name entries slave_kind policy local limit extensions followers")


class Composer(object):
    """Composes FIND replies for one slave from its RecordBuilder and Planner."""

    def __init__(self, builder, planner, caches, slave_kind, max_reply_bytes):
        self.builder = builder
        self.planner = planner
        self.caches = caches
        self.slave_kind = slave_kind  # what decides a reply of the slave's facts
        self.max_reply_bytes = max_reply_bytes

    def composed(self, name, located, have, had, holds):
        """The Composed reply to a FIND of ``name``: worked out once per version of what
        it read and shared by every slave of the same kind (each session is sent it
        ``without`` what it ``had`` already). A master process that has not composed it
        yet takes an earlier one's from its disk cache where the slave holds every record
        of it (``holds(sent, whole)``, given the trees the slave named in ``have``): then
        no body is read, so none need be held."""
        arrived = self.caches.tickets.take()
        key = self._key(name)
        with self.caches.composing.held(key):
            kept = self.caches.replies.peek(key)
            if kept is not None and self._current(kept, arrived):
                return kept
            if kept is None and have:
                kept = self._kept_lean(key, had, holds, arrived)
                if kept is not None:
                    return kept
            return self._compose(name, located, key)

    def compose_ahead(self, name):
        """Compose the reply to ``name`` for the followers it has now (``_ahead``),
        unless one is kept in memory or on disk; whether it was composed."""
        located = self.builder.search_path.locate(name)
        if located is None:
            return False
        key = self._key(name)
        with self.caches.composing.held(key):
            if self.caches.replies.peek(key) is not None or self._kept_on_disk(key):
                return False
            self._compose(name, located, key)
            return True

    def _current(self, kept, arrived):
        """Is the kept reply current for a request that ``arrived``? Yes if a check that
        began since found it unchanged (``Tickets``), or if no change was noted in its
        folders since one did (``_notices``), else checked now."""
        if kept.checked > arrived:
            return True
        began = self.caches.tickets.take()
        notice = kept.notice
        if notice and notice.vouches():  # no change noted in its folders since checked
            kept.checked = max(kept.checked, began)
            return True
        if notice:
            notice.arm()  # a change from now on: seen by this check or noted for the next
        if not kept.unchanged():
            return False
        kept.checked = max(kept.checked, began)
        self.caches.notices.later(kept)
        return True

    def _key(self, name):
        builder = self.builder
        return ReplyKey(name, tuple(builder.search_path.entries), self.slave_kind,
                        builder.policy.key, self.planner.local, self.max_reply_bytes,
                        builder.allow_extensions, tuple(self.planner.followers(name)))

    def _compose(self, name, located, key):
        composing = Composed(name)
        composing.checked = self.caches.tickets.take()  # what it reads is read after this
        with self.builder.search_path.watching() as watch:
            record, size, companions = self.builder.record(name, located,
                                                           self.max_reply_bytes, composing)
            related, absent, refusals = self._prefetch(name, located, size, composing,
                                                       companions)
        records = [record] + related
        composing.finish(records, would_ask(absent, records), refusals, watch)
        if composing.reusable():
            self.caches.replies.put(key, composing)
            if all(plan.whole for plan in composing.plans):
                self._keep(key, composing)
            self.caches.notices.later(composing)
        return composing

    def _prefetch(self, name, located, used, composing, companions=()):
        """(records, absent names, refusals) of what importing ``name`` will import: from
        its own top-level package, and from distributions the slave does not have itself;
        ``companions`` (modules that must go with a record) first. Modules refused on the
        way are named with their reason (not the too-large: alone, they may fit)."""
        candidates, absent, plans = self.planner.candidates(name, located)
        composing.plans.extend(plans)
        budget = PREFETCH_BYTES if self.max_reply_bytes is None \
            else min(PREFETCH_BYTES, self.max_reply_bytes - used)
        pending = collections.deque(list(companions) + candidates)
        records, refusals, done = [], [], set([name])
        policy, search_path = self.builder.policy, self.builder.search_path
        while pending and len(records) < PREFETCH_MODULES and budget > 0:
            candidate = pending.popleft()
            if candidate in done or policy.problem(candidate):
                continue
            done.add(candidate)
            found = search_path.locate(candidate)
            if found is None:
                continue
            try:
                record, size, more = self.builder.record(candidate, found, budget, composing)
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

    @staticmethod
    def _disk_key(key):
        return json.dumps([key.name, list(key.entries), key.slave_kind, repr(key.policy),
                           sorted(key.local), key.limit, key.extensions, list(key.followers)])

    def _kept_lean(self, key, had, holds, arrived):
        """The Composed an earlier master process kept on disk for ``key`` (``_keep``),
        if the slave holds it (less what this session ``had`` already) and every folder
        and file it read is unchanged (one stat each, ``_current``); else None. Read from
        disk once a process: the next slave asking (a second xdist worker) takes it from
        memory."""
        kept = self._kept_on_disk(key)
        if kept is None or not holds(kept.without(had, key.name), kept):
            return None
        if not self._current(kept, arrived):
            self.caches.lean_replies.put(key, None)  # composed anew from now on
            return None
        return kept

    def _kept_on_disk(self, key):
        """The Composed an earlier master kept for ``key``, read once a process, or None."""
        return self.caches.lean_replies.get(key, lambda: self._read_kept(key))

    def _read_kept(self, key):
        data = get_json(self.caches.disk, "composed", self._disk_key(key))
        if data is None:
            return None
        try:  # the entry's checksum vouches for its tree id (_disk)
            if not protocol.is_sha256_hex(data["tree"]):
                return None
            kept = Composed(key.name)
            kept.sizes = dict(data["sizes"])
            records = data["records"]  # entries kept before would_ask name more absent
            return kept.finish(records, would_ask(data["absent"], records), data["refusals"],
                               Watch.from_data(data["watch"]), data["tree"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _keep(self, key, composed):
        """Keep a reusable Composed on disk, without bodies (it serves lean replies)."""
        watch = Watch.merged(composed.all_watches())
        put_json(self.caches.disk, "composed", self._disk_key(key), {
            "tree": composed.tree, "records": composed.records, "absent": composed.absent,
            "refusals": composed.refusals, "sizes": composed.sizes,
            "watch": watch.as_data()})
