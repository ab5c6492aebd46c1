"""A long-lived master answers a warm session without a stat per file while the kernel
notes no change where a kept reply read (bridge/_notices.py: inotify, Linux)."""
import os
import shutil
import sys
import tempfile

import pytest

from bridge._locate import SearchPath
from bridge._notices import LOCAL_FILE_SYSTEMS, file_systems, wanted_folders
from bridge._responder import Responder, Stats
from bridge._roots import Watch
from bridge.compat import protocol
from conftest import write_tree
from test_master_cache import aged

PACKAGE = {"pkg/__init__.py": "from . import a\n", "pkg/a.py": "A = 1\n",
           "pkg/data/table.txt": "rows\n"}


def file_system_of(path):
    """The type of the file system ``path`` is on, from this process's mount table."""
    with open("/proc/self/mountinfo", "rb") as stream:
        mounts = file_systems(stream.read())
    path = os.path.realpath(path)
    while path not in mounts:
        path = os.path.dirname(path)
    return mounts[path]


@pytest.fixture
def noticed(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's: elsewhere every check is a stat of every path")
    kind = file_system_of(str(tmp_path))
    if kind not in LOCAL_FILE_SYSTEMS:
        pytest.skip("%s is on %s, whose changes inotify may not see" % (tmp_path, kind))
    return tmp_path


def kept_reply(folder, name="pkg"):
    """(composer, the Composed reply to a FIND of ``name``, its caches) once its
    subscription is made."""
    responder = Responder(SearchPath([folder]), {"version": [3, 11, 0]}, Stats())
    reply = responder.reply(protocol.message(protocol.FIND, id=1, name=name))
    assert protocol.kind_of(reply) == protocol.MODULE
    caches = responder.caches
    caches.notices.settle()
    [kept] = [value for key, value in caches.replies._entries.items() if key.name == name]
    return responder.composer, kept, caches


class StatChecks(object):
    """Counts the Watches checked with stats while it is entered."""

    def __enter__(self):
        self.checked, self._unchanged = [], Watch.unchanged
        unchanged = self._unchanged

        def counted(watch, *args):
            self.checked.append(watch)
            return unchanged(watch, *args)
        Watch.unchanged = counted
        return self

    def __exit__(self, *failure):
        Watch.unchanged = self._unchanged


def test_a_folder_on_the_tmpfs_under_dev_is_noticed(tmp_path):
    """/dev/shm is a tmpfs whose way passes /dev, a devtmpfs: a served folder there was
    checked with a stat per file at every warm session (the SDK's: 20-40 ms, not 2)."""
    shm = "/dev/shm"
    if not sys.platform.startswith("linux") or not os.path.isdir(shm):
        pytest.skip("no /dev/shm here")
    if (file_system_of(shm), file_system_of("/dev")) != ("tmpfs", "devtmpfs"):
        pytest.skip("/dev/shm is on %s, /dev on %s" % (file_system_of(shm),
                                                        file_system_of("/dev")))
    folder = tempfile.mkdtemp(prefix="bridge-test-", dir=shm)
    try:
        write_tree(folder, PACKAGE)
        aged(folder, 3600)
        composer, kept, caches = kept_reply(folder)
        assert kept.notice
        with StatChecks() as stats:
            assert composer._current(kept, caches.tickets.take())
            assert stats.checked == [] and caches.notices.vouched == 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_kept_reply_is_current_without_a_stat_until_a_change_is_noted(noticed):
    folder = write_tree(noticed / "served", PACKAGE)
    aged(folder, 3600)
    composer, kept, caches = kept_reply(folder)
    assert kept.notice  # subscribed, armed and checked once, off the request's way
    with StatChecks() as stats:
        assert composer._current(kept, caches.tickets.take())
        (noticed / "unrelated.txt").write_text(u"beside the served folder, not in it")
        (noticed / "served.tmp").mkdir()  # a name on the way to no path it read
        assert composer._current(kept, caches.tickets.take())
        assert stats.checked == [] and caches.notices.vouched == 2
        with open(os.path.join(folder, "pkg", "a.py"), "w") as stream:
            stream.write("A = 22\n")
        assert not composer._current(kept, caches.tickets.take())  # noted: checked, stale
        assert stats.checked and caches.notices.vouched == 2


def test_package_data_rewritten_is_noticed(noticed):
    folder = write_tree(noticed / "served", PACKAGE)
    aged(folder, 3600)
    composer, kept, caches = kept_reply(folder)
    assert kept.notice
    with open(os.path.join(folder, "pkg", "data", "table.txt"), "w") as stream:
        stream.write("more rows\n")
    assert not composer._current(kept, caches.tickets.take())


def test_a_folder_replaced_on_the_way_is_noticed(noticed):
    """No event comes from the files themselves: the folder above them was renamed and
    another put in its place."""
    base = noticed / "deep" / "er"
    folder = write_tree(base / "served", PACKAGE)
    aged(str(noticed / "deep"), 3600)
    composer, kept, caches = kept_reply(folder)
    assert kept.notice
    os.rename(str(noticed / "deep"), str(noticed / "deep.old"))
    write_tree(base / "served", dict(PACKAGE, **{"pkg/a.py": "A = 3\n"}))
    aged(str(noticed / "deep"), 3600)
    assert not composer._current(kept, caches.tickets.take())


def test_a_symbolic_link_on_the_way_leaves_the_check_to_stats(noticed):
    """A link's target can change where no watch of the linking folder sees it."""
    folder = write_tree(noticed / "served", {"pkg/__init__.py": "from . import a\n",
                                             "store/a.py": "A = 1\n"})
    os.symlink(os.path.join(folder, "store", "a.py"), os.path.join(folder, "pkg", "a.py"))
    aged(folder, 3600)
    composer, kept, caches = kept_reply(folder)
    assert wanted_folders(kept.all_watches()) is None
    assert kept.notice is False  # asked for, refused: every check is a stat
    with StatChecks() as stats:
        assert composer._current(kept, caches.tickets.take()) and stats.checked
        with open(os.path.join(folder, "store", "a.py"), "w") as stream:
            stream.write("A = 42\n")
        assert not composer._current(kept, caches.tickets.take())
    assert caches.notices.vouched == 0


def test_a_file_with_other_hard_links_leaves_the_check_to_stats(noticed):
    """Written through its other name, its folder here hears nothing."""
    folder = write_tree(noticed / "served", PACKAGE)
    os.link(os.path.join(folder, "pkg", "a.py"), str(noticed / "other-name.py"))
    aged(folder, 3600)
    composer, kept, caches = kept_reply(folder)
    assert kept.notice is False
    with open(str(noticed / "other-name.py"), "w") as stream:  # the same inode
        stream.write("A = 5\n")
    assert not composer._current(kept, caches.tickets.take())
