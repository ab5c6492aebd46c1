"""An abi3 extension (Py_LIMITED_API 3.6) with a pure-Python fallback."""
try:
    from ._limited import add
    ACCELERATED = True
except ImportError as error:
    ACCELERATED = False
    WHY = str(error)

    def add(a, b):
        return a + b
