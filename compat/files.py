"""How the slave places files in its cache, each way written once for every store.

A path the master names is joined only below its folder (``inside``); a file
readers may see is written aside and renamed (``write_atomically``); a verified
body is hard-linked where it can be (``link_or_copy``).
"""
import errno
import os
import shutil
import tempfile

from .protocol import relative_path_problem

PART_PREFIX = ".part-"  # a file or tree being made: what a sweep removes when its slave died


def make_folder(path):
    """A folder inside the verified root, private like it (EEXIST: made by us before)."""
    try:
        os.mkdir(path, 0o700)
    except OSError as error:
        if error.errno != errno.EEXIST:
            raise
    return path


def inside(folder, relative):
    """The local path of the slash-separated ``relative`` below ``folder``; ValueError if
    it could lead out of it (``..``, absolute): the master names the paths the slave
    writes and imports, and even a faulty one must not reach outside the cache."""
    problem = relative_path_problem(relative)
    if problem:
        raise ValueError(problem)
    return os.path.join(folder, *relative.split("/"))


def write_aside(folder, data):
    """A new file in ``folder`` holding ``data``, to be renamed into place once whole:
    private (``mkstemp``: mode 0600, never an existing path), and named ``PART_PREFIX``
    so that one a dead slave left is known for what it is. Its path."""
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=PART_PREFIX)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    return temporary


def write_atomically(path, data):
    """Make ``path`` hold ``data`` (bytes): written aside, then renamed over it, so a
    reader (another slave) sees the old file or the new one, never half of one."""
    os.rename(write_aside(os.path.dirname(path), data), path)


def keep_newest(folder, count):
    """Remove all but the ``count`` most recently written files of ``folder``: the few
    versions a host's interpreters use, not one per upgrade for ever."""
    try:
        names = os.listdir(folder)
        if len(names) <= count:
            return
        dated = sorted((os.lstat(os.path.join(folder, name)).st_mtime, name) for name in names)
    except OSError:
        return
    for _, name in dated[:len(dated) - count]:
        remove_file(os.path.join(folder, name))


def link_or_copy(source, target, atomically=False):
    """Place the verified file ``source`` at the new path ``target``: a hard link where
    the file system allows, so a content is one inode, stored once, whose link count
    tells eviction that a tree holds it; else a copy. ``atomically``: the copy is made
    aside and renamed, for a folder readers already use (a tree being built is not)."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        if not atomically:
            shutil.copyfile(source, target)
            return
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=PART_PREFIX)
        os.close(handle)
        shutil.copyfile(source, temporary)
        os.rename(temporary, target)


def remove_file(path):
    """Remove the file ``path`` if it is there: another slave may have removed it first."""
    try:
        os.unlink(path)
    except OSError:
        pass
