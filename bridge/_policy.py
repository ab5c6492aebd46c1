"""Which module names a master serves: allow and deny rules, checked before any lookup.

A rule is an exact dotted name (``"six"``: only that module) or a prefix
ending in ``.*`` (``"requests.*"``: ``requests`` and everything below it).
Deny wins over allow; with an allow list, only what it matches is served.
"""
from .compat.protocol import module_name_problem


def _parse(rule):
    """("exact", name) or ("prefix", name); a malformed rule is a ValueError at install."""
    name, prefix = (rule[:-2], True) if rule.endswith(".*") else (rule, False)
    problem = module_name_problem(name)
    if problem:
        raise ValueError("bad policy rule %r: %s" % (rule, problem))
    return name, prefix


def _matches(rule, name):
    base, prefix = rule
    return name == base or (prefix and name.startswith(base + "."))


class Policy(object):
    def __init__(self, allow=None, deny=None):
        self.allow = None if allow is None else [_parse(rule) for rule in allow]
        self.deny = [_parse(rule) for rule in deny or ()]

    @property
    def key(self):
        """The rules as one hashable value: results that depend on the policy are shared
        by every install with the same rules."""
        return (None if self.allow is None else tuple(self.allow), tuple(self.deny))

    def problem(self, name):
        """Why ``name`` may not be served, or None."""
        for rule in self.deny:
            if _matches(rule, name):
                return "denied by the master's rule '%s'" % _show(rule)
        if self.allow is not None and not any(_matches(rule, name) for rule in self.allow):
            return "not in the master's allow list"
        return None

    def allows(self, name):
        return self.problem(name) is None


def _show(rule):
    return rule[0] + (".*" if rule[1] else "")
