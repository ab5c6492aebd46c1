"""The master finds modules by reading files, in CPython's order, inside its path."""
import os
import time

import pytest

from bridge._locate import SearchPath, default_search_path
from bridge._metadata import record_paths
from bridge._roots import DirectoryRoot
from bridge._responder import Responder, Stats
from bridge.compat import protocol
from conftest import write_tree
from trees import shop_tree, witness_tree, zip_tree


def locate(entries, name):
    found = SearchPath(entries).locate(name)
    return None if found is None else (found.type, found.path)


def test_lookup_order_within_one_entry(tmp_path):
    entry = write_tree(tmp_path, {"both/__init__.py": "", "both.py": "", "mod.py": "",
                                  "mod/README": "", "ns/data.txt": ""})
    assert locate([entry], "both") == (protocol.PACKAGE, "both/__init__.py")
    assert locate([entry], "mod") == (protocol.SOURCE, "mod.py")
    assert locate([entry], "ns") == (protocol.NAMESPACE, "ns")
    assert locate([entry], "missing") is None
    assert locate([entry], "mod.child") is None


def test_a_regular_package_in_a_later_entry_beats_a_namespace_portion(tmp_path):
    first = write_tree(tmp_path / "one", {"pkg/README": ""})
    second = write_tree(tmp_path / "two", {"pkg/__init__.py": ""})
    found = SearchPath([first, second]).locate("pkg")
    assert found.type == protocol.PACKAGE and found.root.path == second


def test_namespace_submodules_are_found_in_every_portion(tmp_path):
    first = write_tree(tmp_path / "one", {"ns/a.py": ""})
    second = write_tree(tmp_path / "two", {"ns/b/__init__.py": ""})
    search = SearchPath([first, second])
    assert search.locate("ns.a").root.path == first
    assert search.locate("ns.b").root.path == second


@pytest.mark.parametrize("init", [
    "__import__('pkg_resources').declare_namespace(__name__)\n",
    "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"])
def test_a_package_that_declares_a_namespace_spans_every_entry(tmp_path, init):
    """As its __path__ would at run time (backports, zope over several distributions)."""
    first = write_tree(tmp_path / "one", {"nsp/__init__.py": init, "nsp/a.py": ""})
    second = write_tree(tmp_path / "two", {"nsp/__init__.py": init, "nsp/b/__init__.py": ""})
    search = SearchPath([first, second])
    assert search.locate("nsp").root.path == first
    assert search.locate("nsp.b").root.path == second
    assert search.children(search.locate("nsp")) == ["a", "b"]


def test_a_plain_package_shadows_the_same_folder_in_later_entries(tmp_path):
    first = write_tree(tmp_path / "one", {"pkg/__init__.py": "VALUE = 1\n"})
    second = write_tree(tmp_path / "two", {"pkg/b.py": ""})
    assert SearchPath([first, second]).locate("pkg.b") is None


def test_resource_subpackages_are_data_of_their_package(tmp_path):
    """Subpackages with no code (tzdata's shape) come along with their __init__.py;
    one with code, or whose __init__ has statements, does not."""
    entry = write_tree(tmp_path, {
        "tz/__init__.py": "X = 1\n", "tz/zones": "",
        "tz/info/__init__.py": '"""Only a docstring."""\n', "tz/info/UTC": "",
        "tz/info/Europe/__init__.py": "", "tz/info/Europe/Paris": "",
        "tz/info/Europe/more/Lisbon": "",
        "tz/code/__init__.py": "", "tz/code/mod.py": "", "tz/code/table.csv": "",
        "tz/init/__init__.py": "import os\n", "tz/init/data.txt": ""})
    search = SearchPath([entry])
    located = search.locate("tz")
    assert search.data_files(located) == [
        "tz/info/Europe/Paris", "tz/info/Europe/__init__.py", "tz/info/Europe/more/Lisbon",
        "tz/info/UTC", "tz/info/__init__.py", "tz/zones"]
    assert search.data_files(located, lambda name: name != "tz.info.Europe") == [
        "tz/info/UTC", "tz/info/__init__.py", "tz/zones"]


def test_zip_entries(tmp_path):
    entry = zip_tree(tmp_path)
    assert locate([entry], "zipped") == (protocol.PACKAGE, "zipped/__init__.py")
    assert locate([entry], "zipped.inner") == (protocol.SOURCE, "zipped/inner.py")
    search = SearchPath([entry])
    assert search.data_files(search.locate("zipped")) == ["zipped/data.txt"]


