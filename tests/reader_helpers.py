"""Helpers for the reader tests: write runs with `tbreport.testing`, damage files, compare frames.

The framing walk here is deliberately naive (one record at a time, no resync) and independent of
`tbreport.reading.records`, so tests can locate records in *undamaged* files without trusting the
code under test.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import SAMPLE_RUNS
from tensorboard.compat.proto import event_pb2

from tbreport import testing

BASE_WALL = 1_700_000_000.0
FILE_NAME = "events.out.tfevents.1700000000.testhost.100.0"


def event_file_name(index: int = 0, *, suffix: str = "") -> str:
    """A PyTorch-style event file name; ``index`` orders files of one run by name."""
    return f"events.out.tfevents.{1_700_000_000 + index:010d}.testhost.100.{index}{suffix}"


def scalar_series(
    tag: str, steps: Iterable[int], *, value=lambda s: 1.0 / (s + 1), wall0: float = BASE_WALL
) -> list[event_pb2.Event]:
    """PyTorch ``add_scalar`` events, one per step."""
    return [testing.scalar_event(tag, float(value(s)), step=s, wall_time=wall0 + s) for s in steps]


def tensor_series(
    tag: str,
    steps: Iterable[int],
    *,
    value=lambda s: 1.0 / (s + 1),
    wall0: float = BASE_WALL,
    metadata_first: bool = True,
    dtype: str = "float32",
) -> list[event_pb2.Event]:
    """TF2 ``tf.summary.scalar`` events: plugin metadata on the first value only."""
    events = []
    for i, s in enumerate(steps):
        events.append(
            testing.tensor_scalar_event(
                tag,
                float(value(s)),
                step=s,
                wall_time=wall0 + s,
                with_metadata=metadata_first and i == 0,
                dtype=dtype,
            )
        )
    return events


def write_run(directory: Path, events: Sequence, *, index: int = 0, suffix: str = "") -> Path:
    """One event file (with a leading ``brain.Event:2`` record) in ``directory``."""
    head = [testing.file_version_event(wall_time=BASE_WALL - 1)]
    return testing.write_events(
        Path(directory) / event_file_name(index, suffix=suffix), head + list(events)
    )


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` byte spans of the records of an undamaged event file."""
    spans = []
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        end = pos + 12 + length + 4
        if end > len(data):
            break
        spans.append((pos, end))
        pos = end
    return spans


def scalar_rows(frame: pd.DataFrame) -> list[tuple]:
    """Scalars as plain ``(run, tag, step, wall_time, value)`` tuples, in frame order."""
    return list(
        zip(
            frame["run"].astype(str),
            frame["tag"].astype(str),
            frame["step"].astype(int),
            frame["wall_time"].astype(float),
            frame["value"].astype(float),
            strict=True,
        )
    )


def plain(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` with categorical run/tag as text and a fresh index."""
    out = frame[list(columns)].copy()
    for column in ("run", "tag"):
        if column in out:
            out[column] = out[column].astype(str)
    return out.reset_index(drop=True)


def assert_same_frames(left: pd.DataFrame, right: pd.DataFrame, columns: Sequence[str]) -> None:
    """Row-for-row equality of ``columns`` (NaN equals NaN), with a readable failure."""
    a, b = plain(left, columns), plain(right, columns)
    assert len(a) == len(b), f"{len(a)} rows != {len(b)} rows"
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=True)


def multiset(rows: Iterable[tuple]) -> dict[tuple, int]:
    """Rows counted, with NaN made comparable."""
    counts: dict[tuple, int] = {}
    for row in rows:
        key = tuple("nan" if isinstance(x, float) and np.isnan(x) else x for x in row)
        counts[key] = counts.get(key, 0) + 1
    return counts


def contains_all(big: Iterable[tuple], small: Iterable[tuple]) -> list[tuple]:
    """Rows of ``small`` (as a multiset) missing from ``big``; empty when all are present."""
    have = multiset(big)
    missing = []
    for row, count in multiset(small).items():
        if have.get(row, 0) < count:
            missing.append(row)
    return missing


def sample_run_dirs() -> list[Path]:
    """Every run directory holding event files under ``sample_runs/`` (empty if not generated)."""
    if not SAMPLE_RUNS.is_dir():
        return []
    return sorted({p.parent for p in SAMPLE_RUNS.rglob("*tfevents*") if p.is_file()})
