"""What importing a module brings along, worked out on the master without running it.

A Plan follows a module's module-level imports (scanned with ``ast``) breadth first;
Followers add the names slaves asked for after it before. The Composer prefetches
what the Planner names into the same reply.
"""
import collections
import json

from ._disk import get_json, put_json
from ._imports import imported_names
from ._roots import Watch
from ._records import file_hash
from .compat import protocol

PREFETCH_MODULES = 2000  # records in one reply, at most


class Plan(object):
    """What importing a module brings along: the modules its module-level imports reach
    (in the order a breadth-first walk met them), the names found nowhere, and the Watch
    of what the walk read. Not ``whole`` where this master could not parse a source the
    walk met: then it is not kept on disk, where a master that can would take it."""

    def __init__(self, found, absent, watch, whole=True):
        self.found = found
        self.absent = absent
        self.watch = watch
        self.whole = whole


class Planner(object):
    """Plans and followers for one slave: what it has itself is never planned."""

    def __init__(self, search_path, caches, policy, python2, local):
        self.search_path = search_path
        self.caches = caches
        self.policy = policy
        self.python2 = python2  # only 2.7 guesses implicit relative imports
        self.local = local  # top-level names the slave has itself
        self._leads = {}  # top-level name -> the first name of it this slave asked for

    def candidates(self, name, located):
        """(names to send along, names found nowhere, the Plans followed): ``name``'s
        Plan, then each name slaves asked for after it before with its own Plan."""
        plan = self.plan(name, located)
        plans, candidates, absent = [plan], list(plan.found), list(plan.absent)
        for follower in self.followers(name):
            module = self.search_path.locate(follower)
            if module is not None and not self.policy.problem(follower):
                more = self.plan(follower, module)
                plans.append(more)
                candidates += [follower] + more.found
                absent += more.absent
        return candidates, absent, plans

    def followers(self, name):
        return self.caches.followers.of(self._lead_key(name))

    def learn(self, name):
        """Remember ``name`` as a follower of the first name of its top-level package
        this slave asked for; that first name if ``name`` is new after it, else None."""
        lead = self._leads.setdefault(name.split(".")[0], name)
        if lead != name and self.caches.followers.learn(self._lead_key(lead), name):
            return lead
        return None

    def _lead_key(self, name):
        return (tuple(self.search_path.entries), name)

    def plan(self, name, located):
        """The Plan for ``name``: worked out once per version of the folders and files it
        read, and shared by every slave with the same local packages and policy."""
        key = (name, tuple(self.search_path.entries), self.python2, self.policy.key,
               self.local)
        kept = json.dumps([name, list(key[1]), key[2], repr(key[3]), sorted(key[4])])
        return self.caches.plans.get(
            key, lambda: self._kept_plan(kept) or self._walked_plan(name, located, kept),
            valid=lambda plan: plan.watch.settled and plan.watch.unchanged())

    def _kept_plan(self, kept):
        """The Plan an earlier master process walked (the disk cache), if every folder and
        file it read is unchanged (one stat each), else None: a master that lives for one
        run (a pytest controller) does not walk every import again."""
        data = get_json(self.caches.disk, "plans", kept)
        if data is None:
            return None
        try:
            plan = Plan(data["found"], data["absent"], Watch.from_data(data["watch"]))
        except (ValueError, KeyError, TypeError):
            return None
        return plan if plan.watch.unchanged() else None

    def _walked_plan(self, name, located, kept):
        plan = self._walk(name, located)
        if plan.watch.settled and plan.whole:  # what changed lately is walked again
            put_json(self.caches.disk, "plans", kept, {
                "found": plan.found, "absent": plan.absent, "watch": plan.watch.as_data()})
        return plan

    def _walk(self, name, located):
        """Follow module-level imports from ``name`` (breadth first), recording what was
        read so the Plan can be checked later without walking again."""
        with self.search_path.watching() as watch:
            names, whole = self._imports_of(name, located)
            queue = collections.deque(names)
            seen, found, absent = set([name]), [], []
            while queue and len(found) < PREFETCH_MODULES:
                candidate = queue.popleft()
                if candidate in seen or candidate.split(".")[0] in self.local:
                    continue
                seen.add(candidate)
                if self.policy.problem(candidate):
                    continue
                module = self.search_path.locate(candidate)
                if module is None:
                    absent.append(candidate)
                    continue
                found.append(candidate)
                names, parsed = self._imports_of(candidate, module)
                queue.extend(names)
                whole = whole and parsed
        return Plan(found, absent, watch, whole)

    def _imports_of(self, name, located):
        """(names the module imports, whether this master could parse its source)."""
        if located.type not in (protocol.SOURCE, protocol.PACKAGE):
            return [], True
        root, path = located.root, located.path
        version = root.stamp(path)
        if root.watch is not None:
            root.watch.file(root, path)
            root.watch.settled = root.watch.settled and root.settled(version)
        sha, data, _ = file_hash(self.caches, root, path)
        key = (sha, name, self.python2)  # by content: relative imports make the name count

        def scan():
            names = imported_names(root.read(path) if data is None else data, name,
                                   located.type == protocol.PACKAGE, self.python2)
            if names is None:  # this Python cannot parse it; another master may
                return [], False
            self.caches.disk.put("imports", "%s %s %d" % key, "\n".join(names).encode("utf-8"))
            return names, True

        def kept():
            text = self.caches.disk.get("imports", "%s %s %d" % key)
            if text is None:
                return scan()
            return [each for each in text.decode("utf-8").split("\n") if each], True

        return self.caches.imports.get(key, kept)
