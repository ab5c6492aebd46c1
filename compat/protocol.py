"""The wire protocol between the master's responder and the slave's importer.

This is the only place that names message kinds and fields. A message is a
dict with text keys whose values are data only: text, bytes, integers, bools,
lists, dicts, None, and execnet channels during the handshake. execnet's
serializer carries them; nothing is ever pickled. Both channels are
reconfigured so that text stays text and bytes stay bytes between 2.7 and 3.x.

Handshake, over the channel of ``remote_exec(bootstrap)``::

    master -> slave   the bootstrap frame (``bootstrap_frame``): a bare list, not a
                      message (this module is one of the sources): the [module name,
                      source] pairs in import order, CONFIG's CACHE_ROOT, which the
                      slave opens, to run the modules it compiled there before, before
                      it has this module, and the key (``codecache.key``) of the code
                      objects the master compiled from them, or None
    master -> slave   CONFIG     protocol, options (TIMEOUT, CACHE_ROOT, ENVIRONMENT,
                                 CACHE_LIMIT, SUBPROCESSES)
    slave  -> master  only a slave with no code objects kept for these sources whose
                      own key is that key: the bare key (``codecache.fetch``)
    master -> slave   its answer: bare bytes, zlib of marshal of {name: code object}
                      (``codecache.encode``), or None
    slave  -> master  HELLO      protocol, facts, channel (requests), cache_dir,
                                 cache_problem
    master -> slave   PING       (answered with a bare PING, as often as the master asks;
                                 one may carry a ``payload`` of bytes: the round trip and
                                 the bandwidth decide which bodies travel compressed)
    master -> slave   READY      (the request channel now has its handler)
    slave  -> master  INSTALLED

Then, over the request channel, every FIND gets exactly one reply with the
same ``id``: MODULE, MISSING, REFUSED or ERROR. A MODULE reply carries module
*records*: the one asked for first, then modules it will import from the
same top-level package (prefetched, so an import statement costs one round
trip). A record lists its files as ``[path, sha256, bytes or None]``: None
where the slave's cache already holds that hash, and a package's ``children``
so the slave answers "no such submodule" itself, and its ``entries`` (the names
in its folders) so that it lists as installed before the rest of it came.

The files of one reply make one *tree* (``tree_id``: their paths and hashes),
which the slave keeps as an immutable folder and reuses in later sessions. A
request's ``have`` names the trees the slave holds from earlier replies to the
same request; when the reply's tree is one of them, the reply is *lean*: its
``tree`` names it and its records carry no files. Otherwise each record whose
files a tree of ``have`` holds just so is lean on its own (``in_tree`` names
that tree), and the records left make the reply's tree (``tree_id`` leaves the
``in_tree`` ones out): a second session whose replies bring more together than
the first's reuses the first's trees as they are. A slave that cannot use what a
reply says it holds asks again with ``lost``, and the master then sends all. On a
slow link (PING measures it during the handshake) bodies travel
zlib-compressed where that pays; a record's ``compressed`` lists their hashes.
A MODULE reply sends its records ``packed``: one JSON text (UTF-8 bytes) in place
of ``modules``, each body in them named by its index in ``packed_bodies``, as
execnet's serializer is pure Python and costs per object (sympy's reply: 486
records, 976 files); not where a hop is to fill bodies in (``at_hop``).

A MODULE reply carries at most INLINE_BYTES of bodies itself. The rest, and any
body larger than CHUNK_BYTES, travel ahead of it, in BODIES frames with the
reply's ``id`` of about CHUNK_BYTES each: ``pieces`` of bodies, in order
(``piece``). The slave writes each piece to its cache as it comes and checks
each body against its hash once it is whole, so neither side ever holds a large
reply whole, and a frame shows progress within a big file. The reply's records
then name those bodies with None, as held.

Later, the master runs CONTROL_SOURCE (``remote_exec``) and sends it one
message: UNINSTALL, answered by UNINSTALLED (``removed``), or RUN: run a
module the bridge serves, or a script, as ``runpy`` does, with that channel
as the program's ``channel``, or ENTER: fetch the project the master offers
and work in it (``workdir``, relative to its folder), answered by ENTERED
(``path`` of the project's folder there, or ``reason``).

A PROJECT request (no ``name``; ``holds``: the hashes of the project trees the
slave kept) asks for the folder of files the master offers (pytest-xdist's
rootdir). It gets a MODULE reply with one FOLDER record (its ``files``, and
its ``dirs``), lean when its tree is one the request's ``have`` names; a body
the slave holds in a kept tree travels as None.

A DISTRIBUTIONS request asks for the metadata folders (``*.dist-info``,
``*.egg-info``) of one distribution by ``name``, or of all (``name`` None),
for ``importlib.metadata``. It gets a MODULE reply whose records have the
type METADATA (an empty list when ``name`` is None and there are none), or
MISSING. A listing of all sends only the files a listing reads (LISTED); a
record names the files it ``left_out``, which a request by name sends.
"""
import hashlib
import json
import re
import zlib

