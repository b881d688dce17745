"""Benchmark: read every scalar of a generated logdir with tbreport, tbparse and EventAccumulator.

Each measurement runs in a fresh Python process, one after the other in the same invocation, so the
ratios are comparable even on a noisy machine. Usage::

    pip install -e ".[bench]"        # tbparse
    python bench/bench_read.py       # 10 runs x 4 tags x 20,000 steps (800,000 scalars)

Prints a markdown table: seconds (best of --repeat), speed-up over tbparse, rows read, and for
tbreport in one process the peak traced memory during the read relative to the resulting DataFrame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

TAGS = ("Loss/train", "Loss/validation", "Learning_Rate", "Gradient/norm")


def generate(logdir: Path, *, runs: int, steps: int) -> None:
    """PyTorch-style event files: one ``simple_value`` per event, as ``add_scalar`` writes."""
    import numpy as np

    from tbreport.testing import file_version_event, frame, scalar_event

    marker = logdir / f".generated-{runs}x{len(TAGS)}x{steps}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    for r in range(runs):
        path = logdir / f"run_{r:02d}" / "events.out.tfevents.1700000000.bench.1.0"
        path.parent.mkdir(parents=True, exist_ok=True)
        values = rng.random((steps, len(TAGS)))
        with open(path, "wb") as out:
            out.write(frame(file_version_event(wall_time=1.7e9).SerializeToString()))
            for step in range(steps):
                for t, tag in enumerate(TAGS):
                    event = scalar_event(
                        tag, float(values[step, t]), step=step, wall_time=1.7e9 + step * 0.05
                    )
                    out.write(frame(event.SerializeToString()))
    marker.write_text("ok\n")


# Each snippet reads LOGDIR and prints {"seconds": s, "rows": n, ...} as JSON.
SNIPPETS = {
    "tbreport (1 process)": """
        import time, tbreport
        t = time.perf_counter()
        df = tbreport.read(LOGDIR, jobs=1).scalars
        seconds = time.perf_counter() - t
        result = {"seconds": seconds, "rows": len(df)}
    """,
    "tbreport (jobs=2)": """
        import time, tbreport
        t = time.perf_counter()
        df = tbreport.read(LOGDIR, jobs=2).scalars
        seconds = time.perf_counter() - t
        result = {"seconds": seconds, "rows": len(df)}
    """,
    "tbparse 0.0.9": """
        import time
        from tbparse import SummaryReader
        t = time.perf_counter()
        df = SummaryReader(LOGDIR, extra_columns={"dir_name", "wall_time"}).scalars
        seconds = time.perf_counter() - t
        result = {"seconds": seconds, "rows": len(df)}
    """,
    "EventAccumulator (size_guidance 0)": """
        import os, time, pandas as pd
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        t = time.perf_counter()
        frames = []
        for run in sorted(os.listdir(LOGDIR)):
            path = os.path.join(LOGDIR, run)
            if not os.path.isdir(path):
                continue
            acc = EventAccumulator(path, size_guidance={"scalars": 0})
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                events = acc.Scalars(tag)
                frames.append(pd.DataFrame({
                    "run": run, "tag": tag,
                    "step": [e.step for e in events],
                    "wall_time": [e.wall_time for e in events],
                    "value": [e.value for e in events],
                }))
        df = pd.concat(frames, ignore_index=True)
        seconds = time.perf_counter() - t
        result = {"seconds": seconds, "rows": len(df)}
    """,
}

MEMORY_SNIPPET = """
    import tracemalloc, tbreport
    import pandas, numpy  # imported before tracing: only the read itself is measured
    tracemalloc.start()
    df = tbreport.read(LOGDIR, jobs=1).scalars
    current, peak = tracemalloc.get_traced_memory()
    frame_bytes = int(df.memory_usage(deep=True).sum())
    result = {"peak": peak, "frame": frame_bytes, "rows": len(df)}
"""


def run_snippet(snippet: str, logdir: Path) -> dict:
    code = (
        f"LOGDIR = {str(logdir)!r}\n"
        + textwrap.dedent(snippet)
        + "\nimport json; print('RESULT ' + json.dumps(result))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"benchmark snippet failed:\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N fresh processes")
    parser.add_argument("--logdir", type=Path, default=Path("bench/out/read_logdir"))
    parser.add_argument(
        "--skip-peers", action="store_true", help="only time tbreport (no tbparse/EventAccumulator)"
    )
    args = parser.parse_args(argv)

    generate(args.logdir, runs=args.runs, steps=args.steps)
    size_mb = sum(p.stat().st_size for p in args.logdir.rglob("*tfevents*")) / 1e6
    print(
        f"logdir: {args.runs} runs x {len(TAGS)} tags x {args.steps} steps = "
        f"{args.runs * len(TAGS) * args.steps:,} scalars, {size_mb:.0f} MB",
        file=sys.stderr,
    )
    timings: dict[str, dict] = {}
    for name, snippet in SNIPPETS.items():
        if args.skip_peers and not name.startswith("tbreport"):
            continue
        runs = [run_snippet(snippet, args.logdir) for _ in range(args.repeat)]
        timings[name] = {
            "seconds": min(r["seconds"] for r in runs),
            "rows": runs[0]["rows"],
        }
        print(f"  {name}: {timings[name]['seconds']:.2f} s", file=sys.stderr)
    memory = run_snippet(MEMORY_SNIPPET, args.logdir)

    base = timings.get("tbparse 0.0.9", {}).get("seconds")
    print(f"| reader | seconds (best of {args.repeat}) | speed-up vs tbparse | rows |")
    print("|---|---:|---:|---:|")
    for name, t in timings.items():
        ratio = f"{base / t['seconds']:.1f}x" if base else "n/a"
        print(f"| {name} | {t['seconds']:.2f} | {ratio} | {t['rows']:,} |")
    print()
    print(
        f"Peak memory of `tbreport.read(jobs=1)` (tracemalloc): {memory['peak'] / 1e6:.1f} MB "
        f"for a {memory['frame'] / 1e6:.1f} MB DataFrame "
        f"({memory['peak'] / memory['frame']:.2f}x the DataFrame)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
