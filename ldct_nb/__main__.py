"""``python -m ldct_nb run --profile smoke``: see :mod:`ldct_nb.runner`."""
from __future__ import annotations

import sys

from ldct_nb.runner import main

if __name__ == "__main__":
    sys.exit(main())
