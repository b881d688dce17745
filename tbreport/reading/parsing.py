"""Parse one event file's bytes into columnar arrays (`FileData`).

Most records of a real event file are single-scalar events with the same byte layout for a given tag
and step width (PyTorch ``simple_value``, TF2 rank-0 tensors). Those are decoded for all records at
once with numpy: records of one length are gathered into a matrix, a template parsed from the first
one says which byte columns hold the wall time, the step varint and the value, and every row whose
other bytes equal the template's is decoded in one go. Everything else (the first event of a tag,
its metadata, histograms, text, hparams, session logs) is parsed with the compiled protobuf classes.

A file is parsed without knowing the rest of its run, so tensors are kept as candidates by shape
(rank-0 numeric -> scalar, ``[k, 3]`` numeric -> histogram, strings -> text), resolved against the
run's plugin names during assembly (`tbreport.reading.assemble`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from google.protobuf.message import DecodeError
from numpy.typing import DTypeLike
from tensorboard.compat.proto import event_pb2

from tbreport.model import ReadWarning
from tbreport.reading.records import (
    HEADER_BYTES,
    Framing,
    frame_intact_files,
    frame_records,
    gather_columns,
    u64_at,
)
from tbreport.safe_regex import Pattern

#: A protobuf message of TensorBoard's generated classes (which carry no type information).
Proto = Any
#: Scalar rows decoded in bulk: record indices, tag ids, steps, wall times, values, and is_tensor
#: (one flag for the whole layout, or one per row).
FastRows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | bool"]

# Groups larger than this many bytes are decoded in row chunks to bound memory.
_MAX_MATRIX_BYTES = 1 << 25
# A tensor that broadcasts one value to more elements than this is not read (a [k, 3] histogram
# has a few hundred; anything this large in a few bytes is damage or an attack).
_MAX_BROADCAST_VALUES = 1 << 20
# Files with fewer records are decoded record by record (templating has a fixed cost per file).
_FAST_MIN_RECORDS = 256
# Longer records are not single-scalar events worth templating (histograms, text, graphs); a scalar
# whose tag is this long is decoded record by record.
_MAX_TEMPLATE_BYTES = 512
# Give up templating a length group after this many attempts that matched no other record.
_MAX_FRUITLESS_TEMPLATES = 16
_SESSION_START = event_pb2.SessionLog.START
_DTYPE_FLOAT, _DTYPE_DOUBLE, _DTYPE_STRING = 1, 2, 7
_NUMERIC_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "<u1", 5: "<i2", 6: "<i1", 9: "<i8", 19: "<f2"}
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"


@dataclass(slots=True)  # hundreds of thousands of them: slots make them smaller and faster
class HistogramRow:
    seq: int
    tag: int
    step: int
    wall_time: float
    min: float
    max: float
    num: float
    sum: float
    sum_squares: float
    bucket_limit: np.ndarray
    bucket: np.ndarray
    from_tensor: bool


_ZERO_EDGE = 1e-10


@dataclass(eq=False)
class HistogramColumns:
    """Histograms in columnar form: one array per field, the buckets of every histogram in two
    flat arrays (``limits``, ``counts``) that rows address by start and size.

    Several objects may share the flat arrays (`take` selects rows without copying buckets), so
    a row's buckets are ``limits[limit_start : limit_start + limit_size]``, never assumed to be
    laid end to end. ``mean``, ``std`` and ``zero_fraction`` are computed once, when the columns
    are built (`build`), for all rows in a few numpy passes. Iterating yields `HistogramRow`
    objects whose bucket arrays are views.
    """

    seq: np.ndarray  # int64
    tag: np.ndarray  # int32
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64, as are the fields below up to zero_fraction
    min: np.ndarray
    max: np.ndarray
    num: np.ndarray
    sum: np.ndarray
    sum_squares: np.ndarray
    from_tensor: np.ndarray  # bool
    mean: np.ndarray
    std: np.ndarray
    zero_fraction: np.ndarray
    limit_start: np.ndarray  # int64 element offsets into ``limits``
    limit_size: np.ndarray
    count_start: np.ndarray  # into ``counts``
    count_size: np.ndarray
    limits: np.ndarray  # float64
    counts: np.ndarray  # float64

    _ROW_FIELDS = (
        "seq",
        "tag",
        "step",
        "wall_time",
        "min",
        "max",
        "num",
        "sum",
        "sum_squares",
        "from_tensor",
        "mean",
        "std",
        "zero_fraction",
        "limit_start",
        "limit_size",
        "count_start",
        "count_size",
    )

    @classmethod
    def empty(cls) -> HistogramColumns:
        ints = np.zeros(0, np.int64)
        floats = np.zeros(0, np.float64)
        return cls(
            seq=ints,
            tag=np.zeros(0, np.int32),
            step=ints,
            wall_time=floats,
            min=floats,
            max=floats,
            num=floats,
            sum=floats,
            sum_squares=floats,
            from_tensor=np.zeros(0, bool),
            mean=floats,
            std=floats,
            zero_fraction=floats,
            limit_start=ints,
            limit_size=ints,
            count_start=ints,
            count_size=ints,
            limits=floats,
            counts=floats,
        )

    @classmethod
    def build(
        cls,
        *,
        seq: np.ndarray,
        tag: np.ndarray,
        step: np.ndarray,
        wall_time: np.ndarray,
        min: np.ndarray,
        max: np.ndarray,
        num: np.ndarray,
        sum: np.ndarray,
        sum_squares: np.ndarray,
        from_tensor: np.ndarray,
        limits: np.ndarray,
        limit_size: np.ndarray,
        counts: np.ndarray,
        count_size: np.ndarray,
    ) -> HistogramColumns:
        """Columns from per-row fields and buckets laid end to end; computes the statistics."""
        limit_size = np.asarray(limit_size, dtype=np.int64)
        count_size = np.asarray(count_size, dtype=np.int64)
        out = cls(
            seq=np.asarray(seq, dtype=np.int64),
            tag=np.asarray(tag, dtype=np.int32),
            step=np.asarray(step, dtype=np.int64),
            wall_time=np.asarray(wall_time, dtype=np.float64),
            min=np.asarray(min, dtype=np.float64),
            max=np.asarray(max, dtype=np.float64),
            num=np.asarray(num, dtype=np.float64),
            sum=np.asarray(sum, dtype=np.float64),
            sum_squares=np.asarray(sum_squares, dtype=np.float64),
            from_tensor=np.asarray(from_tensor, dtype=bool),
            mean=np.zeros(0),
            std=np.zeros(0),
            zero_fraction=np.zeros(0),
            limit_start=segment_starts(limit_size),
            limit_size=limit_size,
            count_start=segment_starts(count_size),
            count_size=count_size,
            limits=np.asarray(limits, dtype=np.float64),
            counts=np.asarray(counts, dtype=np.float64),
        )
        out.mean, out.std, out.zero_fraction = histogram_statistics_columns(out)
        return out

    @classmethod
    def from_rows(cls, rows: list[HistogramRow], tags: list[int] | None = None) -> HistogramColumns:
        """Columns of `HistogramRow` objects (``tags`` replaces their ``tag`` fields)."""
        if not rows:
            return cls.empty()
        n = len(rows)

        def column(name: str, dtype: DTypeLike) -> np.ndarray:
            return np.fromiter((getattr(h, name) for h in rows), dtype, n)

        limits = [np.asarray(h.bucket_limit, dtype=np.float64).ravel() for h in rows]
        counts = [np.asarray(h.bucket, dtype=np.float64).ravel() for h in rows]
        return cls.build(
            seq=column("seq", np.int64),
            tag=np.asarray(tags, dtype=np.int32) if tags is not None else column("tag", np.int32),
            step=column("step", np.int64),
            wall_time=column("wall_time", np.float64),
            min=column("min", np.float64),
            max=column("max", np.float64),
            num=column("num", np.float64),
            sum=column("sum", np.float64),
            sum_squares=column("sum_squares", np.float64),
            from_tensor=column("from_tensor", bool),
            limits=np.concatenate(limits),
            limit_size=np.fromiter(map(len, limits), np.int64, n),
            counts=np.concatenate(counts),
            count_size=np.fromiter(map(len, counts), np.int64, n),
        )

    def __len__(self) -> int:
        return len(self.seq)

    def __iter__(self) -> Iterator[HistogramRow]:
        limits = self.bucket_limits()
        counts = self.buckets()
        columns = [getattr(self, name).tolist() for name in self._ROW_FIELDS[:10]]
        for s, t, st, w, lo, hi, num, total, sq, tensor, lim, cnt in zip(
            *columns, limits, counts, strict=True
        ):
            yield HistogramRow(s, t, st, w, lo, hi, num, total, sq, lim, cnt, tensor)

    def bucket_limits(self) -> list[np.ndarray]:
        """Each row's ``bucket_limit`` (views of ``limits``)."""
        return _views(self.limits, self.limit_start, self.limit_size)

    def buckets(self) -> list[np.ndarray]:
        """Each row's ``bucket`` counts (views of ``counts``)."""
        return _views(self.counts, self.count_start, self.count_size)

    def take(self, rows: np.ndarray | slice, **replace: np.ndarray) -> HistogramColumns:
        """The selected rows (indices, mask or slice), sharing the buckets; ``replace`` gives
        new values for whole columns of the result (e.g. ``tag=``)."""
        columns = {name: getattr(self, name)[rows] for name in self._ROW_FIELDS}
        columns.update(replace)
        return HistogramColumns(**columns, limits=self.limits, counts=self.counts)

    @staticmethod
    def concat(parts: list[HistogramColumns]) -> HistogramColumns:
        """Rows of ``parts`` one after the other. Buckets are copied only when the parts do not
        already share them."""
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return HistogramColumns.empty()
        if len(parts) == 1:
            return parts[0]
        columns = {
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in HistogramColumns._ROW_FIELDS
        }
        first = parts[0]
        if all(p.limits is first.limits and p.counts is first.counts for p in parts):
            return HistogramColumns(**columns, limits=first.limits, counts=first.counts)
        compact = [p.compacted() for p in parts]
        for flat, start in (("limits", "limit_start"), ("counts", "count_start")):
            shift = segment_starts(
                np.array([len(getattr(p, flat)) for p in compact], dtype=np.int64)
            )
            columns[start] = np.concatenate(
                [getattr(p, start) + k for p, k in zip(compact, shift.tolist(), strict=True)]
            )
        return HistogramColumns(
            **columns,
            limits=np.concatenate([p.limits for p in compact]),
            counts=np.concatenate([p.counts for p in compact]),
        )

    def compacted(self) -> HistogramColumns:
        """The same rows holding only the buckets they use: flat arrays that the rows' segments
        cover exactly (in any order) are kept, others are gathered end to end in row order."""
        out = HistogramColumns(
            **{name: getattr(self, name) for name in self._ROW_FIELDS},
            limits=self.limits,
            counts=self.counts,
        )
        for flat, start, size in (
            ("limits", "limit_start", "limit_size"),
            ("counts", "count_start", "count_size"),
        ):
            starts, sizes = getattr(self, start), getattr(self, size)
            values = getattr(self, flat)
            if _covers(starts, sizes, len(values)):
                continue
            setattr(out, flat, gather_segments(values, starts, sizes))
            setattr(out, start, segment_starts(sizes))
        return out

    # Workers send histograms to the reading process: only the buckets the rows use.
    def __getstate__(self) -> dict[str, Any]:
        return self.compacted().__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def segment_starts(sizes: np.ndarray) -> np.ndarray:
    """Offsets of segments of ``sizes`` laid end to end."""
    out = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], out=out[1:])
    return out


