"""pytest-xdist workers that need nothing but a Python: the project and its dependencies
travel through the bridge.

    pytest -p bridge.xdist --dist load --tx "2*ssh=host//python=python3"

Every gateway xdist makes gets a bridge before xdist starts its worker there, so a bare
interpreter, on this host or another, imports pytest, xdist and everything the tests
import from the controller's environment. It also gets the project's files (the rootdir:
what git tracks, else the folder without virtual environments and caches; see
``_project``) in its cache, and works in the folder that matches the controller's: the
same arguments, ini file, conftests and data files, and a second run moves only what
changed. Reports name the controller's paths. ``bridge_project = false`` in the ini file
keeps the project at home (workers that see the controller's folder themselves);
``bridge_include``/``bridge_exclude`` add and remove paths. The worker's Python must be
one the controller's pytest supports.
"""
# The hooks live in bridge/_xdist.py: pytest rewrites the asserts of a plugin named by -p,
# and this module is all it rewrites.
from __future__ import absolute_import  # 2.7: ``xdist`` is pytest-xdist, not this module

from ._xdist import pytest_addoption, pytest_configure

__all__ = ["pytest_addoption", "pytest_configure"]  # the plugin's hooks
