"""Run a master-only module on the slave under its package, by name.

execnet's ``remote_exec(module)`` sends the module's source alone, so its
relative imports fail. Here the slave imports it through the bridge with
``runpy.run_module``: ``__package__`` and ``__spec__`` are real, relative
imports work, and ``channel`` is in its globals, as under execnet.
"""
from ._install import install
from .compat import protocol


def remote_exec(gateway, module, run_name=None, **install_options):
    """Run ``module`` (a dotted name the master can serve) on ``gateway``'s slave.

    Installs the bridge first if needed (``install_options`` go to ``install``).
    ``run_name``: the module's ``__name__`` while it runs; by default its real
    name, ``"__channelexec__"`` for modules written for execnet's remote_exec.
    Returns the channel, as ``gateway.remote_exec`` does.
    """
    install(gateway, **install_options)
    channel = gateway.remote_exec(protocol.CONTROL_SOURCE)
    channel.send(protocol.run_request(module=str(module), run_name=str(run_name or module)))
    return channel
