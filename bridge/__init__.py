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

if sys.version_info >= (3, 7):
    def __getattr__(name):
        """The master's side is imported on first use (PEP 562): a pytest-xdist worker
        imports ``bridge.xdist`` and needs none of it (20 ms of its start-up)."""
        module = _MASTER_SIDE.get(name)
        if module is None:
            raise AttributeError("module %r has no attribute %r" % (__name__, name))
        value = getattr(importlib.import_module("." + module, __name__), name)
        globals()[name] = value
        return value
else:
    from ._install import Bridge, GroupBridge, install
    from ._run import remote_exec

__version__ = "0.1.0"
__all__ = ["install", "remote_exec", "Bridge", "GroupBridge", "BridgeError", "HandshakeError",
           "EnvironmentMismatchWarning", "__version__"]
