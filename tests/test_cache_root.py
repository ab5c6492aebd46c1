"""A cache root someone else could change is never used: the slave says why and
imports from a private folder instead, leaving the hostile one untouched."""
import glob
import hashlib
import json
import logging
import os
import sys
import time
from textwrap import dedent

import execnet
import pytest

import bridge
from conftest import remote, remote_value, slave_spec, wait_until, write_tree
from trees import SHOP, shop_tree

HOSTILE_BYTES = b"RATE = 666\nraise SystemExit('imported from the hostile cache')\n"
NOBODY = 65534

LOG_ON_SLAVE = """
import logging, sys
class Keep(logging.Handler):
    def emit(self, record):
        sys.bridge_test_log.append(record.getMessage())
sys.bridge_test_log = []
logging.getLogger("bridge.slave").addHandler(Keep())
channel.send(1)
"""

IMPORT_SHOP = """
import os, sys
import shop.tax, shop.cart.items
channel.send([shop.tax.RATE, shop.cart.items.first(), [os.path.realpath(module.__file__)
              for module in (shop, shop.tax, shop.cart.items)], sys.bridge_test_log])
"""


def plant(folder):
    """Fill ``folder`` as a cache root would be, with bodies named by the hashes of the
    shop's real files but holding other bytes, and session folders, live and dead."""
    blobs = os.path.join(folder, "blobs")
    os.makedirs(blobs)
    for text in SHOP.values():
        sha = hashlib.sha256(dedent(text).encode("utf-8")).hexdigest()
        with open(os.path.join(blobs, sha), "wb") as stream:
            stream.write(HOSTILE_BYTES)
    for session in ("s-1-planted", "s-999999999-dead"):  # pid 1 lives; the other never does
        os.makedirs(os.path.join(folder, session, "shop"))
        with open(os.path.join(folder, session, "shop", "tax.py"), "wb") as stream:
            stream.write(HOSTILE_BYTES)


def snapshot(folder):
    """Everything about ``folder``'s tree that a slave could change, symlinks unfollowed."""
    state = {}
    for base, dirs, files in os.walk(folder):
        for name in [""] + dirs + files:
            path = os.path.join(base, name)
            info = os.lstat(path)
            entry = [info.st_mode, info.st_uid, info.st_size, info.st_mtime]
            if os.path.islink(path):
                entry.append(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as stream:
                    entry.append(stream.read())
            state[os.path.relpath(path, folder)] = entry
    return state


def chown_tree(folder, uid):
    for base, dirs, files in os.walk(folder):
        for name in [""] + dirs + files:
            os.lchown(os.path.join(base, name), uid, uid)


def owned_by_nobody(tmp_path):
    if os.getuid() != 0:
        pytest.skip("only root can give a folder to nobody")
    root = str(tmp_path / "hostile")
    plant(root)
    chown_tree(root, NOBODY)
    return root, [root], "is owned by uid %d" % NOBODY


def writable_by_all(tmp_path):
    root = str(tmp_path / "hostile")
    plant(root)
    os.chmod(root, 0o777)
    return root, [root], "can be written by others (mode 777)"


def blobs_a_symlink(tmp_path):
    root, elsewhere = str(tmp_path / "hostile"), str(tmp_path / "elsewhere")
    plant(elsewhere)
    os.mkdir(root, 0o700)
    os.symlink(os.path.join(elsewhere, "blobs"), os.path.join(root, "blobs"))
    return root, [root, elsewhere], "%s is a symlink" % os.path.join(root, "blobs")


def root_a_symlink(tmp_path):
    root, elsewhere = str(tmp_path / "hostile"), str(tmp_path / "elsewhere")
    plant(elsewhere)
    os.chmod(elsewhere, 0o700)
    os.symlink(elsewhere, root)
    return root, [elsewhere], "%s is a symlink" % root


def parent_writable_by_all(tmp_path):
    parent = str(tmp_path / "shared")
    root = os.path.join(parent, "cache")
    plant(root)
    os.chmod(root, 0o700)
    os.chmod(parent, 0o777)
    return root, [parent], "%s can be written by others and is not sticky" % parent


@pytest.mark.parametrize("make_hostile", [owned_by_nobody, writable_by_all, blobs_a_symlink,
                                          root_a_symlink, parent_writable_by_all])
def test_a_hostile_cache_root_is_left_alone_and_never_imported_from(
        gateway, tmp_path, caplog, make_hostile):
    root, hostile, reason = make_hostile(tmp_path)
    before = [snapshot(folder) for folder in hostile]
    assert remote_value(gateway, LOG_ON_SLAVE) == 1
    with caplog.at_level(logging.WARNING, logger="bridge"):
        handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=root)
    rate, first, files, slave_log = remote_value(gateway, IMPORT_SHOP)
    assert [rate, first] == [0.25, "apple"]
    assert reason in handle.cache_problem and "private folder" in handle.cache_problem
    assert slave_log == [handle.cache_problem]
    assert [record.getMessage() for record in caplog.records if record.name == "bridge"] \
        == ["%s: %s" % (gateway.id, handle.cache_problem)]
    for path in files + [os.path.realpath(handle.cache_dir)]:
        assert not any(path.startswith(os.path.realpath(folder) + os.sep)
                       for folder in hostile + [root])
    gateway.exit()
    assert wait_until(lambda: not os.path.exists(os.path.dirname(handle.cache_dir)))
    assert [snapshot(folder) for folder in hostile] == before  # the private root went above


