"""``python -m syncd`` is the ``syncd`` command."""

import sys

from .cli import main

sys.exit(main())