def test_package_data_excludes_code_and_subpackages(tmp_path):
    search = SearchPath([shop_tree(tmp_path)])
    assert search.data_files(search.locate("shop")) == [
        "shop/VERSION", "shop/data/rates.json", "shop/templates/receipt.txt"]


def test_locating_executes_nothing(tmp_path):
    folder, log = witness_tree(tmp_path)
    responder = Responder(SearchPath([folder]), {"version": [3, 11, 0]}, Stats())
    for name in ("witness", "witness.child"):
        reply = responder.reply(protocol.message(protocol.FIND, id=1, name=name))
        assert protocol.kind_of(reply) == protocol.MODULE
    assert not os.path.exists(log)


def test_a_retry_carries_every_body_whatever_the_slave_was_sent(tmp_path):
    """Two threads of a slave import at once: a body one reply carries may not be stored
    yet when the other reply names it as held. The other thread then asks again naming
    what it lacks, and that retry must carry every body, or it lacks them again (once in
    CI: 'what the master sent did not arrive intact', 2.7 slave)."""
    folder = write_tree(tmp_path / "served", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n",
                                                 "pkg/b.py": "from . import a\n"})
    responder = Responder(SearchPath([folder]), {"version": [3, 11, 0]}, Stats())

    def bodies(reply):
        return dict((path, data) for record in reply[protocol.MODULES]
                    for path, _, data in record[protocol.FILES])

    first = bodies(responder.reply(protocol.message(protocol.FIND, id=1, name="pkg.a")))
    assert first["pkg/a.py"] == b"A = 1\n"
    held = bodies(responder.reply(protocol.message(protocol.FIND, id=2, name="pkg.a")))
    assert held["pkg/a.py"] is None  # named as held: the slave has it
    retry = responder.reply(dict(protocol.find_request("pkg.a", lost=["f" * 64]), id=3))
    assert bodies(retry)["pkg/a.py"] == b"A = 1\n"
    assert all(data is not None for data in bodies(retry).values())


def test_default_search_path_leaves_out_the_standard_library():
    import json
    stdlib = os.path.dirname(os.path.dirname(json.__file__))
    entries = default_search_path()
    assert entries and stdlib not in entries
    assert SearchPath(entries).locate("json") is None


@pytest.fixture
def responder(tmp_path):
    inside = write_tree(tmp_path / "served", {"good.py": "X = 1\n"})
    secret = write_tree(tmp_path / "secret", {"stolen.py": "PASSWORD = 1\n",
                                              "pkg/__init__.py": ""})
    os.symlink(os.path.join(secret, "stolen.py"), os.path.join(inside, "leak.py"))
    os.symlink(os.path.join(secret, "pkg"), os.path.join(inside, "linkedpkg"))
    return Responder(SearchPath([inside]), {"version": [3, 11, 0]}, Stats())


def find(responder, name, request_id=1):
    return responder.reply(protocol.message(protocol.FIND, id=request_id, name=name))


def test_symlinks_out_of_the_served_path_are_refused(responder):
    for name in ("leak", "linkedpkg"):
        reply = find(responder, name)
        assert protocol.kind_of(reply) == protocol.REFUSED
        assert "resolves outside" in reply["reason"]
    assert protocol.kind_of(find(responder, "good")) == protocol.MODULE


@pytest.mark.parametrize("name", ["..", "../secret/stolen", "secret/stolen", "/etc/passwd",
                                  ".leak", "good\0", "a" * 1000])
def test_traversal_names_get_an_error_reply(responder, name):
    reply = find(responder, name)
    assert protocol.kind_of(reply) == protocol.ERROR
    assert reply["reason"].startswith("bad request")
    assert "files" not in reply


@pytest.mark.parametrize("msg", [None, 42, [], {}, {"kind": "find"}, {"kind": "nope", "id": 3},
                                 {"kind": "find", "id": 4, "name": ["x"]},
                                 {"kind": "config", "id": 0, "name": b"\x80\x00"},
                                 {"kind": "bogus", "id": 1, "name": b"\t\xdeJW"}])