def test_a_root_of_ours_in_a_sticky_folder_is_used(gateway, tmp_path):
    parent = str(tmp_path / "sticky")
    os.mkdir(parent)
    os.chmod(parent, 0o1777)
    root = os.path.join(parent, "cache")
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=root)
    assert remote(gateway, "import shop.tax; channel.send(shop.tax.RATE)") == [0.25]
    assert handle.cache_problem is None
    assert handle.cache_dir.startswith(os.path.join(root, ""))
    assert os.stat(root).st_mode & 0o777 == 0o700
    assert os.listdir(os.path.join(root, "blobs"))


def _set_mtime(path, seconds_ago):
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_a_slave_lists_its_path_once_until_a_folder_of_it_changes(slave_python, slave_cwd,
                                                                   tmp_path, cache_root):
    """The top-level names a slave reports (what it has itself) are most of a handshake's
    work: kept in the cache root per interpreter and path, listed again when a folder of
    the path changed."""
    own = write_tree(tmp_path / "own", {"alpha.py": "A = 1\n"})
    served = write_tree(tmp_path / "served", {"nothing.py": ""})
    _set_mtime(own, 3600)
    _set_mtime(slave_cwd, 3600)

    def reported():
        return _reported(slave_python, slave_cwd, own, served, cache_root)

    assert "alpha" in reported()
    _mark_kept(cache_root, own, "kept_marker")  # what the next session reports, if read
    assert "kept_marker" in reported()
    write_tree(tmp_path / "own", {"beta.py": "B = 2\n"})
    _set_mtime(own, 1800)  # changed, and settled again
    names = reported()
    assert "beta" in names and "alpha" in names and "kept_marker" not in names


def _reported(slave_python, slave_cwd, own, served, cache_root):
    """The top-level names a new slave with ``own`` first on its path reports."""
    group = execnet.Group()
    try:
        gateway = group.makegateway(slave_spec(slave_python, slave_cwd))
        remote_value(gateway, "import sys; sys.path.insert(0, %r); channel.send(1)" % own)
        return bridge.install(gateway, path=[served], cache_root=cache_root).slave["top_level"]
    finally:
        group.terminate(timeout=10)


def _mark_kept(cache_root, entry, marker):
    """Add ``marker`` to the names kept for the path entry ``entry``."""
    [kept] = glob.glob(os.path.join(cache_root, "names", "*"))
    with open(kept) as stream:
        data = json.load(stream)
    [item] = [item for item in data["entries"] if item[0] == entry]
    item[2].append(marker)
    with open(kept, "w") as stream:
        json.dump(data, stream)


