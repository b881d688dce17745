"""One run's parsed files -> `RunData` (TensorBoard's restart semantics), runs -> `ReadResult`.

Shared by every way of reading: ``tbreport.read`` (`reader`), the incremental reader and archives
and URLs (`inputs`). A run is assembled in file-name order as TensorBoard does: plugin names are
remembered per tag across the run's files, ``SessionLog.START`` events purge the points they
supersede, duplicate steps are kept and reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import DTypeLike

from tbreport.model import ReadWarning
from tbreport.reading.discovery import RunRef
from tbreport.reading.grouping import build_inventory
from tbreport.reading.hparams import build_hparams
from tbreport.reading.parsing import FileData, HistogramRow
from tbreport.reading.result import HISTOGRAM_COLUMNS, TEXT_COLUMNS, ReadResult
from tbreport.reading.rundata import RunData

_ZERO_EDGE = 1e-10
# Histograms whose statistics are computed in one numpy pass.
_STATISTICS_CHUNK = 4096


# ---------------------------------------------------------------------------------------------
# Assembling one run


def assemble_run(run: RunRef, files: list[FileData], *, release: bool = False) -> RunData:
    """Combine a run's parsed files in name order, applying TensorBoard's restart semantics.

    - The plugin of a tag is the one in its first metadata anywhere in the run (TF2 writers put
      it on the first value only).
    - A ``SessionLog.START`` (what ``SummaryWriter(purge_step=T)`` writes) drops every earlier point
      with ``step >= T``, as TensorBoard's ``EventAccumulator`` does, across files of the run.
    - Files without ``brain.Event:2`` use TensorBoard's older rule: an out-of-order step drops the
      later points of that event's tags.
    - Duplicate steps are kept and counted, never merged.

    With ``release``, the scalar columns of ``files`` are taken over (the files are emptied), so
    that a large run is not held twice.
    """
    tags: list[str] = []
    tag_ids: dict[str, int] = {}
    warnings: list[ReadWarning] = []
    plugin_of: dict[str, str] = {}
    bases = _file_bases(files, warnings, plugin_of)
    parts = _gather(files, bases, plugin_of, tags, tag_ids, release=release)
    histograms, texts, hparam_contents = parts.histograms, parts.texts, parts.hparam_contents
    purge_ops = _purge_operations(parts.starts, parts.version_marks, parts.legacy)

    # One column at a time, releasing its parts (a single part is used as it is).
    seq = _join(parts.seq, np.int64)
    tag = _join(parts.tag, np.int32)
    step = _join(parts.step, np.int64)
    wall = _join(parts.wall, np.float64)
    value = _join(parts.value, np.float64)
    del parts
    alive = _purge(run, purge_ops, warnings, (seq, step, tag), histograms, texts)
    scalar_alive, hist_alive, text_alive, purged = alive
    if purged:
        seq, tag, step, wall, value = (a[scalar_alive] for a in (seq, tag, step, wall, value))
        histograms = [h for h, ok in zip(histograms, hist_alive, strict=True) if ok]
        texts = [t for t, ok in zip(texts, text_alive, strict=True) if ok]

    # Rows grouped by tag (in tag-name order, as the combined frame wants), in written order:
    # ``seq`` ascends (files in order, each in record order), so a stable sort by tag suffices.
    name_rank = np.empty(len(tags), dtype=np.int32)
    name_rank[np.argsort(np.asarray(tags, dtype=object))] = np.arange(len(tags), dtype=np.int32)
    if len(seq) > 1 and not (seq[1:] >= seq[:-1]).all():
        order = np.lexsort((seq, name_rank[tag]))
        del seq
        tag, step, wall, value = (column[order] for column in (tag, step, wall, value))
    elif len(tags) > 1 and not _grouped(tag, name_rank):
        del seq
        columns = [step, wall, value, tag]
        del step, wall, value, tag  # the list holds the only references: released one by one
        step, wall, value, tag = _group_by_tag(name_rank, columns)
    duplicates = _count_duplicates(run, tags, step, tag, warnings)
    warnings = [w if w.run else replace(w, run=run.name) for w in warnings]
    return RunData(
        ref=run,
        tags=tags,
        scalar_tag=tag,
        scalar_step=step,
        scalar_wall=wall,
        scalar_value=value,
        histograms=[(h[1], h[2]) for h in sorted(histograms, key=lambda h: (h[1], h[0]))],
        texts=[t[1:] for t in sorted(texts, key=lambda t: (t[1], t[0]))],
        hparam_contents=hparam_contents,
        files=len(files),
        bytes=sum(f.size for f in run.files),
        purged=purged,
        duplicate_steps=duplicates,
        warnings=warnings,
    )


def _file_bases(
    files: list[FileData], warnings: list[ReadWarning], plugin_of: dict[str, str]
) -> list[int]:
    """Where each file's records start in the run's numbering of records; gathers the files'
    warnings and the plugin of each tag (its first metadata anywhere in the run)."""
    base = 0
    bases = []
    for data in files:
        bases.append(base)
        base += max(data.n_records, 1)
        warnings.extend(data.warnings)
        for tag, (_, plugin) in sorted(data.metadata.items(), key=lambda item: item[1][0]):
            plugin_of.setdefault(tag, plugin)
    return bases


@dataclass
class _Parts:
    """A run's rows as its files hold them, before they become columns."""

    seq: list[np.ndarray]
    tag: list[np.ndarray]
    step: list[np.ndarray]
    wall: list[np.ndarray]
    value: list[np.ndarray]
    histograms: list[tuple[int, int, HistogramRow]]  # (seq, tag id, row)
    texts: list[tuple[int, int, int, float, str]]  # (seq, tag id, step, wall time, text)
    hparam_contents: list[tuple[str, bytes]]
    starts: list[tuple[int, int]]
    version_marks: list[tuple[int, float]]
    legacy: list[tuple[int, int, bool, tuple[int, ...]]]


