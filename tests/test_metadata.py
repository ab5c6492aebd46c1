"""Distribution metadata: importlib.metadata on the slave sees what the master serves."""
import os

import pytest

import bridge
from conftest import remote_value, write_tree

RECORD = """\
greeter/__init__.py,,
greeter/plugin.py,,
greeter_dist-1.2.dist-info/METADATA,,
greeter_dist-1.2.dist-info/entry_points.txt,,
greeter_dist-1.2.dist-info/licenses/LICENSE,,
greeter_dist-1.2.dist-info/RECORD,,
"""

MASTER = {
    "greeter/__init__.py": "WHO = 'master'\n",
    "greeter/plugin.py": '''
        def hello():
            return "hello from greeter.plugin"
        ''',
    "greeter_dist-1.2.dist-info/METADATA": """\
        Metadata-Version: 2.1
        Name: greeter-dist
        Version: 1.2
        Summary: served only by the master
        """,
    "greeter_dist-1.2.dist-info/entry_points.txt": """\
        [bridge.test]
        hello = greeter.plugin:hello
        """,
    "greeter_dist-1.2.dist-info/licenses/LICENSE": "free as in bridge\n",
    "greeter_dist-1.2.dist-info/RECORD": RECORD,
    "localwins-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: localwins\nVersion: 1.0\n",
}


@pytest.fixture
def metadata_slave(gateway, slave_label):
    if slave_label in ("2.7", "3.6", "3.7"):
        pytest.skip("importlib.metadata is new in Python 3.8 (older slaves use the "
                    "importlib_metadata backport: see test_xdist)")
    return gateway


def test_version_metadata_entry_points_and_files(metadata_slave, tmp_path, cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = bridge.install(metadata_slave, path=[master], cache_root=cache_root)
    result = remote_value(metadata_slave, """
        import importlib.metadata as metadata
        dist = metadata.distribution("Greeter.Dist")  # any spelling of the name
        [entry] = [each for each in dist.entry_points if each.group == "bridge.test"]
        said = entry.load()()  # imports greeter.plugin through the bridge
        import greeter
        # 3.12+ lists only files that exist: those of served modules, once mirrored.
        files = dict((str(path), path) for path in dist.files)
        channel.send([metadata.version("greeter_dist"), dist.metadata["Summary"],
                      entry.name, said, sorted(files),
                      files["greeter/__init__.py"].read_text(),
                      str(files["greeter/__init__.py"].locate()) == greeter.__file__,
                      dist.read_text("licenses/LICENSE")])
    """)
    assert result == ["1.2", "served only by the master", "hello", "hello from greeter.plugin",
                      sorted(line.split(",")[0] for line in RECORD.splitlines()),
                      "WHO = 'master'\n", True, "free as in bridge\n"]
    assert handle.stats.distributions == 1


def test_all_distributions_once_each_and_local_ones_win(metadata_slave, tmp_path, cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    local = write_tree(tmp_path / "local", {
        "localwins-9.9.dist-info/METADATA": "Metadata-Version: 2.1\nName: localwins\n"
                                            "Version: 9.9\n"})
    bridge.install(metadata_slave, path=[master], cache_root=cache_root)
    names, local_version = remote_value(metadata_slave, """
        import sys
        sys.path.append(%r)
        import importlib.metadata as metadata
        names = [dist.metadata["Name"] for dist in metadata.distributions()]
        channel.send([sorted(name for name in names if name in ("greeter-dist", "localwins")),
                      metadata.version("localwins")])
    """ % local)
    assert names == ["greeter-dist", "localwins"]  # the master's localwins is not listed
    assert local_version == "9.9"


def test_unknown_distribution_is_package_not_found_and_asked_once(metadata_slave, tmp_path,
                                                                   cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = bridge.install(metadata_slave, path=[master], cache_root=cache_root)
    result = remote_value(metadata_slave, """
        import importlib.metadata as metadata
        outcomes = []
        for attempt in range(3):
            try:
                metadata.version("no-such-dist")
            except metadata.PackageNotFoundError as error:
                outcomes.append(type(error).__name__)
        channel.send(outcomes)
    """)
    assert result == ["PackageNotFoundError"] * 3
    assert handle.stats.missing == 1


def test_metadata_over_the_reply_limit_is_refused_not_half_sent(metadata_slave, tmp_path,
                                                                cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    with open(os.path.join(master, "greeter_dist-1.2.dist-info", "RECORD"), "a") as stream:
        stream.write("x" * 200000)
    handle = bridge.install(metadata_slave, path=[master], cache_root=cache_root,
                            max_reply_bytes=100000)
    assert remote_value(metadata_slave, """
        import importlib.metadata as metadata
        try:
            metadata.version("greeter-dist")
        except metadata.PackageNotFoundError:
            channel.send("not found")
    """) == "not found"
    assert handle.stats.refused == 1 and handle.stats.bytes_sent == 0
