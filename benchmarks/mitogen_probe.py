"""Run in mitogen's child by benchmarks/imports.py: time one import statement there."""
import time


def timed_import(module):
    started = time.perf_counter()
    __import__(module)
    return time.perf_counter() - started


def where(module):
    """Where the child found ``module``, and whether it runs without site."""
    import sys
    imported = __import__(module)
    return sys.flags.no_site, getattr(imported, "__file__", None), sys.path[:4]
