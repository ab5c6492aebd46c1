"""The send rule for compiled extensions, decided on the master, per binary.

A binary is sent to a slave only if every clause holds (README, "The send
rule", docs/extensions.md):

1. ``allow_extensions=True`` was given to ``install()``.
2. It is an ELF shared object for the slave's machine, word size and byte
   order, and the slave runs Linux.
3. It is built for the slave's threading model: a free-threaded binary
   (``cpython-314t``, ABI ``cp314t``) only for a free-threaded CPython, one
   with the GIL (``cpython-314``, ``.abi3.so``) only for a build with the GIL;
   ``.abi3t.so`` (3.15+, PEP 803) for either. The loader checks neither.
   And its file name suffix is one the slave loads, with these refinements:
   a tagged suffix (``.cpython-311-x86_64-linux-gnu.so``, ``.pypy39-pp73-...``)
   must be in the slave's extension suffixes; ``.abi3.so`` needs a CPython
   slave that is not free-threaded, at or above the binary's floor (the
   ``cpXY-abi3`` wheel tag, else the master's own version); a plain ``.so``
   needs the slave's ABI tag to equal the binary's (the wheel's, else the
   master's own: it was found on the master's path).
4. It needs no libpython other than the slave's own.
5. The newest ``GLIBC_x.y`` it or any library that travels with it requires
   is no newer than the slave's glibc.

Libraries travel with the binary when the dynamic loader would find them
inside the same search path entry through ``$ORIGIN`` in its ``RUNPATH`` /
``RPATH`` (auditwheel's ``<pkg>.libs/``), recursively.
"""
import posixpath
import re

from ._elf import NotElf, read_elf
from ._facts import Facts
from .compat.neutral import dotted

ABI3_SUFFIX = ".abi3.so"
ABI3T_SUFFIX = ".abi3t.so"  # PEP 803, Python 3.15+: loads on free-threaded builds and others
ABI3T_FIRST = (3, 15)
PLAIN_SUFFIX = ".so"
CPYTHON_ABI = re.compile(r"^(?:cp|cpython-)\d+([a-z]*)$")  # cp314t, cpython-36m: the flags


def suffix_of(filename, module):
    """The part of ``filename`` after the module's name: ``.cpython-311-....so``."""
    return filename[len(module):]


def binary_tag(suffix, wheel_tags, master):
    """What a binary's suffix (and wheel) says it was built for, for messages."""
    master = Facts.of(master)
    if suffix == ABI3_SUFFIX:
        return "abi3 (CPython >= %d.%d)" % abi3_floor(wheel_tags, master)
    if suffix == PLAIN_SUFFIX:
        return "%s (plain .so)" % plain_abi(wheel_tags, master)
    return suffix[1:-len(".so")]  # .cpython-311-x86_64-linux-gnu.so -> cpython-311-...


def slave_tag(slave):
    slave = Facts.of(slave)
    return "%s %s (%s, %s)" % (slave.implementation, dotted((slave.version or [])[:2]),
                               slave.abi, slave.platform)


def abi3_floor(wheel_tags, master):
    for interpreter, abi, _ in wheel_tags:
        if abi == "abi3" and interpreter.startswith("cp") and interpreter[2:].isdigit():
            return int(interpreter[2]), int(interpreter[3:])
    return Facts.of(master).python[:2]


def plain_abi(wheel_tags, master):
    for _, abi, _ in wheel_tags:
        if abi not in ("none", "abi3", "abi3t"):
            return abi
    return Facts.of(master).abi


def needs_free_threading(suffix, wheel_tags, master):
    """True if the binary is built for a free-threaded CPython, False if for one with
    the GIL, None if its tag says neither (PyPy) or the stable ABI's own clause decides."""
    if suffix in (ABI3_SUFFIX, ABI3T_SUFFIX):
        return None
    if suffix == PLAIN_SUFFIX:
        abi = plain_abi(wheel_tags, master) or ""
    else:
        abi = "-".join(suffix[1:].split("-")[:2])  # .cpython-314t-x86_64-linux-gnu.so
    flags = CPYTHON_ABI.match(abi)
    return "t" in flags.group(1) if flags else None


def threading_problem(suffix, slave, wheel_tags, master):
    """Clause 3, the threading model: free-threaded and GIL builds do not share binaries."""
    slave = Facts.of(slave)
    wanted = needs_free_threading(suffix, wheel_tags, master)
    if wanted is None or slave.implementation != "cpython":
        return None
    if wanted and not slave.free_threaded:
        return "it is built for a free-threaded CPython; the slave (%s) has the GIL" % (
            slave.abi,)
    if not wanted and slave.free_threaded:
        return "it is built for a CPython with the GIL; the slave (%s) is free-threaded" % (
            slave.abi,)
    return None


