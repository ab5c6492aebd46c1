"""The wire protocol is frozen: changing it means a new PROTOCOL_VERSION."""
import pytest

from bridge.compat import protocol


def test_message_kinds_and_version_are_frozen():
    assert protocol.PROTOCOL_VERSION == 11
    assert protocol.KINDS == ("config", "hello", "ready", "installed", "find", "distributions",
                              "module", "missing", "refused", "error", "uninstall",
                              "uninstalled", "run", "ping", "bodies", "project", "enter",
                              "entered")
    assert protocol.REQUEST_KINDS == ("find", "distributions", "project")
    assert protocol.MODULE_TYPES == ("source", "package", "namespace", "extension")
    assert protocol.RECORD_TYPES == protocol.MODULE_TYPES + ("metadata", "folder")
    assert protocol.ENTRY_KINDS == ("file", "folder", "package")
    assert protocol.RELAY_KINDS == ("watch", "watching", "filled")
    assert (protocol.FILLED_BYTES, protocol.FILLED_BODIES, protocol.UNFILLED,
            protocol.STORED_BYTES, protocol.SECONDS) == (
        "filled_bytes", "filled_bodies", "unfilled", "stored_bytes", "seconds")


def test_positional_fields_and_facts_are_frozen():
    entry = ["a/b.py", "0" * 64, b"x"]
    assert (entry[protocol.FILE_PATH], entry[protocol.FILE_SHA],
            entry[protocol.FILE_BODY]) == ("a/b.py", "0" * 64, b"x")
    piece = protocol.piece("1" * 64, 3, 10, b"abc", False)
    assert [piece[index] for index in (protocol.PIECE_SHA, protocol.PIECE_OFFSET,
                                       protocol.PIECE_SIZE, protocol.PIECE_BYTES,
                                       protocol.PIECE_COMPRESSED)] == ["1" * 64, 3, 10, b"abc", False]
    assert protocol.FACT_NAMES == (
        "implementation", "version", "abi", "soabi", "extension_suffixes", "platform", "system",
        "machine", "bits", "byteorder", "libc", "libc_version", "libpython", "free_threaded",
        "executable", "top_level", "magic", "cache_tag")


def test_a_package_listing_keeps_plain_names_of_known_kinds_only():
    record = protocol.module_record("p", protocol.PACKAGE, "p/__init__.py", [], [], [], "/m/p")
    assert protocol.entries_of(record) is None  # a record without a listing
    protocol.add_entries(record, [["a.py", "file"], ["sub", "package"], ["res", "folder"]])
    assert protocol.entries_of(record) == {"a.py": "file", "sub": "package", "res": "folder"}
    record["entries"] = [["..", "folder"], ["a/b.py", "file"], ["ok.txt", "file"],
                         ["x.py", "socket"], "loose", [1, "file"], ["/etc", "file"]]
    assert protocol.entries_of(record) == {"ok.txt": "file"}
    record["entries"] = "not a list"
    assert protocol.entries_of(record) is None


def test_messages_are_plain_data_with_text_keys():
    record = protocol.module_record("a.b", protocol.SOURCE, "a/b.py",
                                    [["a/b.py", "0" * 64, b"x = 1\n"]], [], [], "/m/a/b.py")
    reply = protocol.module_reply(7, [record])
    assert protocol.kind_of(reply) == protocol.MODULE
    assert reply == {"kind": "module", "id": 7, "modules": [{
        "name": "a.b", "type": "source", "path": "a/b.py",
        "files": [["a/b.py", "0" * 64, b"x = 1\n"]], "dirs": [], "children": [],
        "origin": "/m/a/b.py", "compressed": []}], "absent": [], "refusals": []}
    assert protocol.find_request("a.b", ["f" * 64]) == {"kind": "find", "name": "a.b",
                                                        "lost": ["f" * 64], "have": []}
    assert protocol.find_request("a.b", have=["e" * 64])["have"] == ["e" * 64]
    assert protocol.distributions_request() == {"kind": "distributions", "name": None,
                                                "lost": [], "have": []}
    assert protocol.request_keys(protocol.find_request("a.b")) == ["find a.b", "find a.*"]
    assert protocol.request_keys(protocol.find_request("a")) == ["find a", "find a.*"]
    assert protocol.request_keys(protocol.distributions_request()) == ["distributions *"]
    assert protocol.distributions_request("Foo.Bar")["name"] == "Foo.Bar"
    assert protocol.metadata_record("six", "six-1.0.dist-info", [], "/m/six-1.0.dist-info",
                                    ["RECORD"]) == {
        "name": "six", "type": "metadata", "path": "six-1.0.dist-info", "files": [],
        "dirs": ["six-1.0.dist-info"], "children": [], "origin": "/m/six-1.0.dist-info",
        "compressed": [], "left_out": ["RECORD"]}
    assert all(type(key) is type(u"") for key in protocol.metadata_record("a", "f", [], "o"))


