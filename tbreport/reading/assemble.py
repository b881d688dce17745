"""One run's parsed files -> `RunData` (TensorBoard's restart semantics), runs -> `ReadResult`.

Shared by every way of reading: ``tbreport.read`` (`reader`), the incremental reader and archives
and URLs (`inputs`). A run is assembled in file-name order as TensorBoard does: plugin names are
remembered per tag across the run's files, ``SessionLog.START`` events purge the points they
supersede, duplicate steps are kept and reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import DTypeLike

from tbreport.model import ReadWarning
from tbreport.reading.discovery import RunRef
from tbreport.reading.grouping import InventoryCells, inventory_frame
from tbreport.reading.hparams import (
    HparamRecord,
    collect_hparam_records,
    records_frame,
    wide_table,
)
from tbreport.reading.parsing import (
    FileData,
    HistogramColumns,
    HistogramRow,
    gather_segments,
    segment_starts,
)
from tbreport.reading.result import HISTOGRAM_COLUMNS, TEXT_COLUMNS, ReadResult
from tbreport.reading.runbatch import SCALAR_COLUMNS, RunBatch, code_type, join_columns, join_parts
from tbreport.reading.rundata import RunData

_ZERO_EDGE = 1e-10


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
    seq = join_parts(parts.seq, np.int64)
    tag = join_parts(parts.tag, np.int32)
    step = join_parts(parts.step, np.int64)
    wall = join_parts(parts.wall, np.float64)
    value = join_parts(parts.value, np.float64)
    del parts
    alive = _purge(run, purge_ops, warnings, (seq, step, tag), histograms, texts)
    scalar_alive, hist_alive, text_alive, purged = alive
    if purged:
        seq, tag, step, wall, value = (a[scalar_alive] for a in (seq, tag, step, wall, value))
        if not hist_alive.all():
            histograms = histograms.take(hist_alive)
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
        histograms=_histograms_by_tag(histograms, name_rank),
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
    histograms: HistogramColumns  # ``tag``: run-wide tag ids; ``seq``: run-wide record numbers
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
    hist_parts: list[HistogramColumns] = []
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
        hist = _file_histograms(data, plugin_of, mapping, file_base)
        if hist is not None:
            hist_parts.append(hist)
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
    histograms = HistogramColumns.concat(hist_parts)
    del hist_parts
    return _Parts(*columns, histograms, texts, hparam_contents, starts, version_marks, legacy)


def _file_histograms(
    data: FileData, plugin_of: dict[str, str], mapping: np.ndarray, file_base: int
) -> HistogramColumns | None:
    """A file's histograms with run-wide record numbers and tag ids (TF2 tensors only under the
    histograms plugin); None when there are none."""
    hist = data.histograms
    if not len(hist):
        return None
    if hist.from_tensor.any():  # TF2 tensors are histograms only under that plugin
        plugin_ok = np.array([plugin_of.get(t) == "histograms" for t in data.tags], dtype=bool)
        kept = ~hist.from_tensor | plugin_ok[hist.tag]
        hist = hist.take(kept) if not kept.all() else hist
    if not len(hist):
        return None
    return hist.take(slice(None), seq=hist.seq + file_base, tag=mapping[hist.tag])


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
    histograms: HistogramColumns,
    texts: list[tuple[int, int, int, float, str]],
) -> _Alive:
    """Apply TensorBoard's purges to the scalar rows (``scalars``: their seq, step and tag
    columns), the histograms and the texts; each purge that drops points adds a warning."""
    seq, step, tag = scalars
    hist_seq, hist_tag, hist_step = histograms.seq, histograms.tag, histograms.step
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
    duplicates, warning = _duplicate_steps(run, tags, tag, step)
    if warning is not None:
        warnings.append(warning)
    return duplicates


def _duplicate_steps(
    run: RunRef, tags: list[str], tag: np.ndarray, step: np.ndarray
) -> tuple[int, ReadWarning | None]:
    """Points that share a step with an earlier point of their tag (rows grouped by tag), and
    the warning that says so."""
    # Steps that ascend strictly within each tag hold no duplicates: no sort needed.
    if len(step) < 2 or ((step[1:] > step[:-1]) | (tag[1:] != tag[:-1])).all():
        return 0, None
    sorted_pairs = np.lexsort((step, tag))
    st, tg = step[sorted_pairs], tag[sorted_pairs]
    dup_mask = (st[1:] == st[:-1]) & (tg[1:] == tg[:-1])
    duplicates = int(dup_mask.sum())
    if not duplicates:
        return 0, None
    dup_tags = sorted({tags[int(t)] for t in tg[1:][dup_mask]})
    shown = ", ".join(dup_tags[:5]) + (" ..." if len(dup_tags) > 5 else "")
    return duplicates, ReadWarning(
        kind="duplicate-steps",
        path=run.directory,
        run=run.name,
        message=(
            f"{duplicates} point{'s share' if duplicates != 1 else ' shares'} a step "
            "with an earlier point of the same tag "
            f"(tags: {shown}); all are kept, none averaged"
        ),
    )


def assemble_runs(runs: list[RunRef], files: list[list[FileData]]) -> list[RunData]:
    """`assemble_run` of each run (``files[i]`` are the parsed files of ``runs[i]``), taking
    their columns over.

    Runs of one plain file (scalars only: no restart, histogram, text, hyperparameter, plugin
    metadata or warning) are assembled all at once, with a few numpy passes over their
    concatenated columns instead of a few dozen numpy calls each: a logdir of thousands of
    small runs. The result is what `assemble_run` gives for each.
    """
    out: list[RunData | None] = [None] * len(runs)
    plain: list[int] = []
    rows = 0

    def flush() -> None:
        assembled = _assemble_plain([runs[i] for i in plain], [files[i][0] for i in plain])
        for i, rd in zip(plain, assembled, strict=True):
            out[i] = rd
        plain.clear()

    for i, (run, parsed) in enumerate(zip(runs, files, strict=True)):
        # Large runs go one by one: assemble_run keeps their temporaries small.
        size = len(parsed[0].scalar_seq) if len(parsed) == 1 else 0
        if len(parsed) == 1 and size <= _PLAIN_RUN_ROWS and _plain_scalars(parsed[0]):
            if rows + size > _PLAIN_GROUP_ROWS:
                flush()
                rows = 0
            plain.append(i)
            rows += size
        else:
            out[i] = assemble_run(run, parsed, release=True)
    if plain:
        flush()
    return out  # type: ignore[return-value]


# Plain runs of at most this many points are assembled together, in groups of at most this many
# points (a group's sort keys and reordered copies exist at once).
_PLAIN_RUN_ROWS = 1 << 16
_PLAIN_GROUP_ROWS = 1 << 17


def _plain_scalars(data: FileData) -> bool:
    return not (
        data.starts
        or data.legacy_events is not None
        or len(data.histograms)
        or data.texts
        or data.hparams
        or data.metadata
        or data.warnings
        or data.scalar_is_tensor.any()
    )


def _assemble_plain(runs: list[RunRef], files: list[FileData]) -> list[RunData]:
    """`assemble_run` of runs of one plain file each (see `assemble_runs`), all at once."""
    sizes = np.array([len(d.scalar_seq) for d in files], dtype=np.int64)
    tag = join_parts([d.scalar_tag for d in files], np.int32)
    step = join_parts([d.scalar_step for d in files], np.int64)
    wall = join_parts([d.scalar_wall for d in files], np.float64)
    value = join_parts([d.scalar_value for d in files], np.float64)
    for d in files:  # taken over, as ``assemble_run(..., release=True)`` does
        d.scalar_seq = d.scalar_tag = d.scalar_step = _EMPTY_INT
        d.scalar_wall = d.scalar_value = _EMPTY_FLOAT
        d.scalar_is_tensor = np.zeros(0, bool)
    # Rows are in (run, written) order; a stable sort by (run, tag name) groups each run's rows
    # by tag in name order, as assemble_run does run by run.
    names = sorted({t for d in files for t in d.tags})
    rank = {t: i for i, t in enumerate(names)}
    tag_rank = np.array([rank[t] for d in files for t in d.tags], dtype=np.int64)
    tag_base = segment_starts(np.array([len(d.tags) for d in files], dtype=np.int64))
    run_of_row = np.repeat(np.arange(len(files), dtype=np.int64), sizes)
    key = run_of_row * max(len(names), 1) + tag_rank[tag_base[run_of_row] + tag]
    if len(key) > 1 and not (key[1:] >= key[:-1]).all():
        order = np.argsort(key, kind="stable")
        key, tag, step, wall, value = (a[order] for a in (key, tag, step, wall, value))
    # Runs whose steps do not ascend strictly within a tag: their duplicates counted one by one.
    unsure = (key[1:] == key[:-1]) & (step[1:] <= step[:-1])
    check = set(run_of_row[1:][unsure].tolist())
    bounds = np.concatenate(([0], np.cumsum(sizes))).tolist()
    out = []
    for i, (run, data) in enumerate(zip(runs, files, strict=True)):
        a, b = bounds[i], bounds[i + 1]
        duplicates, warning = (
            _duplicate_steps(run, data.tags, tag[a:b], step[a:b]) if i in check else (0, None)
        )
        out.append(
            RunData(
                ref=run,
                tags=data.tags,
                scalar_tag=tag[a:b],
                scalar_step=step[a:b],
                scalar_wall=wall[a:b],
                scalar_value=value[a:b],
                histograms=_NO_HISTOGRAMS,
                texts=[],
                hparam_contents=[],
                files=1,
                bytes=sum(f.size for f in run.files),
                duplicate_steps=duplicates,
                warnings=[warning] if warning is not None else [],
            )
        )
    return out


def _histograms_by_tag(histograms: HistogramColumns, name_rank: np.ndarray) -> HistogramColumns:
    """Histograms in tag-name order, each tag's in written order (``seq`` order)."""
    if len(histograms) < 2:
        return histograms
    seq = histograms.seq
    if not (seq[1:] >= seq[:-1]).all():
        return histograms.take(np.lexsort((seq, name_rank[histograms.tag])))
    rank = name_rank[histograms.tag]
    if (rank[1:] >= rank[:-1]).all():
        return histograms
    return histograms.take(np.argsort(rank, kind="stable"))


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
    logdir: str,
    run_data: list[RunData],
    *,
    batches: list[RunBatch] | None = None,
    discovery_warnings: Iterable[ReadWarning] = (),
) -> ReadResult:
    """Turn assembled runs into the categorical DataFrames of a `ReadResult`.

    Args:
        run_data: The runs, in the order of the frames.
        batches: The same runs as read, in batches (any order), their share of combining done;
            by default one batch of them all.
    """
    return combine_with_records(
        logdir, run_data, batches=batches, discovery_warnings=discovery_warnings
    )[0]