def _gather(
    files: list[FileData],
    bases: list[int],
    plugin_of: dict[str, str],
    tags: list[str],
    tag_ids: dict[str, int],
    *,
    release: bool,
) -> _Parts:
    """Every file's rows with run-wide record numbers and tag ids (new tags are added to
    ``tags`` and ``tag_ids``); tensors count as scalars, histograms and text only under their
    plugin. With ``release``, the files' scalar columns are emptied as they are taken."""

    def remap(data: FileData) -> np.ndarray:
        mapping = np.empty(len(data.tags), dtype=np.int32)
        for i, tag in enumerate(data.tags):
            idx = tag_ids.get(tag)
            if idx is None:
                idx = tag_ids[tag] = len(tags)
                tags.append(tag)
            mapping[i] = idx
        return mapping

    seq_parts, tag_parts, step_parts, wall_parts, value_parts = [], [], [], [], []
    histograms: list[tuple[int, int, HistogramRow]] = []
    texts: list[tuple[int, int, int, float, str]] = []
    hparam_contents: list[tuple[str, bytes]] = []
    starts: list[tuple[int, int]] = []
    version_marks: list[tuple[int, float]] = []
    legacy: list[tuple[int, int, bool, tuple[int, ...]]] = []
    for data, file_base in zip(files, bases, strict=True):
        mapping = remap(data)
        if len(data.scalar_seq):
            keep: np.ndarray | slice = slice(None)  # no copies when every row is kept
            if data.scalar_is_tensor.any():
                tensor_ok = np.array([plugin_of.get(t) == "scalars" for t in data.tags], dtype=bool)
                mask = ~data.scalar_is_tensor | tensor_ok[data.scalar_tag]
                if not mask.all():
                    keep = mask
            seq_parts.append(
                data.scalar_seq[keep] + file_base if file_base else data.scalar_seq[keep]
            )
            identity = np.array_equal(mapping, np.arange(len(mapping)))
            tag_parts.append(data.scalar_tag[keep] if identity else mapping[data.scalar_tag[keep]])
            step_parts.append(data.scalar_step[keep])
            wall_parts.append(data.scalar_wall[keep])
            value_parts.append(data.scalar_value[keep])
            if release:
                data.scalar_seq = data.scalar_tag = data.scalar_step = _EMPTY_INT
                data.scalar_wall = data.scalar_value = _EMPTY_FLOAT
                data.scalar_is_tensor = np.zeros(0, bool)
        for row in data.histograms:
            if row.from_tensor and plugin_of.get(data.tags[row.tag]) != "histograms":
                continue
            histograms.append((row.seq + file_base, int(mapping[row.tag]), row))
        for seq, tag, step, wall, text in data.texts:
            if plugin_of.get(data.tags[tag]) == "text":
                texts.append((seq + file_base, int(mapping[tag]), step, wall, text))
        hparam_contents.extend((tag, content) for _, tag, content in data.hparams)
        starts.extend((seq + file_base, step) for seq, step in data.starts)
        version_marks.extend((seq + file_base, v) for seq, v in data.versions)
        if data.legacy_events is not None:
            legacy.extend(
                (seq + file_base, step, has_summary, tuple(int(mapping[t]) for t in ev_tags))
                for seq, step, has_summary, ev_tags in data.legacy_events
            )
    columns = (seq_parts, tag_parts, step_parts, wall_parts, value_parts)
    return _Parts(*columns, histograms, texts, hparam_contents, starts, version_marks, legacy)