def suffix_problem(suffix, slave, wheel_tags, master):
    """Clause 3: does the slave load files with this suffix, for this ABI and threading?"""
    slave = Facts.of(slave)
    suffixes = slave.extension_suffixes or []
    if suffix == ABI3T_SUFFIX:
        if slave.implementation != "cpython" or slave.python[:2] < ABI3T_FIRST:
            return "abi3t binaries load only on CPython >= %d.%d" % ABI3T_FIRST
        return None if suffix in suffixes else "the slave does not load .abi3t.so"
    problem = threading_problem(suffix, slave, wheel_tags, master)
    if problem:
        return problem
    if suffix == ABI3_SUFFIX:
        floor = abi3_floor(wheel_tags, master)
        if slave.implementation != "cpython" or slave.free_threaded:
            return "abi3 binaries load only on CPython builds with the GIL"
        if slave.python[:2] < floor:
            return "this abi3 binary needs CPython >= %d.%d" % floor
        return None if suffix in suffixes else "the slave does not load .abi3.so"
    if suffix == PLAIN_SUFFIX:
        binary_abi = plain_abi(wheel_tags, master)
        if suffix not in suffixes or slave.abi != binary_abi:
            return "a plain .so built for %s loads only on that ABI" % binary_abi
        return None
    if suffix not in suffixes:
        return "the slave loads %s, not %s" % (", ".join(suffixes) or "no extensions", suffix)
    return None


def elf_problem(elf, slave, label):
    """Clauses 2, 4 and 5 for one shared object (a module or a library) and its ELF facts."""
    slave = Facts.of(slave)
    if not (slave.system or "").startswith("linux"):
        return "%s is an ELF binary; the slave runs %s" % (label, slave.system)
    if not elf.runs_on(slave.machine or "", slave.bits, slave.byteorder):
        return "%s is built for another machine than %s" % (label, slave.machine)
    own = slave.libpython
    for soname in elf.needed:
        if soname.startswith("libpython") and soname != own:
            return "%s links %s; the slave runs on %s" % (label, soname, own or "a static libpython")
    if elf.glibc:
        needed = dotted(elf.glibc)
        if slave.libc != "glibc":
            return "%s needs glibc %s; the slave has no glibc" % (label, needed)
        if tuple(slave.libc_version) < elf.glibc:
            return "%s needs glibc %s; the slave has %s" % (
                label, needed, dotted(slave.libc_version))
    return None


def travelling_libraries(root, binary_path, elf):
    """Root-relative paths of the libraries found through ``$ORIGIN``, recursively,
    with their ELF facts: ``[(path, elf)]``."""
    found = []
    pending = [(binary_path, elf)]
    seen = set([binary_path])
    while pending:
        path, current = pending.pop()
        origin = posixpath.dirname(path)
        for soname in current.needed:
            for entry in current.search:
                if not entry.startswith("$ORIGIN"):
                    continue
                candidate = posixpath.normpath(posixpath.join(
                    origin, entry.replace("$ORIGIN", ".", 1), soname))
                if candidate.startswith("../") or candidate in seen:
                    continue
                if root.isfile(candidate):
                    seen.add(candidate)
                    library = read_elf(root.read(candidate))
                    found.append((candidate, library))
                    pending.append((candidate, library))
                    break
    return found


def extension_problem(root, path, module, slave, master, wheel_tags):
    """Why the extension at root-relative ``path`` may not go to ``slave``, or None.

    Returns ``(problem, libraries)``; ``libraries`` are the root-relative paths
    that must travel with it.
    """
    slave, master = Facts.of(slave), Facts.of(master)
    suffix = suffix_of(posixpath.basename(path), module)
    problem = suffix_problem(suffix, slave, wheel_tags, master)
    if problem:
        return problem, []
    try:
        elf = read_elf(root.read(path))
        libraries = travelling_libraries(root, path, elf)
    except NotElf as error:
        return "%s: %s" % (path, error), []
    for label, each in [(posixpath.basename(path), elf)] + [
            (posixpath.basename(library), library_elf) for library, library_elf in libraries]:
        problem = elf_problem(each, slave, label)
        if problem:
            return problem, []
    return None, [library for library, _ in libraries]