def combine_with_records(
    logdir: str,
    run_data: list[RunData],
    *,
    batches: list[RunBatch] | None = None,
    discovery_warnings: Iterable[ReadWarning] = (),
) -> tuple[ReadResult, list[HparamRecord]]:
    """`combine`, and the hyperparameter records as read: the ``hparams`` table makes numbers
    of a column across all runs, these keep each value as its source wrote it."""
    warnings = list(discovery_warnings)
    for rd in run_data:
        warnings.extend(rd.warnings)
    joined = _join_batches(run_data, [RunBatch.of(run_data)] if batches is None else batches)
    runs = inventory_frame(joined.inventory, run_data, warnings)
    run_names = joined.inventory.names
    run_dtype = pd.CategoricalDtype(run_names)
    tag_dtype = pd.CategoricalDtype(joined.tags)

    # Each run's rows are already in tag-name order, so runs simply concatenate.
    scalars = pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(joined.run_codes, dtype=run_dtype),
            "tag": pd.Categorical.from_codes(joined.tag_codes, dtype=tag_dtype),
            "step": joined.step,
            "wall_time": joined.wall,
            "value": joined.value,
        },
        copy=False,
    )
    del joined
    histograms = _histogram_frame(run_data, run_dtype, tag_dtype)
    texted = [rd for rd in run_data if rd.texts]
    text = pd.DataFrame(
        {
            "run": pd.Categorical(
                [rd.ref.name for rd in texted for _ in rd.texts], dtype=run_dtype
            ),
            "tag": pd.Categorical(
                [rd.tags[t[0]] for rd in texted for t in rd.texts], dtype=tag_dtype
            ),
            "step": np.array([t[1] for rd in texted for t in rd.texts], dtype=np.int64),
            "wall_time": np.array([t[2] for rd in texted for t in rd.texts], dtype=np.float64),
            "text": pd.array([t[3] for rd in texted for t in rd.texts], dtype=object),
        },
        columns=TEXT_COLUMNS,
    )
    records, hp_warnings = collect_hparam_records(run_data, runs, text)
    warnings.extend(hp_warnings)
    result = ReadResult(
        logdir=logdir,
        scalars=scalars,
        histograms=histograms,
        text=text,
        hparams=wide_table(records, runs),
        hparam_records=records_frame(records),
        runs=runs,
        warnings=warnings,
    )
    return result, records