class _Alive(NamedTuple):
    """Which rows survive the restart purges, and how many points were purged."""

    scalars: np.ndarray
    histograms: np.ndarray
    texts: np.ndarray
    purged: int


def _purge(
    run: RunRef,
    purge_ops: list[tuple[int, int, tuple[int, ...] | None]],
    warnings: list[ReadWarning],
    scalars: tuple[np.ndarray, np.ndarray, np.ndarray],
    histograms: list[tuple[int, int, HistogramRow]],
    texts: list[tuple[int, int, int, float, str]],
) -> _Alive:
    """Apply TensorBoard's purges to the scalar rows (``scalars``: their seq, step and tag
    columns), the histograms and the texts; each purge that drops points adds a warning."""
    seq, step, tag = scalars
    hist_seq = np.array([h[0] for h in histograms], dtype=np.int64)
    hist_tag = np.array([h[1] for h in histograms], dtype=np.int32)
    hist_step = np.array([h[2].step for h in histograms], dtype=np.int64)
    text_seq = np.array([t[0] for t in texts], dtype=np.int64)
    text_tag = np.array([t[1] for t in texts], dtype=np.int32)
    text_step = np.array([t[2] for t in texts], dtype=np.int64)
    scalar_alive = np.ones(len(seq), dtype=bool)
    hist_alive = np.ones(len(hist_seq), dtype=bool)
    text_alive = np.ones(len(text_seq), dtype=bool)
    purged = 0
    for op_seq, op_step, op_tags in purge_ops:
        before = int(scalar_alive.sum() + hist_alive.sum())
        for alive, s, st, tg in (
            (scalar_alive, seq, step, tag),
            (hist_alive, hist_seq, hist_step, hist_tag),
            (text_alive, text_seq, text_step, text_tag),
        ):
            if not len(s):
                continue
            mask = (s < op_seq) & (st >= op_step)
            if op_tags is not None:
                mask &= np.isin(tg, np.asarray(op_tags, dtype=np.int32))
            alive &= ~mask
        dropped = before - int(scalar_alive.sum() + hist_alive.sum())
        if dropped:
            purged += dropped
            warnings.append(
                ReadWarning(
                    kind="purged-by-restart",
                    path=run.directory,
                    run=run.name,
                    message=(
                        f"restart at step {op_step}: dropped {dropped} earlier points with "
                        f"step >= {op_step}, as TensorBoard does"
                        + ("" if op_tags is None else " (out-of-order step, those tags only)")
                    ),
                )
            )
    return _Alive(scalar_alive, hist_alive, text_alive, purged)


def _count_duplicates(
    run: RunRef, tags: list[str], step: np.ndarray, tag: np.ndarray, warnings: list[ReadWarning]
) -> int:
    """Points that share a step with an earlier point of their tag (kept; one warning says so).
    ``step`` and ``tag`` are grouped by tag, in written order within a tag."""
    duplicates = 0
    # Steps that ascend strictly within each tag hold no duplicates: no sort needed.
    if len(step) > 1 and not ((step[1:] > step[:-1]) | (tag[1:] != tag[:-1])).all():
        sorted_pairs = np.lexsort((step, tag))
        st, tg = step[sorted_pairs], tag[sorted_pairs]
        dup_mask = (st[1:] == st[:-1]) & (tg[1:] == tg[:-1])
        duplicates = int(dup_mask.sum())
        if duplicates:
            dup_tags = sorted({tags[int(t)] for t in tg[1:][dup_mask]})
            shown = ", ".join(dup_tags[:5]) + (" ..." if len(dup_tags) > 5 else "")
            warnings.append(
                ReadWarning(
                    kind="duplicate-steps",
                    path=run.directory,
                    run=run.name,
                    message=(
                        f"{duplicates} point{'s share' if duplicates != 1 else ' shares'} a step "
                        "with an earlier point of the same tag "
                        f"(tags: {shown}); all are kept, none averaged"
                    ),
                )
            )
    return duplicates


