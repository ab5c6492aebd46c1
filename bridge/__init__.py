"""execnet-bridge: remote execnet interpreters import modules only the master has.

    import execnet, bridge
    gw = execnet.makegateway("popen//python=python2.7")
    handle = bridge.install(gw)
    gw.remote_exec("import mypackage")   # served from the master, nothing installed
"""
from ._install import Bridge, GroupBridge, install
from ._run import remote_exec
from .errors import BridgeError, EnvironmentMismatchWarning, HandshakeError

__version__ = "0.1.0"
__all__ = ["install", "remote_exec", "Bridge", "GroupBridge", "BridgeError", "HandshakeError",
           "EnvironmentMismatchWarning", "__version__"]
