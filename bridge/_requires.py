"""Requires-Python: a distribution that excludes the slave's Python is not served.

Installed on the slave, pip would have refused such a distribution; served, it
would fail later and less clearly (a syntax error deep inside, or a missing
name). The specifier semantics are ``packaging``'s, evaluated on the master. A
header that is absent, unparseable, or that ``packaging`` cannot evaluate never
blocks: serving something that might work beats refusing on a guess.
"""
import logging

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ._facts import Facts

log = logging.getLogger("bridge.requires")

UNPARSED = object()


def specifier_set(distribution):
    """The SpecifierSet of ``distribution``'s ``Requires-Python``, or None (none, or it
    does not parse): parsed once, kept on the distribution (its metadata index is shared
    by every slave)."""
    parsed = getattr(distribution, "python_specifiers", UNPARSED)
    if parsed is UNPARSED:
        text = distribution.requires_python
        try:
            parsed = SpecifierSet(text) if text else None
        except InvalidSpecifier:
            log.debug("Requires-Python %r does not parse; it does not block", text)
            parsed = None
        distribution.python_specifiers = parsed
    return parsed


def slave_python(slave):
    """The slave's Python language version (``2.7.18``) as a packaging Version, or None."""
    parts = Facts.of(slave).version or []
    try:
        return Version(".".join(str(part) for part in parts[:3])) if parts else None
    except InvalidVersion:
        return None


def python_problem(distribution, slave):
    """Why ``distribution``'s Requires-Python excludes ``slave``, or None."""
    specifiers = specifier_set(distribution) if distribution is not None else None
    version = slave_python(slave)
    if specifiers is None or version is None:
        return None
    try:
        if specifiers.contains(version, prereleases=True):
            return None
    except (InvalidSpecifier, InvalidVersion, TypeError):  # a legacy form packaging cannot compare
        return None
    return ("distribution %s %s requires Python %s (Requires-Python) and the slave runs "
            "Python %s; serve a release that supports it from an environment of the slave's "
            "version (install(..., python=...)) or a wheelhouse (install(..., wheelhouse=...))"
            % (distribution.name, distribution.version, distribution.requires_python,
               version))