def _grouped(tag: np.ndarray, name_rank: np.ndarray) -> bool:
    """Whether rows are already grouped by tag in name order (checked with one byte a row)."""
    changed = tag[1:] != tag[:-1]
    if np.count_nonzero(changed) >= len(name_rank):  # some tag comes back: not grouped
        return False
    starts = np.flatnonzero(changed) + 1
    ranks = name_rank[tag[np.concatenate(([0], starts))]] if len(tag) else name_rank[:0]
    return bool((ranks[1:] > ranks[:-1]).all())


def _group_by_tag(name_rank: np.ndarray, columns: list[np.ndarray]) -> list[np.ndarray]:
    """``columns`` (the tag column last) reordered in place so that rows are grouped by tag in
    name order, keeping their order within a tag (a stable sort by tag rank).

    Columns are replaced one at a time, so a large run never exists twice; with few tags each
    is rebuilt from one boolean selection per tag, without an index array of eight bytes a row.
    """
    tag = columns[-1]
    # The selections save memory on large runs; on small ones a sort is fewer numpy calls.
    if len(name_rank) > _MASK_SORT_TAGS or len(tag) < _MASK_SORT_ROWS:
        order = np.argsort(name_rank[tag], kind="stable")
        del tag
        for k in range(len(columns)):
            columns[k] = columns[k][order]
        return columns
    by_rank = np.argsort(name_rank).tolist()
    counts = np.bincount(tag, minlength=len(name_rank)).tolist()
    for k in range(len(columns)):
        grouped = np.empty_like(columns[k])
        position = 0
        for t in by_rank:
            if counts[t]:
                grouped[position : position + counts[t]] = columns[k][tag == t]
                position += counts[t]
        columns[k] = grouped
    return columns


# Runs with at most this many tags are grouped by boolean selections rather than a sort.
_MASK_SORT_TAGS = 16
_MASK_SORT_ROWS = 1 << 20
_EMPTY_INT = np.zeros(0, np.int64)
_EMPTY_FLOAT = np.zeros(0, np.float64)


def _join(parts: list[np.ndarray], dtype: DTypeLike) -> np.ndarray:
    """Concatenate ``parts`` and empty the list (a single part is returned as it is)."""
    if not parts:
        return np.zeros(0, dtype)
    column = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return column.astype(dtype, copy=False)


def _purge_operations(
    starts: list[tuple[int, int]],
    version_marks: list[tuple[int, float]],
    legacy: list[tuple[int, int, bool, tuple[int, ...]]],
) -> list[tuple[int, int, tuple[int, ...] | None]]:
    """The purges TensorBoard's EventAccumulator would make: (before seq, from step, tags|None)."""
    version_marks = sorted(version_marks)
    version_seqs = [s for s, _ in version_marks]

    def version_at(seq: int) -> float | None:
        idx = int(np.searchsorted(version_seqs, seq, side="right")) - 1
        return version_marks[idx][1] if idx >= 0 else None

    ops: list[tuple[int, int, tuple[int, ...] | None]] = []
    for seq, step in starts:
        version = version_at(seq)
        if version is not None and version >= 2:
            ops.append((seq, step, None))
    most_recent = -1
    for seq, step, has_summary, tags in sorted(legacy):
        version = version_at(seq)
        if version is not None and version >= 2:
            continue
        if step < most_recent and has_summary:
            ops.append((seq, step, tags))
        else:
            most_recent = step
    ops.sort(key=lambda op: op[0])
    return ops


# ---------------------------------------------------------------------------------------------
# Combining runs into frames


