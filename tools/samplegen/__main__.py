"""``python3 -m tools.samplegen``: regenerate ``sample_runs/`` (or only its README and labels)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.samplegen.catalogue import RUNS, select
from tools.samplegen.readme import SAMPLE_RUNS, write_docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tools.samplegen",
        description="Train the catalogue's tiny sample runs (torch, CPU, one thread, a minute or "
        "a few) and write them, their README.md tables and labels.json.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=SAMPLE_RUNS,
        help="output directory (default: the project's sample_runs/)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="regenerate only these runs: a run's name (lstm_basic), its path or a layout "
        "(keras); runs that share a process (autostock) then get other wall times than in a "
        "full generation",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="only re-render README.md's generated blocks and labels.json from the catalogue "
        "(no training, no torch needed)",
    )
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    args = parser.parse_args(argv)

    if args.list:
        for spec in RUNS:
            print(f"{spec.name:32} {spec.path}")
        return 0
    if args.readme:
        if args.only:
            parser.error("--readme renders every run; it takes no --only")
        args.out.mkdir(parents=True, exist_ok=True)
        changed = write_docs(args.out)
        print("\n".join(f"wrote {p}" for p in changed) or "README.md and labels.json up to date")
        return 0
    if args.only:
        try:
            select(args.only)
        except KeyError as exc:
            parser.error(f"{exc.args[0]} (see --list)")
    try:
        from tools.samplegen.build import generate
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise
        parser.exit(
            2,
            "python3 -m tools.samplegen trains with PyTorch: pip install torch (or pip install "
            "-e .[samples]); --readme needs no torch\n",
        )
    start = time.perf_counter()
    specs = generate(args.out, args.only)
    print(f"{len(specs)} runs in {time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
