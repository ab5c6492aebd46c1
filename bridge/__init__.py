"""execnet-bridge: remote execnet interpreters import modules only the master has.

    import execnet, bridge
    gw = execnet.makegateway("popen//python=python2.7")
    handle = bridge.install(gw)
    gw.remote_exec("import mypackage")   # served from the master, nothing installed
"""
from ._install import Bridge, GroupBridge, install
from .errors import BridgeError, HandshakeError

__version__ = "0.1.0"
__all__ = ["install", "Bridge", "GroupBridge", "BridgeError", "HandshakeError", "__version__"]
