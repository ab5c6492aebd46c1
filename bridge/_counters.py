"""Counters that threads add to while others read them: a handle's stats, a hop's."""
import threading


class Counters(object):
    """Named counters (``FIELDS``), all 0 at first, readable while they grow."""

    FIELDS = ()

    def __init__(self):
        self._lock = threading.Lock()
        for field in self.FIELDS:
            setattr(self, field, 0)

    def add(self, **amounts):
        with self._lock:
            for field, amount in amounts.items():
                setattr(self, field, getattr(self, field) + amount)

    def as_dict(self):
        with self._lock:
            return dict((field, getattr(self, field)) for field in self.FIELDS)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % item for item in sorted(self.as_dict().items())))
