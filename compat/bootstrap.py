"""The entry point execnet runs on the slave (``gateway.remote_exec``).

Its first message is the bootstrap frame: the bridge's slave modules as source,
the cache root the master's CONFIG, its second message, names, and the key of the
code objects the master compiled from those sources. It materialises the modules as
the private package ``_execnet_bridge``: first the three that open that root,
compiled, then the rest, from the code objects kept there when this interpreter
compiled the same sources before, else from the master's when that key is this
interpreter's (``codecache``), else compiled: compiling the protocol and file modules
too took 5 of a warm handshake's 25 ms, all of them 32 of a cold one's. It picks the hook for this
interpreter by feature (PEP 451 ``ModuleSpec`` exists from 3.4; 2.7 gets the PEP 302
importer, whose module 3.x never needs, and vice versa) and hands the channel to
``hook.handshake``.
"""
import linecache
import sys
import types

PACKAGE = "_execnet_bridge"
EARLY = ("neutral", "cacheroot", "codecache")  # open the cache root, load what it keeps


def importer_for_this_python():
    try:
        from importlib.machinery import ModuleSpec  # noqa: F401 - PEP 451, Python 3.4+
    except ImportError:
        return "importer2"
    return "importer3"


def _names(name):
    fullname = "%s.%s" % (PACKAGE, name)
    return fullname, "<execnet-bridge %s.py>" % fullname


def compile_module(name, source):
    """The code object of one of the package's modules, as the slave compiles it (the
    master too, for slaves of its own build: codecache.fetch)."""
    return compile(source, _names(name)[1], "exec", dont_inherit=True)


def materialize(sources, skip, compiled=None, package=None, only=None):
    """Create the package's modules from their sources, in the given order. ``compiled``:
    {name: code object} to run where it has one (a spawned child gets its slave's, which
    saves compiling them); what is compiled here is added to it. ``only``: these names
    alone; ``package``: one made so, to complete."""
    if package is None:
        package = types.ModuleType(PACKAGE)
        package.__path__ = []
        package.__package__ = PACKAGE
        sys.modules[PACKAGE] = package
    for name, source in sources:
        name = str(name)  # a native string: 2.7's ModuleType refuses unicode
        if name in skip or (only is not None and name not in only) or hasattr(package, name):
            continue
        fullname, filename = _names(name)
        module = types.ModuleType(fullname)
        module.__package__ = PACKAGE
        module.__file__ = filename
        lines = source.splitlines(True)
        linecache.cache[filename] = (len(source), None, lines, filename)  # traceback lines
        sys.modules[fullname] = module
        if compiled is None or name not in compiled:
            code = compile_module(name, source)
            if compiled is not None:
                compiled[name] = code
        exec(compiled[name] if compiled is not None else code, module.__dict__)
        setattr(package, name, module)
    return package


def _materialize_for_this_python(sources, compiled, package=None):
    importer = importer_for_this_python()
    other = {"importer2": "importer3", "importer3": "importer2"}[importer]
    package = materialize(sources, (other, "bootstrap"), compiled, package)
    return package, getattr(package, importer)


def main(channel):
    (sources, requested, offered), compiled = channel.receive(), {}  # bootstrap_frame
    config = channel.receive()  # CONFIG: the master sends it right behind the frame
    early = materialize(sources, (), compiled, only=EARLY)
    opened = early.cacheroot.open_root(requested)
    kept = early.codecache.load(opened[0], sources)
    compiled.update(kept or early.codecache.fetch(channel, sources, offered))
    package, importer = _materialize_for_this_python(sources, compiled, early)
    if set(compiled) - set(kept):
        early.codecache.keep(opened[0], sources, compiled)
    package.hook.handshake(channel, importer, sources, compiled, config, opened)


def child_main(sources, config, compiled=None):
    """In a process a bridged slave started from a new interpreter (compat/children.py),
    which has no bridge yet unless it is a fork of one that has. ``compiled``: the code
    objects of the slave's interpreter, where the child's is the same."""
    if PACKAGE not in sys.modules:
        compiled = dict(compiled or {})
        package, importer = _materialize_for_this_python(sources, compiled)
        package.children.attach(sources, config, importer, compiled)


if __name__ == "__channelexec__":
    main(channel)  # noqa: F821 - execnet provides ``channel``
