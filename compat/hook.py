"""Installing and removing the import hook on the slave: the handshake, and the
control program the master runs for UNINSTALL and RUN.

Kept apart from the importers, which only know how to import, and from the
bootstrap, which only knows how to materialise the package. Nothing here is
kept in module globals: the installed finder on ``sys.meta_path`` owns its
session, so "what is installed" is always read from the import system itself.
"""
import atexit
import shutil
import sys

from . import protocol, run, tags, working_set
from .blobs import BlobStore
from .client import RequestClient
from .mirror import Mirror
from .neutral import ensure_text
from .session import ImportSession


def _expect(channel, kind, timeout):
    msg = channel.receive(timeout)
    if protocol.kind_of(msg) != kind:
        raise RuntimeError("execnet-bridge handshake: expected %r, got %r" % (kind, msg))
    return msg


def _answer_pings(channel, timeout):
    """Echo the master's PINGs (it times the link with them) until READY."""
    while True:
        msg = channel.receive(timeout)
        kind = protocol.kind_of(msg)
        if kind == protocol.READY:
            return
        if kind != protocol.PING:
            raise RuntimeError("execnet-bridge handshake: expected %r, got %r"
                               % (protocol.READY, msg))
        channel.send(protocol.ping())


def installed_finder():
    """The bridge's finder on ``sys.meta_path``, or None."""
    for finder in sys.meta_path:
        if isinstance(getattr(finder, "session", None), ImportSession):
            return finder
    return None


def handshake(channel, importer):
    """The slave's side of the handshake; installs ``importer``'s hook."""
    config = _expect(channel, protocol.CONFIG, None)  # sent right after the sources
    if config.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
        raise RuntimeError("execnet-bridge protocol mismatch: master %r, slave %r"
                           % (config.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
    if installed_finder() is not None:
        raise RuntimeError("execnet-bridge is already installed in this interpreter")
    timeout = protocol.option(config, protocol.TIMEOUT, 30.0)
    cache_root = protocol.option(config, protocol.CACHE_ROOT)
    mirror = Mirror.create(ensure_text(cache_root) if cache_root else None)
    blobs = BlobStore(mirror.cache_root)
    requests = channel.gateway.newchannel()
    channel.send(protocol.hello(tags.facts(), requests, mirror.root, blobs.hashes()))
    _answer_pings(channel, timeout)
    session = ImportSession(RequestClient(requests, timeout), mirror, blobs,
                            protocol.option(config, protocol.ENVIRONMENT))
    importer.install(session)
    working_set.install(session)
    # The session folder goes, the blobs stay for the next gateway. Bound to shutil,
    # not to this module: 2.7 empties a dropped module's globals.
    atexit.register(shutil.rmtree, mirror.root, True)
    channel.send(protocol.installed())


def control(channel):
    """The program the master runs (``protocol.CONTROL_SOURCE``): one UNINSTALL or RUN."""
    msg = channel.receive()
    kind = protocol.kind_of(msg)
    if kind == protocol.UNINSTALL:
        reply = protocol.uninstalled(True)  # built now: uninstall() drops this module
        channel.send(reply if uninstall() else protocol.uninstalled(False))
    elif kind == protocol.RUN:
        finder = installed_finder()
        run.run_program(msg, finder.session if finder is not None else None, channel)
    else:
        raise ValueError("execnet-bridge control: expected %r or %r, got %r"
                         % (protocol.UNINSTALL, protocol.RUN, msg))


def uninstall():
    """Leave the import system as it was; served modules already imported stay."""
    finder = installed_finder()
    if finder is None:
        return False
    session = finder.session
    sys.meta_path.remove(finder)
    working_set.uninstall(session)
    for entry in list(sys.path_importer_cache):
        if session.mirror.contains(entry):
            del sys.path_importer_cache[entry]
    session.client.close("execnet-bridge was uninstalled")
    # Last, and through locals: 2.7 empties a dropped module's globals, this one's too.
    modules, package = sys.modules, protocol.SLAVE_PACKAGE
    for name in [name for name in modules if name.split(".")[0] == package]:
        del modules[name]
    return True
