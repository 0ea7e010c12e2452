"""``python -m core``: the LucidDx command line (see README and shared CLI contract)."""

import sys

from core.cli import main

sys.exit(main())
