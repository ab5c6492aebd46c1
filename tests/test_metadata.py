"""Distribution metadata: importlib.metadata on the slave sees what the master serves."""
import os
import sys
import textwrap

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


PRELUDE = """
try:
    import importlib.metadata as metadata
except ImportError:  # before 3.8: the backport, served by the master
    import importlib_metadata as metadata
"""


class MetadataSlave(object):
    """A gateway whose slave has importlib.metadata, or will import the backport
    from the master: on 2.7-3.7 the master's own environment has it (pluggy needs it),
    and serves it to a slave of its own version."""

    def __init__(self, gateway, backport):
        self.gateway = gateway
        self.backport = backport  # [the master's site-packages], or []

    def install(self, master, **options):
        handle = bridge.install(self.gateway, path=[master] + self.backport, **options)
        remote_value(self.gateway, PRELUDE + "channel.send(metadata.__name__)")
        return handle

    def run(self, source):
        return remote_value(self.gateway, PRELUDE + textwrap.dedent(source))


@pytest.fixture
def metadata_slave(gateway, slave_label):
    if slave_label not in ("2.7", "3.6", "3.7"):
        return MetadataSlave(gateway, [])
    if "%d.%d" % sys.version_info[:2] != slave_label:
        pytest.skip("importlib.metadata is new in Python 3.8; a %s slave needs the "
                    "importlib_metadata backport from a master of its own version" % slave_label)
    backport = pytest.importorskip("importlib_metadata")
    return MetadataSlave(gateway, [os.path.dirname(os.path.dirname(backport.__file__))])


def test_version_metadata_entry_points_and_files(metadata_slave, tmp_path, cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = metadata_slave.install(master, cache_root=cache_root)
    before = handle.stats.distributions
    result = metadata_slave.run("""
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
    assert handle.stats.distributions - before == 1


def test_all_distributions_once_each_and_local_ones_win(metadata_slave, tmp_path, cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    local = write_tree(tmp_path / "local", {
        "localwins-9.9.dist-info/METADATA": "Metadata-Version: 2.1\nName: localwins\n"
                                            "Version: 9.9\n"})
    metadata_slave.install(master, cache_root=cache_root)
    names, local_version = metadata_slave.run("""
        import sys
        sys.path.append(%r)
        names = [dist.metadata["Name"] for dist in metadata.distributions()]
        channel.send([sorted(name for name in names if name in ("greeter-dist", "localwins")),
                      metadata.version("localwins")])
    """ % local)
    assert names == ["greeter-dist", "localwins"]  # the master's localwins is not listed
    assert local_version == "9.9"


def test_unknown_distribution_is_package_not_found_and_asked_once(metadata_slave, tmp_path,
                                                                   cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = metadata_slave.install(master, cache_root=cache_root)
    before = handle.stats.missing
    result = metadata_slave.run("""
        outcomes = []
        for attempt in range(3):
            try:
                metadata.version("no-such-dist")
            except metadata.PackageNotFoundError as error:
                outcomes.append(type(error).__name__)
        channel.send(outcomes)
    """)
    assert result == ["PackageNotFoundError"] * 3
    assert handle.stats.missing - before == 1


def test_metadata_over_the_reply_limit_is_refused_not_half_sent(metadata_slave, tmp_path,
                                                                cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    with open(os.path.join(master, "greeter_dist-1.2.dist-info", "RECORD"), "a") as stream:
        stream.write("x" * 2000000)
    handle = metadata_slave.install(master, cache_root=cache_root, max_reply_bytes=1000000)
    before = handle.stats.as_dict()
    assert metadata_slave.run("""
        try:
            metadata.version("greeter-dist")
        except metadata.PackageNotFoundError:
            channel.send("not found")
    """) == "not found"
    after = handle.stats.as_dict()
    assert after["refused"] - before["refused"] == 1
    assert after["bytes_sent"] == before["bytes_sent"]


def test_a_listing_sends_what_it_reads_and_the_rest_on_first_read(metadata_slave, tmp_path,
                                                                   cache_root):
    master = write_tree(tmp_path / "master", MASTER)
    handle = metadata_slave.install(master, cache_root=cache_root)
    find = """
        import os
        [dist] = [each for each in metadata.distributions()
                  if each.metadata["Name"] == "greeter-dist"]
        folder = os.path.dirname(str(dist.locate_file("greeter_dist-1.2.dist-info/METADATA")))
    """
    listed = metadata_slave.run(find + """
        channel.send([sorted(entry.name for entry in dist.entry_points),
                      sorted(os.listdir(folder))])
    """)
    assert listed == [["hello"], ["METADATA", "entry_points.txt"]]
    before = handle.stats.distributions
    read = metadata_slave.run(find + """
        text = dist.read_text("licenses/LICENSE")
        # the whole folder came in a tree of its own: the distribution reads it there now
        folder = os.path.dirname(str(dist.locate_file("greeter_dist-1.2.dist-info/METADATA")))
        channel.send([text, sorted(os.listdir(folder)),
                      sorted(str(path) for path in dist.files if "dist-info" in str(path))])
    """)
    assert read == ["free as in bridge\n", ["METADATA", "RECORD", "entry_points.txt", "licenses"],
                    sorted(line.split(",")[0] for line in RECORD.splitlines()
                           if "dist-info" in line)]
    assert handle.stats.distributions - before == 1  # its whole folder, once