from .neutral import binary_type, ensure_text, integer_types, string_types, text_type

PROTOCOL_VERSION = 11  # 2: EXTENSION; 3: records, blobs, children, prefetch; 4: DISTRIBUTIONS;
# 5: the control channel (UNINSTALL, RUN); 6: trees (``have`` names trees, lean replies);
# 7: BODIES frames ahead of a reply; 8: a package's ENTRIES, the SUBPROCESSES option;
# 9: PROJECT (a folder of files the master offers, entered with ENTER); 10: IN_TREE records;
# 11: PACKED records


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
UNINSTALL = "uninstall"
UNINSTALLED = "uninstalled"
RUN = "run"
PING = "ping"
BODIES = "bodies"
PROJECT = "project"
ENTER = "enter"
ENTERED = "entered"
KINDS = (CONFIG, HELLO, READY, INSTALLED, FIND, DISTRIBUTIONS, MODULE, MISSING, REFUSED,
         ERROR, UNINSTALL, UNINSTALLED, RUN, PING, BODIES, PROJECT, ENTER, ENTERED)
REQUEST_KINDS = (FIND, DISTRIBUTIONS, PROJECT)
REPLY_KINDS = (MODULE, MISSING, REFUSED, ERROR)

# Module types carried by a MODULE reply.
SOURCE = "source"  # a single ``.py`` file
PACKAGE = "package"  # a directory with ``__init__.py``
NAMESPACE = "namespace"  # a PEP 420 portion: a directory without ``__init__``
EXTENSION = "extension"  # a compiled module, with the libraries that travel with it
METADATA = "metadata"  # a distribution's metadata folder; NAME is its normalized name
FOLDER = "folder"  # PROJECT: the files of the folder the master offers; NAME is its name
MODULE_TYPES = (SOURCE, PACKAGE, NAMESPACE, EXTENSION)
RECORD_TYPES = MODULE_TYPES + (METADATA, FOLDER)

