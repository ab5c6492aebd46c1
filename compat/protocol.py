"""The wire protocol between the master's responder and the slave's importer.

This is the only place that names message kinds and fields. A message is a
dict with text keys whose values are data only: text, bytes, integers, bools,
lists, dicts, None, and execnet channels during the handshake. execnet's
serializer carries them; nothing is ever pickled. Both channels are
reconfigured so that text stays text and bytes stay bytes between 2.7 and 3.x.

Handshake, over the channel of ``remote_exec(bootstrap)``::

    master -> slave   CONFIG     protocol, sources, options
    slave  -> master  HELLO      protocol, facts, channel (the request channel)
    master -> slave   READY      (the request channel now has its handler)
    slave  -> master  INSTALLED

Then, over the request channel, every FIND gets exactly one reply with the
same ``id``: MODULE, MISSING, REFUSED or ERROR. A MODULE reply carries module
*records*: the one asked for first, then modules it will import from the
same top-level package (prefetched, so an import statement costs one round
trip). A record lists its files as ``[path, sha256, bytes or None]``: None
where the slave's cache already holds that hash (HELLO's ``blobs``), and a
package's ``children`` so the slave answers "no such submodule" itself.

A DISTRIBUTIONS request asks for the metadata folders (``*.dist-info``,
``*.egg-info``) of one distribution by ``name``, or of all (``name`` None),
for ``importlib.metadata``. It gets a MODULE reply whose records have the
type METADATA (an empty list when ``name`` is None and there are none), or
MISSING. A listing of all sends only the files a listing reads (LISTED); a
record names the files it ``left_out``, which a request by name sends.
"""
import re

from .neutral import ensure_text, integer_types, string_types, text_type

PROTOCOL_VERSION = 4  # 2: EXTENSION; 3: records, blobs, children, prefetch; 4: DISTRIBUTIONS

# Message kinds.
CONFIG = "config"
HELLO = "hello"
READY = "ready"
INSTALLED = "installed"
FIND = "find"
DISTRIBUTIONS = "distributions"
MODULE = "module"
MISSING = "missing"
REFUSED = "refused"
ERROR = "error"
KINDS = (CONFIG, HELLO, READY, INSTALLED, FIND, DISTRIBUTIONS, MODULE, MISSING, REFUSED,
         ERROR)
REQUEST_KINDS = (FIND, DISTRIBUTIONS)
REPLY_KINDS = (MODULE, MISSING, REFUSED, ERROR)

# Module types carried by a MODULE reply.
SOURCE = "source"  # a single ``.py`` file
PACKAGE = "package"  # a directory with ``__init__.py``
NAMESPACE = "namespace"  # a PEP 420 portion: a directory without ``__init__``
EXTENSION = "extension"  # a compiled module, with the libraries that travel with it
METADATA = "metadata"  # a distribution's metadata folder; NAME is its normalized name
MODULE_TYPES = (SOURCE, PACKAGE, NAMESPACE, EXTENSION)
RECORD_TYPES = MODULE_TYPES + (METADATA,)

# Field names.
KIND = "kind"
ID = "id"
NAME = "name"
PROTOCOL = "protocol"
REASON = "reason"
TYPE = "type"
PATH = "path"  # mirror-relative path of the module's file, or directory for NAMESPACE
FILES = "files"  # [[mirror-relative path, sha256 hex, bytes or None]] to place
DIRS = "dirs"  # list of mirror-relative directories to create
CHILDREN = "children"  # a package's submodule names, all of them
ORIGIN = "origin"  # where the master found it, for messages only
MODULES = "modules"  # MODULE reply: the records, the requested one first
BLOBS = "blobs"  # HELLO: hashes in the slave's persistent cache
LOST = "lost"  # FIND, DISTRIBUTIONS: hashes the slave was told it had but could not use
ABSENT = "absent"  # MODULE reply: names it imports that neither side has
LEFT_OUT = "left_out"  # METADATA record: folder-relative files not sent (ask by name)
SOURCES = "sources"  # CONFIG: list of [module name, source text], in import order
OPTIONS = "options"
FACTS = "facts"
CHANNEL = "channel"
CACHE_LIMIT = "cache_limit"  # CONFIG options: the slave cache's size cap, in bytes
CACHE_PROBLEM = "cache_problem"  # HELLO: why the cache root was refused, or None

DEFAULT_CACHE_LIMIT = 1024 ** 3  # 1 GiB

# The metadata files a listing of all distributions sends; the rest on first read.
LISTED = ("METADATA", "PKG-INFO", "entry_points.txt", "top_level.txt")

MAX_NAME_LENGTH = 500
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # PEP 508 names


