"""Packages built on disk per test: what the master serves and the slaves lack."""
import os
import zipfile

from conftest import write_tree

SHOP = {
    "shop/__init__.py": '''
        """The shop package: it lives only on the master."""
        from . import prices
        from .prices import total
        NAME = "shop"
        ''',
    "shop/prices.py": '''
        from .tax import RATE


        def total(amount):
            return round(amount * (1 + RATE), 2)
        ''',
    "shop/tax.py": "RATE = 0.25\n",
    "shop/cart/__init__.py": '''
        from ..prices import total
        from . import items
        ''',
    "shop/cart/items.py": '''
        import shop.tax
        from shop import prices


        def first():
            return "apple"


        def fail():
            detail = "raised in shop.cart.items"
            raise ValueError(detail)
        ''',
    "shop/broken.py": '''
        PARTIAL = True
        raise RuntimeError("shop.broken fails on purpose")
        ''',
    "shop/importsbroken.py": '''
        from . import broken
        ''',
    "shop/VERSION": "1.2.3\n",
    "shop/templates/receipt.txt": "Total: {total}\n",
    "shop/data/rates.json": '{"standard": 0.25}\n',
    "standalone.py": 'WHERE = "master"\n',
}


def shop_tree(tmp_path):
    """The shop tree under ``tmp_path/master``; returns that folder."""
    return write_tree(tmp_path / "master", SHOP)


def witness_tree(tmp_path):
    """A module that logs the pid of every process that executes it."""
    log = str(tmp_path / "witness.log")
    source = "import os\nwith open(%r, 'a') as log:\n    log.write('%%d\\n' %% os.getpid())\n" % log
    folder = write_tree(tmp_path / "witness", {"witness/__init__.py": source,
                                               "witness/child.py": source})
    return folder, log


def zip_tree(tmp_path):
    """A zip with a package and its data, as a path entry: ``archive.zip/lib``."""
    archive = str(tmp_path / "archive.zip")
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("lib/zipped/__init__.py", "from .inner import VALUE\n")
        out.writestr("lib/zipped/inner.py", "VALUE = 'from the zip'\n")
        out.writestr("lib/zipped/data.txt", "zip data\n")
    return os.path.join(archive, "lib")


def fleet_tree(tmp_path, modules=8):
    """``fleet.m0`` ... ``fleet.m<N-1>`` (slow to import, to widen races), and
    ``fleet.shared``, which records every execution in ``fleet.EXECUTIONS``."""
    files = {"fleet/__init__.py": "EXECUTIONS = []\n",
             "fleet/shared.py": "import time\nimport fleet\nfleet.EXECUTIONS.append(1)\n"
                                "time.sleep(0.05)\nVALUE = 'shared'\n"}
    for index in range(modules):
        files["fleet/m%d.py" % index] = "import time\ntime.sleep(0.05)\nVALUE = %d\n" % index
    return write_tree(tmp_path / "fleet-master", files)


def big_tree(tmp_path, megabytes=30):
    """A package whose data makes one reply large."""
    folder = write_tree(tmp_path / "big-master", {"big/__init__.py": "VALUE = 'big'\n"})
    with open(os.path.join(folder, "big", "blob.bin"), "wb") as stream:
        stream.write(os.urandom(megabytes * 1024 * 1024))
    return folder


TZ = {  # shaped like tzdata: data in nested subpackages that hold no code
    "tzdata/__init__.py": 'IANA_VERSION = "2024a"\n',
    "tzdata/zones": "Europe/Paris\nAmerica/Argentina/Salta\n",
    "tzdata/zoneinfo/__init__.py": "",
    "tzdata/zoneinfo/UTC": "TZif UTC\n",
    "tzdata/zoneinfo/Europe/__init__.py": "",
    "tzdata/zoneinfo/Europe/Paris": "TZif Paris\n",
    "tzdata/zoneinfo/America/__init__.py": '"""Zones of the Americas: a docstring is no code."""\n',
    "tzdata/zoneinfo/America/Argentina/__init__.py": "# no code\n",
    "tzdata/zoneinfo/America/Argentina/Salta": "TZif Salta\n",
    "tzdata/zoneinfo/Asia/__init__.py": "",
    "tzdata/zoneinfo/Asia/Tokyo": "TZif Tokyo\n",
    "tzdata/helpers/__init__.py": "from .tools import LOOKUP\n",  # a subpackage with code
    "tzdata/helpers/tools.py": "LOOKUP = 'helpers'\n",
    "tzdata/helpers/table.csv": "zone,offset\n",
}


def tz_tree(tmp_path):
    """The tzdata-shaped tree under ``tmp_path/tz-master``; returns that folder."""
    return write_tree(tmp_path / "tz-master", TZ)
