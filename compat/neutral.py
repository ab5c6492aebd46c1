"""The few names that differ between Python 2.7 and 3.x, in one place.

The slave cannot rely on six, so this is the slave's own tiny version of it.
Python 3 is the ``else`` branch everywhere.
"""
import sys

PY2 = sys.version_info[0] == 2

if PY2:  # pragma: no cover - exercised on 2.7 slaves
    text_type = unicode  # noqa: F821
    binary_type = str
    string_types = (str, unicode)  # noqa: F821
    integer_types = (int, long)  # noqa: F821
else:
    text_type = str
    binary_type = bytes
    string_types = (str,)
    integer_types = (int,)

try:
    ModuleNotFoundError = ModuleNotFoundError
except NameError:  # Python < 3.6
    ModuleNotFoundError = ImportError

try:
    FileNotFoundError, NotADirectoryError = FileNotFoundError, NotADirectoryError
except NameError:  # 2.7
    FileNotFoundError = NotADirectoryError = IOError


def ensure_text(value, encoding="utf-8", errors="strict"):
    """Return ``value`` as text; execnet carries text and bytes as different types."""
    if isinstance(value, binary_type):
        return value.decode(encoding, errors)
    return value


def native_path(path):
    """``path`` as the native string a module's ``__file__`` is: 2.7's C code (warnings,
    among others) takes a unicode ``__file__`` for no file at all."""
    if PY2 and isinstance(path, text_type):
        return path.encode(sys.getfilesystemencoding() or "utf-8")
    return path


def dotted(parts):
    """``[3, 11, 7]`` -> ``"3.11.7"``: how both worlds print versions (and glibc's)."""
    return ".".join(str(part) for part in parts)


def import_error(message, name, cls=ImportError):
    """Build an ImportError carrying ``name``, which 2.7's ImportError cannot take."""
    if PY2:
        error = cls(message)
        error.name = name
        return error
    return cls(message, name=name)
