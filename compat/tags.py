"""What a compiled extension must match to run on this interpreter.

The slave reports these facts at the handshake; the master decides, per
binary, whether it may be sent. The loader cannot decide: CPython's
``ExtensionFileLoader`` and 2.7's ``imp.load_dynamic`` check no tags, and a
mismatched binary may load and crash later.
"""
import hashlib
import json
import os
import struct
import sys
import sysconfig
import time

from .files import keep_newest, make_folder, write_atomically
from .neutral import ensure_text, text_type

CS_GNU_LIBC_VERSION = 2  # os.confstr name, unknown to 2.7's os.confstr_names
NAMES_FOLDER = "names"  # in the cache root: top-level names per interpreter and path
NAMES_KEPT = 32  # interpreters and paths, most recently written
SETTLED_SECONDS = 2.0  # a folder changed since may change again within its mtime's tick


def implementation():
    """"cpython", "pypy": what platform.python_implementation() says, without importing
    platform (a handshake's millisecond) where sys.implementation says it (3.3+)."""
    name = getattr(getattr(sys, "implementation", None), "name", None)
    if name:
        return name.lower()
    import platform
    return platform.python_implementation().lower()


def machine():
    """platform.machine(), from os.uname where there is one, as platform does."""
    if hasattr(os, "uname"):
        return os.uname()[4]
    import platform
    return platform.machine()


def abi_tag():
    """The PEP 425 ABI tag: cp27mu, cp36m, cp311, cp313t, pypy39_pp73."""
    soabi = sysconfig.get_config_var("SOABI")
    if implementation() == "cpython" and soabi:
        return "cp" + soabi.split("-")[1]  # cpython-36m-x86_64-linux-gnu -> cp36m
    if soabi:
        return soabi.replace("-", "_").replace(".", "_")  # pypy39-pp73 -> pypy39_pp73
    flags = ""  # Python 2.7 has no SOABI: build the tag from its build flags
    if sysconfig.get_config_var("Py_DEBUG"):
        flags += "d"
    if sysconfig.get_config_var("WITH_PYMALLOC"):
        flags += "m"
    if sys.maxunicode == 0x10FFFF:
        flags += "u"
    return "cp%d%d%s" % (sys.version_info[0], sys.version_info[1], flags)


def extension_suffixes():
    """The file endings this interpreter loads as extensions, in its order."""
    try:
        from importlib.machinery import EXTENSION_SUFFIXES
    except ImportError:  # Python 2.7
        import imp
        return [suffix for suffix, _, kind in imp.get_suffixes() if kind == imp.C_EXTENSION]
    return list(EXTENSION_SUFFIXES)


def libc():
    """("glibc", [2, 36]), or (None, None) where the C library is not glibc."""
    try:
        value = os.confstr(CS_GNU_LIBC_VERSION)
    except (AttributeError, ValueError, OSError):
        return None, None
    if not value or not value.startswith("glibc "):
        return None, None
    return "glibc", [int(part) for part in value.split()[1].split(".")[:2]]


def libpython():
    """The shared libpython this interpreter runs on, if it was built shared."""
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return sysconfig.get_config_var("INSTSONAME")
    return None


def local_top_level_names(cache_root=None):
    """The top-level modules this slave can import by itself (builtins and its path),
    so the master knows which distributions to send along and which not. Listing the
    path is most of a handshake's work (18 ms of a bare 3.11's 60), so with a
    ``cache_root`` they are kept there, per interpreter and path, and listed again when
    a folder or zip of the path changed (its stat). A package folder that gains its
    ``__init__.py`` later changes no stat of the path: the master then sends what the
    slave has, and the slave's own finders still win (compat/importer3.py)."""
    kept_at = _names_file(cache_root) if cache_root else None
    stamps = _path_stamps()
    kept = _kept_names(kept_at, stamps) if kept_at else None
    if kept is not None:
        return kept
    import pkgutil
    names = set(sys.builtin_module_names)
    names.update(name for _, name, _ in pkgutil.iter_modules())
    names = sorted(text_type(name) for name in names)
    if kept_at and _settled(stamps):
        try:
            make_folder(os.path.dirname(kept_at))
            write_atomically(kept_at, json.dumps({"stamps": stamps, "names": names})
                             .encode("utf-8"))
        except (IOError, OSError):  # a full disk loses nothing but the next listing
            return names
        keep_newest(os.path.dirname(kept_at), NAMES_KEPT)
    return names


def _names_file(cache_root):
    key = json.dumps([sys.executable, sys.version, sys.path])
    return os.path.join(cache_root, NAMES_FOLDER,
                        hashlib.sha256(key.encode("utf-8")).hexdigest())


def _path_stamps():
    """[entry, mtime, size, inode] of each entry of ``sys.path`` (None where missing)."""
    stamps = []
    for entry in sys.path:
        try:
            status = os.stat(entry or os.curdir)
        except OSError:
            stamps.append([entry, None, None, None])
            continue
        stamps.append([entry, status.st_mtime, status.st_size, status.st_ino])
    return stamps


def _settled(stamps):
    now = time.time()
    return all(mtime is None or now - mtime > SETTLED_SECONDS for _, mtime, _, _ in stamps)


def _kept_names(kept_at, stamps):
    """The names kept at ``kept_at`` if the path's stamps are as they were, else None."""
    try:
        with open(kept_at, "rb") as stream:
            kept = json.loads(stream.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("stamps") != json.loads(json.dumps(stamps)):
        return None
    names = kept.get("names")
    if not isinstance(names, list) or not all(isinstance(name, text_type) for name in names):
        return None
    return names


def bytecode():
    """(magic number as hex, cache tag): whether the master's .pyc fit this slave."""
    try:
        from importlib.util import MAGIC_NUMBER
    except ImportError:  # Python 2.7: .pyc beside the source, no hash-based pycs
        return None, None
    tag = getattr(getattr(sys, "implementation", None), "cache_tag", None)
    return MAGIC_NUMBER.hex() if hasattr(MAGIC_NUMBER, "hex") else None, tag


def facts(cache_root=None):
    """Everything the master needs to serve this interpreter, as plain data
    (``cache_root``: where its listing of the path is kept)."""
    family, version = libc()
    found = {
        "implementation": implementation(),
        "version": list(sys.version_info[:3]),
        "abi": abi_tag(),
        "soabi": sysconfig.get_config_var("SOABI"),
        "extension_suffixes": extension_suffixes(),
        "platform": sysconfig.get_platform(),
        "system": sys.platform,
        "machine": machine(),
        "bits": struct.calcsize("P") * 8,
        "byteorder": sys.byteorder,
        "libc": family,
        "libc_version": version,
        "libpython": libpython(),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "executable": sys.executable or "",
        "top_level": local_top_level_names(cache_root),
        "magic": bytecode()[0],
        "cache_tag": bytecode()[1],
    }
    return dict((text_type(key), _plain(value)) for key, value in found.items())


def _plain(value):
    """Text for every string, so a 2.7 slave's facts arrive as text on 3.x."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, (bytes, text_type)):
        return ensure_text(value)
    return value