# Field names.
KIND = "kind"
ID = "id"
NAME = "name"
PROTOCOL = "protocol"
REASON = "reason"
TYPE = "type"
PATH = "path"  # root-relative path (below the master's path entry; the same in a tree) of the module's file, or directory for NAMESPACE
FILES = "files"  # [[root-relative path, sha256 hex, bytes or None]] to place
DIRS = "dirs"  # list of root-relative directories to create
CHILDREN = "children"  # a package's submodule names, all of them
ENTRIES = "entries"  # PACKAGE records: [[name, ENTRY_*]] of its folders' files and folders
ORIGIN = "origin"  # where the master found it, for messages only
MODULES = "modules"  # MODULE reply: the records, the requested one first
PACKED = "packed"  # MODULE reply instead of MODULES: its records as JSON bytes
PACKED_BODIES = "packed_bodies"  # beside PACKED: the bodies its records name by index
HAVE = "have"  # FIND, DISTRIBUTIONS: ids of trees the slave holds (earlier replies')
LOST = "lost"  # FIND, DISTRIBUTIONS: tree ids or hashes the slave could not use after all
HOLDS = "holds"  # PROJECT: hashes of the files of the project trees the slave holds
TREE = "tree"  # MODULE reply, lean: the slave's tree that holds every file of the records
IN_TREE = "in_tree"  # a record, lean on its own: the slave's tree that holds its files
ABSENT = "absent"  # MODULE reply: names it imports that neither side has
REFUSALS = "refusals"  # MODULE reply: [[name, reason]] it imports that may not be served
COMPRESSED = "compressed"  # MODULE records: hashes whose bodies travel zlib-compressed
AT_HOP = "at_hop"  # MODULE records: hashes sent as None for the leaf's hop to fill (relay.py)
PAYLOAD = "payload"  # PING: bytes that only time the link's bandwidth (never echoed)
PIECES = "pieces"  # BODIES: [[sha256, offset, size of the whole body, bytes, compressed]]
# Where each field of a FILES entry and of a piece stands (they travel as lists).
FILE_PATH, FILE_SHA, FILE_BODY = 0, 1, 2
PIECE_SHA, PIECE_OFFSET, PIECE_SIZE, PIECE_BYTES, PIECE_COMPRESSED = 0, 1, 2, 3, 4
LEFT_OUT = "left_out"  # METADATA record: folder-relative files not sent (ask by name)
OPTIONS = "options"  # CONFIG: the install() settings the slave needs, keys below
FACTS = "facts"  # HELLO: the slave's tags and facts (compat/tags.py)
CHANNEL = "channel"  # HELLO: the request channel
CACHE_DIR = "cache_dir"  # HELLO: the slave's session folder
CACHE_PROBLEM = "cache_problem"  # HELLO: why the cache root was refused, or None
REMOVED = "removed"  # UNINSTALLED: whether a hook was installed and is now gone
MODULE_NAME = "module"  # RUN: the module to run, or None for a script
SOURCE_TEXT = "source"  # RUN: the script's source, or None for a module
FILENAME = "filename"  # RUN: the script's file name, for tracebacks
RUN_NAME = "run_name"  # RUN: ``__name__`` while it runs
ARGV = "argv"  # RUN: sys.argv while it runs, or None to leave sys alone
OUTPUT = "output"  # RUN: send stdout/stderr and the exit status over the channel
WORKDIR = "workdir"  # ENTER: the folder to work in, relative to the project's folder

# What an ENTRIES item is: a file, a folder, or a folder with an ``__init__`` (a package).
ENTRY_FILE = "file"
ENTRY_FOLDER = "folder"
ENTRY_PACKAGE = "package"
ENTRY_KINDS = (ENTRY_FILE, ENTRY_FOLDER, ENTRY_PACKAGE)

# CONFIG's option keys.
TIMEOUT = "timeout"  # seconds any one wait may take
CACHE_ROOT = "cache_root"  # the folder the slave caches under, or absent: its default
ENVIRONMENT = "environment"  # [major, minor] the served packages were made for, or absent
CACHE_LIMIT = "cache_limit"  # the slave cache's size cap, in bytes
SUBPROCESSES = "subprocesses"  # True: bridge the slave's own interpreter's subprocesses too

