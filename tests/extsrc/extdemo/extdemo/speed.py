"""An accelerator with a pure-Python fallback, the way real packages ship them."""
try:
    from ._single import add
    ACCELERATED = True
except ImportError as error:
    from ._pure import add  # noqa: F401 - the fallback this module exists to provide
    ACCELERATED = False
    WHY = str(error)