@pytest.mark.parametrize("name, normalized", [("six", "six"), ("Foo.Bar-baz", "foo_bar_baz"),
                                              ("zope.interface", "zope_interface"),
                                              ("A__B--c", "a_b_c")])
def test_distribution_names_are_compared_normalized(name, normalized):
    assert protocol.distribution_name_problem(name) is None
    assert protocol.normalized_distribution(name) == normalized


@pytest.mark.parametrize("folder, normalized", [("six-1.16.0.dist-info", "six"),
                                                ("Foo.Bar-1.0.dist-info", "foo_bar"),
                                                ("zope_interface-5.0-py2.7.egg-info",
                                                 "zope_interface"),
                                                ("six.py", None), ("six", None),
                                                ("six-1.16.0.data", None)])
def test_metadata_folders_name_their_distribution(folder, normalized):
    assert protocol.distribution_of(folder) == normalized


@pytest.mark.parametrize("name", ["", "-a", "a-", "a b", "../x", "a/b", "a" * 501, 3, b"\xff"])
def test_invalid_distribution_names(name):
    assert protocol.distribution_name_problem(name)


@pytest.mark.parametrize("name", ["a", "a.b", "_private.x2", "A" * 100])
def test_valid_module_names(name):
    assert protocol.module_name_problem(name) is None


@pytest.mark.parametrize("name", ["", ".a", "a.", "a..b", "../etc", "a/b", "a\\b", "a\0",
                                  "1a", "a-b", "a b", "a" * 501, None, 3, b"\xff"])
def test_invalid_module_names(name):
    assert protocol.module_name_problem(name)


@pytest.mark.parametrize("path", ["a", "a/b.py", "a/b/c.txt", ".hidden"])
def test_valid_mirror_paths(path):
    assert protocol.relative_path_problem(path) is None


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b",
                                  "a\\b", "a\0b", None])
def test_invalid_mirror_paths(path):
    assert protocol.relative_path_problem(path)


@pytest.mark.parametrize("msg", [None, [], "find", {"kind": "find"},
                                 {"kind": "find", "id": "1", "name": "a"},
                                 {"kind": "find", "id": True, "name": "a"},
                                 {"kind": "find", "id": 1, "name": "a/../b"},
                                 {"kind": "module", "id": 1, "name": "a"},
                                 {"kind": "distributions", "id": 1, "name": "a b"},
                                 {"kind": "distributions", "id": 1, "name": 7},
                                 {"kind": "distributions", "name": None},
                                 {"kind": "find", "id": 1, "name": "a", "lost": "f"},
                                 {"kind": "find", "id": 1, "name": "a", "lost": [1]},
                                 {"kind": "find", "id": 1, "name": "a", "have": "f"},
                                 {"kind": "find", "id": 1, "name": "a", "have": [None]},
                                 {"kind": "project", "id": 1, "name": "a"},
                                 {"kind": "project", "id": 1, "holds": "f"},
                                 {"kind": "project", "id": 1, "holds": [3]},
                                 {"kind": "enter", "id": 1, "workdir": "."}])
def test_malformed_requests_are_recognised(msg):
    assert protocol.request_problem(msg)


@pytest.mark.parametrize("msg", [{"kind": "find", "id": 1, "name": "a.b"},
                                 {"kind": "distributions", "id": 2, "name": None},
                                 {"kind": "distributions", "id": 3, "name": "Foo.Bar"},
                                 {"kind": "project", "id": 4, "holds": ["c" * 64]}])
def test_well_formed_requests_pass(msg):
    assert protocol.request_problem(msg) is None


