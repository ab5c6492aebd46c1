"""Serving each slave from an environment of its own version."""
import os
import subprocess
import warnings

import execnet
import pytest

import bridge
from conftest import (base_python, execnet_cannot_start, find_python, remote_value,
                      slave_spec, write_tree)

PY3_ONLY = "def greet(name: str) -> str:\n    return f'hello {name}'\n"
PY2_OK = "def greet(name):\n    return 'hello %s' % name\n"


def environment(python, tmp_path, label, source):
    """An interpreter whose environment has module ``greeting`` with ``source``: a venv,
    or on 2.7 (no venv) its user site-packages under a HOME of ours, through a launcher."""
    folder = str(tmp_path / ("env-" + label))
    if label != "2.7":
        subprocess.check_call([python, "-m", "venv", "--without-pip", folder])
        interpreter = os.path.join(folder, "bin", "python")
    else:
        interpreter = os.path.join(folder, "python2.7")
        os.makedirs(folder)
        with open(interpreter, "w") as stream:
            stream.write('#!/bin/sh\nHOME=%s exec %s "$@"\n' % (folder, python))
        os.chmod(interpreter, 0o755)
    site = subprocess.check_output([interpreter, "-c", "import site, sysconfig; print("
                                    "site.USER_SITE if %r == '2.7' else "
                                    "sysconfig.get_paths()['purelib'])" % label])
    write_tree(site.decode().strip(), {"greeting.py": source})
    return interpreter


def test_a_2_7_slave_and_a_3_slave_each_get_their_environment(tmp_path, cache_root):
    """2.7 from a 2.7 environment, a 3.x one from a 3.x venv, and a slave of the
    master's own Python from the master's own environment, side by side."""
    old, new = find_python("2.7")[0], find_python("3.11")[0] or find_python("3.13")[0]
    if not old or not new or execnet_cannot_start("2.7"):
        pytest.skip("needs Python 2.7 and 3.11/3.13 slaves")
    env27 = environment(old, tmp_path, "2.7", PY2_OK)
    env3 = environment(new, tmp_path, "3", PY3_ONLY)
    group = execnet.Group()
    try:
        slave27 = group.makegateway(slave_spec(old, str(tmp_path)))
        slave3 = group.makegateway(slave_spec(new, str(tmp_path)))
        own = group.makegateway(slave_spec(base_python(), str(tmp_path)))  # bare, our version
        bridge.install(slave27, python=env27, cache_root=cache_root)
        bridge.install(slave3, python=env3, cache_root=cache_root)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # same version: no mismatch warning
            bridge.install(own, cache_root=cache_root)  # the master's own environment
        source = "import greeting\nchannel.send(greeting.greet('fleet'))"
        assert remote_value(slave27, source) == remote_value(slave3, source) == "hello fleet"
        assert remote_value(own, """
            import sys, six
            channel.send([sys.flags.no_site, six.__version__])
        """) == [1, __import__("six").__version__]
    finally:
        group.terminate(timeout=10)


def test_the_wrong_environment_warns_and_fails_with_a_clear_error(tmp_path, cache_root):
    old, new = find_python("2.7")[0], find_python("3.11")[0] or find_python("3.13")[0]
    if not old or not new or execnet_cannot_start("2.7"):
        pytest.skip("needs Python 2.7 and 3.11/3.13 slaves")
    env3 = environment(new, tmp_path, "3", PY3_ONLY)
    group = execnet.Group()
    try:
        slave27 = group.makegateway(slave_spec(old, str(tmp_path)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bridge.install(slave27, python=env3, cache_root=cache_root)
        assert [w.category for w in caught] == [bridge.EnvironmentMismatchWarning]
        assert "2.7 slave" in str(caught[0].message)
        message = remote_value(slave27, """
            try:
                import greeting
            except ImportError as error:
                channel.send(str(error))
        """)
        assert "does not parse on Python 2.7" in message
        assert "bridge.install(gateway, python=...)" in message
    finally:
        group.terminate(timeout=10)