# Segments this long on average are joined slice by slice (a copy per segment), shorter ones
# by one gather of every row (for float64 the two cost the same at about 50 rows).
_SLICED_SEGMENT_ROWS = 64


def _laid_end_to_end(starts: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether segments follow each other without gaps, in order."""
    return len(starts) < 2 or bool((starts[1:] == starts[:-1] + sizes[:-1]).all())


def _covers(starts: np.ndarray, sizes: np.ndarray, length: int) -> bool:
    """Whether the segments, in some order, tile ``[0, length)`` exactly."""
    if int(sizes.sum()) != length:
        return False
    if _laid_end_to_end(starts, sizes):
        return not len(starts) or int(starts[0]) == 0
    order = np.lexsort((sizes, starts))  # empty segments first where starts tie
    return int(starts[order[0]]) == 0 and _laid_end_to_end(starts[order], sizes[order])


def gather_segments(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``values[starts[i] : starts[i] + sizes[i]]`` for every ``i``, concatenated."""
    if _laid_end_to_end(starts, sizes):
        first = int(starts[0]) if len(starts) else 0
        return values[first : first + int(sizes.sum())]
    total = int(sizes.sum())
    if total >= _SLICED_SEGMENT_ROWS * len(starts):  # long segments: copied, not gathered
        return np.concatenate(
            [values[a : a + n] for a, n in zip(starts.tolist(), sizes.tolist(), strict=True)]
        )
    shift = np.repeat(starts - segment_starts(sizes), sizes)
    return values[np.arange(total, dtype=np.int64) + shift]


def _views(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """``values[starts[i] : starts[i] + sizes[i]]`` for every ``i``, as views.

    Rows of one length laid end to end (the usual layout: a writer keeps its bucket count) are
    the rows of one reshaped view, which numpy splits into row views twice as fast as slicing.
    """
    n = len(starts)
    if n == 0:
        return []
    # A new stretch starts where the length changes or a row does not follow the previous one.
    breaks = (
        np.flatnonzero((sizes[1:] != sizes[:-1]) | (starts[1:] != starts[:-1] + sizes[:-1])) + 1
    )
    # Mostly ragged rows: slicing row by row is cheaper. A strided array would be copied.
    if len(breaks) > n // 8 or values.strides[0] != values.itemsize:
        ends = starts + sizes
        return [values[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    out: list[np.ndarray] = []
    bounds = [0, *breaks.tolist(), n]
    first, width = starts.tolist(), sizes.tolist()
    for a, b in itertools.pairwise(bounds):
        start, size = first[a], width[a]
        out.extend(values[start : start + (b - a) * size].reshape(b - a, size))
    return out


def histogram_statistics_columns(h: HistogramColumns) -> tuple[np.ndarray, ...]:
    """Mean, standard deviation and share of values at zero of every histogram of ``h``.

    Row for row what `tbreport.reading.assemble.histogram_statistics` defines: from the exact
    sums where the writer kept them (so the buckets are not needed), else from bucket centres;
    the share at zero from the buckets whose both edges lie within ``±1e-10``. Numpy passes over
    all buckets at once; the bucket centres are computed only for the rows that need them.
    """
    n = len(h)
    mean, std, zero = (np.full(n, np.nan) for _ in range(3))
    if not n:
        return mean, std, zero
    with np.errstate(all="ignore"):  # absurd values give inf/NaN, not console noise
        sizes = h.count_size
        # No buckets, or limits and counts of different lengths (a damaged or hand-made one).
        valid = (h.num > 0) & (sizes > 0) & (sizes == h.limit_size)
        zeros = valid & (h.min == 0.0) & (h.max == 0.0)
        mean[zeros], std[zeros], zero[zeros] = 0.0, 0.0, 1.0
        todo = np.flatnonzero(valid & ~zeros)
        if not len(todo):
            return mean, std, zero
        num = h.num[todo]
        total_sum, sum_sq = h.sum[todo], h.sum_squares[todo]
        exact = ~h.from_tensor[todo] & np.isfinite(total_sum) & np.isfinite(sum_sq)
        m = total_sum / num
        var = np.maximum(sum_sq / num - m * m, 0.0)
        inexact = np.flatnonzero(~exact)
        for start in range(0, len(inexact), _STATISTICS_CHUNK):
            part = inexact[start : start + _STATISTICS_CHUNK]
            m[part], var[part] = _centre_moments(h, todo[part])
        mean[todo] = m
        std[todo] = np.sqrt(var)
        zero_counts = np.empty(len(todo))
        for start in range(0, len(todo), _ZERO_CHUNK):
            chunk = slice(start, start + _ZERO_CHUNK)
            zero_counts[chunk] = _zero_counts(h, todo[chunk])
        zero[todo] = np.minimum(zero_counts / num, 1.0)
    return mean, std, zero


# Histograms whose bucket centres (or buckets at zero) are computed in one numpy pass: bounds
# the temporaries, and a chunk whose rows' buckets are not laid end to end is gathered alone.
_STATISTICS_CHUNK = 4096
_ZERO_CHUNK = 16384


def _segments(h: HistogramColumns, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limits and counts of ``rows`` laid end to end (views when they already are), and where
    each row's segment starts."""
    sizes = h.count_size[rows]
    limits = gather_segments(h.limits, h.limit_start[rows], sizes)
    counts = gather_segments(h.counts, h.count_start[rows], sizes)
    return limits, counts, segment_starts(sizes)


def _centre_moments(h: HistogramColumns, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``rows`` estimated from bucket centres (TF2 tensors, lost sums)."""
    limits, counts, first = _segments(h, rows)
    lo, hi = h.min[rows], h.max[rows]
    segment = np.repeat(np.arange(len(rows)), h.count_size[rows])
    lefts = np.empty_like(limits)
    lefts[1:] = limits[:-1]
    lefts[first] = np.minimum(lo, limits[first])
    centres = (np.maximum(lefts, lo[segment]) + np.minimum(limits, hi[segment])) / 2.0
    total = np.add.reduceat(counts, first)
    c_mean = np.add.reduceat(centres * counts, first) / total
    c_var = np.add.reduceat((centres - c_mean[segment]) ** 2 * counts, first) / total
    c_mean[total == 0] = np.nan
    c_var[total == 0] = np.nan
    return c_mean, c_var


def _zero_counts(h: HistogramColumns, rows: np.ndarray) -> np.ndarray:
    """Per row, the sum of the counts of buckets whose both edges lie within ±1e-10.

    Only the buckets that can qualify are looked at: a right edge within ±1e-10, or below the
    previous edge (unsorted edges). Counts that are non-negative integers sum exactly in any
    order; other rows are summed as a sequence with zeros in place of the other buckets, the
    definition.
    """
    limits, counts, first = _segments(h, rows)
    out = np.zeros(len(rows))
    near = (limits <= _ZERO_EDGE) & (limits >= -_ZERO_EDGE)
    near[1:] |= limits[1:] < limits[:-1]
    candidates = np.flatnonzero(near)
    del near
    if not len(candidates):
        return out
    segment = np.searchsorted(first, candidates, side="right") - 1
    at_first = candidates == first[segment]
    lefts = np.where(
        at_first,
        np.minimum(h.min[rows][segment], limits[candidates]),
        limits[candidates - 1],
    )
    at_zero = (lefts >= -_ZERO_EDGE) & (limits[candidates] <= _ZERO_EDGE)
    candidates, segment = candidates[at_zero], segment[at_zero]
    values = counts[candidates]
    whole = (values >= 0) & (values == np.floor(values)) & ~np.signbit(values)
    whole &= values < 2.0**52
    exact_rows = np.ones(len(rows), dtype=bool)
    exact_rows[segment[~whole]] = False
    sums = np.bincount(segment, weights=values, minlength=len(rows))
    exact_rows &= sums < 2.0**52
    out[exact_rows] = sums[exact_rows]
    for row in np.flatnonzero(~exact_rows).tolist():
        a = int(first[row])
        b = int(first[row + 1]) if row + 1 < len(first) else len(limits)
        lim, cnt = limits[a:b], counts[a:b]
        lefts_row = np.empty_like(lim)
        lefts_row[1:] = lim[:-1]
        lefts_row[0] = np.minimum(h.min[rows[row]], lim[0])
        mask = (lefts_row >= -_ZERO_EDGE) & (lim <= _ZERO_EDGE)
        out[row] = np.add.reduceat(np.where(mask, cnt, 0.0), [0])[0]
    return out


@dataclass
class FileData:
    """Everything one event file holds, in columnar form.

    ``seq`` numbers are record indices within the file; assembly turns them into a run-wide order.
    Tag columns hold indices into ``tags``.
    """

    path: str
    tags: list[str] = field(default_factory=list)
    n_records: int = 0
    scalar_seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scalar_tag: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    scalar_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scalar_wall: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    scalar_value: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    scalar_is_tensor: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    histograms: HistogramColumns = field(default_factory=HistogramColumns.empty)
    texts: list[tuple[int, int, int, float, str]] = field(default_factory=list)
    # (seq, tag, plugin content) of every hparams-plugin value, not only the first per tag.
    hparams: list[tuple[int, str, bytes]] = field(default_factory=list)
    # First metadata per tag in this file: tag -> (seq, plugin_name).
    metadata: dict[str, tuple[int, str]] = field(default_factory=dict)
    starts: list[tuple[int, int]] = field(default_factory=list)
    versions: list[tuple[int, float]] = field(default_factory=list)
    # Per-event (seq, step, has_summary, tag indices) for files that need TensorBoard's
    # out-of-order purge (files without a leading "brain.Event:2"); None otherwise.
    legacy_events: list[tuple[int, int, bool, tuple[int, ...]]] | None = None
    other_values: dict[str, int] = field(default_factory=dict)  # e.g. {"image": 3, "graph": 1}
    warnings: list[ReadWarning] = field(default_factory=list)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


@dataclass(frozen=True)
class _Template:
    tag: str
    is_tensor: bool
    wall_pos: int | None
    step_pos: int | None
    step_len: int
    value_pos: int
    value_dtype: str  # "<f4" or "<f8"
    tag_pos: int
    tag_len: int

    def variable_columns(self, length: int) -> np.ndarray:
        mask = np.ones(length, dtype=bool)
        if self.wall_pos is not None:
            mask[self.wall_pos : self.wall_pos + 8] = False
        if self.step_pos is not None:
            mask[self.step_pos : self.step_pos + self.step_len] = False
        size = 4 if self.value_dtype == "<f4" else 8
        mask[self.value_pos : self.value_pos + size] = False
        return mask


def _template(rec: bytes) -> _Template | None:
    """The layout of a single-scalar event, or None if the record is anything else."""
    try:
        return _template_unchecked(rec)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _template_unchecked(rec: bytes) -> _Template | None:
    n = len(rec)
    pos = 0
    wall_pos = step_pos = None
    step_len = 0
    summary: tuple[int, int] | None = None
    while pos < n:
        key, pos = _varint(rec, pos)
        if key == 0x09:  # wall_time, fixed64
            wall_pos = pos
            pos += 8
        elif key == 0x10:  # step, varint
            start = pos
            _, pos = _varint(rec, pos)
            step_pos, step_len = start, pos - start
        elif key == 0x2A and summary is None:  # summary, length-delimited
            length, pos = _varint(rec, pos)
            summary = (pos, pos + length)
            pos += length
        else:
            return None
    if summary is None or pos != n:
        return None
    p, end = summary
    if p >= end or rec[p] != 0x0A:
        return None
    length, p = _varint(rec, p + 1)
    if p + length != end:  # exactly one Summary.Value
        return None
    vend = end
    tag = None
    tag_pos = tag_len = 0
    value_pos = None
    value_dtype = ""
    is_tensor = False
    while p < vend:
        key, p = _varint(rec, p)
        if key == 0x0A and tag is None:
            tag_len, p = _varint(rec, p)
            tag_pos = p
            tag = rec[p : p + tag_len].decode("utf-8")
            p += tag_len
        elif key == 0x15 and value_pos is None:  # simple_value, fixed32
            value_pos, value_dtype = p, "<f4"
            p += 4
        elif key == 0x42 and value_pos is None:  # tensor
            length, p = _varint(rec, p)
            found = _tensor_scalar(rec, p, p + length)
            if found is None:
                return None
            value_pos, value_dtype = found
            is_tensor = True
            p += length
        else:
            return None
    if tag is None or value_pos is None or p != vend:
        return None
    return _Template(
        tag, is_tensor, wall_pos, step_pos, step_len, value_pos, value_dtype, tag_pos, tag_len
    )


def _tensor_scalar(rec: bytes, p: int, end: int) -> tuple[int, str] | None:
    """Position and dtype of the value of a rank-0 float/double TensorProto, else None.

    Only where protobuf (and TensorBoard) would find the value: ``tensor_content`` for either
    dtype, ``float_val`` for DT_FLOAT only, ``double_val`` for DT_DOUBLE only. A value in the
    field of the other dtype is no value at all, not bytes to reinterpret.
    """
    dtype = None
    value: tuple[int, int, str] | None = None  # (position, size, field)
    while p < end:
        key, p = _varint(rec, p)
        if key == 0x08:
            dtype, p = _varint(rec, p)
        elif key == 0x12:  # tensor_shape: must be empty (rank 0)
            length, p = _varint(rec, p)
            if length:
                return None
        elif key in (0x22, 0x2A, 0x32) and value is None:  # tensor_content / float_val / double_val
            length, p = _varint(rec, p)
            value = (p, length, {0x22: "content", 0x2A: "float", 0x32: "double"}[key])
            p += length
        elif key == 0x2D and value is None:  # unpacked float_val
            value = (p, 4, "float")
            p += 4
        elif key == 0x31 and value is None:  # unpacked double_val
            value = (p, 8, "double")
            p += 8
        else:
            return None
    if value is None or p != end:
        return None
    position, size, where = value
    if dtype == _DTYPE_FLOAT and size == 4 and where in ("content", "float"):
        return position, "<f4"
    if dtype == _DTYPE_DOUBLE and size == 8 and where in ("content", "double"):
        return position, "<f8"
    return None


def _decode_varint_columns(cols: np.ndarray) -> np.ndarray:
    """Decode a fixed-width varint stored in ``cols`` (shape ``(width, n)``) as int64."""
    acc = np.zeros(cols.shape[1], dtype=np.uint64)
    for j in range(cols.shape[0]):
        acc |= (cols[j].astype(np.uint64) & np.uint64(0x7F)) << np.uint64(7 * j)
    return acc.view(np.int64)


def _valid_varint_columns(cols: np.ndarray) -> np.ndarray:
    """Rows whose bytes form one varint of exactly this width."""
    ok = cols[-1] < 0x80
    for j in range(cols.shape[0] - 1):
        ok &= cols[j] >= 0x80
    return ok


class _Collector:
    """Accumulates decoded values of one file before they become `FileData` arrays."""

    def __init__(self, path: str, tag_filter: Pattern | None) -> None:
        self.data = FileData(path=path)
        self.tag_index: dict[str, int] = {}
        self.tag_filter = tag_filter
        self._keep: dict[str, bool] = {}
        # (record indices, tag ids, steps, wall times, values, is_tensor) per decoded layout.
        self.fast: list[FastRows] = []
        self.slow_scalars: list[tuple[int, int, int, float, float, bool]] = []
        # Histograms decoded in bulk (columns) and one by one (rows), merged by `_finish`.
        self.hist_parts: list[HistogramColumns] = []
        self.slow_histograms: list[HistogramRow] = []

    def keep(self, tag: str) -> bool:
        kept = self._keep.get(tag)
        if kept is None:
            kept = self.tag_filter is None or self.tag_filter.search(tag) is not None
            self._keep[tag] = kept
        return kept

    def tag_id(self, tag: str) -> int:
        idx = self.tag_index.get(tag)
        if idx is None:
            idx = self.tag_index[tag] = len(self.data.tags)
            self.data.tags.append(tag)
        return idx

    def count_other(self, kind: str) -> None:
        self.data.other_values[kind] = self.data.other_values.get(kind, 0) + 1


def parse_event_bytes(buf: bytes, *, path: str, tag_filter: Pattern | None = None) -> FileData:
    """Parse the whole content of one event file.

    Args:
        buf: The file's bytes.
        path: How to name the file in warnings.
        tag_filter: Keep only scalars, histograms and text whose tag matches (``re.search``).
            Hyperparameters and plugin metadata are always kept.

    Returns:
        The file's records as columnar arrays, with a warning for every problem found.
    """
    return parse_event_files([(buf, path)], tag_filter=tag_filter)[0]


def parse_event_files(
    files: list[tuple[bytes, str]], *, tag_filter: Pattern | None = None
) -> list[FileData]:
    """Parse several event files at once; the same result as `parse_event_bytes` on each.

    Each file is framed on its own (damage stays within its file), but the single-scalar records
    of all of them are decoded together: a logdir of thousands of small runs costs one templated
    pass per record layout, not one per file.

    Args:
        files: ``(content, path for warnings)`` of each file.
        tag_filter: As for `parse_event_bytes`.
    """
    out: list[FileData | None] = [None] * len(files)
    quick = _frame_small_files(files)
    # (content, framing, collector or None: made when needed, index in ``files``)
    framed: list[tuple[bytes, Framing, _Collector | None, int]] = []
    for k, (buf, path) in enumerate(files):
        framing = quick.get(k)
        if framing is not None:
            framed.append((buf, framing, None, k))
            continue
        # Not small, or not intact: on its own, which says what is wrong.
        collector = _Collector(path, tag_filter)
        out[k] = collector.data
        framing = _frame(buf, collector)
        if framing is not None:
            framed.append((buf, framing, collector, k))
    total = sum(len(f.offsets) for _, f, _, _ in framed)
    if len(framed) == 1:
        buf, framing, maybe_collector, k = framed[0]
        if maybe_collector is None:
            collector = _Collector(files[k][1], tag_filter)
            collector.data.n_records = len(framing.offsets)
        else:
            collector = maybe_collector
        out[k] = collector.data
        if total < _FAST_MIN_RECORDS:
            # Templating costs a few hundred numpy calls: protobuf is faster for a few records.
            slow = np.arange(total, dtype=np.int64)
        else:
            slow = _decode_fast(buf, framing.offsets, framing.lengths, collector)
        slow = _decode_histograms(buf, framing.offsets, framing.lengths, slow, collector)
        _decode_slow(buf, framing.offsets, framing.lengths, slow, collector)
        _finish(collector)
    elif framed:
        decoded = _decode_together(framed, files, tag_filter, fast=total >= _FAST_MIN_RECORDS)
        for (_, _, _, k), data in zip(framed, decoded, strict=True):
            out[k] = data
    return out  # type: ignore[return-value]


def parse_event_stream(
    handle: BinaryIO,
    *,
    path: str,
    tag_filter: Pattern | None = None,
    chunk_bytes: int = 64 << 20,
    size_hint: int = 0,
) -> FileData | None:
    """Parse a large event file in chunks, so that its bytes are never all in memory at once.

    The result is what `parse_event_bytes` gives for the whole file. Only intact files written
    with ``brain.Event:2`` are streamed: on any damage, or an older file that may need
    TensorBoard's out-of-order purge, None is returned and the caller reads the file whole
    (damage handling may look far ahead, and the purge needs every event of the file).

    Args:
        handle: The file, opened for binary reading at its start.
        path: How to name the file in warnings.
        tag_filter: As for `parse_event_bytes`.
        chunk_bytes: Bytes read at a time (a record longer than this is read whole).
        size_hint: The file's size, if known (to allocate the columns once).
    """
    collector = _Collector(path, tag_filter)
    data = collector.data
    store = _ScalarStore(size_hint)
    carry = b""
    seq_base = 0
    while True:
        block = handle.read(chunk_bytes)
        last = not block
        buf = carry + block if carry else block
        del block
        if last and not buf:
            break
        framing = frame_records(buf, path=path)
        n = len(framing.offsets)
        end = int(framing.offsets[-1] + framing.lengths[-1]) + HEADER_BYTES + 4 if n else 0
        if framing.warnings:
            cut = framing.warnings[0]
            # Only a record cut by the end of this chunk is expected; it is read with the next.
            if (
                last
                or len(framing.warnings) > 1
                or cut.kind != "truncated-record"
                or (cut.offset != end)
            ):
                return None
        elif last and end != len(buf):
            return None
        if seq_base == 0 and (not n or _is_legacy(buf, framing.offsets, framing.lengths)):
            return None
        if n:
            _decode_chunk(buf, framing, collector, seq_base=seq_base)
            store.append(data)
        seq_base += n
        carry = buf[end:]
        del buf, framing
        if last:
            break
    data.n_records = seq_base
    if not seq_base:
        return None
    store.finish(data)
    _finish_histograms(collector)
    return data


def _decode_chunk(buf: bytes, framing: Framing, collector: _Collector, *, seq_base: int) -> None:
    """Decode one chunk's records into ``collector``, numbered from ``seq_base`` on."""
    n = len(framing.offsets)
    fast_before = len(collector.fast)
    if n < _FAST_MIN_RECORDS:
        slow = np.arange(n, dtype=np.int64)
    else:
        slow = _decode_fast(buf, framing.offsets, framing.lengths, collector)
    for k in range(fast_before, len(collector.fast)):
        rows, rest = collector.fast[k][0], collector.fast[k][1:]
        collector.fast[k] = (rows + seq_base, *rest)
    slow = _decode_histograms(
        buf, framing.offsets, framing.lengths, slow, collector, seq_base=seq_base
    )
    _decode_slow(
        buf,
        framing.offsets,
        framing.lengths,
        slow,
        collector,
        seq_base=seq_base,
        legacy=False,
    )
    # Into the preallocated columns at once: per-chunk parts kept until the end would
    # interleave with each chunk's temporaries and fragment the heap (RSS twice the data).
    _finish(collector, histograms=False)


class _ScalarStore:
    """Scalar columns filled chunk by chunk, allocated once for the whole file.

    Large allocations are mapped memory whose untouched pages cost nothing, so the capacity is
    an upper estimate from the file size (grown by doubling if a file holds more).
    """

    _COLUMNS = (
        ("scalar_seq", np.int64),
        ("scalar_tag", np.int32),
        ("scalar_step", np.int64),
        ("scalar_wall", np.float64),
        ("scalar_value", np.float64),
        ("scalar_is_tensor", bool),
    )

    def __init__(self, size_hint: int) -> None:
        # Every record is at least 16 bytes of framing plus a few of event.
        capacity = max(size_hint // 24, 1024)
        self.columns = {name: np.empty(capacity, dtype) for name, dtype in self._COLUMNS}
        self.filled = 0

    def append(self, data: FileData) -> None:
        """Move ``data``'s scalar columns (one chunk, in file order) to the end of the store."""
        count = len(data.scalar_seq)
        if self.filled + count > len(self.columns["scalar_seq"]):
            capacity = max(2 * len(self.columns["scalar_seq"]), self.filled + count)
            for name, dtype in self._COLUMNS:
                grown = np.empty(capacity, dtype)
                grown[: self.filled] = self.columns[name][: self.filled]
                self.columns[name] = grown
        for name, dtype in self._COLUMNS:
            self.columns[name][self.filled : self.filled + count] = getattr(data, name)
            setattr(data, name, np.zeros(0, dtype))
        self.filled += count

    def finish(self, data: FileData) -> None:
        for name, _ in self._COLUMNS:
            setattr(data, name, self.columns[name][: self.filled])


# Files up to this size are framed together when there are enough of them.
_SMALL_FILE_BYTES = 64 << 10


def _frame_small_files(files: list[tuple[bytes, str]]) -> dict[int, Framing]:
    """Framings of the small intact files among ``files``, found all at once (index -> framing)."""
    small = [
        k
        for k, (buf, _) in enumerate(files)
        if 0 < len(buf) <= _SMALL_FILE_BYTES and not looks_like_lfs_pointer(buf)
    ]
    if len(small) < 16:
        return {}
    sizes = np.array([len(files[k][0]) for k in small], dtype=np.int64)
    ends = np.cumsum(sizes)
    joined = b"".join(files[k][0] for k in small)
    found = frame_intact_files(joined, ends - sizes, ends)
    return {k: f for k, f in zip(small, found, strict=True) if f is not None}


def _frame(buf: bytes, collector: _Collector) -> Framing | None:
    """Frame one file's records; None (with the reason among the warnings) when it has none."""
    data = collector.data
    path = data.path
    if not buf:
        data.warnings.append(ReadWarning(kind="empty-file", path=path, message="file is empty"))
        return None
    if looks_like_lfs_pointer(buf):
        data.warnings.append(
            ReadWarning(
                kind="lfs-pointer",
                path=path,
                message="Git LFS pointer, not the event file itself (run `git lfs pull`); skipped",
            )
        )
        return None
    framing = frame_records(buf, path=path)
    data.warnings.extend(framing.warnings)
    data.n_records = len(framing.offsets)
    if data.n_records == 0:
        if not framing.warnings or framing.warnings[0].offset == 0:
            data.warnings = [
                ReadWarning(
                    kind="not-an-event-file",
                    path=path,
                    offset=0,
                    message="no valid TFRecord found: not an event file, or destroyed; skipped",
                )
            ]
        return None
    return framing


def _decode_together(
    framed: list[tuple[bytes, Framing, _Collector | None, int]],
    files: list[tuple[bytes, str]],
    tag_filter: Pattern | None,
    *,
    fast: bool,
) -> list[FileData]:
    """Decode the records of several framed files: templated together, the rest per file.

    A file whose records all decoded in bulk but its first, a ``brain.Event:2`` file version (a
    plain small scalar file), gets its `FileData` straight from slices of the shared columns;
    the others go through a collector of their own and protobuf for what is left.
    """
    counts = np.array([len(f.offsets) for _, f, _, _ in framed], dtype=np.int64)
    record_base = np.concatenate(([0], np.cumsum(counts)))
    shared = _decode_shared(framed, record_base, counts, tag_filter) if fast else None
    slow = shared.slow if shared is not None else np.arange(record_base[-1], dtype=np.int64)
    slow_bounds = np.searchsorted(slow, record_base)
    out: list[FileData] = []
    for k, (buf, framing, collector, index) in enumerate(framed):
        base = int(record_base[k])
        mine = slow[int(slow_bounds[k]) : int(slow_bounds[k + 1])] - base
        file_tags: list[str] = []
        if shared is not None:
            file_tags = shared.file_tags(k)
            if collector is None and shared.plain(k, mine):
                out.append(shared.plain_file_data(k, base, files[index][1], file_tags, framing))
                continue
        if collector is None:
            collector = _Collector(files[index][1], tag_filter)
            collector.data.n_records = len(framing.offsets)
        if shared is not None:
            shared.rows_into(collector, k, base, file_tags)
        _decode_slow(buf, framing.offsets, framing.lengths, mine, collector)
        _finish(collector)
        out.append(collector.data)
    return out


@dataclass
class _Shared:
    """The records of several files decoded together (`_decode_together`): the bulk columns in
    record order, with each file's bounds in them."""

    slow: np.ndarray  # records left to protobuf, numbered over all files
    tags: list[str]  # the shared collector's tag names
    version_two: np.ndarray  # per file: its first record is a "brain.Event:2" file version
    hist: HistogramColumns
    hist_bounds: np.ndarray
    columns: tuple[np.ndarray, ...]  # rows, tags, steps, walls, values, is_tensor
    local: np.ndarray  # each row's tag numbered within its file
    fast_bounds: np.ndarray
    pair_tags: list[int]
    pair_bounds: np.ndarray

    def file_tags(self, k: int) -> list[str]:
        """File ``k``'s tags, numbered in the order of the shared ones."""
        return [self.tags[t] for t in self.pair_tags[self.pair_bounds[k] : self.pair_bounds[k + 1]]]

    def plain(self, k: int, mine: np.ndarray) -> bool:
        """Whether file ``k`` decoded in bulk but its first record, a version record."""
        return bool(
            self.version_two[k]
            and len(mine) == 1
            and mine[0] == 0
            and self.hist_bounds[k] == self.hist_bounds[k + 1]
        )

    def plain_file_data(
        self, k: int, base: int, path: str, file_tags: list[str], framing: Framing
    ) -> FileData:
        a, b = int(self.fast_bounds[k]), int(self.fast_bounds[k + 1])
        rows, _, steps, walls, values, tensor = self.columns
        return _plain_file_data(
            path,
            file_tags,
            len(framing.offsets),
            (rows[a:b] - base, self.local[a:b], steps[a:b], walls[a:b], values[a:b]),
            tensor[a:b],
        )

    def rows_into(self, collector: _Collector, k: int, base: int, file_tags: list[str]) -> None:
        """File ``k``'s bulk rows and histograms into its own collector."""
        a, b = int(self.fast_bounds[k]), int(self.fast_bounds[k + 1])
        rows, _, steps, walls, values, tensor = self.columns
        ids = np.array([collector.tag_id(tag) for tag in file_tags], dtype=np.int32)
        if b > a:
            collector.fast.append(
                (
                    rows[a:b] - base,
                    ids[self.local[a:b]],
                    steps[a:b],
                    walls[a:b],
                    values[a:b],
                    tensor[a:b],
                )
            )
        a, b = int(self.hist_bounds[k]), int(self.hist_bounds[k + 1])
        if b > a:
            hist = self.hist
            present, at = np.unique(hist.tag[a:b], return_inverse=True)
            ids = np.array(
                [collector.tag_id(self.tags[t]) for t in present.tolist()],
                dtype=np.int32,
            )
            collector.hist_parts.append(
                hist.take(slice(a, b), seq=hist.seq[a:b] - base, tag=ids[at.ravel()])
            )


def _decode_shared(
    framed: list[tuple[bytes, Framing, _Collector | None, int]],
    record_base: np.ndarray,
    counts: np.ndarray,
    tag_filter: Pattern | None,
) -> _Shared:
    """Template-decode the scalars and histograms of all ``framed`` files at once."""
    sizes = np.array([len(buf) for buf, _, _, _ in framed], dtype=np.int64)
    byte_base = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    joined = b"".join(buf for buf, _, _, _ in framed)
    offsets = np.concatenate(
        [f.offsets + base for (_, f, _, _), base in zip(framed, byte_base, strict=True)]
    )
    lengths = np.concatenate([f.lengths for _, f, _, _ in framed])
    shared = _Collector("", tag_filter)
    slow = _decode_fast(joined, offsets, lengths, shared)
    slow = _decode_histograms(joined, offsets, lengths, slow, shared)
    version_two = _version_two_heads(joined, offsets, lengths, record_base[:-1], counts)
    del joined
    hist = HistogramColumns.concat(shared.hist_parts)
    hist_bounds = np.searchsorted(hist.seq, record_base)
    rows, tags, steps, walls, values, tensor = _fast_columns(shared)
    order = np.argsort(rows, kind="stable")
    rows, tags, steps, walls, values, tensor = (
        a[order] for a in (rows, tags, steps, walls, values, tensor)
    )
    fast_bounds = np.searchsorted(rows, record_base)
    # Each file's tags, numbered in the order of the shared ones (as one collector each would
    # number them): one unique over (file, tag) pairs for all files.
    shared_tags = shared.data.tags
    width = max(len(shared_tags), 1)
    file_of_row = np.repeat(np.arange(len(framed)), np.diff(fast_bounds))
    pairs, local = np.unique(file_of_row * width + tags, return_inverse=True)
    pair_bounds = np.searchsorted(pairs // width, np.arange(len(framed) + 1))
    local = (local.ravel() - pair_bounds[file_of_row]).astype(np.int32)
    return _Shared(
        slow=slow,
        tags=shared_tags,
        version_two=version_two,
        hist=hist,
        hist_bounds=hist_bounds,
        columns=(rows, tags, steps, walls, values, tensor),
        local=local,
        fast_bounds=fast_bounds,
        pair_tags=(pairs % width).tolist(),
        pair_bounds=pair_bounds,
    )


# The first record of a file written with "brain.Event:2", but for the wall time (bytes 1-8).
_VERSION_TWO = b"\x09" + bytes(8) + b"\x1a\x0dbrain.Event:2"


def _version_two_heads(
    buf: bytes, offsets: np.ndarray, lengths: np.ndarray, first: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Per file (first record index ``first``, ``counts`` records), whether its first record is
    exactly a ``brain.Event:2`` file version event (a wall time, then that string)."""
    out = np.zeros(len(first), dtype=bool)
    size = len(_VERSION_TWO)
    candidates = np.flatnonzero(
        (counts > 0) & (lengths[np.minimum(first, len(lengths) - 1)] == size)
    )
    if not len(candidates):
        return out
    starts = offsets[first[candidates]] + HEADER_BYTES
    cols = gather_columns(np.frombuffer(buf, dtype=np.uint8), starts, size)
    expected = np.frombuffer(_VERSION_TWO, dtype=np.uint8)
    same = (cols[0] == expected[0]) & (cols[9:] == expected[9:, None]).all(axis=0)
    out[candidates[same]] = True
    return out


_NO_HISTOGRAMS = HistogramColumns.empty()  # shared: histogram columns are never changed in place


def _plain_file_data(
    path: str,
    tags: list[str],
    n_records: int,
    columns: tuple[np.ndarray, ...],
    is_tensor: np.ndarray,
) -> FileData:
    """The `FileData` of a file of templated scalars after a ``brain.Event:2`` version record:
    what a collector, protobuf for the first record and `_finish` would make of it."""
    seq, tag, step, wall, value = columns
    return FileData(
        path=path,
        tags=tags,
        n_records=n_records,
        scalar_seq=seq.astype(np.int64, copy=False),
        scalar_tag=tag.astype(np.int32, copy=False),
        scalar_step=step.astype(np.int64, copy=False),
        scalar_wall=wall.astype(np.float64, copy=False),
        scalar_value=value.astype(np.float64, copy=False),
        scalar_is_tensor=is_tensor.astype(bool, copy=False),
        histograms=_NO_HISTOGRAMS,
        texts=[],
        hparams=[],
        metadata={},
        starts=[],
        versions=[(0, 2.0)],
        legacy_events=None,
        other_values={},
        warnings=[],
    )


def _fast_columns(collector: _Collector) -> tuple[np.ndarray, ...]:
    """The templated rows of a collector as flat columns (rows, tags, steps, walls, values,
    is_tensor)."""
    parts = collector.fast
    if not parts:
        return (
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.float64),
            np.zeros(0, bool),
        )
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[1] for p in parts]).astype(np.int32, copy=False),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        np.concatenate([p[4] for p in parts]),
        np.concatenate([np.full(len(p[0]), p[5], dtype=bool) for p in parts]),
    )


def _decode_fast(
    buf: bytes, offsets: np.ndarray, lengths: np.ndarray, collector: _Collector
) -> np.ndarray:
    """Decode every templatable record; return the record indices left for the slow path."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    slow: list[np.ndarray] = []
    order = np.argsort(lengths, kind="stable")
    bounds = np.flatnonzero(np.diff(lengths[order])) + 1
    for group in np.split(order, bounds):
        length = int(lengths[group[0]])
        if len(group) < 4 or length < 8 or length > _MAX_TEMPLATE_BYTES:
            slow.append(group)
            continue
        rows_per_chunk = max(1, _MAX_MATRIX_BYTES // length)
        for start in range(0, len(group), rows_per_chunk):
            chunk = group[start : start + rows_per_chunk]
            slow.append(_decode_group(buf, arr, offsets, chunk, length, collector))
    return np.sort(np.concatenate(slow)) if slow else np.zeros(0, dtype=np.int64)


def _decode_group(
    buf: bytes,
    arr: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    length: int,
    collector: _Collector,
) -> np.ndarray:
    starts = offsets[rows] + HEADER_BYTES
    cols = gather_columns(arr, starts, length)  # (length, n)
    pending = np.ones(len(rows), dtype=bool)
    slow: list[int] = []
    fruitless = 0
    while pending.any():
        if fruitless >= _MAX_FRUITLESS_TEMPLATES:
            slow.extend(np.flatnonzero(pending).tolist())
            break
        first = int(np.argmax(pending))
        offset = int(starts[first])
        template = _template(buf[offset : offset + length])
        if template is None:
            pending[first] = False
            slow.append(first)
            fruitless += 1
            continue
        # Every pending row with the template's layout is decoded at once, whatever its tag
        # (tag bytes of equal length are interchangeable), so a file with many tags costs one
        # pass per layout rather than one per tag.
        tag_cols = slice(template.tag_pos, template.tag_pos + template.tag_len)
        framing = template.variable_columns(length)
        framing[tag_cols] = False
        candidates = np.flatnonzero(pending)
        same = (cols[framing][:, candidates] == cols[framing, first][:, None]).all(axis=0)
        if template.step_pos is not None:
            step_cols = cols[template.step_pos : template.step_pos + template.step_len]
            same &= _valid_varint_columns(step_cols[:, candidates])
        matched = candidates[same]
        if not same[candidates == first].all():  # the template row must match itself
            pending[first] = False
            slow.append(first)
            fruitless += 1
            continue
        pending[matched] = False
        fruitless = fruitless + 1 if len(matched) <= 1 else 0
        tag_keys = np.ascontiguousarray(cols[tag_cols][:, matched].T)
        if template.tag_len:
            keys = tag_keys.view(np.dtype((np.void, template.tag_len))).ravel()
        else:  # a tag field written explicitly empty
            keys = np.zeros(len(matched), dtype=np.uint8)
        _, tag_first, tag_of_row = np.unique(keys, return_index=True, return_inverse=True)
        tag_of_row = tag_of_row.ravel()
        tag_ids = np.full(len(tag_first), -1, dtype=np.int32)  # -1: filtered out or not UTF-8
        for i, row in enumerate(tag_first.tolist()):
            try:
                tag = tag_keys[row].tobytes().decode("utf-8")
            except UnicodeDecodeError:  # the per-record decoder reports these
                slow.extend(matched[tag_of_row == i].tolist())
                continue
            if collector.keep(tag):
                tag_ids[i] = collector.tag_id(tag)
        row_tags = tag_ids[tag_of_row]
        kept = row_tags >= 0
        if kept.any():
            _collect_matched(cols, rows, matched[kept], row_tags[kept], template, collector)
    return rows[np.asarray(slow, dtype=np.int64)] if slow else np.zeros(0, dtype=np.int64)


def _collect_matched(
    cols: np.ndarray,
    rows: np.ndarray,
    matched: np.ndarray,
    tag_ids: np.ndarray,
    template: _Template,
    collector: _Collector,
) -> None:
    """Decode the step, wall time and value columns of ``matched`` rows of one layout."""
    if template.step_pos is not None:
        steps = _decode_varint_columns(
            cols[template.step_pos : template.step_pos + template.step_len][:, matched]
        )
    else:
        steps = np.zeros(len(matched), dtype=np.int64)
    if template.wall_pos is not None:
        walls = (
            np.ascontiguousarray(cols[template.wall_pos : template.wall_pos + 8][:, matched].T)
            .view("<f8")
            .ravel()
        )
    else:
        walls = np.zeros(len(matched), dtype=np.float64)
    size = 4 if template.value_dtype == "<f4" else 8
    values = (
        np.ascontiguousarray(cols[template.value_pos : template.value_pos + size][:, matched].T)
        .view(template.value_dtype)
        .ravel()
        .astype(np.float64)
    )
    collector.fast.append((rows[matched], tag_ids, steps, walls, values, template.is_tensor))


# Files (or batches) with fewer histogram candidates decode them one by one: the bulk decoder
# costs a few hundred numpy calls, a histogram through protobuf about twenty microseconds.
_FAST_MIN_HISTOGRAMS = 32
# Tags longer than this are left to protobuf (a gathered matrix of tag bytes per length).
_MAX_BULK_TAG_BYTES = 256
_F64, _VARINT, _BYTES = 0, 1, 2
# The only fields a bulk-decoded histogram event may hold, by key (field number << 3 | wire type).
_EVENT_FIELDS = {0x09: _F64, 0x10: _VARINT, 0x2A: _BYTES}  # wall_time, step, summary
_SUMMARY_FIELDS = {0x0A: _BYTES}  # value (exactly one)
_VALUE_FIELDS = {0x0A: _BYTES, 0x2A: _BYTES}  # tag, histo
# min, max, num, sum, sum_squares, bucket_limit (packed), bucket (packed).
_HISTO_FIELDS = {
    0x09: _F64,
    0x11: _F64,
    0x19: _F64,
    0x21: _F64,
    0x29: _F64,
    0x32: _BYTES,
    0x3A: _BYTES,
}


def _decode_histograms(
    buf: bytes,
    offsets: np.ndarray,
    lengths: np.ndarray,
    indices: np.ndarray,
    collector: _Collector,
    *,
    seq_base: int = 0,
) -> np.ndarray:
    """Decode the ``HistogramProto`` events among records ``indices`` in bulk; return the
    record indices left for protobuf.

    A record qualifies when it is exactly what PyTorch and tensorboardX write: an Event of
    wall time, step and a summary of one value with a tag and a histogram, each field once,
    with its usual wire type, and nothing else (no plugin metadata, no unknown fields, packed
    buckets). Its fields are found by walking the nested messages of all candidate records in
    lockstep, one numpy step per field, so the cost follows the number of fields, not of
    records; the buckets are copied with one join per file. Anything else (or a tag that is not
    UTF-8) is left to the protobuf path, which decides what it is.
    """
    if len(indices) < _FAST_MIN_HISTOGRAMS:
        return indices
    arr = np.frombuffer(buf, dtype=np.uint8)
    rows = np.arange(len(indices))
    starts = offsets[indices] + HEADER_BYTES
    ends = starts + lengths[indices]
    ok, event, event_end = _message_fields(arr, starts, ends, _EVENT_FIELDS)
    rows = rows[ok & (event[0x2A] >= 0)]
    if len(rows) < _FAST_MIN_HISTOGRAMS:
        return indices
    ok, summary, summary_end = _message_fields(
        arr, event[0x2A][rows], event_end[0x2A][rows], _SUMMARY_FIELDS
    )
    keep = ok & (summary[0x0A] >= 0)
    rows = rows[keep]
    ok, value, value_end = _message_fields(
        arr, summary[0x0A][keep], summary_end[0x0A][keep], _VALUE_FIELDS
    )
    keep = ok & (value[0x0A] >= 0) & (value[0x2A] >= 0)
    rows = rows[keep]
    tag_start, tag_end = value[0x0A][keep], value_end[0x0A][keep]
    histo_start = value[0x2A][keep]
    ok, histo, histo_end = _message_fields(arr, histo_start, value_end[0x2A][keep], _HISTO_FIELDS)
    for key in (0x32, 0x3A):  # packed doubles: whole values only
        ok &= (histo_end[key] - histo[key]) % 8 == 0
    rows, tag_start, tag_end, histo_start = rows[ok], tag_start[ok], tag_end[ok], histo_start[ok]
    histo = {key: where[ok] for key, where in histo.items()}
    histo_end = {key: where[ok] for key, where in histo_end.items()}
    tag_ids = _bulk_tag_ids(arr, tag_start, tag_end, collector)
    taken = tag_ids >= -1  # -1: filtered out by the tag pattern, -2: left to protobuf
    decoded = tag_ids >= 0
    if not taken.any():
        return indices
    pick = rows[decoded]
    if len(pick):
        collector.hist_parts.append(
            _bulk_histogram_columns(
                buf,
                (indices[pick] + seq_base, tag_ids[decoded]),
                (event[0x09][pick], event_end[0x10][pick]),
                decoded,
                (histo, histo_end, histo_start),
            )
        )
    left = np.ones(len(indices), dtype=bool)
    left[rows[taken]] = False
    return indices[left]


def _bulk_histogram_columns(
    buf: bytes,
    seq_tag: tuple[np.ndarray, np.ndarray],
    wall_step: tuple[np.ndarray, np.ndarray],
    decoded: np.ndarray,
    fields: tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray],
) -> HistogramColumns:
    """The columns of the histograms `_decode_histograms` decodes: ``seq_tag`` their record
    numbers and tag ids, ``wall_step`` where their wall time starts and their step (as the
    varint walk read it), ``fields`` the spans of the HistogramProto fields (starts, ends, the
    message start) of the candidate rows, of which ``decoded`` are taken."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    histo, histo_end, histo_start = fields
    flats = []
    sizes = []
    for key in (0x32, 0x3A):
        # An absent array: an empty span where the histogram starts (spans stay in order).
        present = histo[key] >= 0
        first = np.where(present, histo[key], histo_start)
        last = np.where(present, histo_end[key], first)
        first, last = first[decoded], last[decoded]
        flats.append(_join_doubles(buf, first, last))
        sizes.append((last - first) // 8)
    doubles = {key: _f64_at(arr, histo[key][decoded]) for key in (0x09, 0x11, 0x19, 0x21, 0x29)}
    seq, tag = seq_tag
    wall_at, step = wall_step
    return HistogramColumns.build(
        seq=seq,
        tag=tag,
        step=step.view(np.int64),
        wall_time=_f64_at(arr, wall_at),
        min=doubles[0x09],
        max=doubles[0x11],
        num=doubles[0x19],
        sum=doubles[0x21],
        sum_squares=doubles[0x29],
        from_tensor=np.zeros(len(seq), dtype=bool),
        limits=flats[0],
        limit_size=sizes[0],
        counts=flats[1],
        count_size=sizes[1],
    )


def _join_doubles(buf: bytes, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The little-endian doubles of ``buf[first[i]:last[i]]`` for every ``i``, end to end.

    With Arrow's ``take`` over a binary array whose values are the spans (and the gaps between
    them): one C loop of copies, where a Python list of slices costs a microsecond a span.
    """
    total = int((last - first).sum())
    out = None
    if total and len(first) > 1 and (first[1:] >= last[:-1]).all():
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - a dependency, but the join below works too
            pa = None
        if pa is not None:
            bounds = np.empty(2 * len(first), dtype=np.int64)
            bounds[0::2], bounds[1::2] = first, last
            spans = pa.Array.from_buffers(
                pa.large_binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(buf)]
            )
            taken = pc.take(spans, pa.array(np.arange(0, len(bounds) - 1, 2, dtype=np.int64)))
            out = np.frombuffer(taken.buffers()[2], dtype="<f8", count=total // 8)
            if not out.flags.writeable:  # pragma: no cover - Arrow's output buffers are mutable
                out = out.copy()
    if out is None:
        mv = memoryview(buf)
        joined = bytearray().join(
            [mv[a:b] for a, b in zip(first.tolist(), last.tolist(), strict=True)]
        )
        out = np.frombuffer(joined, dtype="<f8")
    return out.astype(np.float64, copy=False)


def _bulk_tag_ids(
    arr: np.ndarray, start: np.ndarray, end: np.ndarray, collector: _Collector
) -> np.ndarray:
    """Tag id of each tag ``arr[start:end]``; -1 where the tag pattern drops it, -2 where the
    record is left to protobuf (a tag that is not UTF-8, or very long)."""
    out = np.full(len(start), -2, dtype=np.int32)
    size = end - start
    for length in np.unique(size).tolist():
        if length > _MAX_BULK_TAG_BYTES:
            continue
        rows = np.flatnonzero(size == length)
        if length:
            keys = np.ascontiguousarray(gather_columns(arr, start[rows], length).T)
            keys = keys.view(np.dtype((np.void, length))).ravel()
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        else:
            first, inverse = np.zeros(1, np.int64), np.zeros(len(rows), np.int64)
        ids = np.full(len(first), -2, dtype=np.int32)
        for i, row in enumerate(first.tolist()):
            a = int(start[rows[row]])
            try:
                tag = arr[a : a + length].tobytes().decode("utf-8")
            except UnicodeDecodeError:
                continue
            ids[i] = collector.tag_id(tag) if collector.keep(tag) else -1
        out[rows] = ids[inverse.ravel()]
    return out


def _f64_at(arr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Little-endian doubles at byte ``positions``; 0.0 where the position is -1 (a field that
    proto3 left out because it was zero)."""
    out = np.zeros(len(positions), dtype=np.float64)
    present = positions >= 0
    if present.any():
        out[present] = u64_at(arr, positions[present]).view("<f8")
    return out


def _message_fields(
    arr: np.ndarray, start: np.ndarray, end: np.ndarray, spec: dict[int, int], most: int = 16
) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Walk the fields of the messages ``arr[start[i]:end[i]]`` all at once.

    Returns ``ok`` (every field is one of ``spec`` with that wire type, none twice, none running
    past the end, at most ``most`` fields), and per key of ``spec`` the position of its value
    (-1 when absent) and, for a varint its value (uint64), for a length-delimited field the end
    of its data.
    """
    m = len(start)
    ok = np.ones(m, dtype=bool)
    where = {key: np.full(m, -1, dtype=np.int64) for key in spec}
    extra = {
        key: np.zeros(m, dtype=np.uint64 if kind == _VARINT else np.int64)
        for key, kind in spec.items()
    }
    pos = start.astype(np.int64, copy=True)
    active = np.flatnonzero(pos < end)
    ok[pos > end] = False
    for _ in range(most):
        if not len(active):
            break
        here = pos[active]
        limit = end[active]
        key = arr[here]
        after = np.full(len(active), -1, dtype=np.int64)
        for k, kind in spec.items():
            sel = np.flatnonzero(key == k)
            if not len(sel):
                continue
            rows = active[sel]
            good = where[k][rows] < 0  # a field seen twice: protobuf merges, not ours to do
            first = here[sel] + 1
            if kind == _F64:
                nxt = first + 8
                where[k][rows] = first
            else:
                value, data, fine = _varints(arr, first, limit[sel])
                good &= fine
                if kind == _VARINT:
                    nxt = data
                    where[k][rows] = first
                    extra[k][rows] = value
                else:
                    room = np.maximum(limit[sel] - data, 0).astype(np.uint64)
                    good &= value <= room
                    nxt = data + np.where(good, value, 0).astype(np.int64)
                    where[k][rows] = data
                    extra[k][rows] = nxt
            after[sel] = np.where(good, nxt, -1)
        bad = (after < 0) | (after > limit)
        ok[active[bad]] = False
        pos[active] = after
        active = active[~bad & (after < limit)]
    ok[active] = False  # more fields than any such message has
    return ok, where, extra


def _varints(
    arr: np.ndarray, pos: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The varint at each position, ending before ``limit``: (value as uint64, position after
    it, ok). Longer than ten bytes, or a tenth byte above 1, is not ok (left to protobuf)."""
    n = len(pos)
    value = np.zeros(n, dtype=np.uint64)
    after = np.full(n, -1, dtype=np.int64)
    todo = np.arange(n)
    last = len(arr) - 1
    for j in range(10):
        if not len(todo):
            break
        p = pos[todo] + j
        inside = p < limit[todo]
        byte = arr[np.minimum(p, last)]
        value[todo] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * j)
        stop = inside & (byte < 0x80)
        if j == 9:
            stop &= byte <= 1
        after[todo[stop]] = p[stop] + 1
        todo = todo[inside & ~stop]
    return value, after, after >= 0


def _decode_slow(
    buf: bytes,
    offsets: np.ndarray,
    lengths: np.ndarray,
    indices: np.ndarray,
    collector: _Collector,
    *,
    seq_base: int = 0,
    legacy: bool | None = None,
) -> None:
    data = collector.data
    parse = event_pb2.Event.FromString
    parse_failures = 0
    if legacy is None:
        legacy = _is_legacy(buf, offsets, lengths) if len(indices) and indices[0] == 0 else True
    for index in indices.tolist():
        seq = seq_base + index
        off = int(offsets[index]) + HEADER_BYTES
        try:
            event = parse(buf[off : off + int(lengths[index])])
        except DecodeError:
            parse_failures += 1
            if parse_failures <= 5:
                data.warnings.append(
                    ReadWarning(
                        kind="undecodable-record",
                        path=data.path,
                        offset=off - HEADER_BYTES,
                        message="record has valid checksums but is not an Event proto; skipped",
                    )
                )
            continue
        what = event.WhichOneof("what")
        if what == "summary":
            _summary(event, seq, collector)
        elif what == "file_version":
            data.versions.append((seq, _file_version(event.file_version)))
        elif what == "session_log":
            if event.session_log.status == _SESSION_START:
                data.starts.append((seq, int(event.step)))
        elif what is not None:
            collector.count_other(what)
    if parse_failures > 5:
        data.warnings.append(
            ReadWarning(
                kind="undecodable-record",
                path=data.path,
                message=f"{parse_failures - 5} more records could not be decoded",
            )
        )
    if legacy:
        data.legacy_events = _legacy_events(buf, offsets, lengths, collector)


def _is_legacy(buf: bytes, offsets: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether a file does not open with "brain.Event:2", so that it may need TensorBoard's
    out-of-order purge."""
    off = int(offsets[0]) + HEADER_BYTES
    try:
        first = event_pb2.Event.FromString(buf[off : off + int(lengths[0])])
    except DecodeError:
        return True
    return not first.file_version.startswith("brain.Event:") or (
        _file_version(first.file_version) < 2
    )


def _file_version(text: str) -> float:
    """TensorBoard's ``ParseFileVersion``: "brain.Event:2" -> 2.0; unknown -> -1."""
    try:
        return float(text.split(":")[-1])
    except ValueError:
        return -1.0


def _summary(event: event_pb2.Event, seq: int, collector: _Collector) -> None:
    step = int(event.step)
    wall = float(event.wall_time)
    data = collector.data
    for value in event.summary.value:
        tag = value.tag
        if value.HasField("metadata"):
            plugin = value.metadata.plugin_data.plugin_name
            if tag not in data.metadata:
                data.metadata[tag] = (seq, plugin)
            if plugin == "hparams":
                data.hparams.append((seq, tag, bytes(value.metadata.plugin_data.content)))
        kind = value.WhichOneof("value")
        if kind is None:
            continue
        if not collector.keep(tag):
            continue
        if kind == "simple_value":
            collector.slow_scalars.append(
                (seq, collector.tag_id(tag), step, wall, float(value.simple_value), False)
            )
        elif kind == "histo":
            h = value.histo
            collector.slow_histograms.append(
                HistogramRow(
                    seq,
                    collector.tag_id(tag),
                    step,
                    wall,
                    float(h.min),
                    float(h.max),
                    float(h.num),
                    float(h.sum),
                    float(h.sum_squares),
                    *_bucket_arrays(h),
                    False,
                )
            )
        elif kind == "tensor":
            _tensor(value.tensor, tag, seq, step, wall, collector)
        else:
            collector.count_other(kind)


_HISTO_DOUBLE_KEYS = frozenset((0x09, 0x11, 0x19, 0x21, 0x29))
_NO_BUCKETS = np.zeros(0, dtype=np.float64)


def _bucket_arrays(histo: Proto) -> tuple[np.ndarray, np.ndarray]:
    """``bucket_limit`` and ``bucket`` of a HistogramProto as float64 arrays.

    Converting a repeated field element by element costs microseconds per histogram; upb
    re-serialises the message as packed doubles in a fraction of that, read with ``frombuffer``.
    """
    raw = histo.SerializeToString()
    # upb writes the fields in order: the optional doubles, then the two packed arrays.
    pos, n = 0, len(raw)
    while pos < n and raw[pos] in _HISTO_DOUBLE_KEYS:
        pos += 9
    arrays = []
    for key in (0x32, 0x3A):
        if pos < n and raw[pos] == key:
            try:
                length, start = _varint(raw, pos + 1)
            except (IndexError, ValueError):
                break
            if length % 8 or start + length > n:
                break
            arrays.append(np.frombuffer(raw, "<f8", length // 8, start).astype(np.float64))
            pos = start + length
        else:
            arrays.append(_NO_BUCKETS)
    if pos == n and len(arrays) == 2:
        return arrays[0], arrays[1]
    found: dict[int, np.ndarray] = {}
    pos = 0
    try:
        while pos < n:
            key, pos = _varint(raw, pos)
            wire = key & 7
            if wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 0:
                _, pos = _varint(raw, pos)
            elif wire == 2:
                length, pos = _varint(raw, pos)
                if key in (0x32, 0x3A):
                    if key in found or length % 8 or pos + length > n:
                        raise ValueError("unexpected layout")
                    found[key] = np.frombuffer(raw, "<f8", length // 8, pos).astype(np.float64)
                pos += length
            else:
                raise ValueError("unexpected wire type")
    except (IndexError, ValueError):
        return (
            np.asarray(histo.bucket_limit, dtype=np.float64),
            np.asarray(histo.bucket, dtype=np.float64),
        )
    empty = np.zeros(0, dtype=np.float64)
    return found.get(0x32, empty), found.get(0x3A, empty)


def _tensor_array(tensor: Proto) -> np.ndarray | None:
    dtype = _NUMERIC_DTYPES.get(tensor.dtype)
    if dtype is None:
        return None
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if any(d < 0 for d in shape):
        return None
    size = math.prod(shape)  # Python ints: absurd dimensions cannot overflow
    if tensor.tensor_content:
        if len(tensor.tensor_content) % np.dtype(dtype).itemsize:
            return None
        values = np.frombuffer(tensor.tensor_content, dtype=dtype)
    elif tensor.dtype == 1:
        values = np.asarray(tensor.float_val, dtype=np.float32)
    elif tensor.dtype == 2:
        values = np.asarray(tensor.double_val, dtype=np.float64)
    elif tensor.dtype in (3, 4, 5, 6):
        values = np.asarray(tensor.int_val, dtype=np.int64)
    elif tensor.dtype == 9:
        values = np.asarray(tensor.int64_val, dtype=np.int64)
    elif tensor.dtype == 19:
        values = np.asarray(tensor.half_val, dtype=np.uint16).view(np.float16)
    else:
        return None
    # A single value broadcast to the shape; a tiny record must not make a huge array.
    if values.size == 1 and 1 < size <= _MAX_BROADCAST_VALUES:
        values = np.full(size, values[0])
    if values.size != size:
        return None
    try:
        return values.astype(np.float64).reshape(shape)
    except ValueError:  # e.g. [0, 2**40, 2**40]: no elements, but dimensions numpy cannot hold
        return None


def _tensor(
    tensor: Proto, tag: str, seq: int, step: int, wall: float, collector: _Collector
) -> None:
    data = collector.data
    if tensor.dtype == _DTYPE_STRING:
        text = "\n".join(s.decode("utf-8", errors="replace") for s in tensor.string_val)
        data.texts.append((seq, collector.tag_id(tag), step, wall, text))
        return
    values = _tensor_array(tensor)
    if values is None:
        collector.count_other("tensor")
    elif values.ndim == 0:
        collector.slow_scalars.append((seq, collector.tag_id(tag), step, wall, float(values), True))
    elif values.ndim == 2 and values.shape[1] == 3:
        left, right, counts = values[:, 0], values[:, 1], values[:, 2]
        nonzero = np.flatnonzero(counts)
        num = float(counts.sum())
        if len(nonzero):
            lo_edge, hi_edge = float(left[nonzero[0]]), float(right[nonzero[-1]])
        else:
            lo_edge = hi_edge = 0.0
        collector.slow_histograms.append(
            HistogramRow(
                seq,
                collector.tag_id(tag),
                step,
                wall,
                lo_edge,
                hi_edge,
                num,
                float("nan"),
                float("nan"),
                np.ascontiguousarray(right),
                np.ascontiguousarray(counts),
                True,
            )
        )
    else:
        collector.count_other("tensor")


def _legacy_events(
    buf: bytes, offsets: np.ndarray, lengths: np.ndarray, collector: _Collector
) -> list[tuple[int, int, bool, tuple[int, ...]]]:
    """Per-event facts needed by TensorBoard's out-of-order purge (rare: pre-2016 files)."""
    events = []
    parse = event_pb2.Event.FromString
    for seq in range(len(offsets)):
        off = int(offsets[seq]) + HEADER_BYTES
        try:
            event = parse(buf[off : off + int(lengths[seq])])
        except DecodeError:
            continue
        has_summary = event.HasField("summary")
        tags = tuple(
            collector.tag_index[v.tag] for v in event.summary.value if v.tag in collector.tag_index
        )
        events.append((seq, int(event.step), has_summary, tags))
    return events


def _finish(collector: _Collector, *, histograms: bool = True) -> None:
    """Merge fast and slow scalar rows into file-ordered arrays (and, unless ``histograms`` is
    False, the histograms: a streamed file merges them once, at its end).

    Column by column, releasing the parts as each is merged, so that a file of tens of millions
    of points needs little more than its columns.
    """
    if collector.slow_histograms:
        collector.hist_parts.append(HistogramColumns.from_rows(collector.slow_histograms))
        collector.slow_histograms = []
    if histograms:
        _finish_histograms(collector)
    data = collector.data
    parts = collector.fast
    collector.fast = []
    if collector.slow_scalars:
        seq, tag, step, wall, value, is_tensor = zip(*collector.slow_scalars, strict=True)
        collector.slow_scalars = []
        parts.append(
            (
                np.asarray(seq, dtype=np.int64),
                np.asarray(tag, dtype=np.int32),
                np.asarray(step, dtype=np.int64),
                np.asarray(wall, dtype=np.float64),
                np.asarray(value, dtype=np.float64),
                np.asarray(is_tensor, dtype=bool),
            )
        )
    if not parts:
        return
    columns = [list(column) for column in zip(*parts, strict=True)]
    sizes = [len(p[0]) for p in parts]
    del parts
    columns[5] = [
        np.full(size, flag, dtype=bool) if np.ndim(flag) == 0 else flag
        for size, flag in zip(sizes, columns[5], strict=True)
    ]
    dtypes = (np.int64, np.int32, np.int64, np.float64, np.float64, bool)
    merged = []
    order = None
    for k, dtype in enumerate(dtypes):
        column = np.concatenate(columns[k]).astype(dtype, copy=False)
        columns[k] = []
        # Already in file order when one layout decoded everything: no reordering.
        if k == 0 and len(column) > 1 and not (column[1:] >= column[:-1]).all():
            order = np.argsort(column, kind="stable")
        if order is not None:
            column = column[order]
        merged.append(column)
    (
        data.scalar_seq,
        data.scalar_tag,
        data.scalar_step,
        data.scalar_wall,
        data.scalar_value,
        data.scalar_is_tensor,
    ) = merged


def _finish_histograms(collector: _Collector) -> None:
    """The histogram parts (bulk-decoded and protobuf-decoded) as one set of columns in file
    order."""
    parts = collector.hist_parts
    collector.hist_parts = []
    if not parts:
        return
    data = collector.data
    merged = HistogramColumns.concat([data.histograms, *parts])
    del parts
    seq = merged.seq
    if len(seq) > 1 and not (seq[1:] >= seq[:-1]).all():
        merged = merged.take(np.argsort(seq, kind="stable"))
    data.histograms = merged


def looks_like_lfs_pointer(head: bytes) -> bool:
    """True for a Git LFS pointer file checked out in place of the real content."""
    return head.startswith(LFS_POINTER_PREFIX)


__all__ = [
    "FileData",
    "HistogramRow",
    "looks_like_lfs_pointer",
    "parse_event_bytes",
    "parse_event_files",
    "parse_event_stream",
]
