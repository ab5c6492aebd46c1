"""The bridge's own slave modules, compiled once per interpreter and host.

The master sends them as source, and compiling them was most of a handshake
(35 of a bare 3.11's 60 ms). Their code objects are kept in the verified
cache root, one file per interpreter build and version of the sources, with
the hash of its bytes in front: a file that does not match is compiled
again, never unmarshalled. Only this interpreter reads what it wrote:
``sys.version`` (build included), the implementation and the optimization
level are in the key. A slave with none kept asks the master for its code
objects when the master's key is its own (``fetch``): one round trip instead
of compiling, which 16 cold slaves starting on 2 cores did one after another.
"""
import hashlib
import marshal
import os
import sys
import zlib

FOLDER = "code"
KEPT = 8  # interpreter builds and versions of the bridge, most recently written


def key(sources):
    """Names the code objects this interpreter compiles from ``sources``: equal on two
    processes only where either could run the other's."""
    digest = hashlib.sha256()
    tag = getattr(getattr(sys, "implementation", None), "cache_tag", None)
    digest.update(("%s\0%s\0%d\0" % (sys.version, tag, sys.flags.optimize)).encode("utf-8"))
    for name, source in sources:
        digest.update(("%s\0%s\0" % (name, source)).encode("utf-8"))
    return digest.hexdigest()


def _path(root, sources):
    return os.path.join(root, FOLDER, key(sources))


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
    return _code_objects(payload)


def _code_objects(marshalled):
    """{name: code object} from ``marshalled``, or {} where it is not one."""
    try:
        compiled = marshal.loads(marshalled)
    except (EOFError, ValueError, TypeError):
        return {}
    return compiled if isinstance(compiled, dict) else {}


def fetch(channel, sources, offered):
    """{name: code object} the master compiled, when its key (``offered``, from the
    bootstrap frame) is this interpreter's, else {}: the slave compiles then. The
    request is the key itself; the answer zlib of marshal, or None."""
    if not offered or offered != key(sources):
        return {}
    channel.send(offered)
    payload = channel.receive()
    try:
        return _code_objects(zlib.decompress(payload))
    except (TypeError, zlib.error):  # None: the master could not compile them
        return {}


def encode(compiled):
    """The answer to ``fetch``, on the master, from the code objects it compiled."""
    return zlib.compress(marshal.dumps(compiled), 6)


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
