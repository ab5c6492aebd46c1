"""An interpreter's facts (``compat/tags.py``, sent in its HELLO), read by name."""
from .compat import protocol


class Facts(object):
    """A slave's (or the master's own) facts, read through named attributes: a misspelt
    fact is an AttributeError, not a silent None. ``data`` is the plain dict as it
    travels (``handle.slave``); a fact it lacks reads as None."""

    __slots__ = ("data",)

    def __init__(self, data=None):
        self.data = data if data is not None else {}

    @classmethod
    def of(cls, facts):
        return facts if isinstance(facts, cls) else cls(facts)

    def __getattr__(self, name):
        if name not in protocol.FACT_NAMES:
            raise AttributeError("no fact named %r (protocol.FACT_NAMES)" % (name,))
        return self.data.get(name)

    @property
    def python(self):
        """Its Python version as a tuple; (3,) where it did not say."""
        return tuple(self.data.get("version") or (3,))

    def __repr__(self):
        return "Facts(%r)" % (self.data,)
