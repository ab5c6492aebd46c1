"""execnet-bridge: remote execnet interpreters import modules only the master has.

    import execnet, bridge
    gw = execnet.makegateway("popen//python=python2.7")
    handle = bridge.install(gw)
    gw.remote_exec("import mypackage")   # served from the master, nothing installed
"""
import importlib
import sys

from .errors import BridgeError, EnvironmentMismatchWarning, HandshakeError

_MASTER_SIDE = {"install": "_install", "Bridge": "_install", "GroupBridge": "_install",
                "remote_exec": "_run"}  # name -> its module


def _master_side(name):
    value = getattr(importlib.import_module("." + _MASTER_SIDE[name], __name__), name)
    globals()[name] = value
    return value


if sys.version_info >= (3, 7):
    def __getattr__(name):
        """The master's side is imported on first use (PEP 562): a pytest-xdist worker
        imports ``bridge.xdist`` and needs none of it (20 ms of its start-up)."""
        if name not in _MASTER_SIDE:
            raise AttributeError("module %r has no attribute %r" % (__name__, name))
        return _master_side(name)
else:  # no module __getattr__: imported now
    for _name in _MASTER_SIDE:
        _master_side(_name)
    del _name

__version__ = "0.1.0"
__all__ = ["install", "remote_exec", "Bridge", "GroupBridge", "BridgeError", "HandshakeError",
           "EnvironmentMismatchWarning", "__version__"]