class _Joined(NamedTuple):
    """The scalar columns of every run, in the order of the runs, and their inventory cells."""

    tags: list[str]  # sorted
    run_codes: np.ndarray
    tag_codes: np.ndarray
    step: np.ndarray
    wall: np.ndarray
    value: np.ndarray
    inventory: InventoryCells


def _join_batches(run_data: list[RunData], batches: list[RunBatch]) -> _Joined:
    """Join the batches' columns in the order of ``run_data`` (each run in one batch), and
    release them (columns are released as they are built, to keep peak memory near the final
    frame)."""
    position = {id(rd): k for k, rd in enumerate(run_data)}
    placed = [
        (np.array([position[id(rd)] for rd in batch.runs], dtype=np.int64), batch)
        for batch in batches
        if batch.runs
    ]
    placed.sort(key=lambda pair: int(pair[0][0]))
    joined_order = np.concatenate([p for p, _ in placed]) if placed else _EMPTY_INT
    if not np.array_equal(np.sort(joined_order), np.arange(len(run_data))):
        raise ValueError("the batches do not hold each run exactly once")
    tags = sorted({t for _, batch in placed for t in batch.tags})
    tag_code = {t: i for i, t in enumerate(tags)}
    # Codes in the dtype the categoricals keep, so that they are not converted afterwards.
    run_type, tag_type = code_type(len(run_data)), code_type(len(tags))
    run_parts: list[np.ndarray] = []
    tag_parts: list[np.ndarray] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in SCALAR_COLUMNS[1:]}
    for positions, batch in placed:
        mapping = np.array([tag_code[t] for t in batch.tags], dtype=tag_type)
        tag_parts.append(mapping[batch.scalar_tag])
        run_parts.append(np.repeat(positions.astype(run_type), batch.sizes))
        for name, parts in columns.items():
            parts.append(getattr(batch, name))
        batch.release()
    sizes = np.concatenate([batch.sizes for _, batch in placed]) if placed else _EMPTY_INT
    inventory = InventoryCells.joined([batch.inventory for _, batch in placed])
    run_codes, tag_codes, step, wall, value = join_columns(
        [
            (run_parts, run_type),
            (tag_parts, tag_type),
            (columns["scalar_step"], np.int64),
            (columns["scalar_wall"], np.float64),
            (columns["scalar_value"], np.float64),
        ]
    )
    out = _Joined(
        tags=tags,
        run_codes=run_codes,
        tag_codes=tag_codes,
        step=step,
        wall=wall,
        value=value,
        inventory=inventory,
    )
    if (joined_order == np.arange(len(joined_order))).all():
        return out
    # Runs read out of order (batches mixing the walk's order): rows reordered, by stretches
    # of runs that follow each other in both orders.
    joined_at = np.argsort(joined_order)  # where each run sits in the joined columns
    run_starts, taken = segment_starts(sizes)[joined_at], sizes[joined_at]
    first = np.flatnonzero(np.diff(joined_at, prepend=-2) != 1)  # each stretch's first run
    starts = run_starts[first]
    stretch_rows = np.add.reduceat(taken, first) if len(first) else taken
    return out._replace(
        run_codes=np.repeat(np.arange(len(run_data), dtype=run_type), taken),
        tag_codes=gather_segments(out.tag_codes, starts, stretch_rows),
        step=gather_segments(out.step, starts, stretch_rows),
        wall=gather_segments(out.wall, starts, stretch_rows),
        value=gather_segments(out.value, starts, stretch_rows),
        inventory=out.inventory.take(joined_at),
    )


