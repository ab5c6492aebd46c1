"""The slave world of execnet-bridge.

Every module in this folder is shipped to the remote interpreter as *source*
and must run there with the standard library only, on Python 2.7 and 3.4+.
None of them imports the ``bridge`` package; they refer to each other with
explicit relative imports, which work both here (installed as
``bridge.compat``) and on the slave (materialised as ``_execnet_bridge``).
Nothing here does work at import time.
"""
