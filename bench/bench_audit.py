"""Benchmark ``tbreport audit`` on a generated archive of many small runs.

Generates ``runs-<N>.tar.gz`` archives of small PyTorch-style runs (train/val loss, learning rate,
hparams; some diverge, some overfit), then audits them, each audit in a fresh subprocess, and
prints a markdown table:

- runs per second of a cold audit (no cache) with 1 and 2 worker processes;
- the speed-up of a second, cached audit of the unchanged archive;
- peak memory (max RSS) of an audit of 100 runs and of 1,000 runs.

Usage::

    python bench/bench_audit.py                 # 1,000 and 100 runs
    python bench/bench_audit.py --runs 200 --small 50
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

WALL = 1_700_000_000.0


def run_events(index: int, rng: np.random.Generator) -> bytes:
    """One small run's event file: 200 steps of train loss and lr, val loss every 10 steps."""
    from tbreport.testing import file_version_event, frame, hparams_events, scalar_event

    lr = float(10 ** rng.uniform(-4, -1))
    kind = index % 10  # 1 in 10 diverges, 1 in 10 overfits
    events = [file_version_event(wall_time=WALL)]
    events += hparams_events(
        {"lr": lr, "batch_size": int(2 ** rng.integers(4, 9)), "optimizer": "adam"},
        metrics=["val/loss"],
        wall_time=WALL,
    )
    for step in range(200):
        wall = WALL + index * 1000 + step * 2.0
        train = float(np.exp(-step / 60) + 0.02 * rng.random())
        if kind == 0 and step > 120:
            train = float("nan")
        events.append(scalar_event("train/loss", train, step=step, wall_time=wall))
        events.append(scalar_event("lr", lr, step=step, wall_time=wall))
        if step % 10 == 0:
            val = float(np.exp(-step / 60) + 0.05)
            if kind == 1:
                val += max(0, step - 80) * 0.01
            events.append(scalar_event("val/loss", val, step=step, wall_time=wall))
    return b"".join(frame(e.SerializeToString()) for e in events)


def make_archive(path: Path, runs: int) -> Path:
    """Write ``runs`` small runs straight into a tar.gz (nothing is written to a run tree)."""
    rng = np.random.default_rng(runs)
    with tarfile.open(path, "w:gz") as archive:
        for index in range(runs):
            data = run_events(index, rng)
            info = tarfile.TarInfo(f"runs/run_{index:05d}/events.out.tfevents.{int(WALL)}.bench")
            info.size = len(data)
            info.mtime = int(WALL)
            archive.addfile(info, io.BytesIO(data))
    return path


def measure(archive: str, *, jobs: int, cache_dir: str | None, out: str) -> dict:
    """One audit in this process (called in a fresh subprocess by the parent)."""
    from tbreport.audit import audit, write_audit  # imported before timing starts

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = audit(
        [archive], jobs=jobs, cache_dir=cache_dir, use_cache=cache_dir is not None, progress=False
    )
    write_audit(result, out, force=True)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "runs": len(result.runs),
        "cached_units": result.stats.cached_units,
        "units": result.stats.units,
        "cpu_seconds": own.ru_utime
        + own.ru_stime
        - before.ru_utime
        - before.ru_stime
        + children.ru_utime
        + children.ru_stime,
        "max_rss_kib": own.ru_maxrss,
        "max_child_rss_kib": children.ru_maxrss,
    }


def in_subprocess(archive: Path, *, jobs: int, cache_dir: Path | None, out: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "_measure",
        str(archive),
        "--jobs",
        str(jobs),
        "--out",
        str(out),
    ]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    result["load"] = max(load, os.getloadavg()[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100, help="runs of the smaller archive")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tbreport-bench-") as temp:
        work = args.workdir or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        big = make_archive(work / f"runs-{args.runs}.tar.gz", args.runs)
        small = make_archive(work / f"runs-{args.small}.tar.gz", args.small)
        generated = time.perf_counter() - started
        print(
            f"generated {args.runs} + {args.small} runs in {generated:.1f} s "
            f"({big.stat().st_size / 1e6:.1f} MB archive)",
            file=sys.stderr,
        )
        out = work / "out"
        cold1 = in_subprocess(big, jobs=1, cache_dir=None, out=out)
        cold2 = in_subprocess(big, jobs=2, cache_dir=None, out=out)
        cache = work / "cache"
        first = in_subprocess(big, jobs=2, cache_dir=cache, out=out)
        cached = in_subprocess(big, jobs=2, cache_dir=cache, out=out)
        assert cached["cached_units"] == cached["units"], cached
        mem_small = in_subprocess(small, jobs=1, cache_dir=None, out=out)
        mem_big = cold1
        mem_small2 = in_subprocess(small, jobs=2, cache_dir=None, out=out)
        mem_big2 = cold2

    def rate(m: dict) -> str:
        return f"{m['runs'] / m['seconds']:.1f}"

    def timing(m: dict) -> str:
        # Other processes on the machine slow the wall clock, not the CPU time: show both.
        return f"{m['seconds']:.1f} s wall, {m['cpu_seconds']:.1f} s CPU, load {m['load']:.1f}"

    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    n = args.runs
    rows = [
        (f"cold audit, 1 job ({n} runs)", f"{rate(cold1)} runs/s ({timing(cold1)})"),
        (
            f"cold audit, 2 jobs ({n} runs)",
            f"{rate(cold2)} runs/s ({timing(cold2)}); "
            f"{cold1['seconds'] / cold2['seconds']:.2f}x the 1-job speed",
        ),
        ("first audit with cache, 2 jobs", f"{first['seconds']:.2f} s (writes the cache)"),
        (
            "second audit, unchanged archive (cached)",
            f"{cached['seconds']:.2f} s: "
            f"**{first['seconds'] / cached['seconds']:.0f}x** faster "
            f"({first['process_seconds'] / cached['process_seconds']:.1f}x for the whole process, "
            "interpreter start-up included)",
        ),
        (
            f"peak memory, 1 job: {args.small} vs {n} runs",
            f"{mib(mem_small['max_rss_kib'])} vs {mib(mem_big['max_rss_kib'])} "
            f"(**{mem_big['max_rss_kib'] / mem_small['max_rss_kib']:.2f}x**)",
        ),
        (
            f"peak memory, 2 jobs: {args.small} vs {n} runs (main / largest worker)",
            f"{mib(mem_small2['max_rss_kib'])} / {mib(mem_small2['max_child_rss_kib'])} vs "
            f"{mib(mem_big2['max_rss_kib'])} / {mib(mem_big2['max_child_rss_kib'])}",
        ),
    ]
    print(f"| measurement ({os.cpu_count()} cores) | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        sub = argparse.ArgumentParser()
        sub.add_argument("archive")
        sub.add_argument("--jobs", type=int, default=1)
        sub.add_argument("--cache-dir", default=None)
        sub.add_argument("--out", required=True)
        options = sub.parse_args(sys.argv[2:])
        print(
            json.dumps(
                measure(
                    options.archive, jobs=options.jobs, cache_dir=options.cache_dir, out=options.out
                )
            )
        )
    else:
        main()