# HELLO's FACTS: what an interpreter says of itself (compat/tags.py makes them; the
# master reads them by these names, through bridge._facts.Facts).
FACT_NAMES = (
    "implementation",  # "cpython", "pypy"
    "version",  # [major, minor, micro]
    "abi",  # the PEP 425 ABI tag: cp27mu, cp311, cp314t, pypy39_pp73
    "soabi",  # sysconfig's SOABI, or None (2.7)
    "extension_suffixes",  # the file endings it loads as extensions, in its order
    "platform",  # sysconfig.get_platform()
    "system",  # sys.platform
    "machine",  # platform.machine()
    "bits",  # pointer size in bits
    "byteorder",  # "little", "big"
    "libc",  # "glibc", or None
    "libc_version",  # [major, minor] of glibc, or None
    "libpython",  # the soname of a shared libpython, or None
    "free_threaded",  # a CPython built without the GIL
    "executable",  # sys.executable
    "top_level",  # the top-level modules it imports by itself
    "magic",  # its bytecode magic number as hex, or None (2.7)
    "cache_tag",  # its .pyc cache tag, or None (2.7)
)

DEFAULT_CACHE_LIMIT = 1024 ** 3  # 1 GiB

CHUNK_BYTES = 1024 * 1024  # bytes of bodies in one BODIES frame, about; larger bodies go in pieces
INLINE_BYTES = CHUNK_BYTES  # bytes of bodies a MODULE reply carries itself, at most: a wait for
# any one message then lasts about a frame, so ``timeout`` holds on a slow link too
MAX_BODY_BYTES = 1024 ** 4  # a piece naming a larger body is refused

# The slave-side package the bootstrap materialises the sources as (bootstrap.PACKAGE),
# and the program the master runs there to send UNINSTALL or RUN.
SLAVE_PACKAGE = "_execnet_bridge"
CONTROL_SOURCE = "from _execnet_bridge.hook import control\ncontrol(channel)\n"

# The forwarding hop (relay.py): the master runs RELAY_SOURCE on a bridged hop, which starts
# the leaf and copies frames; over a control channel of its own the master names the leaf's
# request channel (WATCH -> WATCHING), and the relay reports each reply it filled (FILLED).
RELAY_SOURCE = "from _execnet_bridge.relay import serve\nserve(channel)\n"
WATCH = "watch"
WATCHING = "watching"
FILLED = "filled"
RELAY_KINDS = (WATCH, WATCHING, FILLED)
FILLED_BYTES = "filled_bytes"  # FILLED: bytes of bodies the hop filled from its cache
FILLED_BODIES = "filled_bodies"  # FILLED: how many
UNFILLED = "unfilled"  # FILLED: hashes named AT_HOP the hop could not fill (left for the leaf)
STORED_BYTES = "stored_bytes"  # FILLED: bytes of bodies the hop stored from this reply
SECONDS = "seconds"  # FILLED: the relay's time on this reply (waiting for stores, filling)

# The metadata files a listing of all distributions sends; the rest on first read.
# pkg_resources reads the last two from disk: require() for an egg-info, and the
# namespace packages every distribution declares when it is activated.
LISTED = ("METADATA", "PKG-INFO", "entry_points.txt", "top_level.txt", "requires.txt",
          "namespace_packages.txt")

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


def bootstrap_frame(sources, cache_root=None, code_key=None):
    """The first thing the master sends: [sources, the cache root CONFIG names or None,
    the key of the code objects it can send or None]."""
    return [sources, text_type(cache_root) if cache_root else None,
            text_type(code_key) if code_key else None]


def config(timeout, cache_root=None, environment=None, cache_limit=DEFAULT_CACHE_LIMIT,
           subprocesses=False):
    """CONFIG: the protocol version and the options the slave needs."""
    options = {text_type(TIMEOUT): float(timeout), text_type(CACHE_LIMIT): int(cache_limit),
               text_type(SUBPROCESSES): bool(subprocesses)}
    if cache_root:
        options[text_type(CACHE_ROOT)] = text_type(cache_root)
    if environment:
        options[text_type(ENVIRONMENT)] = [int(part) for part in environment[:2]]
    return message(CONFIG, protocol=PROTOCOL_VERSION, options=options)


def option(config_message, key, default=None):
    """One of CONFIG's options, as sent (None and absent mean ``default``)."""
    value = (config_message.get(OPTIONS) or {}).get(key)
    return default if value is None else value


