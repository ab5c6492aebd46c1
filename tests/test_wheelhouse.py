"""install(wheelhouse=DIR): each slave gets, per project, the wheel that fits it."""
import os
import shutil

import pytest

import bridge
from bridge._wheelhouse import compatible_tags, parse_wheel_name, select
from conftest import MATRIX, find_python, remote_value
from extensions import built_wheels


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """The test distributions' wheels built by every local interpreter, in one folder."""
    folder = str(tmp_path_factory.mktemp("wheelhouse"))
    labels = [label for label in MATRIX if find_python(label)[0]]
    for label in labels:
        wheels = built_wheels(label, find_python(label)[0])
        for name in os.listdir(wheels):
            shutil.copy(os.path.join(wheels, name), folder)
    return folder, labels


def test_each_slave_gets_the_wheel_built_for_it(wheelhouse, gateway, slave_label, cache_root):
    folder, labels = wheelhouse
    if slave_label not in labels:
        pytest.skip("no Python %s to build its wheel" % slave_label)
    handle = bridge.install(gateway, wheelhouse=folder, allow_extensions=True,
                            cache_root=cache_root)
    served = [os.path.basename(entry) for entry in handle.search_path.entries]
    tag = {"2.7": "cp27-cp27mu", "3.6": "cp36-cp36m", "3.7": "cp37-cp37m",
           "pypy3": "pp39-pypy39_pp73"}.get(slave_label, "cp%s-cp%s" % (
               (slave_label.replace(".", ""),) * 2))
    assert [name for name in served if "extdemo" in name][0].endswith("-%s-linux_x86_64" % tag)
    assert remote_value(gateway, """
        import extdemo._single, extdemo.speed
        channel.send([extdemo._single.add(2, 3), extdemo.speed.ACCELERATED])
    """) == [5, True]


def test_tag_preferences_follow_pip():
    slave = {"implementation": "cpython", "version": [3, 11, 7], "abi": "cp311",
             "system": "linux", "machine": "x86_64", "libc": "glibc", "libc_version": [2, 36]}
    tags = compatible_tags(slave)
    assert tags[0] == ("cp311", "cp311", "manylinux_2_36_x86_64")
    assert ("cp311", "cp311", "manylinux2014_x86_64") in tags
    assert tags.index(("cp36", "abi3", "linux_x86_64")) < tags.index(("py3", "none", "any"))
    assert ("cp311", "cp311", "manylinux_2_37_x86_64") not in tags
    assert parse_wheel_name("six-1.17.0-py2.py3-none-any.whl") == (
        "six", "1.17.0", [("py2", "none", "any"), ("py3", "none", "any")])


def test_the_best_and_newest_fitting_wheel_is_chosen(tmp_path):
    for name in ("demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl",
                 "demo-1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
                 "demo-3.0-cp312-cp312-manylinux_2_17_x86_64.whl", "other-1.0-py2-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    slave = {"implementation": "cpython", "version": [3, 11, 7], "abi": "cp311",
             "system": "linux", "machine": "x86_64", "libc": "glibc", "libc_version": [2, 36]}
    assert [os.path.basename(path) for path in select(str(tmp_path), slave)] == [
        "demo-1.5-cp311-cp311-manylinux_2_17_x86_64.whl"]
