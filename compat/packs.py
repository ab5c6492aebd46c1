"""The master's bytecode of one tree, in one file beside it: ``trees/<id>.pack``.

A slave whose magic number is the master's gets each module's .pyc with its
source (bridge/_bytecode.py). One file each, they were half the files a cold
import created (sympy: 976 bodies, 486 of them .pyc). So the .pyc of a tree
travel and are checked one by one as before (content-addressed: each is sent
once to a host), but land in one pack, written once when the tree is built.
The source loader reads a module's bytecode from it (``ImportSession.bytecode``)
and CPython's loader does the rest: the sources stay files, so ``__file__``,
tracebacks, ``linecache`` and ``inspect`` are as for an installed package.
A tree's check (``trees.damaged``) checks the pack by its ``lstat``.
"""
import json
import os

HEADER = b"execnet-bridge pack 1\n"  # then the index's length, a newline, the index, bodies
SUFFIX = ".pack"


def is_shipped_bytecode(path):
    """Is the tree path ``path`` a master-compiled .pyc (``a/__pycache__/b.<tag>.pyc``)?
    The master never serves a ``__pycache__`` folder's own files (bridge/_locate.py)."""
    parts = path.split("/")
    return len(parts) >= 2 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


def write(path, entries):
    """Write the new file ``path``: the pack of ``entries``, {tree path: (sha, bytes)}."""
    index, offset = [], 0
    ordered = sorted(entries)
    for relative in ordered:
        sha, data = entries[relative]
        index.append([relative, sha, offset, len(data)])
        offset += len(data)
    head = json.dumps(index, separators=(",", ":")).encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(HEADER + ("%d\n" % len(head)).encode("ascii") + head)
        for relative in ordered:
            stream.write(entries[relative][1])


class Pack(object):
    """One tree's pack, its index read once: a missing or malformed pack holds nothing
    (the loader then compiles the source, as where no bytecode came)."""

    def __init__(self, path):
        self.path = path
        self._index = None  # tree path -> (sha, offset in the file, size)
        self._paths = None  # sha -> a tree path of it

    def index(self):
        """Read once it is there: a Pack may be asked before its tree is built."""
        if self._index is None:
            index = self._read_index()
            if index is None:
                return {}
            self._index = index
        return self._index

    def _read_index(self):
        """The index, {} where the pack is malformed, None where there is none (yet)."""
        try:
            stream = open(self.path, "rb")
        except (IOError, OSError):
            return None
        try:
            with stream:
                if stream.read(len(HEADER)) != HEADER:
                    return {}
                head = stream.read(int(stream.readline()))
                start = stream.tell()
            return dict((relative, (sha, start + offset, size))
                        for relative, sha, offset, size in json.loads(head.decode("utf-8")))
        except (IOError, OSError, ValueError, TypeError):
            return {}

    def read(self, relative):
        """The bytes of tree path ``relative``, or None."""
        found = self.index().get(relative)
        if found is None:
            return None
        _, offset, size = found
        try:
            with open(self.path, "rb") as stream:
                stream.seek(offset)
                data = stream.read(size)
        except (IOError, OSError):
            return None
        return data if len(data) == size else None

    def read_sha(self, sha):
        """The bytes of the body ``sha``, unchecked, or None."""
        if self._paths is None:
            self._paths = dict((each, relative)
                               for relative, (each, _, _) in self.index().items())
        relative = self._paths.get(sha)
        return None if relative is None else self.read(relative)
