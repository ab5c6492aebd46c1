"""Processes a bridged slave starts stay bridged: ``multiprocessing`` (fork, spawn,
forkserver), ``concurrent.futures.ProcessPoolExecutor`` and, opted in, subprocesses of
the slave's own interpreter.

A child never talks to the master. The slave serves its children on a local socket
(``ChildServer``): a child's FIND or DISTRIBUTIONS is answered from what the slave's
session was served, asking the master only for what it was not, and always *lean*: the
reply names a tree of the cache root the child shares, so nothing but names crosses the
socket. So a slave makes one handshake whatever its children, and a module the slave
imported costs its children no trip to the master.

How a child gets the hook:

- *fork* copies the session. Before the first fork the slave starts its server
  (``os.register_at_fork``; before 3.7 at install), and a forked child's session asks
  it instead of execnet's channel, which belongs to the parent.
- *spawn* and *forkserver* start a new interpreter (with the slave's ``-E -S``), which
  unpickles the preparation data ``multiprocessing.spawn.get_preparation_data`` made
  before anything else of the parent. The slave adds an entry to it whose unpickling
  runs ``CHILD_SOURCE`` (coverage.py reaches its children the same way): it
  materialises this package from its sources and installs the importer over the
  server, before the child imports the function it is to run.
- *subprocesses* of the slave's own executable, where ``install(subprocesses=True)``:
  ``PYTHONPATH`` names a folder whose ``sitecustomize`` does the same at start-up, for
  that executable only, and hands on to any other ``sitecustomize``.

A child whose slave is gone fails its import at once, saying so.

Frames on the socket are protocol messages (compat/protocol.py), each marshalled
behind its length: both ends are the same interpreter, and marshal carries data only.
"""
import atexit
import json
import marshal
import os
import shutil
import struct
import sys
import tempfile
import threading

from . import protocol, working_set
from .blobs import BlobStore
from .client import BridgeUnavailable, ImportLockDuringWait, NotIntact, collector_pause
from .session_folder import SessionFolder
from .neutral import ensure_text, text_type
from .session import ImportSession, lean_answer

try:
    import builtins
    RUN_SOURCE = getattr(builtins, "exec")
except ImportError:  # 2.7: exec is a statement there, and 2.7's multiprocessing only forks
    RUN_SOURCE = None

MAX_FRAME = 64 * 1024 * 1024  # lean replies are names: a larger frame is not ours
HEADER = struct.Struct(">I")

def send_frame(sock, msg):
    data = marshal.dumps(msg)
    sock.sendall(HEADER.pack(len(data)) + data)


def _read_exactly(sock, size):
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1024 * 1024))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive_frame(sock):
    """The next message, or None at the end of the stream."""
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    size = HEADER.unpack(header)[0]
    if size > MAX_FRAME:
        raise ValueError("a frame of %d bytes is over the limit of %d" % (size, MAX_FRAME))
    data = _read_exactly(sock, size)
    if data is None:
        return None
    return marshal.loads(data)


def answer_child(session, request):
    """A child process's FIND or DISTRIBUTIONS (compat/children.py): a module from what
    this session was served, asking the master only for what it was not; metadata from
    the master. Lean either way: the tree it names is in the cache the child shares."""
    problem = protocol.request_problem(request)
    request_id, name = request.get(protocol.ID), request.get(protocol.NAME)
    if problem is not None:
        return protocol.not_served(protocol.ERROR, request_id, name, problem)
    name = None if name is None else ensure_text(name)
    if protocol.kind_of(request) == protocol.DISTRIBUTIONS:
        return _distributions_for_child(session, request_id, name)
    try:
        session.fetch(name)
    except ImportError as error:
        why = ensure_text(str(error))
        said = "execnet-bridge cannot import '%s': " % name  # the child says it again
        reason = session.refused.get(name) or (why[len(said):] if why.startswith(said) else why)
        return protocol.not_served(protocol.REFUSED, request_id, name, reason)
    answer = session.answer(name)
    if answer is None:
        return protocol.not_served(protocol.MISSING, request_id, name,
                                session.missing.get(name) or "the master has none")
    return dict(answer, id=request_id)


