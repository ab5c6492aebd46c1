"""Installing and removing the import hook on the slave: the handshake.

Kept apart from the importers, which only know how to import, and from the
bootstrap, which only knows how to materialise the package.
"""
import atexit
import os
import shutil
import sys

from . import cacheroot, protocol, tags
from .blobs import BlobStore
from .client import RequestClient
from .mirror import Mirror, remove_stale_sessions
from .neutral import ensure_text
from .session import ImportSession

HANDSHAKE_TIMEOUT = 60.0

_current = {}  # the installed hook: {"finder", "session", "mirror"}


def _expect(channel, kind):
    msg = channel.receive(HANDSHAKE_TIMEOUT)
    if protocol.kind_of(msg) != kind:
        raise RuntimeError("execnet-bridge handshake: expected %r, got %r" % (kind, msg))
    return msg


def serve(channel, importer):
    """Run the slave's side of the handshake and install ``importer``'s hook."""
    config = _expect(channel, protocol.CONFIG)
    if config.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
        raise RuntimeError("execnet-bridge protocol mismatch: master %r, slave %r"
                           % (config.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
    if _current:
        raise RuntimeError("execnet-bridge is already installed in this interpreter")
    options = config.get(protocol.OPTIONS) or {}
    cache_root, problem = open_cache_root(options.get("cache_root"))
    limit = int(options.get(protocol.CACHE_LIMIT, protocol.DEFAULT_CACHE_LIMIT))
    blobs = BlobStore(cache_root)
    trim_cache(cache_root, limit)
    mirror = Mirror.create(cache_root)
    requests = channel.gateway.newchannel()
    channel.send(protocol.message(protocol.HELLO, protocol=protocol.PROTOCOL_VERSION,
                                  facts=tags.facts(), channel=requests,
                                  cache_dir=ensure_text(mirror.root), blobs=blobs.hashes(),
                                  **{protocol.CACHE_PROBLEM: problem}))
    _expect(channel, protocol.READY)
    session = ImportSession(RequestClient(requests, options.get("timeout", 30.0)), mirror,
                            blobs, options.get("environment"))
    _current.update(finder=importer.install(session), session=session, mirror=mirror)
    atexit.register(end_session, sys.modules[__package__],
                    cache_root if problem else mirror.root, cache_root, limit)
    channel.send(protocol.message(protocol.INSTALLED))


def open_cache_root(requested):
    """``(root, problem)``: the requested (or default) cache root once verified, else a
    fresh private one for this session and why, which is logged here and told to the
    master."""
    requested = ensure_text(requested) if requested else cacheroot.default_cache_root()
    root, problem = cacheroot.claim_root(requested)
    if problem is None:
        return root, None
    root = cacheroot.private_root()
    problem = ensure_text("execnet-bridge refused the cache root %s: %s; this session uses "
                          "the private folder %s instead" % (requested, problem, root))
    import logging  # only now: most slaves never need it
    logging.getLogger("bridge.slave").warning(problem)
    return root, problem


def trim_cache(cache_root, limit, always=False):
    """Dead sessions' folders go first, then the least recently used blobs down to
    ``limit`` bytes. Skipped while another slave holds the cache's lock, and unless
    ``always``, when no blob came or went since the last trim got under the limit."""
    blobs = BlobStore(cache_root)
    if not always and cacheroot.fits_since_trim(cache_root, blobs.root, limit):
        return 0
    return cacheroot.evict(cache_root, limit, lambda: remove_stale_sessions(cache_root),
                           blobs.entries, blobs.remove)


def end_session(package, session_folder, cache_root, limit):
    """At exit: the session folder goes (a private root entirely), the blobs stay for the
    next gateway, down to the limit. ``package`` is held so that its modules keep their
    globals after ``uninstall()`` on 2.7, which empties a dropped module's globals."""
    shutil.rmtree(session_folder, True)
    if os.path.isdir(cache_root):
        try:
            trim_cache(cache_root, limit)
        except (IOError, OSError):  # a cache in trouble must not fail the exit
            pass


def make_available(name):
    """Put a served module's files in the mirror without running it (its parent is
    imported; for a package, its ``__main__`` too, which runpy runs): for tools that
    look for files, such as 2.7's runpy, which never asks ``sys.meta_path``."""
    parent = name.rpartition(".")[0]
    if parent:
        __import__(parent)
    session = _current.get("session")
    if session is not None and name not in sys.modules and session.should_ask(name):
        served = session.fetch(name)
        if served is not None and served.is_package:
            make_available(name + ".__main__")


def uninstall():
    """Leave the import system as it was; served modules already imported stay."""
    if not _current:
        return False
    finder, session, mirror = _current["finder"], _current["session"], _current["mirror"]
    _current.clear()
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    for entry in list(sys.path_importer_cache):
        if mirror.contains(entry):
            del sys.path_importer_cache[entry]
    session.client.close("execnet-bridge was uninstalled")
    for name in [name for name in sys.modules if name.split(".")[0] == "_execnet_bridge"]:
        del sys.modules[name]
    return True
