"""The slave's persistent cache: file bodies stored by their sha256.

It outlives the slave process, so a new gateway to the same machine moves
only what the cache lacks: with each request, the slave names the trees
(``trees``) of the last replies to the same request, whose blobs it holds, and
the master sends ``None`` for those bodies. So the handshake carries no list of
the whole cache, and costs the same whatever the cache holds. Every body is
checked against its hash before a tree is built of it; one that does not match
is deleted and fetched again, never loaded. The store lives in a verified cache root (``cacheroot``),
so no one else can change a blob after it was checked.
"""
import hashlib
import os

from . import cacheroot, files

FOLDER = "blobs"


def digest(data):
    return hashlib.sha256(data).hexdigest()


def check(sha, data):
    """Refuse (ValueError) received ``data`` that is not the body ``sha``."""
    if digest(data) != sha:
        raise ValueError("received bytes do not match their sha256 %s" % sha)


class BlobStore(object):
    """One flat folder of ``<sha256>`` files. Flat: a folder per hash prefix would cost a
    mkdir per new prefix, slow next to a write, in a cold import.

    A loose blob's last use is its access time; a blob hard-linked into a tree is
    evicted with the tree (``trees``).
    """

    def __init__(self, cache_root):
        self.cache_root = cache_root
        self.root = os.path.join(cache_root, FOLDER)

    def path(self, sha):
        return os.path.join(self.root, sha)

    def in_use(self):
        """``with store.in_use():`` while verifying and placing blobs: no eviction then."""
        return cacheroot.shared_lock(self.cache_root)

    def put(self, sha, data):
        """Store ``data`` under ``sha``, refusing bytes that do not match it."""
        check(sha, data)
        target = self.path(sha)
        if os.path.exists(target):
            return target
        files.make_folder(self.root)
        self.keep(sha, files.write_aside(self.root, data))
        return target

    def keep(self, sha, temporary):
        """Rename the written and checked file ``temporary`` (on this file system) to
        the blob of ``sha``; whether it did (a blob there already stays as it is)."""
        target = self.path(sha)
        if os.path.exists(target):
            files.remove_file(temporary)
            return False
        os.rename(temporary, target)
        return True

    def adopt(self, sha, path):
        """Keep the checked file ``path`` (in a tree being built) as the blob of ``sha``:
        a hard link, so a body costs one create. Never a copy (``files.link_or_copy``):
        without a link the body stays in the tree alone, where a copy would write it
        twice, or over the blob another slave stored meanwhile."""
        try:
            os.link(path, self.path(sha))
        except OSError:  # stored already (another slave), or no hard links here
            pass

    def verified(self, sha):
        """The blob's path if its bytes still match ``sha`` (``read_verified``), else None."""
        return self.path(sha) if self.read_verified(sha) is not None else None

    def read_verified(self, sha):
        """The blob's bytes if they still match ``sha``, else None (a bad blob is removed).
        The checked inode must be ours and writable by no one else, so its bytes stay;
        its mtime stays too: trees check their files by it."""
        target = self.path(sha)
        try:
            with open(target, "rb") as stream:
                info = os.fstat(stream.fileno())
                body = stream.read()
            if cacheroot.private_file(info) and digest(body) == sha:
                return body
        except (IOError, OSError):
            return None
        self.remove(sha)
        return None

    def entries(self):
        """``(last used, size, name, in use)`` of every file, for ``cacheroot.evict``."""
        found = []
        for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
            try:
                info = os.lstat(os.path.join(self.root, name))
            except OSError:  # removed meanwhile
                continue
            found.append((info.st_atime, info.st_size, name, info.st_nlink > 1))
        return found

    def remove(self, name):
        """Remove the blob ``name``, if another session that found it bad did not."""
        files.remove_file(os.path.join(self.root, name))
