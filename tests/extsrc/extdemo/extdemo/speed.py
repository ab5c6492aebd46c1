"""An accelerator with a pure-Python fallback, the way real packages ship them."""
try:
    from ._single import add
    ACCELERATED = True
except ImportError as error:
    from ._pure import add
    ACCELERATED = False
    WHY = str(error)