def hello(facts, requests, cache_dir, cache_problem=None):
    """HELLO: who the slave is, its request channel, and why it refused its cache root
    (None: it did not). Nothing in it grows with the slave's cache."""
    return message(HELLO, protocol=PROTOCOL_VERSION, facts=facts, channel=requests,
                   cache_dir=text_type(cache_dir), cache_problem=cache_problem)


def ready():
    return message(READY)


def ping(payload=None):
    """PING; ``payload`` (bytes) times the bandwidth: the answer is a bare PING either way."""
    if payload is None:
        return message(PING)
    return message(PING, payload=payload)


def installed():
    return message(INSTALLED)


def uninstall():
    return message(UNINSTALL)


def project_request(lost=(), have=(), holds=()):
    """PROJECT: the files of the folder the master offers (``Bridge.place_project``).
    ``holds``: hashes of files the slave holds from earlier project trees, so a changed
    project moves only what changed, whatever master process answers."""
    return message(PROJECT, lost=[text_type(sha) for sha in lost],
                   have=[text_type(sha) for sha in have],
                   holds=[text_type(sha) for sha in holds])


def enter(workdir):
    """ENTER (control): fetch the project's files and work in ``workdir`` of them."""
    return message(ENTER, workdir=text_type(workdir))


def entered(path=None, reason=None):
    """ENTERED: the project's folder on the slave (``path``), or why it has none."""
    return message(ENTERED, path=None if path is None else text_type(path),
                   reason=None if reason is None else text_type(reason))


def folder_record(name, files, dirs):
    """The FOLDER record of a PROJECT reply: ``files`` and ``dirs`` relative to it."""
    return module_record(name, FOLDER, "", files, dirs, [], name)


def uninstalled(removed):
    return message(UNINSTALLED, removed=bool(removed))


def run_request(module=None, source=None, filename=None, run_name=None, argv=None,
                output=False):
    """RUN: run ``module`` (served by the bridge) or a script's ``source``, with the
    control program's channel as its ``channel``.

    ``argv``: sys.argv while it runs (None: sys is left alone). ``output``: the
    program's stdout and stderr travel as ``output_frame``s, OUT and ERR, and its exit
    status as an EXIT frame; otherwise an exception closes the channel with its
    traceback, as execnet's ``remote_exec`` does."""
    return message(RUN, module=None if module is None else text_type(module),
                   source=None if source is None else text_type(source),
                   filename=None if filename is None else text_type(filename),
                   run_name=text_type(run_name or module or "__main__"),
                   argv=None if argv is None else [text_type(arg) for arg in argv],
                   output=bool(output))


# What a RUN with ``output`` sends over its channel: (OUT or ERR, text)... (EXIT, code).
OUT, ERR, EXIT = "out", "err", "exit"


def output_frame(stream, payload):
    """One frame of a running program's output (OUT, ERR: text) or its end (EXIT: code)."""
    return (text_type(stream), payload)


def find_request(name, lost=(), have=()):
    """A FIND request; the client adds the ``id`` when it sends it. ``have``: ids of the
    trees the slave holds from earlier replies to the same request (``request_keys``)."""
    return message(FIND, name=text_type(name), lost=[text_type(sha) for sha in lost],
                   have=[text_type(sha) for sha in have])


def distributions_request(name=None, lost=(), have=()):
    """A DISTRIBUTIONS request for distribution ``name``, or for all when None."""
    return message(DISTRIBUTIONS, name=None if name is None else text_type(name),
                   lost=[text_type(sha) for sha in lost], have=[text_type(sha) for sha in have])


def add_have(request, trees):
    """Name in ``request`` the trees the slave holds that its reply may be."""
    request[text_type(HAVE)] = [text_type(ensure_text(tree)) for tree in trees]


