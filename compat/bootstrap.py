"""The entry point execnet runs on the slave (``gateway.remote_exec``).

Its first message is the list of the bridge's slave modules as source. It
materialises them as the private package ``_execnet_bridge``, picks the hook
for this interpreter by feature (PEP 451 ``ModuleSpec`` exists from 3.4; 2.7
gets the PEP 302 importer, whose module 3.x never needs, and vice versa) and
hands the channel to ``hook.handshake``.
"""
import linecache
import sys
import types

PACKAGE = "_execnet_bridge"


def importer_for_this_python():
    try:
        from importlib.machinery import ModuleSpec  # noqa: F401 - PEP 451, Python 3.4+
    except ImportError:
        return "importer2"
    return "importer3"


def materialize(sources, skip):
    """Create the package's modules from their sources, in the given order."""
    package = types.ModuleType(PACKAGE)
    package.__path__ = []
    package.__package__ = PACKAGE
    sys.modules[PACKAGE] = package
    for name, source in sources:
        name = str(name)  # a native string: 2.7's ModuleType refuses unicode
        if name in skip:
            continue
        fullname = "%s.%s" % (PACKAGE, name)
        filename = "<execnet-bridge %s.py>" % fullname
        module = types.ModuleType(fullname)
        module.__package__ = PACKAGE
        module.__file__ = filename
        lines = source.splitlines(True)
        linecache.cache[filename] = (len(source), None, lines, filename)  # traceback lines
        sys.modules[fullname] = module
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)
        setattr(package, name, module)
    return package


def main(channel):
    importer = importer_for_this_python()
    other = {"importer2": "importer3", "importer3": "importer2"}[importer]
    package = materialize(channel.receive(), skip=(other, "bootstrap"))
    package.hook.handshake(channel, getattr(package, importer))


if __name__ == "__channelexec__":
    main(channel)  # noqa: F821 - execnet provides ``channel``