def combine(
    logdir: str, run_data: list[RunData], *, discovery_warnings: Iterable[ReadWarning] = ()
) -> ReadResult:
    """Turn assembled runs into the categorical DataFrames of a `ReadResult`."""
    warnings = list(discovery_warnings)
    for rd in run_data:
        warnings.extend(rd.warnings)
    runs = build_inventory(run_data, warnings)  # before the runs' columns are released below
    all_tags = sorted({t for rd in run_data for t in rd.tags})
    tag_code = {t: i for i, t in enumerate(all_tags)}
    run_names = [rd.ref.name for rd in run_data]
    run_dtype = pd.CategoricalDtype(run_names)
    tag_dtype = pd.CategoricalDtype(all_tags)

    # Codes in the dtype the categoricals keep, so that they are not converted afterwards.
    run_code_type, tag_code_type = _code_type(len(run_names)), _code_type(len(all_tags))
    scalar_parts_run, scalar_parts_tag = [], []
    for i, rd in enumerate(run_data):
        mapping = np.array([tag_code[t] for t in rd.tags], dtype=tag_code_type)
        scalar_parts_run.append(np.full(len(rd.scalar_tag), i, dtype=run_code_type))
        scalar_parts_tag.append(mapping[rd.scalar_tag] if len(rd.tags) else rd.scalar_tag)
        rd.scalar_tag = np.zeros(0, np.int32)

    # Each run's rows are already in tag-name order, so runs simply concatenate. Columns are
    # released from the runs as they are built, to keep peak memory near the final frame.
    scalars = pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(
                _join(scalar_parts_run, run_code_type), dtype=run_dtype
            ),
            "tag": pd.Categorical.from_codes(
                _join(scalar_parts_tag, tag_code_type), dtype=tag_dtype
            ),
            "step": _take_column(run_data, "scalar_step", np.int64),
            "wall_time": _take_column(run_data, "scalar_wall", np.float64),
            "value": _take_column(run_data, "scalar_value", np.float64),
        },
        copy=False,
    )
    del scalar_parts_run, scalar_parts_tag
    histograms = _histogram_frame(run_data, run_dtype, tag_dtype)
    text = pd.DataFrame(
        {
            "run": pd.Categorical(
                [rd.ref.name for rd in run_data for _ in rd.texts], dtype=run_dtype
            ),
            "tag": pd.Categorical(
                [rd.tags[t[0]] for rd in run_data for t in rd.texts], dtype=tag_dtype
            ),
            "step": np.array([t[1] for rd in run_data for t in rd.texts], dtype=np.int64),
            "wall_time": np.array([t[2] for rd in run_data for t in rd.texts], dtype=np.float64),
            "text": pd.array([t[3] for rd in run_data for t in rd.texts], dtype=object),
        },
        columns=TEXT_COLUMNS,
    )
    hparams, hparam_records, hp_warnings = build_hparams(run_data, runs, text)
    warnings.extend(hp_warnings)
    return ReadResult(
        logdir=logdir,
        scalars=scalars,
        histograms=histograms,
        text=text,
        hparams=hparams,
        hparam_records=hparam_records,
        runs=runs,
        warnings=warnings,
    )


def _take_column(run_data: list[RunData], name: str, dtype: DTypeLike) -> np.ndarray:
    """Concatenate one column over runs and release it from them (they are not used again)."""
    parts = [getattr(rd, name) for rd in run_data]
    for rd in run_data:
        setattr(rd, name, np.zeros(0, dtype))
    return _join(parts, dtype)


