#!/usr/bin/env python3
"""Regenerate the documents rendered from the detector registry.

The README's rules table, its list of problems and of the detectors that decide a run's health,
and ``docs/rules.md`` come from the detectors themselves (``tbreport.diagnosis.reference``);
a test fails when they drift. Run this after adding or changing a detector::

    python3 scripts/render_rules.py           # rewrite what drifted
    python3 scripts/render_rules.py --check   # exit 1 if anything drifted (CI)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tbreport, not an installed one

from tbreport.diagnosis.reference import stale_docs, write_docs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift (exit 1)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root [this one]")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_docs(args.root)
        for path in stale:
            print(f"stale: {path.relative_to(args.root)}")
        return 1 if stale else 0
    for path in write_docs(args.root):
        print(f"wrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
