"""The pytest-xdist recipe: bare workers get the controller's test dependencies."""
import subprocess
import sys

import pytest

from conftest import base_python, run_bounded, write_tree

INNER = '''
import sys
import pytest
import six


def test_runs_on_a_bare_worker_with_bridged_dependencies():
    assert sys.flags.no_site == 1  # nothing of its own beyond the standard library
    assert six.moves is not None and pytest.__version__
'''


def test_bare_xdist_workers_import_the_controllers_packages(tmp_path):
    pytest.importorskip("xdist")  # tox installs it in every env
    write_tree(tmp_path / "inner", {"test_inner.py": INNER})
    worker = "popen//python=%s -E -S" % base_python()  # bare: no site-packages at all
    code, out, _ = run_bounded(
        [sys.executable, "-m", "pytest", "-p", "bridge.xdist", "--dist", "load", "--tx",
         "2*" + worker, "-q", "-p", "no:cacheprovider", "test_inner.py"],
        tmp_path / "inner", stderr=subprocess.STDOUT)
    assert code == 0, out
    assert "1 passed" in out