def message(kind, **fields):
    """Build a message; keys become text so a 2.7 peer sends ``unicode`` keys."""
    built = {text_type(KIND): text_type(kind)}
    for key, value in fields.items():
        built[text_type(key)] = value
    return built


def kind_of(msg):
    """Return the kind of a received message, or None if it is not a message."""
    if not isinstance(msg, dict):
        return None
    kind = msg.get(KIND)
    if isinstance(kind, string_types) and ensure_text(kind) in KINDS:
        return ensure_text(kind)
    return None


def find_request(name, lost=()):
    """A FIND request; the client adds the ``id`` when it sends it."""
    return message(FIND, name=text_type(name), lost=[text_type(sha) for sha in lost])


def distributions_request(name=None, lost=()):
    """A DISTRIBUTIONS request for distribution ``name``, or for all when None."""
    return message(DISTRIBUTIONS, name=None if name is None else text_type(name),
                   lost=[text_type(sha) for sha in lost])


def normalized_distribution(name):
    """The form both sides compare distribution names in: ``Foo.Bar-baz`` -> ``foo_bar_baz``
    (PEP 503's normalization, with the ``_`` that metadata folder names use)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def distribution_of(folder_name):
    """The normalized distribution name of a metadata folder's name
    (``Foo.Bar-1.0.dist-info`` -> ``foo_bar``), or None for any other name."""
    stem, _, suffix = folder_name.rpartition(".")
    if suffix not in ("dist-info", "egg-info"):
        return None
    return normalized_distribution(stem.split("-")[0])


def module_record(name, module_type, path, files, dirs, children, origin):
    return dict((text_type(key), value) for key, value in (
        (NAME, text_type(name)), (TYPE, text_type(module_type)), (PATH, text_type(path)),
        (FILES, files), (DIRS, dirs), (CHILDREN, children), (ORIGIN, text_type(origin))))


def metadata_record(name, folder, files, origin, left_out=()):
    """A METADATA record: a distribution's metadata folder, ``left_out`` the files of it
    not sent (folder-relative)."""
    record = module_record(name, METADATA, folder, files, [folder], [], origin)
    record[text_type(LEFT_OUT)] = [text_type(path) for path in left_out]
    return record


def module_reply(request_id, records, absent=()):
    return message(MODULE, id=request_id, modules=records,
                   absent=[text_type(name) for name in absent])


def refusal(kind, request_id, name, reason):
    """A MISSING, REFUSED or ERROR reply: the slave raises or returns None with ``reason``.

    Never fails: a bad request's name may be any bytes (a 2.7 master gets them as str).
    """
    return message(kind, id=request_id, name=text_type(ensure_text(name or "", errors="replace")),
                   reason=text_type(ensure_text(reason, errors="replace")))


def module_name_problem(name):
    """Return why ``name`` is not a valid dotted module name, or None if it is."""
    if not isinstance(name, string_types):
        return "module name must be text, not %s" % type(name).__name__
    if not name or len(name) > MAX_NAME_LENGTH:
        return "module name must have 1 to %d characters" % MAX_NAME_LENGTH
    for part in name.split("."):
        if not _IDENTIFIER.match(part):
            return "%r is not a dotted name of ASCII identifiers" % (name,)
    return None


def relative_path_problem(path):
    """Return why ``path`` may not be written under the slave's mirror, or None.

    The slave checks every path it is sent, so even a faulty master cannot
    make it write outside its cache directory.
    """
    if not isinstance(path, string_types) or not path:
        return "path must be non-empty text"
    if "\\" in path or "\0" in path or path.startswith("/"):
        return "path %r is not relative with forward slashes" % (path,)
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return "path %r has an empty, '.' or '..' part" % (path,)
    return None


def distribution_name_problem(name):
    """Return why ``name`` is not None or a valid distribution name, or None."""
    if name is None:
        return None
    if not isinstance(name, string_types):
        return "distribution name must be text or None, not %s" % type(name).__name__
    if len(name) > MAX_NAME_LENGTH or not _DISTRIBUTION.match(name):
        return "%r is not a distribution name" % (name,)
    return None


def request_problem(msg):
    """Return why ``msg`` is not a valid FIND or DISTRIBUTIONS request, or None."""
    kind = kind_of(msg)
    if kind not in REQUEST_KINDS:
        return "expected a %r or %r message" % REQUEST_KINDS
    if not isinstance(msg.get(ID), integer_types) or isinstance(msg.get(ID), bool):
        return "request id must be an integer"
    lost = msg.get(LOST)
    if lost is not None and not (isinstance(lost, list) and all(
            isinstance(sha, string_types) for sha in lost)):
        return "%r must be a list of hashes" % LOST
    if kind == DISTRIBUTIONS:
        return distribution_name_problem(msg.get(NAME))
    return module_name_problem(msg.get(NAME))
