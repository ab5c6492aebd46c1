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
    path is most of a handshake's work (25 ms of a bare 3.11's, pkgutil's import
    included), so with a ``cache_root`` each entry's names are kept there, per
    interpreter and path, and an entry is listed again when its folder or zip changed
    (its stat): the working folder, often new or just written, alone. A package folder
    that gains its ``__init__.py`` later changes no stat of the path: the master then
    sends what the slave has, and the slave's own finders still win
    (compat/importer3.py)."""
    kept_at = _names_file(cache_root) if cache_root else None
    kept = _kept_entries(kept_at) if kept_at else {}
    names = set(sys.builtin_module_names)
    entries, changed = [], False
    for index, entry in enumerate(sys.path):
        if entry in sys.path[:index]:
            continue
        stamp = _stamp(entry)
        was = kept.get(entry)
        if was is not None and was[0] == stamp:
            listed = was[1]
        else:
            listed, changed = _entry_names(entry), True
        names.update(listed)
        if _settled(stamp):  # else it may change again unseen within its mtime's tick
            entries.append([entry, stamp, listed])
    if kept_at and (changed or len(entries) != len(kept)):
        _keep_entries(kept_at, entries)
    return sorted(text_type(name) for name in names)


def _names_file(cache_root):
    key = json.dumps([sys.executable, sys.version, sys.path])
    return os.path.join(cache_root, NAMES_FOLDER,
                        hashlib.sha256(key.encode("utf-8")).hexdigest())


def _stamp(entry):
    """[mtime, size, inode] of a ``sys.path`` entry ("": the working folder), or None."""
    try:
        status = os.stat(entry or os.curdir)
    except OSError:
        return None
    return json.loads(json.dumps([status.st_mtime, status.st_size, status.st_ino]))


def _settled(stamp):
    return stamp is None or time.time() - stamp[0] > SETTLED_SECONDS


def _entry_names(entry):
    """The top-level names one entry offers, by pkgutil.iter_modules' rule: a folder
    listed here (pkgutil's import costs 12 ms on 3.11: inspect, typing), else pkgutil."""
    folder = entry or os.curdir
    if os.path.isdir(folder):
        return _folder_names(folder, _module_suffixes())
    if not os.path.exists(folder):
        return []
    import pkgutil
    return [ensure_text(name) for _, name, _ in pkgutil.iter_modules([entry])]


def _folder_names(folder, suffixes):
    """Modules (a file with an import suffix) and packages (a folder with an
    ``__init__`` module) directly in ``folder``, no name with a dot."""
    try:
        found = os.listdir(folder)
    except OSError:
        return []
    names = set()
    for name in found:
        stem = _module_name(name, suffixes)
        if stem is None and "." not in name and _is_package(os.path.join(folder, name),
                                                             suffixes):
            stem = name
        if stem and stem != "__init__" and "." not in stem:
            names.add(ensure_text(stem))
    return sorted(names)


def _is_package(folder, suffixes):
    try:
        found = os.listdir(folder)
    except OSError:  # not a folder, or not ours to read
        return False
    return any(_module_name(name, suffixes) == "__init__" for name in found)


def _module_name(file_name, suffixes):
    """inspect.getmodulename's rule: the name less its longest matching suffix."""
    for suffix in suffixes:
        if file_name.endswith(suffix):
            return file_name[:-len(suffix)]
    return None


def _module_suffixes():
    """Every suffix this interpreter imports from, longest first."""
    try:
        from importlib.machinery import all_suffixes
        found = all_suffixes()
    except ImportError:  # Python 2.7
        import imp
        found = [suffix for suffix, _, _ in imp.get_suffixes()]
    return sorted(found, key=len, reverse=True)


def _kept_entries(kept_at):
    """{entry: [stamp, names]} kept at ``kept_at`` by an earlier session, or {}."""
    try:
        with open(kept_at, "rb") as stream:
            kept = json.loads(stream.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return {}
    entries = kept.get("entries") if isinstance(kept, dict) else None
    found = {}
    for item in entries if isinstance(entries, list) else ():
        if (isinstance(item, list) and len(item) == 3 and isinstance(item[2], list)
                and all(isinstance(name, text_type) for name in item[2])):
            found[item[0]] = [item[1], item[2]]
    return found


def _keep_entries(kept_at, entries):
    try:
        make_folder(os.path.dirname(kept_at))
        write_atomically(kept_at, json.dumps({"entries": entries}).encode("utf-8"))
    except (IOError, OSError):  # a full disk loses nothing but the next listing
        return
    keep_newest(os.path.dirname(kept_at), NAMES_KEPT)


def bytecode():
    """(magic number as hex, cache tag): whether the master's .pyc fit this slave."""
    try:
        from importlib.util import MAGIC_NUMBER
    except ImportError:  # Python 2.7: .pyc beside the source, no hash-based pycs
        return None, None
    tag = getattr(getattr(sys, "implementation", None), "cache_tag", None)
    return MAGIC_NUMBER.hex() if hasattr(MAGIC_NUMBER, "hex") else None, tag


def facts(cache_root=None, top_level=True):
    """Everything the master needs to serve this interpreter, as plain data
    (``cache_root``: where its listing of the path is kept). ``top_level``: False for
    the master's own, of which nothing reads them (a listing of the path is 12-15 ms of
    a fresh pytest controller here, more where its folders are not in the page cache)."""
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
        "magic": bytecode()[0],
        "cache_tag": bytecode()[1],
    }
    if top_level:
        found["top_level"] = local_top_level_names(cache_root)
    return dict((text_type(key), _plain(value)) for key, value in found.items())


def _plain(value):
    """Text for every string, so a 2.7 slave's facts arrive as text on 3.x."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, (bytes, text_type)):
        return ensure_text(value)
    return value