def tree_id(records):
    """The id of the tree ``records``' files and folders make: a hash of their paths and
    hashes, in any order, so master and slave compute it alike on 2.7 and 3.x. A record
    ``in_tree`` another tree is not part of it."""
    lines = set()
    for record in records:
        if record.get(IN_TREE):
            continue
        for folder in record.get(DIRS) or ():
            lines.add(u"d " + ensure_text(folder))
        for path, sha, _ in record.get(FILES) or ():
            lines.add(u"f %s %s" % (ensure_text(sha), ensure_text(path)))
    return hashlib.sha256(u"\n".join(sorted(lines)).encode("utf-8")).hexdigest()


def lean(records):
    """``records`` without their files and folders: the slave's tree holds them."""
    stripped = []
    for record in records:
        record = dict(record)
        for field in (FILES, DIRS, COMPRESSED):
            record[text_type(field)] = []
        stripped.append(record)
    return stripped


def in_tree(record, tree):
    """``record`` lean on its own: the slave's tree ``tree`` holds its files."""
    lean_record = lean([record])[0]
    lean_record[text_type(IN_TREE)] = text_type(tree)
    return lean_record


def is_sha256_hex(text):
    """Is ``text`` (text) a sha256 in lowercase hex, as blob names and tree ids are?"""
    return len(text) == 64 and not text.strip("0123456789abcdef")


def tree_of(record):
    """The tree a lean record names (``in_tree``), as text; None where it carries its
    files; ValueError where it names no tree id."""
    tree = record.get(IN_TREE)
    if tree is None:
        return None
    tree = ensure_text(tree) if isinstance(tree, (text_type, binary_type)) else ""
    if not is_sha256_hex(tree):
        raise ValueError("a record names a tree that is no tree id: %r" % (tree,))
    return tree


def record_signature(record):
    """What a tree holds of ``record``: its name and its files' and folders' paths and
    hashes. Equal signatures: one tree serves both records."""
    return tree_id([record]) + u" " + ensure_text(record.get(NAME) or "")

def request_keys(msg):
    """What names a request across sessions, for the slave's ``have``: its kind and name
    (the trees replies to this very request made, which a lean reply names) and, for a
    FIND, its kind and package (``pkg.*``: the trees of any request in it; a reply to
    ``pkg.sub`` may bring what ``pkg`` brought, and the master then leaves those out)."""
    name = msg.get(NAME) or "*"
    keys = ["%s %s" % (kind_of(msg), name)]
    if kind_of(msg) == FIND:
        keys.append("%s %s.*" % (kind_of(msg), name.split(".")[0]))
    return keys


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


def module_record(name, module_type, path, files, dirs, children, origin, compressed=()):
    return dict((text_type(key), value) for key, value in (
        (NAME, text_type(name)), (TYPE, text_type(module_type)), (PATH, text_type(path)),
        (FILES, files), (DIRS, dirs), (CHILDREN, children), (ORIGIN, text_type(origin)),
        (COMPRESSED, [text_type(sha) for sha in compressed])))


def add_entries(record, entries):
    """A package's listing (``ENTRIES``): names only, so it lists as installed."""
    record[text_type(ENTRIES)] = [[text_type(name), text_type(kind)] for name, kind in entries]


def entries_of(record):
    """{name: kind} of a package record's listing, or None where it has none; an item
    that is not a plain name of a known kind is left out."""
    entries = record.get(ENTRIES)
    if not isinstance(entries, list):
        return None
    found = {}
    for item in entries:
        if isinstance(item, list) and len(item) == 2:
            name, kind = ensure_text(item[0]), ensure_text(item[1])
            if kind in ENTRY_KINDS and relative_path_problem(name) is None and "/" not in name:
                found[name] = kind
    return found


def mark_compressed(record, shas):
    """Say which of ``record``'s bodies travel zlib-compressed."""
    record[text_type(COMPRESSED)] = [text_type(sha) for sha in shas]


