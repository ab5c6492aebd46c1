"""The master's answer to one slave's requests.

A Responder belongs to one gateway. It runs on that gateway's execnet
receiver thread, so a slow or faulty slave never delays another, and it never
lets an exception escape: every request gets exactly one reply.

One request, in call order: ``reply`` checks it (``protocol.request_problem``),
the Filler notes what the slave says it holds, then FIND is located
(``_locate.SearchPath``), composed (``Composer``: the module's record from the
``RecordBuilder`` and, prefetched, what the ``Planner`` says its import brings
along) and delivered (``Filler``: lean where the slave holds the reply's tree, else
with the bodies it lacks). DISTRIBUTIONS and PROJECT build their records here and
are delivered the same way.
"""
import logging
import time

import six

from ._caches import MasterCaches
from ._composer import Composer
from ._counters import Counters
from ._deflate import Link
from ._facts import Facts
from ._filler import Filler
from ._roots import OutsideRoot
from ._planner import Planner
from ._policy import Policy
from ._records import Composed, RecordBuilder, Refused
from ._stream import SlaveGone
from .compat import protocol
from .compat.neutral import ensure_text

log = logging.getLogger("bridge.responder")


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


COUNTERS = {protocol.MISSING: "missing", protocol.REFUSED: "refused", protocol.ERROR: "errors"}


