#!/usr/bin/env python
"""What a ``tbreport watch`` poll costs on a big logdir: 100 runs, 10 million points in total.

The logdir (100 runs x 4 tags x 25,000 steps, PyTorch-style ``simple_value`` scalars) is framed
with numpy, checksums included (`tbreport.reading.records.masked_crc32c_rows`), and cached under
``/tmp/tbreport-bench-watch``; a 10-run logdir of the same runs is the "small logdir" baseline.

Measured, with one `IncrementalReader` per logdir after its first (full) poll:

- a poll when nothing changed (median of 30), which must stay under 50 ms;
- a poll after appending 1 KB ... 10 MB of records to one run, on the big and the small logdir:
  the cost follows the appended bytes, not the size of the logdir;
- for scale, ``Monitor.poll`` (read + re-diagnosis of the one run that changed).

Appended bytes are cut off again at the end, so the cache stays valid.

Usage::

    python bench/bench_watch.py [--runs 100] [--steps 25000]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tbreport.monitor import Monitor  # noqa: E402
from tbreport.reading.incremental import IncrementalReader  # noqa: E402
from tbreport.reading.records import masked_crc32c, masked_crc32c_rows  # noqa: E402
from tbreport.testing import file_version_event, frame  # noqa: E402

CACHE = Path("/tmp/tbreport-bench-watch")
TAGS = ("loss/train", "loss/valid", "lr/current", "grad/norm_")  # equal lengths: one layout
FILE_NAME = "events.out.tfevents.1700000000.benchhost.1.0"


def _varint(values: np.ndarray, width: int) -> np.ndarray:
    """``values`` as varints of exactly ``width`` bytes, shape ``(n, width)``."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = values.astype(np.uint64)
    for j in range(width):
        out[:, j] = (v >> np.uint64(7 * j)) & np.uint64(0x7F)
        if j < width - 1:
            out[:, j] |= 0x80
    return out


