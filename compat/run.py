"""Running a program on the slave for the master (RUN): ``bridge.remote_exec`` runs a
module the bridge serves, ``python -m bridge run`` a module or a script.

A module runs through ``runpy``, as ``python -m`` runs it, so ``__package__`` and
``__spec__`` are real and relative imports work. It runs on the thread execnet
gave the control program (usually the slave's main thread), so signal handlers
and the like behave as under ``remote_exec``.
"""
import linecache
import runpy
import sys
import traceback

from . import protocol
from .neutral import ensure_text


class ChannelStream(object):
    """stdout or stderr of a program whose output the master prints."""

    def __init__(self, channel, kind):
        self.channel = channel
        self.kind = kind

    def write(self, text):
        self.channel.send(protocol.output_frame(self.kind, ensure_text(text)))

    def flush(self):
        pass

    def isatty(self):
        return False


def make_available(session, name):
    """Put a served module's files in the cache without running it (its parent is
    imported; for a package, its ``__main__`` too, which runpy runs): for tools that
    look for files, such as 2.7's runpy, which never asks ``sys.meta_path``."""
    parent = name.rpartition(".")[0]
    if parent:
        __import__(parent)
    if session is not None and name not in sys.modules and session.should_ask(name):
        served = session.fetch(name)
        if served is not None and parent and sys.version_info < (3,):
            _on_parent_path(served)
        if served is not None and served.is_package:
            make_available(session, name + ".__main__")


def _on_parent_path(served):
    """2.7's runpy looks for a submodule along its parent's ``__path__`` only (pkgutil's
    ImpImporter, never ``sys.meta_path``): add the folder of the tree it came in."""
    parent = sys.modules.get(served.name.rpartition(".")[0])
    path = getattr(parent, "__path__", None)
    if isinstance(path, list) and served.directory not in path:
        path.append(served.directory)


def _execute(msg, session, channel):
    """A module with ``channel`` in its globals, as under remote_exec; a script as
    ``python script.py`` runs it."""
    module, source = msg.get(protocol.MODULE_NAME), msg.get(protocol.SOURCE_TEXT)
    run_name = str(msg.get(protocol.RUN_NAME))  # native: 2.7's runpy refuses unicode
    if module is not None:
        module = str(module)
        make_available(session, module)
        runpy.run_module(module, init_globals={"channel": channel}, run_name=run_name,
                         alter_sys=msg.get(protocol.ARGV) is not None)
        return
    filename = str(msg.get(protocol.FILENAME) or "<bridge run>")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, {"__name__": run_name, "__file__": filename})


def run_program(msg, session, channel):
    """Run what RUN ``msg`` names. With ``output``, stdout, stderr and the exit status go
    over ``channel``; otherwise an error closes it (execnet sends the traceback)."""
    argv = msg.get(protocol.ARGV)
    if not msg.get(protocol.OUTPUT):
        _execute(msg, session, channel)
        return
    saved = sys.argv, sys.stdout, sys.stderr
    if argv is not None:
        sys.argv = [str(arg) for arg in argv]
    sys.stdout = ChannelStream(channel, protocol.OUT)
    sys.stderr = ChannelStream(channel, protocol.ERR)
    code = 0
    try:
        _execute(msg, session, channel)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            sys.stderr.write("%s\n" % (stop.code,))
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.argv, sys.stdout, sys.stderr = saved
    channel.send(protocol.output_frame(protocol.EXIT, code))
