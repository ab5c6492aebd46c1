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
sys.stdout.write(json.dumps({"path": paths.search_path(entries), "facts": tags.facts()}))
"""


def compat_parent():
    """The folder holding ``compat`` as a plain package (bridge/ installed, the checkout)."""
    from . import compat
    return os.path.dirname(os.path.dirname(os.path.abspath(compat.__file__)))


def read_environment(python):
    """(search path entries, tags) of interpreter ``python``."""
    parent = compat_parent()
    try:
        out = subprocess.check_output([python, "-E", "-c", PROBE % parent])
    except (OSError, subprocess.CalledProcessError) as error:
        raise BridgeError("cannot read the environment of %s: %s" % (python, error))
    found = json.loads(out.decode("utf-8"))
    return found["path"], found["facts"]
