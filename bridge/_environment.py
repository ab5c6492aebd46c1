"""Another interpreter's environment, read once, to serve slaves of its version.

A 3.11 master's own ``requests`` will not even parse on 2.7; pointing a 2.7
slave at a 2.7 interpreter's environment on the master gives it the 2.7
packages. The interpreter runs ``compat/paths.py`` and ``compat/tags.py``
(stdlib only) and prints its search path and tags; nothing of its packages
is imported.
"""
import json
import os
import subprocess

from .errors import BridgeError

PROBE = """
import json, sys
sys.path.insert(0, %r)
entries = [entry for entry in sys.path[1:] if entry]  # not '': the probe's own folder
from compat import paths, tags
facts = tags.facts(top_level=False)  # as the master's own: its names say what a slave has
sys.stdout.write(json.dumps({"path": paths.search_path(entries), "facts": facts}))
"""


def compat_parent():
    """The folder holding ``compat`` as a plain package (bridge/ installed, the checkout)."""
    from . import compat
    return os.path.dirname(os.path.dirname(os.path.abspath(compat.__file__)))


def read_environment(python):
    """(search path entries, tags) of interpreter ``python``; a BridgeError that says
    what went wrong when it cannot be run or does not answer."""
    try:
        probe = subprocess.Popen([python, "-E", "-c", PROBE % compat_parent()],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        raise BridgeError("cannot run python=%r to read its environment: %s" % (python, error))
    out, err = probe.communicate()
    if probe.returncode != 0:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["(nothing)"])[-1]
        raise BridgeError("python=%r exited with status %d while reading its environment; "
                          "its last words: %s" % (python, probe.returncode, last))
    try:
        found = json.loads(out.decode("utf-8"))
        return found["path"], found["facts"]
    except (ValueError, KeyError, TypeError):
        raise BridgeError("python=%r did not report its environment; it printed %r"
                          % (python, out[:200]))