class Responder(object):
    """Turns FIND, DISTRIBUTIONS and PROJECT requests into replies from a SearchPath."""

    def __init__(self, search_path, facts, stats, master=None, allow_extensions=False,
                 policy=None, max_reply_bytes=None, progress=None, known=(), caches=None,
                 link=None):
        self.search_path = search_path
        self.facts = Facts.of(facts)  # the slave's, from its HELLO
        self.stats = stats
        self.caches = caches or MasterCaches()  # install() passes the master's own
        self.policy = policy or Policy()
        self.max_reply_bytes = max_reply_bytes
        self.progress = progress  # called (name, bytes of this reply, bytes so far)
        self.project = None  # the _project.Project this slave may ask for, if any
        slave_kind = repr(sorted((key, repr(value)) for key, value in self.facts.data.items()
                                 if key not in ("executable", "top_level")))
        self.builder = RecordBuilder(search_path, self.facts, self.caches, self.policy,
                                     master or {}, allow_extensions, slave_kind)
        local = frozenset(self.facts.top_level or ())  # what the slave has itself
        self.planner = Planner(search_path, self.caches, self.policy,
                               self.facts.python < (3,), local)
        self.composer = Composer(self.builder, self.planner, self.caches, slave_kind,
                                 max_reply_bytes)
        self.filler = Filler(self.caches, stats, link or Link(0.0, forced=False), known)

    def reply(self, msg, send=None, upstream=None):
        """The reply to ``msg``; never raises. With ``send`` (the request channel's), the
        bodies a reply does not carry itself are sent ahead of it (Stream); None where the
        slave went away meanwhile (nothing to send). ``upstream``: a leaf's hop
        (``_hops.Upstream``), which may hold some bodies already."""
        started = time.time()
        try:
            answer = self._dispatch(msg, send, upstream)
        except SlaveGone as error:
            log.info("execnet-bridge: the slave went away while its reply was sent: %s", error)
            answer = None
        except Exception as error:  # a bug must not kill the channel: report it
            log.exception("execnet-bridge failed to answer %r", msg)
            answer = self._refuse(protocol.ERROR, msg, "master error: %s" % (error,))
        self.stats.add(requests=1, seconds=time.time() - started)
        return answer

    def _dispatch(self, msg, send, upstream):
        problem = protocol.request_problem(msg)
        if problem:
            return self._refuse(protocol.ERROR, msg, "bad request: %s" % problem)
        self.search_path.begin_request()
        self.filler.note_request(msg)
        kind = protocol.kind_of(msg)
        if kind == protocol.DISTRIBUTIONS:
            return self._distributions(msg, send, upstream)
        if kind == protocol.PROJECT:
            return self._project(msg, send, upstream)
        return self._find(msg, send, upstream)

    def _refuse(self, kind, msg, reason):
        fields = msg if isinstance(msg, dict) else {}
        request_id = fields.get(protocol.ID)
        name = fields.get(protocol.NAME)
        self.stats.add(**{COUNTERS[kind]: 1})
        return protocol.not_served(kind, request_id if isinstance(request_id, int) else None,
                                name if isinstance(name, six.string_types) else "", reason)

    def _find(self, msg, send, upstream):
        name = ensure_text(msg[protocol.NAME])
        refused = self.policy.problem(name)
        if refused:
            return self._refuse(protocol.REFUSED, msg, refused)
        located = self.search_path.locate(name)
        if located is None:
            return self._refuse(protocol.MISSING, msg, "no module named '%s' on the master's "
                                "search path" % name)
        filler = self.filler
        try:
            composed = self.composer.composed(
                name, located, msg.get(protocol.HAVE) or (), filler.modules,
                lambda sent, whole: filler.holds_all(msg, sent, whole))
        except (Refused, OutsideRoot) as error:
            return self._refuse(protocol.REFUSED, msg, str(error))
        sent = composed.without(filler.modules, name)
        lead = self.planner.learn(name)
        if lead is not None:  # the next session's reply to it brings ``name`` along
            self.caches.ahead.later(self.composer, lead)
        filler.modules.update(sent.names)
        self.stats.add(modules=1, prefetched=len(sent.records) - 1)
        return self._deliver(msg, sent, name, send, upstream, report=True, whole=composed)

    def _deliver(self, msg, composed, label, send, upstream, report=False, whole=None):
        """The reply of ``composed``: lean where the slave holds its tree (no body is
        read to be dropped); else each record a tree it holds serves lean on its own, and
        the others with the bodies it lacks, streamed where large. ``whole``: the reply
        before the records the session had were left out, which a tree may hold too."""
        filler = self.filler
        if filler.holds_tree(msg, composed):
            records, tree, streamed = filler.lean(composed), composed.tree, 0
        else:
            held, rest = filler.held_records(msg, composed, whole or composed)
            if held and not rest.records:  # lean too, record by record
                self.stats.add(lean=1)
            stream = filler.stream(msg[protocol.ID], send, self._reporter(label))
            filled = iter(filler.filled(rest, stream, upstream, msg.get(protocol.LOST)))
            lean = iter(filler.in_trees(composed, held))
            records = [next(lean) if record[protocol.NAME] in held else next(filled)
                       for record in composed.records]  # the asked one first, as composed
            tree, streamed = None, (stream.streamed if stream else 0)
        if report and self.progress is not None:
            sent = sum(len(data) for each in records for _, _, data in each[protocol.FILES]
                       if data is not None)
            self.progress(label, sent + streamed, self.stats.bytes_sent)
        return protocol.module_reply(msg[protocol.ID], records, composed.absent,
                                     composed.refusals, tree)

    def _reporter(self, label):
        if self.progress is None:
            return None
        return lambda streamed: self.progress(label, streamed, self.stats.bytes_sent)

    def _within_limit(self, composed, what, msg):
        """A refusal where the bodies the slave lacks exceed the master's limit, else None."""
        total = composed.lacking(self.filler.bodies)
        if self.max_reply_bytes is None or total <= self.max_reply_bytes:
            return None
        return self._refuse(protocol.REFUSED, msg, "%s too large to send: %d bytes, the "
                            "master's limit is %d" % (what, total, self.max_reply_bytes))

    def _distributions(self, msg, send, upstream):
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
            files, _ = self.builder.listed(root, paths, composing)
            records.append(protocol.metadata_record(
                normalized, folder, files, root.local(folder),
                [path[len(folder) + 1:] for path in left_out]))
        composing.finish(records)
        refused = self._within_limit(composing, "the metadata of %s is" % (
            repr(name) if name else "every distribution"), msg)
        if refused:
            return refused
        self.stats.add(distributions=len(records))
        return self._deliver(msg, composing, name or "metadata", send, upstream)

    def _project(self, msg, send, upstream):
        """The files of the project folder this master offers (``Bridge.place_project``),
        in one FOLDER record."""
        project = self.project
        if project is None:
            return self._refuse(protocol.MISSING, msg, "the master offers no project folder")
        composing = Composed(project.name)
        try:
            files, _ = self.builder.listed(project.root, project.files, composing)
        except (IOError, OSError, OutsideRoot) as error:
            return self._refuse(protocol.REFUSED, msg, "cannot read the files of %s: %s"
                                % (project.path, error))
        composing.finish([protocol.folder_record(project.name, files, [])])
        refused = self._within_limit(composing, "the files of %s are" % project.path, msg)
        return refused or self._deliver(msg, composing, project.name, send, upstream)