def mark_at_hop(record, shas):
    """Say which of ``record``'s bodies (sent as None) the leaf's hop is to fill from its
    cache; those are not compressed (the hop fills the plain bytes)."""
    shas = [text_type(sha) for sha in shas]
    record[text_type(AT_HOP)] = shas
    named = set(shas)
    record[text_type(COMPRESSED)] = [sha for sha in record.get(COMPRESSED) or ()
                                     if ensure_text(sha) not in named]


def at_hop(record):
    """The hashes of ``record`` still to be filled by a hop, as a set of text."""
    return set(ensure_text(sha) for sha in record.get(AT_HOP) or ())


def bodies_frame(request_id, pieces):
    """BODIES: ``pieces`` of bodies that travel ahead of the reply to ``request_id``."""
    return message(BODIES, id=request_id, pieces=pieces)


def piece(sha, offset, size, data, compressed):
    """One piece of a BODIES frame: ``data`` holds the body ``sha`` (``size`` bytes in
    all) from ``offset`` on, zlib-compressed on its own where ``compressed``."""
    return [text_type(sha), int(offset), int(size), data, bool(compressed)]


def is_whole(offset, size, length):
    """Does a piece of ``length`` bytes at ``offset`` hold the whole body of ``size``?"""
    return offset == 0 and length == size


def piece_problem(each):
    """Why ``each`` is not a piece the slave may write, or None."""
    if not (isinstance(each, list) and len(each) == 5):
        return "a piece must be [sha256, offset, size, bytes, compressed]"
    sha, offset, size, data, compressed = each
    if not (isinstance(sha, string_types) and is_sha256_hex(ensure_text(sha))):
        return "a piece must name a sha256 in hex"
    if not all(isinstance(number, integer_types) and not isinstance(number, bool)
               for number in (offset, size)) or not 0 <= offset <= size <= MAX_BODY_BYTES:
        return "a piece's offset and size must be integers, 0 <= offset <= size"
    if not isinstance(data, binary_type) or not isinstance(compressed, bool):
        return "a piece carries bytes and whether they are compressed"
    return None


def relay_message(kind, **fields):
    """A message between the master and a relay (RELAY_KINDS), on the relay's own channel."""
    return message(kind, **fields)


def relay_kind_of(msg):
    if isinstance(msg, dict) and ensure_text(msg.get(KIND) or "") in RELAY_KINDS:
        return ensure_text(msg[KIND])
    return None


def inflated(data, sha):
    """A compressed body's bytes; ValueError (as for bytes that do not match their hash)
    where it is not a zlib stream."""
    try:
        return zlib.decompress(data)
    except zlib.error as error:
        raise ValueError("received compressed bytes of %s that do not inflate: %s"
                         % (sha, error))


def metadata_record(name, folder, files, origin, left_out=()):
    """A METADATA record: a distribution's metadata folder, ``left_out`` the files of it
    not sent (folder-relative)."""
    record = module_record(name, METADATA, folder, files, [folder], [], origin)
    record[text_type(LEFT_OUT)] = [text_type(path) for path in left_out]
    return record


def module_reply(request_id, records, absent=(), refusals=(), tree=None):
    """MODULE: ``records``, the requested module's first; ``absent``: names its imports
    reach that neither side has; ``refusals``: [[name, reason]] of modules its imports
    reach that this slave may not have, so it can say why without asking. ``tree``: in
    a lean reply, the slave's tree that holds the records' files (``lean``)."""
    reply = message(MODULE, id=request_id, modules=records,
                    absent=[text_type(name) for name in absent],
                    refusals=[[text_type(name), text_type(reason)] for name, reason in refusals])
    if tree is not None:
        reply[text_type(TREE)] = text_type(tree)
    return reply