def _code_type(categories: int) -> type[np.signedinteger[Any]]:
    """The integer type pandas keeps for the codes of that many categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _histogram_statistics_all(rows: list[HistogramRow]) -> tuple[np.ndarray, ...]:
    """Mean, standard deviation and share of values at zero of every histogram, in numpy passes
    over all buckets together rather than a dozen numpy calls per histogram.

    The mean and standard deviation come from the exact sums where the writer kept them, else
    from the bucket centres (clipped to min/max); the zero share counts buckets whose both
    edges lie within ``_ZERO_EDGE`` of zero. Histograms without buckets, or with limits and
    counts of different lengths, give NaN; an all-zero histogram gives 0, 0, 1.
    """
    n = len(rows)
    mean, std, zero = (np.full(n, np.nan) for _ in range(3))
    if not n:
        return mean, std, zero
    lo = np.fromiter((h.min for h in rows), np.float64, n)
    hi = np.fromiter((h.max for h in rows), np.float64, n)
    num = np.fromiter((h.num for h in rows), np.float64, n)
    total_sum = np.fromiter((h.sum for h in rows), np.float64, n)
    sum_sq = np.fromiter((h.sum_squares for h in rows), np.float64, n)
    tensor = np.fromiter((h.from_tensor for h in rows), bool, n)
    sizes = np.fromiter((len(h.bucket) for h in rows), np.int64, n)
    limit_sizes = np.fromiter((len(h.bucket_limit) for h in rows), np.int64, n)
    # No buckets, or limits and counts of different lengths (a damaged or hand-made histogram).
    valid = (num > 0) & (sizes > 0) & (sizes == limit_sizes)
    zeros = valid & (lo == 0.0) & (hi == 0.0)
    mean[zeros], std[zeros], zero[zeros] = 0.0, 0.0, 1.0
    todo = np.flatnonzero(valid & ~zeros)
    if not len(todo):
        return mean, std, zero
    picked = [rows[i] for i in todo.tolist()]
    limits = np.concatenate([h.bucket_limit for h in picked]).astype(np.float64, copy=False)
    counts = np.concatenate([h.bucket for h in picked]).astype(np.float64, copy=False)
    size = sizes[todo]
    first = np.concatenate(([0], np.cumsum(size)[:-1]))
    segment = np.repeat(np.arange(len(todo)), size)
    lefts = np.empty_like(limits)
    lefts[1:] = limits[:-1]
    lefts[first] = np.minimum(lo[todo], limits[first])
    seg_lo, seg_hi, seg_num = lo[todo], hi[todo], num[todo]
    # From the exact sums where the writer kept them, else from bucket centres.
    exact = ~tensor[todo] & np.isfinite(total_sum[todo]) & np.isfinite(sum_sq[todo])
    m = total_sum[todo] / seg_num
    var = np.maximum(sum_sq[todo] / seg_num - m * m, 0.0)
    centres = (np.maximum(lefts, seg_lo[segment]) + np.minimum(limits, seg_hi[segment])) / 2.0
    total = np.add.reduceat(counts, first)
    with np.errstate(all="ignore"):
        c_mean = np.add.reduceat(centres * counts, first) / total
        c_var = np.add.reduceat((centres - c_mean[segment]) ** 2 * counts, first) / total
    c_mean[total == 0] = np.nan
    c_var[total == 0] = np.nan
    m = np.where(exact, m, c_mean)
    var = np.where(exact, var, c_var)
    at_zero = (lefts >= -_ZERO_EDGE) & (limits <= _ZERO_EDGE)
    zero_counts = np.add.reduceat(np.where(at_zero, counts, 0.0), first)
    mean[todo] = m
    std[todo] = np.sqrt(var)
    zero[todo] = np.minimum(zero_counts / seg_num, 1.0)
    return mean, std, zero


def _histogram_frame(
    run_data: list[RunData], run_dtype: pd.CategoricalDtype, tag_dtype: pd.CategoricalDtype
) -> pd.DataFrame:
    run_codes: list[int] = []
    tag_names: list[str] = []
    rows: list[HistogramRow] = []
    for i, rd in enumerate(run_data):
        ordered = sorted(rd.histograms, key=lambda item: rd.tags[item[0]])
        run_codes.extend([i] * len(ordered))
        tag_names.extend(rd.tags[t] for t, _ in ordered)
        rows.extend(h for _, h in ordered)
    n = len(rows)
    mean, std, zero = (np.empty(n) for _ in range(3))
    with np.errstate(all="ignore"):  # absurd values give inf/NaN, not console noise
        # In chunks: the temporaries over all buckets would be several times the histograms.
        for start in range(0, n, _STATISTICS_CHUNK):
            part = slice(start, start + _STATISTICS_CHUNK)
            mean[part], std[part], zero[part] = _histogram_statistics_all(rows[part])

    def column(name: str, dtype: DTypeLike = np.float64) -> np.ndarray:
        return np.fromiter((getattr(h, name) for h in rows), dtype, n)

    def arrays(name: str) -> np.ndarray:
        out = np.empty(n, dtype=object)
        out[:] = [getattr(h, name) for h in rows]
        return out

    return pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(np.asarray(run_codes, np.int32), dtype=run_dtype),
            "tag": pd.Categorical(tag_names, dtype=tag_dtype),
            "step": column("step", np.int64),
            "wall_time": column("wall_time"),
            "min": column("min"),
            "max": column("max"),
            "num": column("num"),
            "sum": column("sum"),
            "sum_squares": column("sum_squares"),
            "mean": mean,
            "std": std,
            "zero_fraction": zero,
            "bucket_limit": arrays("bucket_limit"),
            "bucket": arrays("bucket"),
        },
        columns=HISTOGRAM_COLUMNS,
    )