def histogram_statistics(row: HistogramRow) -> tuple[float, float, float]:
    """Mean, standard deviation and share of values at zero of one histogram."""
    limits, counts = row.bucket_limit, row.bucket
    num = row.num
    # No buckets, or limits and counts of different lengths (a damaged or hand-made histogram).
    if num <= 0 or not len(counts) or len(counts) != len(limits):
        return float("nan"), float("nan"), float("nan")
    if row.min == 0.0 and row.max == 0.0:
        return 0.0, 0.0, 1.0
    lefts = np.concatenate([[min(row.min, limits[0])], limits[:-1]])
    if not row.from_tensor and np.isfinite(row.sum) and np.isfinite(row.sum_squares):
        mean = row.sum / num
        var = max(row.sum_squares / num - mean * mean, 0.0)
    else:
        lo = np.maximum(lefts, row.min)
        hi = np.minimum(limits, row.max)
        centres = (lo + hi) / 2.0
        total = counts.sum()
        mean = float((centres * counts).sum() / total) if total else float("nan")
        var = float(((centres - mean) ** 2 * counts).sum() / total) if total else float("nan")
    at_zero = (lefts >= -_ZERO_EDGE) & (limits <= _ZERO_EDGE)
    zero_fraction = float(counts[at_zero].sum() / num)
    return float(mean), float(np.sqrt(var)), min(zero_fraction, 1.0)


