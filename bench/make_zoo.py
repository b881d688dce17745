#!/usr/bin/env python
"""Generate the pathology zoo for calibrating the detectors (see ``tools/zoo/README.md``).

Usage::

    pip install torch                       # optional extra, never needed by tbreport itself
    python3 bench/make_zoo.py [--out DIR] [--count 220] [--seed 0] [--jobs 2]

Without ``--out`` the zoo goes to ``~/.cache/tbreport/zoo/<version-hash>/``; a complete zoo of
the same version is reused, so running this twice costs nothing the second time.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.zoo.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