def packed(reply):
    """``reply`` as it travels: a MODULE reply's records as one JSON text, each body in
    them (bytes) named by its index in ``packed_bodies``. As it is where a hop is to fill
    bodies in (relay.py reads those records) or a 2.7 master's str is not UTF-8."""
    records = reply.get(MODULES) if kind_of(reply) == MODULE else None
    if not records or any(record.get(AT_HOP) for record in records):
        return reply
    bodies, plain = [], []
    for record in records:
        held = len(bodies)
        entries = [_indexed(entry, bodies) for entry in record.get(FILES) or ()]
        if len(bodies) > held:  # a copy: the master's record keeps its bodies
            record = dict(record)
            record[text_type(FILES)] = entries
        plain.append(record)
    try:
        text = json.dumps(plain, separators=(",", ":"))
    except (TypeError, ValueError):
        return reply
    travelling = dict(reply)
    del travelling[MODULES]
    travelling[text_type(PACKED)] = text if isinstance(text, binary_type) \
        else text.encode("ascii")
    if bodies:
        travelling[text_type(PACKED_BODIES)] = bodies
    return travelling


def _indexed(entry, bodies):
    if entry[FILE_BODY] is None:
        return entry
    bodies.append(entry[FILE_BODY])
    return [entry[FILE_PATH], entry[FILE_SHA], len(bodies) - 1]


def unpacked(reply):
    """``reply`` with its records in ``modules``, however they travelled; ValueError
    where packed records are not a JSON list of objects, or name bodies that did not
    come."""
    if not isinstance(reply, dict) or PACKED not in reply:
        return reply
    data, bodies = reply[PACKED], reply.get(PACKED_BODIES) or []
    if not isinstance(data, binary_type) or not isinstance(bodies, list):
        raise ValueError("packed records must be bytes, their bodies a list")
    records = json.loads(data.decode("utf-8"))
    if not isinstance(records, list) or not all(isinstance(each, dict) for each in records):
        raise ValueError("packed records must be a list of records")
    for record in records:
        if not isinstance(record.get(FILES) or [], list):
            raise ValueError("a packed record's files must be a list")
        for entry in record.get(FILES) or ():
            index = entry[FILE_BODY] if isinstance(entry, list) and len(entry) == 3 else None
            if index is None:
                continue
            if not isinstance(index, integer_types) or isinstance(index, bool) or \
                    not 0 <= index < len(bodies) or not isinstance(bodies[index], binary_type):
                raise ValueError("a packed record names a body that did not come")
            entry[FILE_BODY] = bodies[index]
    received = dict(reply)
    del received[PACKED]
    received.pop(PACKED_BODIES, None)
    received[text_type(MODULES)] = records
    return received


def not_served(kind, request_id, name, reason):
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
    """Return why ``path`` may not be written below a folder of the slave's cache, or None.

    The slave checks every path it is sent, so even a faulty master cannot
    make it write outside its cache directory.
    """
    if not isinstance(path, string_types) or not path:
        return "path must be non-empty text"
    if "\\" in path or "\0" in path or path.startswith("/"):
        return "path %r is not relative with forward slashes" % (path,)
    framed = "/" + path + "/"  # each part between slashes: asked of every served file
    if "//" in framed or "/./" in framed or "/../" in framed:
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
    """Return why ``msg`` is not a valid FIND, DISTRIBUTIONS or PROJECT request, or None."""
    kind = kind_of(msg)
    if kind not in REQUEST_KINDS:
        return "expected one of the request kinds %s" % ", ".join(REQUEST_KINDS)
    if not isinstance(msg.get(ID), integer_types) or isinstance(msg.get(ID), bool):
        return "request id must be an integer"
    for field in (LOST, HAVE, HOLDS):
        hashes = msg.get(field)
        if hashes is not None and not (isinstance(hashes, list) and all(
                isinstance(sha, string_types) for sha in hashes)):
            return "%r must be a list of hashes" % field
    if kind == DISTRIBUTIONS:
        return distribution_name_problem(msg.get(NAME))
    if kind == PROJECT:
        return None if msg.get(NAME) is None else "a project request names nothing"
    return module_name_problem(msg.get(NAME))
