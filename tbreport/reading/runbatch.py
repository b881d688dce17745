"""`RunBatch`: runs read together, with their share of combining done where they were read.

Combining thousands of small runs into frames is mostly work per run: joining each run's
columns, numbering its tags, taking its inventory cells. A batch does that for its runs as soon as
they are assembled (in a worker, or in the reading process between its own batches), so that
`assemble.combine` is left with a few arrays per batch to join instead of a few per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from tbreport.reading.grouping import InventoryCells, inventory_cells
from tbreport.reading.parsing import segment_starts
from tbreport.reading.rundata import RunData

SCALAR_COLUMNS = ("scalar_tag", "scalar_step", "scalar_wall", "scalar_value")


@dataclass
class RunBatch:
    """Runs read together, their scalar columns joined: the runs' own are released (empty).

    ``scalar_tag`` holds each row's tag as an index into the batch's ``tags``.
    """

    runs: list[RunData]
    tags: list[str]  # every tag of the runs, once, in the order first seen
    sizes: np.ndarray  # scalar rows per run
    scalar_tag: np.ndarray
    scalar_step: np.ndarray
    scalar_wall: np.ndarray
    scalar_value: np.ndarray
    inventory: InventoryCells

    @classmethod
    def of(cls, runs: list[RunData]) -> RunBatch:
        """The batch of ``runs`` (assembled): their columns are joined and released."""
        inventory = inventory_cells(runs)  # before the runs' columns are released
        code: dict[str, int] = {}
        mapping = np.array(
            [code.setdefault(tag, len(code)) for rd in runs for tag in rd.tags], dtype=np.int64
        )
        tag_counts = np.array([len(rd.tags) for rd in runs], dtype=np.int64)
        sizes = np.array([len(rd.scalar_tag) for rd in runs], dtype=np.int64)
        tag_type = code_type(len(code))
        columns: dict[str, Any] = {
            "scalar_tag": join_parts(
                list(_row_codes(runs, mapping, tag_counts, sizes, tag_type)), tag_type
            ),
            **{
                name: join_parts([getattr(rd, name) for rd in runs], NO_SCALARS[name].dtype)
                for name in SCALAR_COLUMNS[1:]
            },
        }
        for rd in runs:
            for name in SCALAR_COLUMNS:
                setattr(rd, name, NO_SCALARS[name])
        return cls(runs=runs, tags=list(code), sizes=sizes, **columns, inventory=inventory)

    def bare(self) -> RunBatch:
        """This batch without its runs or scalar columns (its tags and inventory cells), for a
        worker to send along with the columns."""
        return replace(self, runs=[], **NO_SCALARS)

    def release(self) -> None:
        """Drop the batch's scalar columns (once combined)."""
        for name in SCALAR_COLUMNS:
            setattr(self, name, NO_SCALARS[name])

    def give_back_columns(self) -> None:
        """Give each run its scalar columns again (views of the batch's), for callers that
        take the runs rather than the batch."""
        starts = segment_starts(self.sizes).tolist()
        code = {tag: i for i, tag in enumerate(self.tags)}
        for k, rd in enumerate(self.runs):
            a, b = starts[k], starts[k] + int(self.sizes[k])
            own = np.zeros(len(self.tags), dtype=np.int32)  # batch tag -> the run's tag id
            own[[code[tag] for tag in rd.tags]] = np.arange(len(rd.tags), dtype=np.int32)
            rd.scalar_tag = own[self.scalar_tag[a:b]]
            for name in SCALAR_COLUMNS[1:]:
                setattr(rd, name, getattr(self, name)[a:b])


def _row_codes(
    runs: list[RunData],
    mapping: np.ndarray,
    tag_counts: np.ndarray,
    sizes: np.ndarray,
    dtype: DTypeLike,
) -> Iterator[np.ndarray]:
    """Each scalar row's tag as ``mapping`` (the runs' tags one after the other) numbers it, in
    parts: for a group of runs at once, a group bounded in rows so that the temporaries stay
    small next to the columns (a large run alone, straight from its own column)."""
    mapping = mapping.astype(dtype, copy=False)
    tag_starts = segment_starts(tag_counts)
    counts = sizes.tolist()
    group_start = rows = 0
    for k in range(len(runs) + 1):
        size = counts[k] if k < len(runs) else 0
        if k > group_start and (k == len(runs) or rows + size > _CODE_GROUP_ROWS):
            if k - group_start == 1:
                local = runs[group_start].scalar_tag
                own = mapping[int(tag_starts[group_start]) :]
                yield own[local] if len(local) else local.astype(dtype)
            else:
                local = np.concatenate([rd.scalar_tag for rd in runs[group_start:k]])
                base = np.repeat(tag_starts[group_start:k], sizes[group_start:k])
                yield mapping[base + local] if len(local) else local.astype(dtype)
            group_start, rows = k, 0
        rows += size


def code_type(categories: int) -> type[np.signedinteger[Any]]:
    """The integer type pandas keeps for the codes of that many categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


# Rows whose tag codes are mapped in one go.
_CODE_GROUP_ROWS = 1 << 16

# The scalar columns of a run whose rows its batch holds: one empty array per column for
# every such run (thousands of small runs).
NO_SCALARS: dict[str, Any] = {
    "scalar_tag": np.zeros(0, np.int32),
    "scalar_step": np.zeros(0, np.int64),
    "scalar_wall": np.zeros(0, np.float64),
    "scalar_value": np.zeros(0, np.float64),
}


def join_columns(columns: list[tuple[list[np.ndarray], DTypeLike]]) -> list[np.ndarray]:
    """Each column's parts joined (`join_parts`), the joined columns side by side in one new
    block, which they keep alive together.

    One large block comes with huge pages where the system gives them; separate columns of a
    few MB each fault in page by page (joining 5,000 small runs read in 15 batches took 10 ms
    that way, 6 ms in one block). When a column has fewer than two parts (nothing to copy),
    each column is joined on its own.
    """
    if any(len(parts) < 2 for parts, _ in columns):
        return [join_parts(parts, dtype) for parts, dtype in columns]
    types = [np.dtype(dtype) for _, dtype in columns]
    nbytes = [
        sum(len(p) for p in parts) * t.itemsize
        for (parts, _), t in zip(columns, types, strict=True)
    ]
    block = np.empty(sum(_aligned(n) for n in nbytes), dtype=np.uint8)
    joined = []
    start = 0
    for (parts, _), dtype, n in zip(columns, types, nbytes, strict=True):
        column = block[start : start + n].view(dtype)
        np.concatenate(parts, out=column, casting="same_kind")
        parts.clear()
        joined.append(column)
        start += _aligned(n)
    return joined


def _aligned(nbytes: int) -> int:
    """``nbytes`` rounded up to a cache line, so that each column starts on one."""
    return (nbytes + 63) & ~63


def join_parts(parts: list[np.ndarray], dtype: DTypeLike) -> np.ndarray:
    """Concatenate ``parts`` and empty the list (a single part is returned as it is)."""
    if not parts:
        return np.zeros(0, dtype)
    column = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return column.astype(dtype, copy=False)
