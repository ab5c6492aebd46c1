"""The bridge's own slave modules, compiled once per interpreter and host.

The master sends them as source, and compiling them was most of a handshake
(35 of a bare 3.11's 60 ms). Their code objects are kept in the verified
cache root, one file per interpreter build and version of the sources, with
the hash of its bytes in front: a file that does not match is compiled
again, never unmarshalled. Only this interpreter reads what it wrote:
``sys.version`` (build included) and the implementation are in the key.
"""
import hashlib
import marshal
import os
import sys

FOLDER = "code"
KEPT = 8  # interpreter builds and versions of the bridge, most recently written


def _path(root, sources):
    key = hashlib.sha256()
    tag = getattr(getattr(sys, "implementation", None), "cache_tag", None)
    key.update(("%s\0%s\0" % (sys.version, tag)).encode("utf-8"))
    for name, source in sources:
        key.update(("%s\0%s\0" % (name, source)).encode("utf-8"))
    return os.path.join(root, FOLDER, key.hexdigest())


def load(root, sources):
    """{name: code object} kept for these ``sources`` by this interpreter, or {}."""
    try:
        with open(_path(root, sources), "rb") as stream:
            kept = stream.read()
    except (IOError, OSError):
        return {}
    check, payload = kept[:64], kept[64:]
    if hashlib.sha256(payload).hexdigest().encode("ascii") != check:
        return {}
    try:
        compiled = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return {}
    return compiled if isinstance(compiled, dict) else {}


def keep(root, sources, compiled):
    """Keep ``compiled`` for the next session; a full disk loses nothing."""
    from .files import keep_newest, make_folder, write_atomically  # not early: see bootstrap
    payload = marshal.dumps(compiled)
    folder = os.path.join(root, FOLDER)
    try:
        make_folder(folder)
        write_atomically(_path(root, sources),
                         hashlib.sha256(payload).hexdigest().encode("ascii") + payload)
    except (IOError, OSError):
        return
    keep_newest(folder, KEPT)
