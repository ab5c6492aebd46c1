"""Every use the master makes of execnet beyond its public API, in one place.

A forwarding hop builds a leaf's gateway itself (``_hops.make_gateway``): over
the bridge's relay instead of ``serve_proxy_io``, so it needs what
``Group.makegateway`` does inside: bootstrap over an IO object, register the
gateway in its group, and execnet's ``gateway_io`` module, whose source the
relay runs on the hop. Tested against execnet 1.9 and 2.x (tox envs).
"""
import inspect
import logging

import six
from execnet import RemoteError, gateway_bootstrap, gateway_io

log = logging.getLogger("bridge.hops")


def gateway_io_source():
    """The source of execnet's ``gateway_io``: the relay makes the leaf's IO with it."""
    return six.text_type(inspect.getsource(gateway_io))


def bootstrap(channel, group, spec):
    """A gateway whose IO is ``channel`` to the relay, registered in ``group``."""
    gateway = gateway_bootstrap.bootstrap(RelayIO(channel, group.execmodel), spec)
    gateway.spec = spec
    group._register(gateway)
    return gateway


def group_of(gateway):
    """The execnet Group that made ``gateway``, or None."""
    return getattr(gateway, "_group", None)


def in_its_group(gateway):
    """Is ``gateway`` still a member of the group that made it (not yet exited)?"""
    group = group_of(gateway)
    return group is not None and gateway in group


class RelayIO(gateway_io.ProxyIO):
    """execnet's ProxyIO, except that a dead hop ends the leaf quietly: its wait, kill and
    close (group.terminate) have nothing left to do, and must not raise."""

    def _controll(self, event):
        try:
            return gateway_io.ProxyIO._controll(self, event)
        except (IOError, EOFError, RemoteError) as error:
            log.debug("hop of %s is gone: %s", self.iochan.gateway.id, error)
            return None