def scalar_records(steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> bytes:
    """Framed ``simple_value`` events, one row of ``values`` (one column per tag) per step."""
    chunks: list[tuple[int, bytes]] = []
    tag_len = len(TAGS[0])
    for width in (1, 2, 3, 4, 5):
        lo, hi = (0 if width == 1 else 1 << (7 * (width - 1))), 1 << (7 * width)
        rows = np.flatnonzero((steps >= lo) & (steps < hi))
        if not len(rows):
            continue
        value_len = 2 + tag_len + 5  # tag field + simple_value field
        summary_len = 2 + value_len
        length = 9 + 1 + width + 2 + summary_len
        n = len(rows) * len(TAGS)
        data = np.empty((n, length), dtype=np.uint8)
        data[:, 0] = 0x09
        data[:, 1:9] = np.repeat(walls[rows], len(TAGS)).astype("<f8").view(np.uint8).reshape(n, 8)
        data[:, 9] = 0x10
        data[:, 10 : 10 + width] = np.repeat(_varint(steps[rows], width), len(TAGS), axis=0)
        p = 10 + width
        data[:, p : p + 4] = (0x2A, summary_len, 0x0A, value_len)
        data[:, p + 4 : p + 6] = (0x0A, tag_len)
        tags = np.frombuffer("".join(TAGS).encode(), dtype=np.uint8).reshape(len(TAGS), tag_len)
        data[:, p + 6 : p + 6 + tag_len] = np.tile(tags, (len(rows), 1))
        data[:, p + 6 + tag_len] = 0x15
        data[:, p + 7 + tag_len :] = (
            values[rows].astype("<f4").reshape(-1).view(np.uint8).reshape(n, 4)
        )
        header = struct.pack("<Q", length)
        head = np.frombuffer(header + struct.pack("<I", masked_crc32c(header)), dtype=np.uint8)
        crc = masked_crc32c_rows(np.ascontiguousarray(data.T)).astype("<u4").view(np.uint8)
        records = np.concatenate([np.tile(head, (n, 1)), data, crc.reshape(n, 4)], axis=1)
        chunks.append((int(rows[0]), records.tobytes()))
    return b"".join(chunk for _, chunk in sorted(chunks))


def run_points(index: int, first: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(index * 1_000_003 + first)
    steps = np.arange(first, first + count, dtype=np.int64)
    decay = 1.0 / (1.0 + steps / 2000.0)
    values = np.stack(
        [
            decay + rng.normal(0, 0.01, count),
            1.1 * decay + rng.normal(0, 0.01, count),
            1e-3 * 0.5 ** (steps // 10000),
            np.abs(rng.normal(1.0, 0.1, count)),
        ],
        axis=1,
    )
    return steps, values, 1_700_000_000.0 + 0.01 * steps


def make_logdir(runs: int, steps: int) -> Path:
    """The cached logdir of ``runs`` runs x 4 tags x ``steps`` steps."""
    root = CACHE / f"runs{runs}_steps{steps}"
    done = root / ".complete"
    if done.exists():
        return root
    print(f"generating {root} ({runs * steps * len(TAGS):,} points) ...", flush=True)
    for index in range(runs):
        path = root / f"run_{index:03d}" / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            out.write(frame(file_version_event(wall_time=1_700_000_000.0).SerializeToString()))
            out.write(scalar_records(*run_points(index, 0, steps)))
    done.write_text("ok")
    return root


def _timed(fn) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _append_bytes(target_bytes: int, first_step: int) -> tuple[bytes, int]:
    """About ``target_bytes`` of records for the steps after ``first_step``; and their count."""
    record = 12 + 9 + 1 + 3 + 2 + 2 + len(TAGS[0]) + 2 + 5 + 4
    steps = max(1, target_bytes // (record * len(TAGS)))
    return scalar_records(*run_points(0, first_step, steps)), steps


def measure(root: Path, sizes: list[int], steps: int) -> dict:
    """Idle-poll and append-poll times of an IncrementalReader on ``root``."""
    reader = IncrementalReader(root)
    first, _ = _timed(reader.poll)
    idle = []
    for _ in range(30):
        seconds, polled = _timed(reader.poll)
        assert polled.bytes_read == 0
        idle.append(seconds)
    target = root / "run_000" / FILE_NAME
    original = target.stat().st_size
    appended: dict[int, tuple[float, int]] = {}
    next_step = steps
    try:
        for size in sizes:
            data, count = _append_bytes(size, next_step)
            next_step += count
            with open(target, "ab") as out:
                out.write(data)
            seconds, polled = _timed(reader.poll)
            assert polled.bytes_read == len(data)
            assert polled.changed == {"run_000"}
            appended[size] = (seconds, len(data))
    finally:
        os.truncate(target, original)
    return {"first": first, "idle": idle, "appended": appended}


def measure_monitor(root: Path, steps: int) -> tuple[float, float, float]:
    """First Monitor poll, then a poll that re-diagnoses one run after a 100 KB append."""
    monitor = Monitor(root)
    first, _ = _timed(monitor.poll)
    idle, _ = _timed(monitor.poll)
    target = root / "run_000" / FILE_NAME
    original = target.stat().st_size
    try:
        with open(target, "ab") as out:
            out.write(_append_bytes(100_000, steps)[0])
        changed, _ = _timed(monitor.poll)
        assert monitor.last_poll.diagnosed == ("run_000",)
    finally:
        os.truncate(target, original)
    return first, idle, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=25_000)
    parser.add_argument("--small-runs", type=int, default=10)
    args = parser.parse_args()
    big = make_logdir(args.runs, args.steps)
    small = make_logdir(args.small_runs, args.steps)
    sizes = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    results = {}
    for name, root, runs in (("big", big, args.runs), ("small", small, args.small_runs)):
        size_mb = sum(p.stat().st_size for p in root.rglob("*tfevents*")) / 1e6
        results[name] = measure(root, sizes, args.steps)
        results[name]["label"] = (
            f"{runs} runs, {runs * args.steps * len(TAGS) / 1e6:g}M points, {size_mb:.0f} MB"
        )
    mon_first, mon_idle, mon_changed = measure_monitor(big, args.steps)

    ms = 1000.0
    print()
    print("| measurement | " + " | ".join(results[k]["label"] for k in results) + " |")
    print("|---|" + "---:|" * len(results))
    print(
        "| first poll (reads everything) | "
        + " | ".join(f"{results[k]['first']:.2f} s" for k in results)
        + " |"
    )
    print(
        "| poll, nothing changed (median of 30 / max) | "
        + " | ".join(
            f"{statistics.median(results[k]['idle']) * ms:.1f} ms / "
            f"{max(results[k]['idle']) * ms:.1f} ms"
            for k in results
        )
        + " |"
    )
    for size in sizes:
        nbytes = results["big"]["appended"][size][1]
        print(
            f"| poll after appending {nbytes / 1000:,.0f} KB to one run | "
            + " | ".join(f"{results[k]['appended'][size][0] * ms:.1f} ms" for k in results)
            + " |"
        )
    print()
    print(f"Monitor on {results['big']['label']}:")
    print(f"- first poll (read + diagnose every run): {mon_first:.1f} s")
    print(f"- poll, nothing changed: {mon_idle * ms:.1f} ms")
    print(f"- poll after a 100 KB append (read, re-diagnose that run): {mon_changed * ms:.0f} ms")
    idle_ok = statistics.median(results["big"]["idle"]) < 0.050
    print(f"\nidle poll under 50 ms on the big logdir: {'yes' if idle_ok else 'NO'}")


if __name__ == "__main__":
    main()