def _distributions_for_child(session, request_id, name):
    try:
        reply, placed = session.exchange(
            lambda lost: protocol.distributions_request(name, lost))
    except (BridgeUnavailable, NotIntact, ValueError) as error:
        return protocol.not_served(protocol.MISSING, request_id, name, str(error))
    if placed is None:
        return dict(reply, id=request_id)
    return dict(lean_answer(reply, reply.get(protocol.MODULES) or [], placed),
                id=request_id)


class ChildServer(object):
    """The slave's side: a socket in a private folder, a thread per child connection."""

    def __init__(self, session):
        self.session = session
        # A short path of its own: an AF_UNIX address has at most 107 bytes, and a folder
        # only this user can enter keeps other users' processes out.
        import socket  # only now: most slaves start no child, and it costs a handshake 2 ms
        self.folder = tempfile.mkdtemp(prefix="xb-")
        self.address = os.path.join(self.folder, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.address)
        self._listener.listen(64)
        self._owner = os.getpid()
        _daemon(self._accept)

    def _accept(self):
        while True:
            try:
                connection = self._listener.accept()[0]
            except (IOError, OSError):  # closed (socket.error is one on 2.7 too)
                return
            _daemon(self._serve, connection)

    def _serve(self, connection):
        try:
            while True:
                request = receive_frame(connection)
                if request is None:
                    return
                send_frame(connection, answer_child(self.session, request))
        except (IOError, OSError, ValueError, EOFError, TypeError):
            return  # a child that went, or sent what is not a frame: its connection ends
        finally:
            connection.close()

    def close(self):
        """At the slave's exit; a forked child's copy leaves the parent's socket alone."""
        if os.getpid() != self._owner:
            return
        try:
            self._listener.close()
        finally:
            shutil.rmtree(self.folder, True)


def _daemon(target, *args):
    thread = threading.Thread(target=target, args=args, name="execnet-bridge children")
    thread.daemon = True
    thread.start()
    return thread


