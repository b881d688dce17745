"""``tbreport.read``: every event file of a LOGDIR into DataFrames, in parallel, without loss.

Files are framed independently and parsed in batches of consecutive files (small files decode
together; files over 16 MB are streamed in chunks), in worker processes that assemble whole runs
(`tbreport.reading.assemble`) when there is enough to do; the reading process then combines the
runs into a `ReadResult`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from numpy.typing import DTypeLike

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.accumulator import read_runs_with_accumulator
from tbreport.reading.assemble import assemble_run, combine
from tbreport.reading.discovery import EventFileRef, RunRef, discover_runs, printable_name
from tbreport.reading.parsing import (
    FileData,
    _pack_histograms,
    _unpack_histograms,
    parse_event_files,
    parse_event_stream,
)
from tbreport.reading.result import ReadResult
from tbreport.reading.rundata import RunData
from tbreport.safe_regex import Pattern, compile_pattern

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext


#: Event files larger than this are skipped with a warning: a damaged file is read whole into
#: memory, and no training run writes one this large (a sparse file or a disk image in LOGDIR).
#: ``TBREPORT_MAX_FILE_BYTES`` overrides it.
def _max_file_bytes() -> int:
    try:
        return int(os.environ.get("TBREPORT_MAX_FILE_BYTES", 4 << 30))
    except ValueError:
        return 4 << 30


MAX_FILE_BYTES = _max_file_bytes()
# Spawning workers costs more than parsing a few megabytes in-process.
_PARALLEL_MIN_BYTES = 8 << 20

Engine = Literal["fast", "accumulator"]


def read(
    logdir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    tags: str | Sequence[str] | None = None,
    engine: Engine = "fast",
) -> ReadResult:
    """Read every run under ``logdir``.

    Args:
        logdir: A directory of runs (TensorBoard's ``--logdir``) or a single event file.
        jobs: Worker processes for parsing files; ``None`` uses every core when there is enough
            data to make it worthwhile, ``1`` parses in this process.
        tags: Keep only scalar, histogram and text tags matching this regular expression (or any
            of these expressions). Hyperparameters are always read.
        engine: ``"fast"`` (default) or ``"accumulator"``, TensorBoard's own ``EventAccumulator``
            with nothing downsampled, kept as the reference.

    Returns:
        A `ReadResult` with DataFrames and warnings.

    Raises:
        InputError: ``logdir`` does not exist, cannot be read, or holds no event files.
    """
    tag_filter = _compile_tags(tags)
    runs, warnings = discover_runs(logdir)
    if not runs:
        detail = f" ({len(warnings)} files skipped: {warnings[0]})" if warnings else ""
        raise InputError(f"no TensorBoard event files found under {logdir}{detail}")
    if engine == "accumulator":
        run_data = read_runs_with_accumulator(runs, tag_filter=tag_filter)
    elif engine == "fast":
        run_data = read_runs(runs, jobs=jobs, tag_filter=tag_filter)
    else:
        raise InputError(f"unknown engine {engine!r}; use 'fast' or 'accumulator'")
    result = combine(printable_name(str(logdir)), run_data, discovery_warnings=warnings)
    # Exit 2 only when nothing at all could be read, and say why.
    nothing_read = result.scalars.empty and result.histograms.empty and result.hparam_records.empty
    damaged = all(not rd.tags for rd in run_data) and any(rd.warnings for rd in run_data)
    if nothing_read and damaged:
        problems = "; ".join(str(w) for w in result.warnings[:3])
        raise InputError(f"nothing readable under {logdir}: {problems}")
    return result


def _compile_tags(tags: str | Sequence[str] | None) -> Pattern | None:
    if tags is None:
        return None
    pattern = tags if isinstance(tags, str) else "|".join(f"(?:{t})" for t in tags)
    try:
        # Tags are untrusted: RE2 (linear time) where it can, else a time limit per match.
        return compile_pattern(pattern)
    except re.error as exc:
        raise InputError(f"invalid tag pattern {pattern!r} (--tags / tags=): {exc}") from exc


def _parse_file(ref: EventFileRef, tag_filter: Pattern | None) -> FileData:
    return _parse_files([ref], tag_filter)[0]


def _parse_files(refs: list[EventFileRef], tag_filter: Pattern | None) -> list[FileData]:
    """Read and parse ``refs``; the records of all of them are decoded together."""
    out: list[FileData | None] = []
    contents: list[tuple[bytes, str]] = []
    slots: list[int] = []
    for ref in refs:
        streamed = _parse_streaming(ref, tag_filter) if ref.size > _STREAM_BYTES else None
        if streamed is not None:
            out.append(streamed)
            continue
        read = _read_file(ref)
        if isinstance(read, FileData):
            out.append(read)
        else:
            slots.append(len(out))
            out.append(None)
            contents.append((read, ref.display))
    try:
        parsed = parse_event_files(contents, tag_filter=tag_filter)
    except MemoryError:
        if len(contents) == 1:
            parsed = [_memory_warning(refs[slots[0]])]
        else:  # one at a time, so that only the file too large for memory is lost
            del contents
            return [_parse_file(ref, tag_filter) for ref in refs]
    for slot, data in zip(slots, parsed, strict=True):
        out[slot] = data
    return cast("list[FileData]", out)  # the None slots are filled above


# Files larger than this are parsed in chunks of this size (memory stays near the parsed columns,
# not the file plus its columns).
_STREAM_BYTES = 16 << 20


def _parse_streaming(ref: EventFileRef, tag_filter: Pattern | None) -> FileData | None:
    """A large file parsed chunk by chunk; None when it must be read whole (damage, an old
    file format, too large, unreadable: the whole-file path reports it)."""
    if ref.size > MAX_FILE_BYTES:
        return None
    try:
        with open(ref.path, "rb") as handle:
            return parse_event_stream(
                handle,
                path=ref.display,
                tag_filter=tag_filter,
                chunk_bytes=_STREAM_BYTES,
                size_hint=ref.size,
            )
    except (OSError, MemoryError):
        return None


def _memory_warning(ref: EventFileRef) -> FileData:
    data = FileData(path=ref.display)
    data.warnings.append(
        ReadWarning(
            kind="unreadable",
            path=ref.display,
            message=f"not enough memory to read this {ref.size:,}-byte file; skipped",
        )
    )
    return data


def _read_file(ref: EventFileRef) -> bytes | FileData:
    """The bytes of one file, or a `FileData` holding the warning that says why not."""
    if ref.size > MAX_FILE_BYTES:
        data = FileData(path=ref.display)
        data.warnings.append(too_large_warning(ref.display, ref.size))
        return data
    try:
        with open(ref.path, "rb") as handle:
            buf = handle.read()
        if len(buf) > MAX_FILE_BYTES:  # grew since it was listed
            data = FileData(path=ref.display)
            data.warnings.append(too_large_warning(ref.display, len(buf)))
            return data
        return buf
    except MemoryError:
        return _memory_warning(ref)
    except OSError as exc:
        data = FileData(path=ref.display)
        reason = exc.strerror or type(exc).__name__
        data.warnings.append(
            ReadWarning(kind="unreadable", path=ref.display, message=f"cannot read: {reason}")
        )
        return data


def too_large_warning(path: str, size: int) -> ReadWarning:
    """The warning for an event file over :data:`MAX_FILE_BYTES`."""
    return ReadWarning(
        kind="file-too-large",
        path=path,
        message=(
            f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} read whole into memory "
            "(TBREPORT_MAX_FILE_BYTES); skipped"
        ),
    )


def _worker_count(jobs: int | None, total_bytes: int, n_files: int) -> int:
    if jobs is not None:
        if jobs < 1:
            raise InputError(f"jobs must be at least 1 (got {jobs})")
        return min(jobs, max(n_files, 1))
    if total_bytes < _PARALLEL_MIN_BYTES or n_files < 2:
        return 1
    return min(os.cpu_count() or 1, n_files)


def read_runs(
    runs: list[RunRef],
    *,
    jobs: int | None = None,
    tag_filter: Pattern | None = None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None = None,
) -> list[RunData]:
    """Parse the files of ``runs`` (in parallel when worthwhile) and assemble each run.

    Files are parsed in batches of consecutive files (many small files decode together); workers
    are given batches of whole runs, assemble them and send back compact arrays, so the reading
    process only combines. ``parse`` replaces the parsing of one file (tests); by default a
    batch is decoded as a whole.
    """
    refs = [ref for run in runs for ref in run.files]
    workers = _worker_count(jobs, sum(r.size for r in refs), len(refs))
    if workers <= 1:
        # Assemble each run as soon as its files are parsed, so parsed files do not pile up.
        out = []
        parsed: list[FileData] = []
        pending = iter(_batches([r.size for r in refs], _BATCH_BYTES))
        for run in runs:
            while len(parsed) < len(run.files):
                parsed.extend(_parse_batch([refs[i] for i in next(pending)], tag_filter, parse))
            out.append(assemble_run(run, parsed[: len(run.files)], release=True))
            del parsed[: len(run.files)]
        return out
    return _read_in_pool(runs, workers=workers, tag_filter=tag_filter, parse=parse)


# A batch of files parsed together holds at most this many bytes (bounds the joined buffer) ...
_BATCH_BYTES = 4 << 20
# ... and at most this many files.
_BATCH_FILES = 4096


def _batches(sizes: list[int], limit: int, counts: list[int] | None = None) -> list[list[int]]:
    """Consecutive indices grouped into batches of at most ``limit`` bytes (a larger item alone)
    and ``_BATCH_FILES`` files (``counts``: files per item, default one)."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = files = 0
    for i, item in enumerate(sizes):
        n = counts[i] if counts is not None else 1
        if current and (size + item > limit or files + n > _BATCH_FILES):
            batches.append(current)
            current, size, files = [], 0, 0
        current.append(i)
        size += item
        files += n
    if current:
        batches.append(current)
    return batches


def _parse_batch(
    refs: list[EventFileRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> list[FileData]:
    if parse is not None:
        return [parse(ref, tag_filter) for ref in refs]
    return _parse_files(refs, tag_filter)


def _read_run_batch(
    runs: list[RunRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> _RunBatch:
    """Parse and assemble whole runs (in a worker)."""
    parsed = _parse_batch([ref for run in runs for ref in run.files], tag_filter, parse)
    out = []
    for run in runs:
        out.append(assemble_run(run, parsed[: len(run.files)], release=True))
        del parsed[: len(run.files)]
    return _RunBatch(out)


class _RunBatch:
    """Assembled runs sent from a worker: their columns concatenated, so that pickling costs a
    few arrays per batch rather than objects per run (the run references are not sent back)."""

    _COLUMNS = ("scalar_tag", "scalar_step", "scalar_wall", "scalar_value")

    def __init__(self, runs: list[RunData]) -> None:
        self.runs = runs

    def __getstate__(self) -> dict[str, Any]:
        runs = self.runs
        return {
            "sizes": np.array([len(rd.scalar_tag) for rd in runs], dtype=np.int64),
            "columns": {
                name: _concat([getattr(rd, name) for rd in runs], getattr(runs[0], name).dtype)
                if runs
                else np.zeros(0)
                for name in self._COLUMNS
            },
            "hist_counts": [len(rd.histograms) for rd in runs],
            "hist_tags": [t for rd in runs for t, _ in rd.histograms],
            "hist_rows": _pack_histograms([h for rd in runs for _, h in rd.histograms]),
            "rest": [
                (
                    rd.tags,
                    rd.texts,
                    rd.hparam_contents,
                    rd.files,
                    rd.bytes,
                    rd.purged,
                    rd.duplicate_steps,
                    rd.warnings,
                )
                for rd in runs
            ],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        bounds = np.concatenate(([0], np.cumsum(state["sizes"]))).tolist()
        rows = _unpack_histograms(state["hist_rows"])
        hist_tags = state["hist_tags"]
        runs = []
        position = 0
        for i, (tags, texts, hparams, files, size, purged, dups, warnings) in enumerate(
            state["rest"]
        ):
            a, b = bounds[i], bounds[i + 1]
            count = state["hist_counts"][i]
            columns = {name: state["columns"][name][a:b] for name in self._COLUMNS}
            runs.append(
                RunData(
                    ref=None,  # type: ignore[arg-type]  # set by the reading process
                    tags=tags,
                    histograms=list(
                        zip(
                            hist_tags[position : position + count],
                            rows[position : position + count],
                            strict=True,
                        )
                    ),
                    texts=texts,
                    hparam_contents=hparams,
                    files=files,
                    bytes=size,
                    purged=purged,
                    duplicate_steps=dups,
                    warnings=warnings,
                    **columns,
                )
            )
            position += count
        self.runs = runs


def _read_in_pool(
    runs: list[RunRef],
    *,
    workers: int,
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> list[RunData]:
    """Read batches of runs in worker processes; a worker killed by the OS costs a retry, not
    the read.

    Batches whose worker died are read again once in fresh workers; the files of batches lost a
    second time are then parsed one per process (to tell the file that kills from the others)
    and those runs assembled here, a file lost then being reported as unreadable.
    """
    import multiprocessing

    # fork keeps start-up cheap; the parent holds no threads at this point.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    sizes = [sum(f.size for f in run.files) for run in runs]
    # A few batches per worker, so that the work evens out.
    limit = max(1 << 16, min(_BATCH_BYTES, sum(sizes) // (4 * workers)))
    tasks = _batches(sizes, limit, [len(run.files) for run in runs])
    results: dict[int, RunData] = {}

    def run_pass(todo: list[list[int]], size: int) -> list[list[int]]:
        lost: list[list[int]] = []
        with ProcessPoolExecutor(max_workers=size, mp_context=context) as pool:
            futures = {}
            for k, task in enumerate(todo):
                try:
                    futures[k] = pool.submit(
                        _read_run_batch, [runs[i] for i in task], tag_filter, parse
                    )
                except BrokenProcessPool:  # a worker died while we were still submitting
                    lost.append(task)
            for k, future in futures.items():
                try:
                    batch = future.result()
                except BrokenProcessPool:
                    lost.append(todo[k])
                    continue
                for i, rd in zip(todo[k], batch.runs, strict=True):
                    rd.ref = runs[i]
                    results[i] = rd
        return lost

    # Big batches first so that one large file does not end up last on a single worker.
    todo = sorted(tasks, key=lambda task: -sum(sizes[i] for i in task))
    todo = run_pass(todo, min(workers, len(todo)))
    if todo:  # the whole pool went down with one worker: once more, in fresh workers
        todo = run_pass(todo, min(workers, len(todo)))
    lost_runs = [i for task in todo for i in task]
    if lost_runs:  # lost again: one file per process
        refs = [ref for i in lost_runs for ref in runs[i].files]
        parsed = _parse_one_per_process(refs, context, tag_filter, parse)
        position = 0
        for i in lost_runs:
            count = len(runs[i].files)
            files = [parsed[k] for k in range(position, position + count)]
            position += count
            results[i] = assemble_run(runs[i], files, release=True)
    return [results[i] for i in range(len(runs))]


def _parse_one_per_process(
    refs: list[EventFileRef],
    context: BaseContext,
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> list[FileData]:
    """Each file in a process of its own; a file whose process dies is reported unreadable."""
    out = []
    for ref in refs:
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                out.append(pool.submit(_parse_batch, [ref], tag_filter, parse).result()[0])
        except BrokenProcessPool:
            data = FileData(path=ref.display)
            data.warnings.append(
                ReadWarning(
                    kind="unreadable",
                    path=ref.display,
                    message="the worker process reading this file died each time (killed by "
                    "the OS, out of memory?); skipped",
                )
            )
            out.append(data)
    return out


def _concat(parts: list[np.ndarray], dtype: DTypeLike) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