def _histogram_frame(
    run_data: list[RunData], run_dtype: pd.CategoricalDtype, tag_dtype: pd.CategoricalDtype
) -> pd.DataFrame:
    """All runs' histogram columns as one frame: numeric columns concatenated, the statistics
    already computed by the parser, the buckets as views of each run's flat arrays."""
    parts: list[HistogramColumns] = []
    run_parts: list[np.ndarray] = []
    tag_parts: list[np.ndarray] = []
    limits: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    tag_code = {t: i for i, t in enumerate(tag_dtype.categories)}
    for i, rd in enumerate(run_data):
        h = rd.histograms
        if not len(h):
            continue
        mapping = np.array([tag_code[t] for t in rd.tags], dtype=np.int64)
        codes = mapping[h.tag]
        views = rd.bucket_views if rd.bucket_views is not None else bucket_views(h)
        rd.bucket_views = None
        if len(codes) > 1 and not (codes[1:] >= codes[:-1]).all():  # tag-name order
            order = np.argsort(codes, kind="stable")
            h, codes = h.take(order), codes[order]
            views = (views[0][order], views[1][order])
        parts.append(h)
        run_parts.append(np.full(len(h), i, dtype=np.int32))
        tag_parts.append(codes)
        limits.append(views[0])
        counts.append(views[1])

    def column(name: str, dtype: DTypeLike = np.float64) -> np.ndarray:
        return join_parts([getattr(h, name) for h in parts], dtype)

    def objects(arrays: list[np.ndarray]) -> np.ndarray:
        return join_parts(arrays, object)

    return pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(join_parts(run_parts, np.int32), dtype=run_dtype),
            "tag": pd.Categorical.from_codes(join_parts(tag_parts, np.int64), dtype=tag_dtype),
            "step": column("step", np.int64),
            "wall_time": column("wall_time"),
            "min": column("min"),
            "max": column("max"),
            "num": column("num"),
            "sum": column("sum"),
            "sum_squares": column("sum_squares"),
            "mean": column("mean"),
            "std": column("std"),
            "zero_fraction": column("zero_fraction"),
            "bucket_limit": objects(limits),
            "bucket": objects(counts),
        },
        columns=HISTOGRAM_COLUMNS,
    )


def bucket_views(h: HistogramColumns) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``bucket_limit`` and ``bucket`` (views of ``h``'s flat arrays) as object
    arrays, the cells of the histogram frame's two bucket columns."""
    out = []
    for views in (h.bucket_limits(), h.buckets()):
        cells = np.empty(len(views), dtype=object)
        cells[:] = views
        out.append(cells)
    return out[0], out[1]


_NO_HISTOGRAMS = HistogramColumns.empty()