class ParentClient(object):
    """A child's side: the request client of a session whose master is its slave."""

    incoming = None  # lean replies only: no bodies ever come

    def __init__(self, address, timeout):
        self.address = address
        self.timeout = timeout
        self._lock = threading.Lock()
        self._socket = None
        self._next_id = 1
        self._closed = None

    def request(self, msg):
        """Send ``msg`` to the slave and return its reply, or raise BridgeUnavailable."""
        import socket
        with ImportLockDuringWait():  # 2.7: as a wait for the master would
            # no collection while the lock is held: a thread holding the import lock may
            # wait for it (client.py), and a collection may wait for the import lock
            with collector_pause, self._lock:
                if self._closed:
                    raise BridgeUnavailable(self._closed)
                msg[text_type(protocol.ID)] = self._next_id
                self._next_id += 1
                try:
                    sock = self._connected()
                    send_frame(sock, msg)
                    reply = receive_frame(sock)
                except socket.timeout:
                    self._drop()
                    raise BridgeUnavailable("no reply from the slave that started this "
                                            "process within %s s" % self.timeout)
                except (IOError, OSError, ValueError, EOFError) as error:
                    self._drop()
                    raise BridgeUnavailable("the slave that started this process cannot be "
                                            "reached: %s" % (error,))
                if reply is None:
                    self._drop()
                    raise BridgeUnavailable("the slave that started this process is gone")
                return reply

    def _connected(self):
        if self._socket is None:
            import socket
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            self._socket = sock
        return self._socket

    def _drop(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def close(self, reason):
        with self._lock:
            self._closed = ensure_text(reason)
            self._drop()


# What multiprocessing imports to start a child from a new interpreter: the slave patches
# ``spawn.get_preparation_data`` then, before any such child starts.
NEW_INTERPRETER_STARTERS = ("multiprocessing.popen_spawn_posix",
                            "multiprocessing.popen_forkserver")
PREPARATION_KEY = "execnet_bridge"

# Runs in a spawned child while it unpickles its preparation data: the bootstrap module's
# own source materialises the package from ``sources`` and attaches to the slave.
CHILD_SOURCE = """
import marshal, sys
bootstrap = dict(sources)["bootstrap"]
namespace = {"__name__": "_execnet_bridge_child"}
exec(compile(bootstrap, "<execnet-bridge _execnet_bridge.bootstrap.py>", "exec"), namespace)
same = compiled is not None and compiled[0] == sys.version
namespace["child_main"](sources, config, marshal.loads(compiled[1]) if same else None)
"""


class ChildBootstrap(object):
    """An entry of a spawned child's preparation data whose unpickling attaches the
    child to its slave (``CHILD_SOURCE``): ``multiprocessing.spawn.prepare`` ignores the
    entry itself, and the child unpickles it before the function it is to run."""

    def __init__(self, sources, config, compiled):
        self.sources = sources
        self.config = config
        self.compiled = compiled  # (sys.version, marshalled {name: code}), or None

    def __reduce__(self):
        return (RUN_SOURCE, (CHILD_SOURCE, {"sources": self.sources, "config": self.config,
                                            "compiled": self.compiled}))


class ChildProcesses(object):
    """What a session keeps for the processes its slave starts (module docstring): the
    sources they materialise, the server they ask, what was changed to reach them."""

    def __init__(self, session, sources, address=None, compiled=None):
        self.session = session
        self.sources = sources  # the bootstrap frame
        self.compiled = compiled  # {name: code object} of this interpreter, or None
        self._marshalled_code = None
        self.active = True  # False once uninstalled: the hooks then leave children alone
        self.address = address  # the server's socket; in a child, its slave's
        self.server = None  # this process's ChildServer, once started
        self.reaching_subprocesses = None  # (PYTHONPATH folder, PYTHONPATH before)
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def address_to_ask(self):
        """The socket children ask, the server started on first use."""
        if self.address is None:
            with self._lock:
                if self.address is None:
                    self.server = ChildServer(self.session)
                    self.address = self.server.address
                    atexit.register(self.server.close)
        return self.address

    def config(self):
        """What a child needs to attach: data only."""
        session = self.session
        return {"address": self.address_to_ask(), "timeout": session.client.timeout,
                "cache_root": session.session_folder.cache_root, "session_folder": session.session_folder.root,
                "environment": session.environment}

    def watch_forks(self):
        """Forked children ask the slave: its server starts before the first fork, and a
        child's session changes its client after it. Before 3.7 (no ``register_at_fork``)
        the server starts now and the session notices a new pid itself."""
        register = getattr(os, "register_at_fork", None)
        if register is None:
            self.address_to_ask()
            return
        register(before=lambda: self.active and self.address_to_ask(),
                 after_in_child=lambda: self.active and self.in_forked_child())

    def notice_fork(self):
        if os.getpid() != self._pid:
            self.in_forked_child()

    def in_forked_child(self):
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.server = None  # the slave's: a copy's close leaves it alone
        self.session.become_child(ParentClient(self.address, self.session.client.timeout))

    def watch_spawns(self):
        """Patch ``get_preparation_data`` once multiprocessing can start a new interpreter
        (now, if it already can): see ``NEW_INTERPRETER_STARTERS``."""
        if any(name in sys.modules for name in NEW_INTERPRETER_STARTERS):
            self._patch_preparation()
        for name in NEW_INTERPRETER_STARTERS:
            self.session.before_import[name] = self._patch_preparation

    def _patch_preparation(self):
        import multiprocessing.spawn as spawn  # the slave is starting children: it is needed
        original = spawn.get_preparation_data
        if getattr(original, "execnet_bridge_children", None) is self:
            return

        def get_preparation_data(name):
            data = original(name)
            if self.active:
                data[PREPARATION_KEY] = ChildBootstrap(self.sources, self.config(),
                                                       self._marshalled())
            return data

        get_preparation_data.execnet_bridge_children = self
        spawn.get_preparation_data = get_preparation_data

    def _marshalled(self):
        """(sys.version, the code objects marshalled once), for a child of the same
        interpreter: it then compiles nothing (marshal is this version's own format)."""
        if self.compiled is None:
            return None
        if self._marshalled_code is None:
            self._marshalled_code = (sys.version, marshal.dumps(self.compiled))
        return self._marshalled_code

    def reach_subprocesses(self):
        """Put a folder first on the PYTHONPATH the slave's processes inherit, whose
        ``sitecustomize`` attaches the slave's own interpreter to the slave (a process
        started with ``-E``, ``-I`` or ``-S`` is not reached: it runs no such file)."""
        folder = os.path.join(self.session.session_folder.root, SITE_FOLDER)
        if not os.path.isdir(folder):
            os.mkdir(folder)
        child = {"executable": os.path.realpath(sys.executable), "sources": self.sources,
                 "config": self.config()}
        with open(os.path.join(folder, "child.json"), "w") as stream:
            json.dump(child, stream)
        with open(os.path.join(folder, "sitecustomize.py"), "w") as stream:
            stream.write(SITECUSTOMIZE)
        earlier = os.environ.get("PYTHONPATH")
        self.reaching_subprocesses = (folder, earlier)
        os.environ["PYTHONPATH"] = folder + (os.pathsep + earlier if earlier else "")

    def stop(self):
        """At uninstall: children are left alone, the environment is given back as
        ``reach_subprocesses`` found it, and the server closes."""
        self.active = False
        if self.reaching_subprocesses is not None:
            folder, earlier = self.reaching_subprocesses
            self.reaching_subprocesses = None
            if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] == folder:
                if earlier is None:
                    del os.environ["PYTHONPATH"]
                else:
                    os.environ["PYTHONPATH"] = earlier
        if self.server is not None:
            self.server.close()


