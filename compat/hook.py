"""Installing and removing the import hook on the slave: the handshake, and the
control program the master runs for UNINSTALL, RUN and ENTER.

Kept apart from the importers, which only know how to import, and from the
bootstrap, which only knows how to materialise the package. Nothing here is
kept in module globals: the installed finder on ``sys.meta_path`` owns its
session, so "what is installed" is always read from the import system itself.
"""
import atexit
import os
import shutil
import sys

from . import cacheroot, children, files, listing, protocol, run, tags, working_set
from .blobs import BlobStore
from .client import RequestClient
from .incoming import Incoming
from .session_folder import SESSION_PREFIX, SessionFolder, remove_stale_sessions
from .neutral import ensure_text, string_types
from .session import ImportSession
from .trees import FOLDER as TREES_FOLDER, TreeStore, used_by_live_sessions


def _answer_pings(channel, timeout):
    """Echo the master's PINGs (it times the link with them) until READY."""
    while True:
        try:
            msg = channel.receive(timeout)
        except channel.TimeoutError:
            raise RuntimeError("execnet-bridge handshake: no %r from the master within %s s"
                               % (protocol.READY, timeout))
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


def handshake(channel, importer, sources, compiled, config, opened):
    """The slave's side of the handshake; installs ``importer``'s hook. ``sources``: the
    bootstrap frame, which the processes this slave starts materialise again (spawned
    ones from ``compiled``, its code objects). ``config``: the master's CONFIG, sent
    right behind the sources; ``opened``: (the cache root, why not the one it names, or
    None), which the bootstrap opened (``cacheroot.open_root``)."""
    if protocol.kind_of(config) != protocol.CONFIG:
        raise RuntimeError("execnet-bridge handshake: expected %r, got %r"
                           % (protocol.CONFIG, config))
    if config.get(protocol.PROTOCOL) != protocol.PROTOCOL_VERSION:
        raise RuntimeError("execnet-bridge protocol mismatch: master %r, slave %r"
                           % (config.get(protocol.PROTOCOL), protocol.PROTOCOL_VERSION))
    if installed_finder() is not None:
        raise RuntimeError("execnet-bridge is already installed in this interpreter")
    timeout = protocol.option(config, protocol.TIMEOUT, 30.0)
    cache_root, problem = opened
    limit = int(protocol.option(config, protocol.CACHE_LIMIT, protocol.DEFAULT_CACHE_LIMIT))
    blobs = BlobStore(cache_root)
    trim_cache(cache_root, limit)
    session_folder = SessionFolder.create(cache_root)
    requests = channel.gateway.newchannel()
    channel.send(protocol.hello(tags.facts(cache_root), requests, session_folder.root,
                                problem))
    _answer_pings(channel, timeout)
    client = RequestClient(requests, timeout, Incoming(blobs, session_folder.root))
    session = ImportSession(client, session_folder, blobs,
                            protocol.option(config, protocol.ENVIRONMENT))
    session.processes = children.ChildProcesses(session, sources, compiled=compiled)
    importer.install(session)
    working_set.install(session)
    session.processes.watch_forks()
    session.processes.watch_spawns()
    if protocol.option(config, protocol.SUBPROCESSES, False):
        session.processes.reach_subprocesses()
    atexit.register(end_session, sys.modules[__package__],
                    cache_root if problem else session_folder.root, cache_root, limit)
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
    elif kind == protocol.ENTER:
        channel.send(enter_project(msg))
    else:
        raise ValueError("execnet-bridge control: expected %r, %r or %r, got %r"
                         % (protocol.UNINSTALL, protocol.RUN, protocol.ENTER, msg))


def enter_project(msg):
    """ENTER: fetch the project's files the master offers into the cache, and work in
    the folder of them it names (``os.chdir``). ENTERED, with the project's folder or
    why there is none."""
    workdir = msg.get(protocol.WORKDIR)
    workdir = ensure_text(workdir) if isinstance(workdir, string_types) else None
    if workdir is None or (workdir != "." and protocol.relative_path_problem(workdir)):
        return protocol.entered(reason="not a folder inside the project: %r" % (workdir,))
    finder = installed_finder()
    if finder is None:
        return protocol.entered(reason="no bridge is installed here")
    try:
        folder = finder.session.project_folder()
        os.chdir(folder if workdir == "." else files.inside(folder, workdir))
    except (ValueError, OSError) as error:
        return protocol.entered(reason=str(error))
    return protocol.entered(folder)


def trim_cache(cache_root, limit, always=False):
    """Dead sessions' folders go first, then the least recently used trees (with the
    blobs only they held) and loose blobs, down to ``limit`` bytes. Skipped while
    another slave holds the cache's lock, and unless ``always``, when no blob came or
    went since the last trim got under the limit."""
    blobs = BlobStore(cache_root)
    trees = TreeStore(cache_root, blobs)
    if not always and cacheroot.fits_since_trim(cache_root, blobs.root, limit):
        return 0

    def sweep():
        remove_stale_sessions(cache_root)
        trees.sweep()

    def entries():
        """Trees, and the blobs no tree holds (a tree's size counts those it holds)."""
        in_use = used_by_live_sessions(cache_root, SESSION_PREFIX)
        loose = [entry for entry in blobs.entries() if not entry[3]]
        return trees.entries(in_use) + loose

    def remove(key):
        if key.startswith(TREES_FOLDER + "/"):
            trees.remove(key[len(TREES_FOLDER) + 1:])
        else:
            blobs.remove(key)

    return cacheroot.evict(cache_root, limit, sweep, entries, remove)


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


def uninstall():
    """Leave the import system as it was; served modules already imported stay."""
    finder = installed_finder()
    if finder is None:
        return False
    session = finder.session
    session.processes.stop()
    sys.meta_path.remove(finder)
    listing.uninstall(finder.path_hook)
    working_set.uninstall(session)
    for entry in list(sys.path_importer_cache):
        if session.session_folder.under_cache_root(entry):
            del sys.path_importer_cache[entry]
    session.client.close("execnet-bridge was uninstalled")
    # Last, and through locals: 2.7 empties a dropped module's globals, this one's too.
    modules, package = sys.modules, protocol.SLAVE_PACKAGE
    for name in [name for name in modules if name.split(".")[0] == package]:
        del modules[name]
    return True
