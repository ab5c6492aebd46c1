"""The slave's persistent cache: file bodies stored by their sha256.

It outlives the slave process, so a new gateway to the same machine moves
only what the cache lacks: the slave tells the master which hashes it has,
and the master sends ``None`` for those bodies. Every body is checked against
its hash before it is used; one that does not match is deleted and fetched
again, never loaded.
"""
import hashlib
import os
import tempfile

FOLDER = "blobs"


def digest(data):
    return hashlib.sha256(data).hexdigest()


class BlobStore(object):
    """One flat folder of ``<sha256>`` files. Flat, because creating a folder per hash
    prefix was the largest single cost of a cold import (a mkdir is slow next to a write)."""

    def __init__(self, cache_root):
        self.root = os.path.join(cache_root, FOLDER)

    def path(self, sha):
        return os.path.join(self.root, sha)

    def hashes(self):
        """Every hash stored (unverified: checked when used)."""
        names = os.listdir(self.root) if os.path.isdir(self.root) else ()
        return [name for name in names if len(name) == 64]

    def put(self, sha, data):
        """Store ``data`` under ``sha``, refusing bytes that do not match it."""
        if digest(data) != sha:
            raise ValueError("received bytes do not match their sha256 %s" % sha)
        target = self.path(sha)
        if os.path.exists(target):
            return target
        if not os.path.isdir(self.root):
            try:
                os.makedirs(self.root)
            except OSError:  # another slave made it first
                pass
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".part-")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.rename(temporary, target)
        return target

    def verified(self, sha):
        """The blob's path if its bytes still match ``sha``; a bad blob is removed."""
        target = self.path(sha)
        try:
            with open(target, "rb") as stream:
                if digest(stream.read()) == sha:
                    return target
        except (IOError, OSError):
            return None
        os.unlink(target)
        return None
