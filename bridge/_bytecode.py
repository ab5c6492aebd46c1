"""Bytecode for slaves whose magic number is the master's: compiled once, on the master.

The slave would otherwise compile every served module in every session (its
session folder is new each time). When the slave runs the master's bytecode
version, the master compiles the source once (cached by its hash) into an
*unchecked hash-based* .pyc (PEP 552, Python 3.7+): valid whatever mtime the
slave's copy of the source gets. It travels as one more content-addressed
file, ``__pycache__/<name>.<cache tag>.pyc``; CPython's loader points the code's
``co_filename`` at the slave's source path. Compiling runs nothing.
"""
import hashlib
import marshal

from ._facts import Facts

try:
    from importlib.util import MAGIC_NUMBER, source_hash
except ImportError:  # Python 2.7 or 3.6 masters: no hash-based pycs, no shipped bytecode
    MAGIC_NUMBER = source_hash = None

UNCHECKED_HASH_BASED = 0b01

def fits(slave):
    """Does this master's bytecode run on ``slave``?"""
    slave = Facts.of(slave)
    return (source_hash is not None and slave.magic == MAGIC_NUMBER.hex()
            and bool(slave.cache_tag))


def pyc_path(source_path, cache_tag):
    """``a/b.py`` -> ``a/__pycache__/b.<tag>.pyc``."""
    folder, _, filename = source_path.rpartition("/")
    name = "__pycache__/%s.%s.pyc" % (filename[:-len(".py")], cache_tag)
    return folder + "/" + name if folder else name


def compiled(cache, sha, read, disk=None):
    """(.pyc bytes, their sha256) of the source whose sha256 is ``sha`` (``read()``
    returns it, called only when neither ``cache`` nor the master's ``disk`` cache
    has an answer yet), or None: it does not compile."""
    return cache.get(sha, lambda: _kept_or_compiled(sha, read, disk))


def _kept_or_compiled(sha, read, disk):
    key = MAGIC_NUMBER.hex() + " " + sha
    pyc = disk.get("pyc", key) if disk is not None else None
    if pyc is not None:
        return pyc, hashlib.sha256(pyc).hexdigest()
    made = _compile(read())
    if made is not None and disk is not None:
        disk.put("pyc", key, made[0])
    return made


def _compile(source):
    try:
        code = compile(source, "<execnet-bridge>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None  # the slave compiles it and reports the error itself
    pyc = (MAGIC_NUMBER + UNCHECKED_HASH_BASED.to_bytes(4, "little")
           + source_hash(source) + marshal.dumps(code))
    return pyc, hashlib.sha256(pyc).hexdigest()