def test_a_working_folder_just_written_is_listed_alone(slave_python, slave_cwd, tmp_path,
                                                       cache_root):
    """A worker's working folder is often new or just written (a tmpfs, a project
    checkout): it is listed at each handshake while it changes, the rest of the path is
    read from what is kept (a bare 3.11 lists its whole path in 25 ms)."""
    own = write_tree(tmp_path / "own", {"alpha.py": "A = 1\n"})
    served = write_tree(tmp_path / "served", {"nothing.py": ""})
    _set_mtime(own, 3600)

    def reported():
        return _reported(slave_python, slave_cwd, own, served, cache_root)

    write_tree(tmp_path / "slave-cwd", {"fresh.py": ""})
    names = reported()
    assert "alpha" in names and "fresh" in names
    _mark_kept(cache_root, own, "kept_marker")
    os.remove(os.path.join(slave_cwd, "fresh.py"))
    write_tree(tmp_path / "slave-cwd", {"fresher.py": ""})
    names = reported()
    assert "kept_marker" in names and "fresher" in names and "fresh" not in names


MARK_KEPT_CODE = """
import glob, hashlib, marshal, os
[path] = glob.glob(os.path.join(%r, "code", "*"))
with open(path, "rb") as stream:
    kept = stream.read()
assert hashlib.sha256(kept[64:]).hexdigest().encode("ascii") == kept[:64]
compiled = marshal.loads(kept[64:])
compiled["tags"] = compile(%r + "\\nKEPT_MARKER = True\\n", "tags", "exec")
payload = marshal.dumps(compiled)
with open(path, "wb") as stream:
    stream.write(hashlib.sha256(payload).hexdigest().encode("ascii") + payload)
channel.send(sorted(compiled))
"""

KEPT_MARKER = """
import sys
channel.send(getattr(sys.modules["_execnet_bridge.tags"], "KEPT_MARKER", False))
"""


def test_the_bridge_modules_a_slave_compiled_are_kept_for_its_next_session(
        slave_python, slave_cwd, tmp_path, cache_root):
    """Compiling the bridge's own modules was most of a handshake: the slave keeps their
    code objects in its cache root and runs them next time (a marker planted in them
    shows); a file that does not match its hash is compiled again, never loaded."""
    served = write_tree(tmp_path / "served", {"nothing.py": "VALUE = 1\n"})
    with open(os.path.join(os.path.dirname(bridge.__file__), "compat", "tags.py")) as f:
        tags = f.read()  # one compiled after the cache root is open (not bootstrap.EARLY)

    def session(source):
        group = execnet.Group()
        try:
            gateway = group.makegateway(slave_spec(slave_python, slave_cwd))
            bridge.install(gateway, path=[served], cache_root=cache_root)
            assert remote_value(gateway, "import nothing; channel.send(nothing.VALUE)") == 1
            return remote_value(gateway, source)
        finally:
            group.terminate(timeout=10)

    names = session(MARK_KEPT_CODE % (cache_root, tags))
    assert "hook" in names and "bootstrap" not in names
    assert session(KEPT_MARKER) is True  # the kept code ran, not a compile of the sources
    [path] = glob.glob(os.path.join(cache_root, "code", "*"))
    with open(path, "r+b") as stream:
        stream.seek(100)
        stream.write(b"\0\0\0\0")
    assert session(KEPT_MARKER) is False  # damaged: compiled from the sources again
    with open(path, "rb") as stream:
        kept = stream.read()
    assert hashlib.sha256(kept[64:]).hexdigest().encode("ascii") == kept[:64]


SAME_BUILD = """
import sys
channel.send(sys.version == %r and sys.flags.optimize == %d
             and getattr(getattr(sys, "implementation", None), "cache_tag", None) == %r)
""" % (sys.version, sys.flags.optimize,
       getattr(getattr(sys, "implementation", None), "cache_tag", None))


