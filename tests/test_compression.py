"""Bodies travel zlib-compressed on a slow link, as they are on a pipe on one host."""
import os
import sys

import execnet

import bridge
from conftest import remote_value, write_tree

RELAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "relay.py")
TEXT = "".join("line %d of a compressible text file\n" % number for number in range(60000))
READ_BACK = """
import words, os
with open(os.path.join(os.path.dirname(words.__file__), "corpus.txt")) as stream:
    channel.send([words.VALUE, stream.read() == words.expected()])
"""


def words_tree(tmp_path):
    return write_tree(tmp_path / "master", {
        "words/__init__.py": "VALUE = 'words'\n" + "# padding line\n" * 2000 + '''
def expected():
    return "".join("line %d of a compressible text file\\n" % n for n in range(60000))
''',
        "words/corpus.txt": TEXT,
    })


def bridged(gateway, tmp_path, cache_root, compress):
    handle = bridge.install(gateway, path=[words_tree(tmp_path)], cache_root=cache_root,
                            compress=compress)
    return handle, remote_value(gateway, READ_BACK)


def test_compressed_bodies_arrive_intact_and_smaller(gateway, tmp_path, cache_root):
    handle, result = bridged(gateway, tmp_path, cache_root, compress=True)
    assert result == ["words", True]
    stats = handle.stats.as_dict()
    assert stats["bytes_sent"] > len(TEXT)
    assert stats["bytes_wire"] < stats["bytes_sent"] / 4
    assert handle.link["compress"] is True


def test_uncompressed_bodies_travel_as_they_are(gateway, tmp_path, cache_root):
    handle, result = bridged(gateway, tmp_path, cache_root, compress=False)
    assert result == ["words", True]
    stats = handle.stats.as_dict()
    assert stats["bytes_wire"] == stats["bytes_sent"] > len(TEXT)


def test_a_slow_link_is_measured_and_compressed_by_default(slave_python, slave_cwd, tmp_path,
                                                           cache_root):
    """10 ms each way through benchmarks/relay.py: a round trip of 20 ms or more."""
    command = " ".join([sys.executable, RELAY, "--delay", "0.010", "--", slave_python,
                        "-E", "-S"])
    group = execnet.Group()
    try:
        gateway = group.makegateway("popen//python=%s//chdir=%s" % (command, slave_cwd))
        handle, result = bridged(gateway, tmp_path, cache_root, compress=None)
        assert result == ["words", True]
        assert handle.link["round_trip"] >= 0.019
        assert handle.link["compress"] is True
        assert handle.stats.bytes_wire < handle.stats.bytes_sent / 4
    finally:
        group.terminate(timeout=10)
