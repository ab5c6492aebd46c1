"""An interpreter's search path without its standard library: what a master serves.

Never shipped to a slave, yet part of the slave world (``compat/``): the master
runs it for itself, and ``install(python=...)`` runs it in another interpreter
(any version from 2.7, with nothing but its standard library) to serve a slave
from that interpreter's environment. tests/test_standalone.py holds it to the
same rules as the shipped files.
"""
import json
import os
import sys
import sysconfig


def standard_library_paths():
    """This interpreter's own standard library: never served (a slave has its own).

    A virtual environment keeps the real one under ``base_prefix`` (venv) or
    ``real_prefix`` (2.7 virtualenv), so every prefix is asked.
    """
    prefixes = set(getattr(sys, name, None) for name in
                   ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix", "real_prefix"))
    found = set()
    for prefix in prefixes.difference([None]):
        chosen = dict((key, prefix) for key in ("base", "platbase", "installed_base",
                                                "installed_platbase"))
        paths = sysconfig.get_paths(vars=chosen)
        for key in ("stdlib", "platstdlib"):
            found.add(paths[key])
            found.add(os.path.join(paths[key], "lib-dynload"))
        found.add(os.path.join(prefix, "lib", "python%d%d.zip" % sys.version_info[:2]))
    found.add(os.path.dirname(os.__file__))
    found.add(os.path.dirname(os.path.dirname(json.__file__)))
    return set(os.path.realpath(path) for path in found)


def search_path(entries=None):
    """``entries`` (default ``sys.path``) without the standard library, absolute."""
    stdlib = standard_library_paths()
    return [os.path.abspath(entry or os.curdir) for entry in (sys.path if entries is None
                                                               else entries)
            if os.path.realpath(entry or os.curdir) not in stdlib]
