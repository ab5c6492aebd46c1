"""Scratch folders for the slaves' cold caches, removed when the benchmark ends rather
than between its runs.

This host's ext4 has no journal, and without one the kernel will not reuse an inode
freed in the last half minute or so: a create near many such inodes checks each of them
first. Right after a cold run's cache was removed, creating a file took 850 us of system
time instead of 25 us, and the next cold run measured that. A new slave host has not just
deleted a cache, so no run pays for the one before it.
"""
import atexit
import shutil
import tempfile

_made = []


def folder(prefix, root=None):
    """A new empty folder in ``root`` (the temporary folder by default), removed at exit."""
    path = tempfile.mkdtemp(prefix=prefix, dir=root)
    _made.append(path)
    return path


def remove_all():
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


atexit.register(remove_all)
