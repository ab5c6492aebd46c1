"""The slave world of execnet-bridge: code that runs in interpreters other than the master.

Every module in this folder runs in an interpreter the master does not control,
so it must run with the standard library only, on Python 2.7 and 3.4+. Most
are shipped to the slave as *source* (``bridge._install.SLAVE_MODULES``).
``paths`` is not shipped: it runs in the master, and in the interpreter that
``install(python=...)`` reads (``bridge._environment``'s probe, a plain
``from compat import paths, tags`` there), which is why it lives here and
follows these rules.
None of them imports the ``bridge`` package; they refer to each other with
explicit relative imports, which work both here (installed as
``bridge.compat``) and on the slave (materialised as ``_execnet_bridge``).
Nothing here does work at import time.
"""
