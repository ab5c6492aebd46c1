"""Requires-Python: a distribution that excludes the slave's Python is refused, with why.

A temp site holds distributions laid out as pip installs them (a dist-info
folder with METADATA and RECORD beside the package): one requiring Python
3.8+, one whose Requires-Python does not parse, and one that imports the
first, so prefetching can be seen to skip it.
"""
import os
import sys

import pytest

import bridge
from bridge._locate import SearchPath
from bridge._responder import Responder, Stats
from bridge.compat import protocol
from conftest import remote_value, run_bounded, served_path, write_tree

NEW_ENOUGH = (3, 8)


def dist_info(name, requires_python, files):
    """A dist-info folder as pip writes it: METADATA (headers, then a body) and RECORD."""
    folder = "%s-1.0.dist-info" % name
    header = "Requires-Python: %s\n" % requires_python if requires_python else ""
    return {
        folder + "/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n%s\n"
                              "Requires-Python: <0 in the body is not a header\n"
                              % (name, header),
        folder + "/RECORD": "".join("%s,,\n" % path for path in files + [folder + "/RECORD"]),
    }


def site_files():
    files = {
        "newonly/__init__.py": "from . import core\nVALUE = core.VALUE\n",
        "newonly/core.py": "VALUE = 'new only'\n",
        "oddspec/__init__.py": "VALUE = 'odd'\n",
        "consumer/__init__.py": "try:\n    import newonly\nexcept ImportError:\n"
                            "    newonly = None\n",
    }
    files.update(dist_info("newonly", ">=%d.%d" % NEW_ENOUGH,
                           ["newonly/__init__.py", "newonly/core.py"]))
    files.update(dist_info("oddspec", "three point eight or so", ["oddspec/__init__.py"]))
    files.update(dist_info("consumer", None, ["consumer/__init__.py"]))
    return files


@pytest.fixture
def site(tmp_path):
    return write_tree(tmp_path / "site", site_files())


def slave_version(gateway):
    return tuple(remote_value(gateway, "import sys; channel.send(list(sys.version_info[:3]))"))


IMPORT = """
out = {}
for name in ("newonly", "oddspec"):
    try:
        out[name] = ["imported", __import__(name).VALUE]
    except ImportError as error:
        out[name] = ["refused", str(error)]
channel.send(out)
"""


def test_a_slave_older_than_requires_python_is_refused_with_why(site, gateway, cache_root):
    version = slave_version(gateway)
    bridge.install(gateway, path=[site], cache_root=cache_root)
    out = remote_value(gateway, IMPORT)
    assert out["oddspec"] == ["imported", "odd"]  # an unparseable specifier never blocks
    if version[:2] >= NEW_ENOUGH:
        assert out["newonly"] == ["imported", "new only"]
        return
    kind, message = out["newonly"]
    assert kind == "refused"
    assert "newonly 1.0" in message and "requires Python >=3.8" in message, message
    assert "Python %d.%d.%d" % version in message, message
    assert "python=" in message and "wheelhouse=" in message, message


def test_prefetch_skips_what_the_slave_would_refuse(site, gateway, cache_root):
    version = slave_version(gateway)
    handle = bridge.install(gateway, path=[site], cache_root=cache_root)
    imported = remote_value(gateway, "import consumer; channel.send(consumer.newonly is not None)")
    assert imported == (version[:2] >= NEW_ENOUGH)
    mirrored = served_path(handle, "newonly/core.py") is not None
    assert mirrored == (version[:2] >= NEW_ENOUGH)


def records_for(site, name, version):
    """The names of the records one reply to a FIND for ``name`` carries, for a slave
    of ``version``; or the refusal's reason."""
    responder = Responder(SearchPath([site]), {"version": list(version)}, Stats())
    reply = responder.reply(dict(protocol.find_request(name), id=1))
    if protocol.kind_of(reply) != protocol.MODULE:
        return reply[protocol.REASON]
    return sorted(record[protocol.NAME] for record in reply[protocol.MODULES])


@pytest.mark.parametrize("version, records", [
    ((2, 7, 18), ["consumer"]),
    ((3, 7, 17), ["consumer"]),
    ((3, 8, 0), ["consumer", "newonly", "newonly.core"]),
    ((3, 14, 0), ["consumer", "newonly", "newonly.core"]),
])
def test_the_reply_leaves_out_what_requires_python_excludes(site, version, records):
    assert records_for(site, "consumer", version) == records


def test_a_module_whose_distribution_is_unknown_is_served(tmp_path):
    files = dict(site_files())
    del files["newonly-1.0.dist-info/RECORD"]  # no RECORD, no top_level.txt: no owner
    site = write_tree(tmp_path / "site", files)
    assert records_for(site, "newonly", (2, 7, 18)) == ["newonly", "newonly.core"]


def test_top_level_txt_names_the_modules_of_an_egg_info(tmp_path):
    site = write_tree(tmp_path / "site", {
        "legacy/__init__.py": "",
        "legacy-1.0-py3.8.egg-info/PKG-INFO": "Metadata-Version: 1.2\nName: legacy\n"
                                              "Version: 1.0\nRequires-Python: >=3.8\n",
        "legacy-1.0-py3.8.egg-info/top_level.txt": "legacy\n",
    })
    assert "requires Python >=3.8" in records_for(site, "legacy", (3, 6, 15))
    assert records_for(site, "legacy", (3, 9, 0)) == ["legacy"]


def test_doctor_gives_requires_python_its_own_verdict(site, slave_python, tmp_path):
    code, out, err = run_bounded([sys.executable, "-m", "bridge", "doctor", "--python",
                                  slave_python + " -E -S", "--path", site], tmp_path)
    assert code == 0, err
    verdicts = dict((line.split()[0], line.split(None, 2)[2]) for line in out.splitlines()
                    if line.startswith("  "))
    assert sorted(verdicts) == ["consumer", "newonly", "oddspec"], out
    assert verdicts["oddspec"] == verdicts["consumer"] == "pure"
    slave_line = next(line for line in out.splitlines() if line.startswith("slave "))
    version = tuple(int(part) for part in slave_line.split(": ", 1)[1].split()[1].split(".")[:2])
    expected = "pure" if version >= NEW_ENOUGH else "refused: Requires-Python >=3.8"
    assert verdicts["newonly"] == expected, out


def test_the_metadata_index_is_read_once_per_version_of_the_listing(site):
    from bridge._caches import MasterCaches
    from bridge._metadata import metadata_index
    settled = os.stat(site).st_mtime - 60  # as if the last install was a minute ago
    os.utime(site, (settled, settled))
    caches = MasterCaches()  # every slave's search path gets the entry's root from it
    root = caches.root(site)
    first = metadata_index(root)
    assert metadata_index(caches.root(site)) is first  # every slave shares it
    assert first.owner("newonly/core.py").requires_python == ">=3.8"
    write_tree(site, dist_info("later", ">=3.99", ["later.py"]))  # an install changes the listing
    write_tree(site, {"later.py": ""})
    root.request_number += 1  # the next reply looks at the folder again
    again = metadata_index(root)
    assert again is not first and again.owner("later.py").requires_python == ">=3.99"
