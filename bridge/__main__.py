"""``python -m bridge run|doctor``: see bridge/_cli.py."""
import sys

from ._cli import main

sys.exit(main())
