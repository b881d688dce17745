"""``python3 -m tools.zoo`` (or ``python3 bench/make_zoo.py``): generate the pathology zoo."""

from __future__ import annotations

import argparse
import sys
import time

from tools.zoo import default_out, generate


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and generate (or find) the zoo; prints its path last."""
    parser = argparse.ArgumentParser(
        prog="make_zoo",
        description="Generate the labelled pathology zoo: real tiny torch trainings on synthetic "
        "data, written in seven TensorBoard layouts, with labels.json.",
    )
    parser.add_argument("--out", default=None, help="output directory (default: the cache path)")
    parser.add_argument("--count", type=int, default=220, help="number of runs (default 220)")
    parser.add_argument("--seed", type=int, default=0, help="recipe seed (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--force", action="store_true", help="regenerate even if complete")
    parser.add_argument("--print-path", action="store_true", help="only print the default path")
    args = parser.parse_args(argv)
    if args.print_path:
        print(default_out(count=args.count, seed=args.seed))
        return 0
    try:
        import torch  # noqa: F401 - only checks that the optional extra is there
    except ImportError:
        print("the zoo trains real models: pip install torch (or pip install -e .[samples])")
        return 2
    started = time.perf_counter()
    out = generate(out=args.out, count=args.count, seed=args.seed, jobs=args.jobs, force=args.force)
    print(f"wall time {time.perf_counter() - started:.1f} s")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