def test_handshake_and_control_messages_are_frozen():
    """Every message either side builds, in its exact shape."""
    assert protocol.config(5) == {"kind": "config", "protocol": 11,
                                  "options": {"timeout": 5.0, "cache_limit": 1024 ** 3,
                                              "subprocesses": False}}
    assert protocol.config(1.5, "/c", [2, 7, 18], 1000, True) == {
        "kind": "config", "protocol": 11,
        "options": {"timeout": 1.5, "cache_root": "/c", "environment": [2, 7],
                    "cache_limit": 1000, "subprocesses": True}}
    assert protocol.option(protocol.config(5), protocol.CACHE_ROOT, "default") == "default"
    channel = object()  # an execnet channel, in a real handshake
    assert protocol.hello({"abi": "cp311"}, channel, "/c/s-1", "why") == {
        "kind": "hello", "protocol": 11, "facts": {"abi": "cp311"}, "channel": channel,
        "cache_dir": "/c/s-1", "cache_problem": "why"}
    assert protocol.ready() == {"kind": "ready"}
    assert protocol.ping() == {"kind": "ping"}
    assert protocol.ping(b"x" * 3) == {"kind": "ping", "payload": b"xxx"}
    record = protocol.module_record("a", protocol.SOURCE, "a.py", [], [], [], "/m/a.py")
    protocol.mark_compressed(record, ["b" * 64])
    assert record["compressed"] == ["b" * 64]
    assert protocol.installed() == {"kind": "installed"}
    assert protocol.uninstall() == {"kind": "uninstall"}
    assert protocol.uninstalled(1) == {"kind": "uninstalled", "removed": True}
    assert protocol.run_request(module="tools.job") == {
        "kind": "run", "module": "tools.job", "source": None, "filename": None,
        "run_name": "tools.job", "argv": None, "output": False}
    assert protocol.run_request(source="print(1)", filename="/s.py", run_name="__main__",
                                argv=["/s.py", "-v"], output=True) == {
        "kind": "run", "module": None, "source": "print(1)", "filename": "/s.py",
        "run_name": "__main__", "argv": ["/s.py", "-v"], "output": True}
    assert protocol.output_frame(protocol.OUT, "text") == ("out", "text")
    assert protocol.output_frame(protocol.EXIT, 3) == ("exit", 3)
    assert protocol.not_served(protocol.MISSING, 3, "a", "why") == {
        "kind": "missing", "id": 3, "name": "a", "reason": "why"}
    assert protocol.enter("tests") == {"kind": "enter", "workdir": "tests"}
    assert protocol.entered("/w") == {"kind": "entered", "path": "/w", "reason": None}
    assert protocol.entered(reason="why") == {"kind": "entered", "path": None, "reason": "why"}
    assert protocol.project_request(["a" * 64], ["b" * 64], ["c" * 64]) == {
        "kind": "project", "lost": ["a" * 64], "have": ["b" * 64], "holds": ["c" * 64]}
    assert protocol.folder_record("proj", [["t/a.py", "d" * 64, None]], ["t"]) == {
        "name": "proj", "type": "folder", "path": "", "files": [["t/a.py", "d" * 64, None]],
        "dirs": ["t"], "children": [], "origin": "proj", "compressed": []}


def test_the_control_program_names_the_package_the_bootstrap_makes():
    from bridge.compat import bootstrap
    assert protocol.SLAVE_PACKAGE == bootstrap.PACKAGE
    assert ("from %s.hook import control" % bootstrap.PACKAGE) in protocol.CONTROL_SOURCE


def test_a_tree_id_names_paths_and_hashes_in_any_order():
    first = protocol.module_record("a", protocol.PACKAGE, "a/__init__.py",
                                   [["a/__init__.py", "1" * 64, b"body"]], ["a/data"], [], "/m")
    second = protocol.module_record("a.b", protocol.SOURCE, "a/b.py",
                                    [["a/b.py", "2" * 64, None]], [], [], "/m")
    tree = protocol.tree_id([first, second])
    assert tree == protocol.tree_id([second, first]) and len(tree) == 64
    moved = protocol.module_record("a.b", protocol.SOURCE, "a/c.py",
                                   [["a/c.py", "2" * 64, None]], [], [], "/m")
    assert protocol.tree_id([first, moved]) != tree  # a path is part of the tree
    changed = protocol.module_record("a.b", protocol.SOURCE, "a/b.py",
                                     [["a/b.py", "3" * 64, None]], [], [], "/m")
    assert protocol.tree_id([first, changed]) != tree  # and so is every hash


