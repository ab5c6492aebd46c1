"""Installed distributions' metadata on the master: which distribution installed a
file (RECORD, else ``top_level.txt``), its version, Requires-Python and wheel tags.
Read from the files, never by importing ``pkg_resources`` or ``importlib.metadata``.
"""
import csv

import six

from .compat import protocol

METADATA_DEPTH = 8  # folders inside a metadata folder, at most (a symlink loop ends here)


class InstalledDistribution(object):
    """What serving needs from one distribution's installed metadata."""

    def __init__(self, folder, name, version, requires_python, tags):
        self.folder = folder  # root-relative: foo-1.0.dist-info
        self.name = name
        self.version = version
        self.requires_python = requires_python  # the header's text, or None
        self.tags = tags  # [(interpreter, abi, platform)] from WHEEL
        # python_specifiers: the parsed Requires-Python, set on first use (_requires.py)

    def __repr__(self):
        return "InstalledDistribution(%r)" % self.folder


class MetadataIndex(object):
    """Which installed distribution each file of a root belongs to: the RECORD that
    lists it, else the distribution that declares its top-level name (RECORD or
    ``top_level.txt``)."""

    def __init__(self):
        self.distributions = []  # [(InstalledDistribution, [root-relative files])]
        self.by_file = {}
        self.by_top = {}  # top-level module name -> [InstalledDistribution]

    def add(self, distribution, files, top_level):
        self.distributions.append((distribution, files))
        for path in files:
            self.by_file.setdefault(path, distribution)
        for top in set(_top_name(path) for path in files) | set(top_level):
            self.by_top.setdefault(top, []).append(distribution)

    def owner(self, path, shared=True):
        """The distribution that installed root-relative ``path``, or None. By top-level
        name, the first one; with ``shared=False`` only one no other declares too."""
        if path in self.by_file:
            return self.by_file[path]
        candidates = self.by_top.get(_top_name(path), [])
        return candidates[0] if candidates and (shared or len(candidates) == 1) else None


def _top_name(path):
    """The top-level module name of a root-relative path: ``six.py``, ``six/x.py`` -> six."""
    return path.split("/", 1)[0].split(".", 1)[0]


def metadata_index(root):
    """Read every metadata folder at the top of ``root`` into a MetadataIndex.

    A root's listing changes when a distribution is installed, upgraded or removed
    (its folder's name holds the version), so the index is cached per version of
    that listing, kept on the root (which MasterCaches shares by every slave the master
    serves): the latest only."""
    version = root.version()
    known = root.metadata
    if version is not None and known is not None and known[0] == version:
        return known[1]
    index = MetadataIndex()
    for name in sorted(root.names("")):
        if protocol.distribution_of(name) is not None and root.isdir(name):
            index.add(*_read_distribution(root, name))
    root.metadata = (version, index)  # one assignment: threads may race, each is whole
    return index


def _text(root, path):
    return root.read(path).decode("utf-8", "replace") if root.isfile(path) else ""


def _read_distribution(root, folder):
    """(InstalledDistribution, [root-relative files of its RECORD], [top_level.txt names])."""
    wheel = folder.endswith(".dist-info")
    headers = _headers(_text(root, folder + ("/METADATA" if wheel else "/PKG-INFO")))
    name, _, version = folder.rpartition(".")[0].partition("-")
    tags = []
    for line in _text(root, folder + "/WHEEL").splitlines() if wheel else ():
        if line.startswith("Tag:"):
            interpreters, abi, platform = line.split(":", 1)[1].strip().split("-", 2)
            tags.extend((each, abi, platform) for each in interpreters.split("."))
    files = [path for path in (record_paths(root, folder) if wheel else ())
             if not path.startswith(("../", "/", folder + "/"))]
    top_level = _text(root, folder + "/top_level.txt").split()
    distribution = InstalledDistribution(folder, headers.get("name") or name,
                                         headers.get("version") or version,
                                         headers.get("requires-python"), tags)
    return distribution, files, top_level


def _headers(text):
    """The first value of each header of a METADATA / PKG-INFO text, by lower-case name."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the body (the long description) starts here
        key, colon, value = line.partition(":")
        if colon and not line[:1].isspace():
            found.setdefault(key.strip().lower(), value.strip())
    return found


def record_paths(root, folder):
    """The root-relative paths a metadata folder's RECORD lists (PEP 376: CSV rows, the
    path first, quoted when it holds a comma); empty without a RECORD."""
    if not root.isfile(folder + "/RECORD"):
        return []
    lines = root.read(folder + "/RECORD").decode("utf-8", "replace").splitlines()
    if six.PY2:  # 2.7's csv reads bytes only
        rows = ([field.decode("utf-8") for field in row]
                for row in csv.reader(line.encode("utf-8") for line in lines))
    else:
        rows = csv.reader(lines)
    return [row[0] for row in rows if row and row[0]]
