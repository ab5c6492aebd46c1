"""The errors the master side raises."""


class BridgeError(Exception):
    """Base of every error execnet-bridge raises on the master."""


class EnvironmentMismatchWarning(UserWarning):
    """A slave is served an environment made for another Python version."""


class HandshakeError(BridgeError):
    """The slave did not complete the install handshake (version, timeout, refusal)."""