def test_a_lean_reply_names_its_tree_and_carries_no_files():
    record = protocol.module_record("a", protocol.PACKAGE, "a/__init__.py",
                                    [["a/__init__.py", "1" * 64, None]], ["a"], ["b"], "/m",
                                    ["1" * 64])
    [lean] = protocol.lean([record])
    assert lean == dict(record, files=[], dirs=[], compressed=[])
    assert record["files"]  # the original stays whole
    reply = protocol.module_reply(3, [lean], tree="9" * 64)
    assert reply["tree"] == "9" * 64 and reply["modules"] == [lean]
    assert "tree" not in protocol.module_reply(3, [record])


def test_bodies_frames_carry_pieces_of_bodies():
    frame = protocol.bodies_frame(3, [protocol.piece("a" * 64, 0, 10, b"01234", False)])
    assert frame == {"kind": "bodies", "id": 3, "pieces": [["a" * 64, 0, 10, b"01234", False]]}
    assert protocol.kind_of(frame) == protocol.BODIES
    assert protocol.piece_problem(frame["pieces"][0]) is None
    assert protocol.CHUNK_BYTES <= protocol.INLINE_BYTES


@pytest.mark.parametrize("piece", [
    None, [], ["a" * 64, 0, 10, b"x"], ["a" * 63, 0, 10, b"x", False],
    ["A" * 64, 0, 10, b"x", False], ["../" + "a" * 61, 0, 10, b"x", False],
    ["a" * 64, -1, 10, b"x", False], ["a" * 64, 11, 10, b"x", False],
    ["a" * 64, 0, protocol.MAX_BODY_BYTES + 1, b"x", False], ["a" * 64, True, 10, b"x", False],
    ["a" * 64, 0, 10, u"text", False], ["a" * 64, 0, 10, b"x", 1], ["a" * 64, "0", 10, b"x", False]])
def test_malformed_pieces_are_named(piece):
    assert protocol.piece_problem(piece)


def test_records_without_files_travel_packed_and_come_back_the_same():
    record = protocol.module_record("a.b", protocol.SOURCE, "a/b.py", [], [], [], "/m/a/b.py")
    protocol.add_entries(record, [["caf\u00e9.txt", "file"]])
    reply = protocol.module_reply(7, [record], ["gone"], [["no", "why"]], tree="e" * 64)
    travelling = protocol.packed(reply)
    assert "modules" not in travelling and isinstance(travelling["packed"], bytes)
    assert protocol.unpacked(travelling) == reply
    assert protocol.unpacked(reply) is reply  # as it came


def test_bodies_travel_beside_the_packed_records():
    """Bodies (bytes) travel beside the JSON, named by index; records a hop is to fill
    in (relay.py reads them) travel as they are."""
    record = protocol.module_record("a.b", protocol.PACKAGE, "a/b/__init__.py",
                                    [["a/b/__init__.py", "0" * 64, b"x = 1\n"],
                                     ["a/b/c.py", "1" * 64, None],
                                     ["a/b/d.py", "2" * 64, b"\xff\x00"]], ["a/b"], [], "/m")
    reply = protocol.module_reply(7, [record], tree=None)
    travelling = protocol.packed(reply)
    assert travelling["packed_bodies"] == [b"x = 1\n", b"\xff\x00"]
    assert b"x = 1" not in travelling["packed"]
    assert protocol.unpacked(travelling) == reply
    assert record["files"][0][2] == b"x = 1\n"  # the master's record is left as it was
    protocol.mark_at_hop(record, ["1" * 64])
    assert protocol.packed(reply) is reply
    missing = protocol.not_served(protocol.MISSING, 3, "x", "none")
    assert protocol.packed(missing) is missing


@pytest.mark.parametrize("body", [5, -1, True])
def test_packed_records_naming_bodies_that_did_not_come_are_a_value_error(body):
    text = b'[{"name": "a", "files": [["a.py", "%s", %s]]}]' % (b"0" * 64, str(body).lower().encode())
    with pytest.raises(ValueError):
        protocol.unpacked({"kind": "module", "id": 1, "packed": text,
                           "packed_bodies": [b"only one"] if body != -1 else []})


@pytest.mark.parametrize("data", [b"{", b"{}", b"[1]", u"[]", None, b"\xff",
                                  b'[{"files": 5}]'])
def test_malformed_packed_records_are_a_value_error(data):
    with pytest.raises(ValueError):
        protocol.unpacked({"kind": "module", "id": 1, "packed": data})