def attach(sources, config, importer, compiled=None):
    """In a spawned child (``CHILD_SOURCE``): a session that asks the slave, over the
    cache root and session folder the slave uses, with the importer of this Python."""
    cache_root = config["cache_root"]
    session = ImportSession(ParentClient(config["address"], config["timeout"]),
                            SessionFolder(cache_root, config["session_folder"]), BlobStore(cache_root),
                            config.get("environment"))
    session.processes = ChildProcesses(session, sources, config["address"], compiled)
    importer.install(session)
    working_set.install(session)
    session.processes.watch_forks()
    session.processes.watch_spawns()


# The ``sitecustomize`` of the folder ``reach_subprocesses`` puts first on PYTHONPATH. Any
# Python that starts with that environment and its site module runs it: it attaches only
# in the slave's own interpreter, then hands on to the next ``sitecustomize``, if any.
# Valid on 2.7 and 3.x, since another interpreter may read it.
SITECUSTOMIZE = '''"""Written by execnet-bridge: this interpreter's processes import what the bridged
slave that started them can (its compat/children.py)."""
import json
import os
import sys


def _execnet_bridge_attach():
    here = os.path.dirname(os.path.abspath(__file__))
    if here in sys.path:
        sys.path.remove(here)
    try:
        with open(os.path.join(here, "child.json")) as stream:
            child = json.load(stream)
    except (IOError, OSError, ValueError):
        return
    if os.path.realpath(sys.executable) != child["executable"]:
        return  # another interpreter: not the slave's to bridge
    source = dict(child["sources"])["bootstrap"]
    namespace = {"__name__": "_execnet_bridge_child"}
    exec(compile(source, "<execnet-bridge _execnet_bridge.bootstrap.py>", "exec"), namespace)
    namespace["child_main"](child["sources"], child["config"])


_execnet_bridge_attach()
_execnet_bridge_site = sys.modules.pop("sitecustomize")
try:
    import sitecustomize  # noqa: F401 - the one this folder stood in front of, in our place
except ImportError:
    sys.modules["sitecustomize"] = _execnet_bridge_site
'''
SITE_FOLDER = "subprocess-site"  # in the session folder: the sitecustomize and its data
