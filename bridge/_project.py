"""A project folder the master offers a slave whole: its test files, configuration and data.

What goes is what the project tracks: in a git checkout the files git tracks or would
track (not ignored), else every file below the folder. Either way never version control,
virtual environments, tox/nox environments or caches, and ``include``/``exclude`` patterns
(``fnmatch``, on folder-relative paths with ``/``) add and remove paths. The slave gets
them as a tree of its cache: a file is moved once, and a later session moves only files
whose bytes changed.
"""
import fnmatch
import os
import subprocess

from ._roots import DirectoryRoot
from .compat.protocol import relative_path_problem
from .errors import BridgeError

# Folders that never travel, by name; a folder holding ``pyvenv.cfg`` is a virtual
# environment and never travels either.
NEVER = (".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "__pycache__",
         ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules",
         ".eggs", "*.egg-info")
NEVER_FILES = ("*.pyc", "*.pyo")


class Project(object):
    """The files of folder ``root`` that a slave may ask for (``files``: root-relative,
    with ``/``)."""

    def __init__(self, root, files):
        self.path = os.path.abspath(root)
        self.name = os.path.basename(self.path.rstrip(os.sep)) or "project"
        self.root = DirectoryRoot(self.path)
        self.files = sorted(set(files))
        for path in self.files:
            problem = relative_path_problem(path)
            if problem:
                raise BridgeError("cannot offer %r of %s: %s" % (path, self.path, problem))


def project_files(root, include=(), exclude=()):
    """The root-relative paths of the files of ``root`` that travel (see the module)."""
    root = os.path.abspath(root)
    listed = _git_files(root)
    found = listed if listed is not None else _walked_files(root)
    venvs = tuple(path[:-len("pyvenv.cfg")] for path in found
                  if path.endswith("/pyvenv.cfg"))
    found = set(path for path in found
                if not _never(path) and not (venvs and path.startswith(venvs)))
    for pattern in include:
        found.update(path for path in _walked_files(root, prune=False)
                     if _matches(path, pattern))
    return sorted(path for path in found
                  if not any(_matches(path, pattern) for pattern in exclude)
                  and _regular_inside(root, path))


def _git_files(root):
    """What git tracks or would track below ``root``, or None if it is no git checkout
    (or git is missing)."""
    try:
        with open(os.devnull, "wb") as quiet:
            output = subprocess.check_output(
                ["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"], stderr=quiet)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [path.decode("utf-8", "surrogateescape") if not isinstance(path, str) else path
            for path in output.split(b"\0") if path]


def _walked_files(root, prune=True):
    found = []
    for folder, folders, names in os.walk(root):
        relative = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        if prune:
            folders[:] = [name for name in folders
                          if not _never(prefix + name + "/")
                          and not os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))]
        else:
            folders[:] = [name for name in folders if name != ".git"]
        found.extend(prefix + name for name in names)
    return found


def _never(path):
    parts = path.split("/")
    folders, name = parts[:-1], parts[-1]
    return (any(fnmatch.fnmatch(part, pattern) for part in folders for pattern in NEVER)
            or any(fnmatch.fnmatch(name, pattern) for pattern in NEVER_FILES))


def _matches(path, pattern):
    """``pattern`` names ``path`` itself, or a folder it is in."""
    pattern = pattern.strip().strip("/")
    parts = path.split("/")
    return any(fnmatch.fnmatch("/".join(parts[:end]), pattern)
               for end in range(1, len(parts) + 1))


def _regular_inside(root, path):
    """A file (or a link to one) that stays inside ``root``: what the master may read."""
    local = os.path.join(root, *path.split("/"))
    real = os.path.realpath(local)
    return os.path.isfile(local) and (real + os.sep).startswith(
        os.path.join(os.path.realpath(root), ""))
