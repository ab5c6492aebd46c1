"""Serving from a folder of wheels: per project, the wheel that best fits the slave.

One master can so serve binaries for versions and platforms it does not run
itself. The slave's facts give its compatible tags, in the order pip would
prefer them (PEP 425; manylinux levels up to the slave's glibc, PEP 600).
The chosen wheel is unpacked on the master, never installed and never run,
into a folder named by its sha256, and that folder is served; binaries still
pass the send rule, with tags from the wheel's own WHEEL file.
"""
import hashlib
import os
import re
import shutil
import tempfile
import zipfile

from ._facts import Facts
from .compat import protocol

# The legacy manylinux names and the glibc they stand for (PEP 600).
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def platforms(slave):
    """Platform tags the slave runs, most specific first."""
    slave = Facts.of(slave)
    arch = (slave.machine or "").lower()
    if not (slave.system or "").startswith("linux") or not arch:
        return []
    found = []
    if slave.libc == "glibc" and slave.libc_version:
        major, newest = slave.libc_version[:2]
        for minor in range(newest, 4, -1):
            found.append("manylinux_%d_%d_%s" % (major, minor, arch))
            if (major, minor) in LEGACY_MANYLINUX:
                found.append("%s_%s" % (LEGACY_MANYLINUX[(major, minor)], arch))
    return found + ["linux_%s" % arch]


def compatible_tags(slave):
    """[(interpreter, abi, platform)] the slave can use, best first."""
    slave = Facts.of(slave)
    major, minor = slave.version[:2]
    plats = platforms(slave)
    pure = ["py%d%d" % (major, minor), "py%d" % major] + [
        "py%d%d" % (major, older) for older in range(minor - 1, -1, -1)]
    if slave.implementation == "pypy":
        interpreter, abi = "pp%d%d" % (major, minor), slave.abi
    else:
        interpreter, abi = "cp%d%d" % (major, minor), slave.abi
    tags = [(interpreter, abi, plat) for plat in plats]
    if interpreter.startswith("cp") and major == 3 and not slave.free_threaded:
        for older in range(minor, 1, -1):
            tags += [("cp3%d" % older, "abi3", plat) for plat in plats]
    tags += [(interpreter, "none", plat) for plat in plats]
    tags += [(python, "none", plat) for python in pure for plat in plats]
    tags += [(interpreter, "none", "any")] + [(python, "none", "any") for python in pure]
    return tags


def parse_wheel_name(filename):
    """(project, version, [(interpreter, abi, platform)]) of a wheel file name (PEP 427)."""
    parts = filename[:-len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return None
    project, version = parts[0], parts[1]
    interpreters, abis, plats = parts[-3:]
    tags = [(python, abi, plat) for python in interpreters.split(".")
            for abi in abis.split(".") for plat in plats.split(".")]
    return protocol.normalized_distribution(project), version, tags


def _version_key(version):
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.+-]", version)]


def select(wheelhouse, slave):
    """The best wheel per project for ``slave``, as file paths."""
    ranks = dict((tag, index) for index, tag in reversed(list(enumerate(compatible_tags(slave)))))
    best = {}
    for filename in sorted(os.listdir(wheelhouse)):
        parsed = filename.endswith(".whl") and parse_wheel_name(filename)
        if not parsed:
            continue
        project, version, tags = parsed
        fits = [ranks[tag] for tag in tags if tag in ranks]
        if not fits:
            continue
        key = (-min(fits), _version_key(version))
        if project not in best or key > best[project][0]:
            best[project] = (key, os.path.join(wheelhouse, filename))
    return [path for _, path in sorted(best.values(), key=lambda item: item[1])]


def default_unpack_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "execnet-bridge", "wheels")


def unpack(wheel, unpack_root=None):
    """The folder holding ``wheel``'s files as pip would install them (its .data
    purelib/platlib merged in); made once per wheel content."""
    with open(wheel, "rb") as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()[:16]
    unpack_root = unpack_root or default_unpack_root()
    target = os.path.join(unpack_root, "%s-%s" % (digest, os.path.basename(wheel)[:-4]))
    if os.path.isdir(target):
        return target
    if not os.path.isdir(unpack_root):
        os.makedirs(unpack_root)
    work = tempfile.mkdtemp(prefix=".unpack-", dir=unpack_root)
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(work)  # zipfile drops absolute and ".." parts
        for data in [name for name in os.listdir(work) if name.endswith(".data")]:
            for scheme in ("purelib", "platlib"):
                source = os.path.join(work, data, scheme)
                for name in os.listdir(source) if os.path.isdir(source) else []:
                    shutil.move(os.path.join(source, name), os.path.join(work, name))
        try:
            os.rename(work, target)
        except OSError:  # another master unpacked it first
            if not os.path.isdir(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def search_path(wheelhouse, slave, unpack_root=None):
    """The folders to serve ``slave`` from: its best wheels, unpacked."""
    return [unpack(wheel, unpack_root) for wheel in select(wheelhouse, slave)]
