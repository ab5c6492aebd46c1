"""The served distributions' metadata, as one session knows it.

Metadata is looked up, never imported: a master that cannot answer means "not
found" (importlib.metadata's PackageNotFoundError), not an ImportError. A folder
is read where its tree holds it, until pkg_resources needs every one in one path
entry (``working_set.expose``): then they are placed in the session folder.
"""
import threading

from . import protocol
from .client import BridgeUnavailable, NotIntact
from .files import inside
from .neutral import ensure_text


class ServedDistributions(object):
    """What the master said of its distributions, asked once each, then from memory."""

    def __init__(self, session):
        self._session = session  # its exchange with the master, its session folder
        self._lock = threading.Lock()
        self._folders = {}  # normalized name -> its metadata folder, or None
        self._sources = {}  # normalized name -> (tree folder, root-relative folder)
        self._listed_all = False  # has the master sent every distribution's metadata?
        self._left_out = {}  # normalized name -> files of its folder a listing did not send
        self.classes = {}  # metadata API's module name -> its distribution class
        self.exposed = False  # are they in the session folder, on sys.path, for pkg_resources?

    def folders(self, name=None):
        """[(normalized name, folder)] of the master's metadata for distribution ``name``,
        or for all when None."""
        if protocol.distribution_name_problem(name):
            return []
        key = None if name is None else protocol.normalized_distribution(ensure_text(name))
        with self._lock:
            known = self._listed_all if key is None else key in self._folders
        if not known:
            self._ask(name, key)
        with self._lock:
            wanted = sorted(self._folders) if key is None else [key]
            return [(each, self._folders[each]) for each in wanted if self._folders.get(each)]

    def complete(self, normalized, filename=None):
        """Before ``filename`` (None: any file) of a listed distribution is read: if the
        listing left it out, fetch the whole folder (one round trip, once)."""
        with self._lock:
            left_out = self._left_out.get(normalized, ())
            needed = filename in left_out if filename is not None else bool(left_out)
        if needed:
            self._ask(normalized, normalized)

    def folder(self, normalized):
        """Where the metadata of distribution ``normalized`` is now, or None."""
        with self._lock:
            return self._folders.get(normalized)

    def place_all(self):
        """Link the metadata folder of every served distribution known so far from its
        tree into the session folder, and read it there from now on."""
        folder_here = self._session.session_folder
        with self._lock:
            known = [(name, self._sources.get(name)) for name, folder in
                     self._folders.items() if folder]
        placed = {}
        for name, source in known:
            if source is not None:
                tree, relative = source
                folder_here.link_tree(relative, tree)
                placed[name] = folder_here.path(relative)
        with self._lock:
            self._folders.update(placed)

    def forget(self, names):
        """Drop what the master said of the distributions ``names`` (normalized): the
        slave has them itself. Returns their folders (in a tree, or the session folder)."""
        with self._lock:
            folders = [self._folders.pop(name, None) for name in names]
            for name in names:
                self._folders[name] = None  # known: not the master's to serve
                self._left_out.pop(name, None)
        return [folder for folder in folders if folder]

    def _ask(self, name, key):
        try:
            reply, placed = self._session.exchange(
                lambda lost: protocol.distributions_request(name, lost))
        except (BridgeUnavailable, NotIntact):
            return
        records = []
        if protocol.kind_of(reply) == protocol.MODULE:
            records = reply.get(protocol.MODULES) or []
        found, left_out, sources = {}, {}, {}
        for record in records:
            normalized = ensure_text(record[protocol.NAME])
            relative = ensure_text(record[protocol.PATH])
            folder = placed[normalized]
            sources[normalized] = (folder, relative)
            if self.exposed:  # pkg_resources reads the session folder: place it there
                self._place(record, folder)
                found[normalized] = self._session.session_folder.path(relative)
            else:  # read where the tree holds it: nothing placed
                found[normalized] = inside(folder, relative)
            left_out[normalized] = set(ensure_text(path) for path in
                                       record.get(protocol.LEFT_OUT) or ())
        with self._lock:
            self._sources.update(sources)
            self._folders.update(found)
            self._left_out.update(left_out)
            if key is None:
                self._listed_all = True
            else:
                self._folders.setdefault(key, None)

    def _place(self, record, folder):
        """Place a metadata record's folder and files in the session folder, from the
        tree ``folder`` (pkg_resources reads metadata from one path entry)."""
        folder_here = self._session.session_folder
        if not record.get(protocol.FILES):  # a lean reply: the record's path, whole
            folder_here.link_tree(ensure_text(record[protocol.PATH]), folder)
            return
        for each in record.get(protocol.DIRS) or ():
            folder_here.make_dir(ensure_text(each))
        for placed, sha, _ in record.get(protocol.FILES) or ():
            placed = ensure_text(placed)
            folder_here.place(placed, inside(folder, placed), ensure_text(sha))
