"""Installing and removing the import hook on the slave: the handshake.

Kept apart from the importers, which only know how to import, and from the
bootstrap, which only knows how to materialise the package.
"""
import atexit
import shutil
import sys

from . import protocol, tags
from .blobs import BlobStore
from .client import RequestClient
from .mirror import Mirror
from .neutral import ensure_text
from .session import ImportSession

_current = {}  # the installed hook: {"finder", "session", "mirror"}


def _expect(channel, kind, timeout):
    try:
        msg = channel.receive(timeout)
    except channel.TimeoutError:
        raise RuntimeError("execnet-bridge handshake: no %r from the master within %s s"
                           % (kind, timeout))
    if protocol.kind_of(msg) != kind:
        raise RuntimeError("execnet-bridge handshake: expected %r, got %r" % (kind, msg))
    return msg


def serve(channel, importer):
    """Run the slave's side of the handshake and install ``importer``'s hook."""
    # CONFIG carries the timeout. The master sends it right behind the sources,
    # before it waits for anything; if the master goes, execnet ends this wait.
    config = _expect(channel, protocol.CONFIG, None)
    if config.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
        raise RuntimeError("execnet-bridge protocol mismatch: master %r, slave %r"
                           % (config.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
    if _current:
        raise RuntimeError("execnet-bridge is already installed in this interpreter")
    options = config.get(protocol.OPTIONS) or {}
    timeout = options.get("timeout", 30.0)  # install()'s, for every wait of this slave
    cache_root = options.get("cache_root")
    mirror = Mirror.create(ensure_text(cache_root) if cache_root else None)
    blobs = BlobStore(mirror.cache_root)
    requests = channel.gateway.newchannel()
    channel.send(protocol.message(protocol.HELLO, protocol=protocol.PROTOCOL_VERSION,
                                  facts=tags.facts(), channel=requests,
                                  cache_dir=ensure_text(mirror.root), blobs=blobs.hashes()))
    _expect(channel, protocol.READY, timeout)
    session = ImportSession(RequestClient(requests, timeout), mirror,
                            blobs, options.get("environment"))
    _current.update(finder=importer.install(session), session=session, mirror=mirror)
    # The session folder goes, the blobs stay for the next gateway. Bound to shutil,
    # not to this module: 2.7 empties a dropped module's globals.
    atexit.register(shutil.rmtree, mirror.root, True)
    channel.send(protocol.message(protocol.INSTALLED))


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
