"""pytest-xdist workers import the controller's test dependencies through the bridge.

    pytest -p bridge.xdist --dist load --tx "2*popen//python=python3.10 -E -S"

Every gateway xdist makes gets a bridge before xdist starts its worker there,
so a bare interpreter (or one on another machine) imports pytest, xdist and
everything the tests import from the controller's environment. The worker's
Python must be one the controller's pytest supports.
"""
import bridge


def pytest_xdist_newgateway(gateway):
    bridge.install(gateway)
