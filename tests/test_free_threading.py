"""The send rule and free-threaded CPython (3.13t, 3.14t, ...): pure functions over facts.

A free-threaded build loads a binary of the other threading model without a
check of its own, so the master decides: ``cp314t`` binaries only for
free-threaded slaves, ``cp314`` and ``abi3`` only for slaves with the GIL,
``abi3t`` (PEP 803, 3.15+) for either. No 3.14t interpreter runs here: the
slave facts are written as a 3.14t slave reports them (``tags.facts()``).
"""
import pytest

from bridge._binaries import needs_free_threading, suffix_problem

PLATFORM = "x86_64-linux-gnu"


def cpython(minor, free_threaded):
    """The facts a CPython 3.<minor> slave reports, free-threaded or not."""
    flag = "t" if free_threaded else ""
    suffixes = [".cpython-3%d%s-%s.so" % (minor, flag, PLATFORM), ".abi3.so", ".so"]
    if minor >= 15:  # PEP 803: .abi3t.so everywhere, .abi3.so no more on free-threaded builds
        suffixes.insert(1, ".abi3t.so")
        if free_threaded:
            suffixes.remove(".abi3.so")
    return {"implementation": "cpython", "version": [3, minor, 0],
            "abi": "cp3%d%s" % (minor, flag), "free_threaded": free_threaded,
            "extension_suffixes": suffixes}


GIL_314, FREE_314 = cpython(14, False), cpython(14, True)
GIL_315, FREE_315 = cpython(15, False), cpython(15, True)
TAGGED_GIL = ".cpython-314-%s.so" % PLATFORM
TAGGED_FREE = ".cpython-314t-%s.so" % PLATFORM


def wheel(abi):
    return [("cp314", abi, "manylinux_2_17_x86_64")]


@pytest.mark.parametrize("suffix, tags, expected", [
    (TAGGED_FREE, [], True),
    (TAGGED_GIL, [], False),
    (".cpython-313td-%s.so" % PLATFORM, [], True),  # a debug free-threaded build
    (".cpython-36m-%s.so" % PLATFORM, [], False),
    (".pypy39-pp73-%s.so" % PLATFORM, [], None),
    (".so", wheel("cp314t"), True),
    (".so", wheel("cp314"), False),
    (".so", wheel("cp27mu"), False),
    (".abi3.so", [], None),
    (".abi3t.so", [], None),
])
def test_a_binary_says_which_threading_model_it_needs(suffix, tags, expected):
    assert needs_free_threading(suffix, tags, GIL_314) is expected


@pytest.mark.parametrize("suffix, tags, slave, reason", [
    (TAGGED_FREE, [], GIL_314, "built for a free-threaded CPython; the slave (cp314) has the GIL"),
    (TAGGED_GIL, [], FREE_314, "built for a CPython with the GIL; the slave (cp314t) is free"),
    (".so", wheel("cp314t"), GIL_314, "built for a free-threaded CPython"),
    (".so", wheel("cp314"), FREE_314, "built for a CPython with the GIL"),
    (".abi3.so", [("cp36", "abi3", "linux_x86_64")], FREE_314,
     "abi3 binaries load only on CPython builds with the GIL"),
    (".abi3.so", [("cp36", "abi3", "linux_x86_64")], FREE_315,
     "abi3 binaries load only on CPython builds with the GIL"),
    (".abi3t.so", [], FREE_314, "abi3t binaries load only on CPython >= 3.15"),
])
def test_the_other_threading_model_is_refused_with_the_reason(suffix, tags, slave, reason):
    problem = suffix_problem(suffix, slave, tags, slave)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("suffix, tags, slave", [
    (TAGGED_FREE, [], FREE_314),
    (TAGGED_GIL, [], GIL_314),
    (".so", wheel("cp314t"), FREE_314),
    (".so", wheel("cp314"), GIL_314),
    (".abi3.so", [("cp36", "abi3", "linux_x86_64")], GIL_314),
    (".abi3t.so", [], FREE_315),
    (".abi3t.so", [], GIL_315),
])
def test_the_same_threading_model_is_sent(suffix, tags, slave):
    assert suffix_problem(suffix, slave, tags, slave) is None