@pytest.mark.parametrize("answer", ["marked", "damaged"])
def test_a_cold_slave_of_the_masters_build_runs_the_masters_code_objects(
        slave_python, slave_cwd, tmp_path, cache_root, monkeypatch, answer):
    """A cold slave compiled the bridge's modules (32 ms of a bare 3.11's handshake,
    sixteen times over for sixteen slaves on 2 cores): one whose interpreter compiles
    what the master's does gets the master's code objects instead (a marker the master
    put in them shows), and keeps them; any other compiles, as does one whose answer
    does not load. A warm slave asks nothing."""
    from bridge import _install, _slave_code
    from bridge.compat import bootstrap, codecache
    served = write_tree(tmp_path / "served", {"nothing.py": "VALUE = 1\n"})

    def marked(sources):
        if answer == "damaged":
            return b"not zlib"
        compiled = dict((name, bootstrap.compile_module(name, source))
                        for name, source in sources if name != "bootstrap")
        tags = dict(sources)["tags"] + "\nKEPT_MARKER = True\n"
        compiled["tags"] = bootstrap.compile_module("tags", tags)
        return codecache.encode(compiled)
    monkeypatch.setattr(_slave_code, "_compiled", marked)
    monkeypatch.setattr(_install, "SLAVE_CODE", _slave_code.SlaveCode())

    def session():
        group = execnet.Group()
        try:
            gateway = group.makegateway(slave_spec(slave_python, slave_cwd))
            same = remote_value(gateway, SAME_BUILD)
            handle = bridge.install(gateway, path=[served], cache_root=cache_root)
            assert remote_value(gateway, "import nothing; channel.send(nothing.VALUE)") == 1
            return same, handle.code_sent, remote_value(gateway, KEPT_MARKER)
        finally:
            group.terminate(timeout=10)

    same, sent, ran_masters = session()
    assert (sent > 0) is same  # asked for exactly when its build is the master's
    assert ran_masters is (same and answer == "marked")
    assert session()[1:] == (0, ran_masters)  # warm: what it kept, nothing asked


def test_the_kept_code_and_names_are_bounded_newest_first(tmp_path):
    from bridge.compat.files import keep_newest
    folder = str(tmp_path)
    for index in range(10):
        path = os.path.join(folder, "v%d" % index)
        with open(path, "w") as stream:
            stream.write("x")
        os.utime(path, (1000 + index, 1000 + index))
    keep_newest(folder, 8)
    assert sorted(os.listdir(folder)) == ["v%d" % index for index in range(2, 10)]
    keep_newest(folder, 8)  # nothing past the bound: nothing goes
    assert len(os.listdir(folder)) == 8


NAMES_AGAINST_PKGUTIL = r"""
import os, pkgutil, sys, zipfile
from _execnet_bridge import tags
folder = os.path.join(%r, "entries", "tricky")  # the working folder: no package
for path in ("pkg/__init__.py", "mod.py", "a.b.py", "data.txt", "__init__.py",
             "nopkg/inner.py", "dotted.dir/__init__.py", "only_pyc/__init__.pyc",
             "ext" + tags.extension_suffixes()[0]):
    path = os.path.join(folder, *path.split("/"))
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    open(path, "w").close()
archive = os.path.join(%r, "entries", "zipped.zip")
with zipfile.ZipFile(archive, "w") as zipped:
    zipped.writestr("zipmod.py", "")
    zipped.writestr("zippkg/__init__.py", "")
sys.path[:0] = [folder, archive, os.path.join(%r, "missing")]
mine = tags.local_top_level_names()
theirs = set(sys.builtin_module_names)
theirs.update(name for _, name, _ in pkgutil.iter_modules(sys.path))
channel.send((sorted(mine), sorted(theirs)))
"""


def test_a_slave_reports_the_names_pkgutil_lists_without_importing_it(gateway, slave_cwd,
                                                                       tmp_path):
    """The path is listed by pkgutil.iter_modules' rule, folders without pkgutil (its
    import is half of a bare 3.11's listing): the same names on every interpreter."""
    bridge.install(gateway, path=[], cache_root=str(tmp_path / "cache"))
    mine, theirs = remote_value(gateway, NAMES_AGAINST_PKGUTIL % (
        slave_cwd, slave_cwd, slave_cwd))
    assert mine == theirs
    for name in ("pkg", "mod", "ext", "only_pyc", "zipmod", "zippkg", "os"):
        assert name in mine
    for name in ("a", "a.b", "data", "__init__", "nopkg", "dotted"):
        assert name not in mine