def test_malformed_messages_get_an_error_and_serving_goes_on(responder, msg):
    reply = responder.reply(msg)
    assert protocol.kind_of(reply) == protocol.ERROR
    assert protocol.kind_of(find(responder, "good", 9)) == protocol.MODULE
    assert responder.stats.errors == 1 and responder.stats.modules == 1


def test_folder_listings_are_kept_per_folder_version_and_checked_once_per_request(tmp_path):
    entry = write_tree(tmp_path, {"pkg/__init__.py": "", "pkg/old.py": ""})
    settled = os.stat(entry).st_mtime - 3600  # as an installed folder: not changed lately
    for folder in (entry, os.path.join(entry, "pkg")):
        os.utime(folder, (settled, settled))
    search_path = SearchPath([entry])
    search_path.begin_request()
    assert search_path.locate("pkg.old") is not None and search_path.locate("pkg.new") is None
    write_tree(tmp_path, {"pkg/new.py": ""})  # the folder's mtime moves on
    assert search_path.locate("pkg.new") is None  # within one request: the same listing
    search_path.begin_request()
    assert search_path.locate("pkg.new").path == "pkg/new.py"
    os.remove(os.path.join(entry, "pkg", "old.py"))
    search_path.begin_request()
    assert search_path.locate("pkg.old") is None


def test_a_folder_changed_just_now_is_listed_again_every_time(tmp_path):
    """File times are coarse: two changes within one tick must not hide the second."""
    entry = write_tree(tmp_path, {"pkg/__init__.py": ""})
    search_path = SearchPath([entry])
    search_path.begin_request()
    assert search_path.locate("pkg.fresh") is None
    write_tree(tmp_path, {"pkg/fresh.py": ""})
    pkg = os.path.join(entry, "pkg")
    os.utime(pkg, (os.stat(pkg).st_atime, os.stat(pkg).st_mtime))  # however close in time
    search_path.begin_request()
    assert search_path.locate("pkg.fresh") is not None


def test_what_a_walk_asked_of_a_folder_is_asked_again_only_where_it_changed(tmp_path):
    """A walk asks most folders only whether a name is there: a Watch keeps those answers
    and, where the folder's key moved on or was too recent to vouch, asks again. A file
    that answers no question changes nothing; a module, or a binary, that would be
    found now makes the walk stale. Listings used whole (a package's entries) still
    count whole."""
    entry = write_tree(tmp_path / "entry", {"a.py": "", "pkg/__init__.py": ""})
    search_path = SearchPath([entry])
    search_path.begin_request()
    with search_path.watching() as watch:
        assert search_path.locate("a").path == "a.py" and search_path.locate("b") is None
    assert watch.settled and not watch.folders and watch.unchanged()  # probes alone
    write_tree(tmp_path / "entry", {"notes.txt": "", "b.txt": ""})
    assert watch.unchanged()
    write_tree(tmp_path / "entry", {"a.cpython-311-x86_64-linux-gnu.so": ""})
    assert not watch.unchanged()  # the binary would be found before a.py
    os.remove(os.path.join(entry, "a.cpython-311-x86_64-linux-gnu.so"))
    assert watch.unchanged()
    write_tree(tmp_path / "entry", {"b.py": ""})
    assert not watch.unchanged()

    search_path.begin_request()
    with search_path.watching() as whole:
        assert search_path.folder_entries(search_path.locate("pkg")) is not None
    assert whole.folders and whole.unchanged()
    time.sleep(0.05)  # past the kernel's clock tick: the folder's mtime moves on
    write_tree(tmp_path / "entry", {"pkg/data.txt": ""})
    assert not whole.unchanged()


def test_record_paths_read_pep_376_csv_rows(tmp_path):
    """One RECORD reader for the wheel tags and the doctor: quoted paths keep their commas."""
    folder = tmp_path / "demo-1.2.dist-info"
    folder.mkdir()
    (folder / "RECORD").write_bytes(u'demo/__init__.py,sha256=x,10\n"demo/a,b.txt",,\n'
                                    u'demo/caf\u00e9.txt,,\ndemo-1.2.dist-info/RECORD,,\n'
                                    .encode("utf-8"))
    entry = str(tmp_path)
    root = DirectoryRoot(entry)
    assert record_paths(root, "demo-1.2.dist-info") == [
        "demo/__init__.py", "demo/a,b.txt", u"demo/caf\u00e9.txt", "demo-1.2.dist-info/RECORD"]
    assert record_paths(root, "absent-1.0.dist-info") == []
