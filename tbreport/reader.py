"""``tbreport.read``: every event file of a LOGDIR into DataFrames, in parallel, without loss.

Files are framed independently and parsed in batches of consecutive files (small files decode
together; files over 16 MB are streamed in chunks), in worker processes that assemble whole runs
when there is enough to do. Each run is assembled in file-name order as TensorBoard does: plugin
names are remembered per tag across the run's files, ``SessionLog.START`` events purge the points
they supersede, duplicate steps are kept and reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from tbreport.discovery import EventFileRef, RunRef, discover_runs, printable_name
from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.parsing import (
    FileData,
    HistogramColumns,
    HistogramRow,
    parse_event_files,
    parse_event_stream,
)
from tbreport.safe_regex import compile_pattern

SCALAR_COLUMNS = ["run", "tag", "step", "wall_time", "value"]
HISTOGRAM_COLUMNS = [
    "run",
    "tag",
    "step",
    "wall_time",
    "min",
    "max",
    "num",
    "sum",
    "sum_squares",
    "mean",
    "std",
    "zero_fraction",
    "bucket_limit",
    "bucket",
]
TEXT_COLUMNS = ["run", "tag", "step", "wall_time", "text"]


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
_ZERO_EDGE = 1e-10

Engine = Literal["fast", "accumulator"]


@dataclass
class RunData:
    """One run's assembled rows, before runs are combined into categorical frames."""

    ref: RunRef
    tags: list[str]
    scalar_tag: np.ndarray
    scalar_step: np.ndarray
    scalar_wall: np.ndarray
    scalar_value: np.ndarray
    # ``tag`` holds indices into ``tags``; rows in tag-name order, then in written order.
    histograms: HistogramColumns
    texts: list[tuple]
    hparam_contents: list[tuple[str, bytes]]
    files: int
    bytes: int
    purged: int = 0
    duplicate_steps: int = 0
    warnings: list[ReadWarning] = field(default_factory=list)


@dataclass
class ReadResult:
    """Everything read from a LOGDIR. See ``docs/architecture.md`` for the column contracts.

    Attributes:
        logdir: The directory (or file) that was read.
        scalars: ``run, tag, step, wall_time, value``; one row per point, nothing downsampled.
        histograms: per run, tag and step: summary statistics and the buckets.
        text: text summaries.
        hparams: one row per logical run, one column per hyperparameter.
        hparam_records: long form of every hparams source.
        runs: inventory, one row per run directory, with logical-run grouping facts.
        warnings: everything the reader could not take at face value.
    """

    logdir: str
    scalars: pd.DataFrame
    histograms: pd.DataFrame
    text: pd.DataFrame
    hparams: pd.DataFrame
    hparam_records: pd.DataFrame
    runs: pd.DataFrame
    warnings: list[ReadWarning]

    def logical_scalars(self) -> pd.DataFrame:
        """Scalars with sub-runs folded into their logical run (see `tbreport.grouping`).

        Computed once and cached (diagnosis and reports both use it); treat it as read-only.
        """
        return self._logical("scalars")

    def logical_histograms(self) -> pd.DataFrame:
        """Histograms with sub-runs folded into their logical run; cached, read-only."""
        return self._logical("histograms")

    def _logical(self, name: str) -> pd.DataFrame:
        from tbreport.grouping import fold_into_logical_runs

        cache = self.__dict__.setdefault("_logical_cache", {})
        if name not in cache:
            cache[name] = fold_into_logical_runs(getattr(self, name), self.runs)
        return cache[name]

    def select(self, *, runs=None, tags=None) -> ReadResult:
        """Only some runs and tags: regular expressions (case-insensitive) or lists of names.

        See :func:`tbreport.selection.select`.
        """
        from tbreport.selection import select

        return select(self, runs=runs, tags=tags)

    def scalars_wide(self) -> pd.DataFrame:
        """Scalars with one row per run and step and one column per tag (nothing averaged:
        several points at one step go to further rows numbered by ``occurrence``)."""
        from tbreport.selection import wide_scalars

        return wide_scalars(self.scalars)

    def __repr__(self) -> str:
        return (
            f"ReadResult(logdir={self.logdir!r}, runs={len(self.runs)}, "
            f"scalars={len(self.scalars)}, histograms={len(self.histograms)}, "
            f"warnings={len(self.warnings)})"
        )


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
        from tbreport.accumulator import read_runs_with_accumulator

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


def _compile_tags(tags: str | Sequence[str] | None) -> re.Pattern[str] | None:
    if tags is None:
        return None
    pattern = tags if isinstance(tags, str) else "|".join(f"(?:{t})" for t in tags)
    try:
        # Tags are untrusted: RE2 (linear time) where it can, else a time limit per match.
        return compile_pattern(pattern)
    except re.error as exc:
        raise InputError(f"invalid tag pattern {pattern!r} (--tags / tags=): {exc}") from exc


def _parse_file(ref: EventFileRef, tag_filter: re.Pattern[str] | None) -> FileData:
    return _parse_files([ref], tag_filter)[0]


def _parse_files(refs: list[EventFileRef], tag_filter: re.Pattern[str] | None) -> list[FileData]:
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
    return out  # type: ignore[return-value]


# Files larger than this are parsed in chunks of this size (memory stays near the parsed columns,
# not the file plus its columns).
_STREAM_BYTES = 16 << 20


def _parse_streaming(ref: EventFileRef, tag_filter: re.Pattern[str] | None) -> FileData | None:
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
    tag_filter: re.Pattern[str] | None = None,
    parse: Callable[[EventFileRef, re.Pattern[str] | None], FileData] | None = None,
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
        # Assemble the runs of each batch as soon as their files are parsed, so parsed files do
        # not pile up.
        out: list[RunData] = []
        parsed: list[FileData] = []
        position = 0
        for batch in _batches([r.size for r in refs], _BATCH_BYTES):
            parsed.extend(_parse_batch([refs[i] for i in batch], tag_filter, parse))
            ready: list[RunRef] = []
            files: list[list[FileData]] = []
            used = 0
            while position < len(runs) and used + len(runs[position].files) <= len(parsed):
                count = len(runs[position].files)
                ready.append(runs[position])
                files.append(parsed[used : used + count])
                used += count
                position += 1
            del parsed[:used]
            out.extend(assemble_runs(ready, files))
        out.extend(assemble_runs(runs[position:], [[] for _ in runs[position:]]))
    else:
        out = _read_in_pool(runs, workers=workers, tag_filter=tag_filter, parse=parse)
    _return_freed_memory()
    return out


def _return_freed_memory() -> None:
    """Give the heap that parsing freed back to the system before the frames are built.

    Parsing many files leaves the runs' columns scattered among freed temporaries; glibc keeps
    that memory, and the frames are then allocated on top of it (a higher peak for nothing).
    ``malloc_trim`` returns the free pages, in about a millisecond; elsewhere this does nothing.
    """
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


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
    tag_filter: re.Pattern[str] | None,
    parse: Callable[[EventFileRef, re.Pattern[str] | None], FileData] | None,
) -> list[FileData]:
    if parse is not None:
        return [parse(ref, tag_filter) for ref in refs]
    return _parse_files(refs, tag_filter)


def _read_run_batch(
    runs: list[RunRef],
    tag_filter: re.Pattern[str] | None,
    parse: Callable[[EventFileRef, re.Pattern[str] | None], FileData] | None,
    spill: int | None = None,
) -> _RunBatch:
    """Parse and assemble whole runs (in a worker); histogram buckets go to the file ``spill``
    (a descriptor inherited from the reading process) when there is one."""
    parsed = _parse_batch([ref for run in runs for ref in run.files], tag_filter, parse)
    files = []
    for run in runs:
        files.append(parsed[: len(run.files)])
        del parsed[: len(run.files)]
    batch = _RunBatch(assemble_runs(runs, files))
    if spill is not None:
        batch.spill(spill)
    return batch


class _RunBatch:
    """Assembled runs sent from a worker: their columns concatenated, so that pickling costs a
    few arrays per batch rather than objects per run (the run references are not sent back)."""

    _COLUMNS = ("scalar_tag", "scalar_step", "scalar_wall", "scalar_value")

    def __init__(self, runs: list[RunData]) -> None:
        self.runs = runs
        # (run position, limits offset, limits count, counts offset, counts count) of the runs
        # whose buckets were written to the spill file rather than pickled.
        self.spilled: list[tuple[int, int, int, int, int]] = []

    def spill(self, fd: int) -> None:
        """Write each run's histogram buckets to the shared-memory file ``fd`` (space reserved
        under a lock at its end, written without it), leaving only the per-row columns to
        pickle: the reading process maps the file instead of unpickling hundreds of megabytes
        from a pipe. A run whose buckets cannot be written (no space) is pickled as usual."""
        import fcntl

        for k, rd in enumerate(self.runs):
            h = rd.histograms
            if not len(h):
                continue
            h = h.compacted()
            size = h.limits.nbytes + h.counts.nbytes
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                try:
                    start = os.fstat(fd).st_size
                    os.ftruncate(fd, start + size)
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN)
                _write_at(fd, h.limits, start)
                _write_at(fd, h.counts, start + h.limits.nbytes)
            except OSError:
                continue
            rd.histograms = h
            self.spilled.append((k, start, len(h.limits), start + h.limits.nbytes, len(h.counts)))

    def __getstate__(self) -> dict:
        runs = self.runs
        spilled = {k for k, *_ in self.spilled}
        return {
            "spilled": self.spilled,
            "sizes": np.array([len(rd.scalar_tag) for rd in runs], dtype=np.int64),
            "columns": {
                name: _concat([getattr(rd, name) for rd in runs], getattr(runs[0], name).dtype)
                if runs
                else np.zeros(0)
                for name in self._COLUMNS
            },
            # Each run's histogram columns (only the buckets they use); None for most runs; only
            # the per-row columns of those whose buckets are in the spill file.
            "histograms": [
                (
                    {name: getattr(rd.histograms, name) for name in HistogramColumns._ROW_FIELDS}
                    if k in spilled
                    else rd.histograms
                )
                if len(rd.histograms)
                else None
                for k, rd in enumerate(runs)
            ],
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

    def __setstate__(self, state: dict) -> None:
        self.spilled = state["spilled"]
        bounds = np.concatenate(([0], np.cumsum(state["sizes"]))).tolist()
        runs = []
        for i, (tags, texts, hparams, files, size, purged, dups, warnings) in enumerate(
            state["rest"]
        ):
            a, b = bounds[i], bounds[i + 1]
            columns = {name: state["columns"][name][a:b] for name in self._COLUMNS}
            histograms = state["histograms"][i]
            if isinstance(histograms, dict):  # buckets in the spill file, attached later
                histograms = HistogramColumns(
                    **histograms, limits=_EMPTY_FLOAT, counts=_EMPTY_FLOAT
                )
            runs.append(
                RunData(
                    ref=None,  # type: ignore[arg-type]  # set by the reading process
                    tags=tags,
                    histograms=histograms if histograms is not None else _NO_HISTOGRAMS,
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
        self.runs = runs


def _write_at(fd: int, values: np.ndarray, offset: int) -> None:
    """All of ``values``' bytes at ``offset`` of ``fd`` (OSError when they do not fit)."""
    data = memoryview(np.ascontiguousarray(values)).cast("B")
    while len(data):
        written = os.pwrite(fd, data, offset)
        if written <= 0:
            raise OSError("nothing written")
        data, offset = data[written:], offset + written


def _spill_file() -> tuple[int, str] | None:
    """A new empty file in shared memory (``/dev/shm``) for the workers' histogram buckets, or
    None where there is none."""
    if not os.path.isdir("/dev/shm"):
        return None
    try:
        import fcntl  # noqa: F401 - the workers lock the file
        import tempfile

        return tempfile.mkstemp(prefix="tbreport-", dir="/dev/shm")
    except (ImportError, OSError):
        return None


def _attach_spilled(fd: int, spilled: list[tuple[RunData, tuple[int, int, int, int]]]) -> None:
    """Give the runs whose buckets are in the spill file ``fd`` views of a private (copy on
    write) mapping of it: no copy, and writable arrays that no other process sees change."""
    import mmap

    size = os.fstat(fd).st_size
    try:
        flat = np.frombuffer(
            mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE),
            dtype=np.float64,
        )
    except (OSError, ValueError):  # no mapping allowed: read the file into memory
        raw = bytearray(size)
        view = memoryview(raw)
        done = 0
        while done < size:
            got = os.preadv(fd, [view[done:]], done)
            if got <= 0:
                raise OSError("spill file shorter than written") from None
            done += got
        flat = np.frombuffer(raw, dtype=np.float64)
    for rd, (limits_at, limits_count, counts_at, counts_count) in spilled:
        h = rd.histograms
        h.limits = flat[limits_at // 8 : limits_at // 8 + limits_count]
        h.counts = flat[counts_at // 8 : counts_at // 8 + counts_count]


def _read_in_pool(
    runs: list[RunRef],
    *,
    workers: int,
    tag_filter: re.Pattern[str] | None,
    parse: Callable[[EventFileRef, re.Pattern[str] | None], FileData] | None,
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
    # Forked workers write histogram buckets to a file in shared memory that they inherit.
    spill_file = _spill_file() if method == "fork" else None
    spill = spill_file[0] if spill_file is not None else None
    spilled: list[tuple[RunData, tuple[int, int, int, int]]] = []

    def run_pass(todo: list[list[int]], size: int) -> list[list[int]]:
        lost: list[list[int]] = []
        with ProcessPoolExecutor(max_workers=size, mp_context=context) as pool:
            futures = {}
            for k, task in enumerate(todo):
                try:
                    futures[k] = pool.submit(
                        _read_run_batch, [runs[i] for i in task], tag_filter, parse, spill
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
                for position, *where in batch.spilled:
                    spilled.append((batch.runs[position], tuple(where)))
        return lost

    try:
        # Big batches first so that one large file does not end up last on a single worker.
        todo = sorted(tasks, key=lambda task: -sum(sizes[i] for i in task))
        todo = run_pass(todo, min(workers, len(todo)))
        if todo:  # the whole pool went down with one worker: once more, in fresh workers
            todo = run_pass(todo, min(workers, len(todo)))
        if spilled:
            _attach_spilled(spill, spilled)  # type: ignore[arg-type]
    finally:
        if spill_file is not None:
            os.close(spill_file[0])
            os.unlink(spill_file[1])
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
    context,
    tag_filter: re.Pattern[str] | None,
    parse: Callable[[EventFileRef, re.Pattern[str] | None], FileData] | None,
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
    base = 0
    bases = []
    for data in files:
        bases.append(base)
        base += max(data.n_records, 1)
        warnings.extend(data.warnings)
        for tag, (_, plugin) in sorted(data.metadata.items(), key=lambda item: item[1][0]):
            plugin_of.setdefault(tag, plugin)

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
    texts: list[tuple] = []
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
        hist = data.histograms
        if len(hist):
            if hist.from_tensor.any():  # TF2 tensors are histograms only under that plugin
                plugin_ok = np.array(
                    [plugin_of.get(t) == "histograms" for t in data.tags], dtype=bool
                )
                kept = ~hist.from_tensor | plugin_ok[hist.tag]
                hist = hist.take(kept) if not kept.all() else hist
            if len(hist):
                hist_parts.append(
                    hist.take(slice(None), seq=hist.seq + file_base, tag=mapping[hist.tag])
                )
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

    # One column at a time, releasing its parts (a single part is used as it is).
    seq = _join(seq_parts, np.int64)
    tag = _join(tag_parts, np.int32)
    step = _join(step_parts, np.int64)
    wall = _join(wall_parts, np.float64)
    value = _join(value_parts, np.float64)
    histograms = HistogramColumns.concat(hist_parts)
    del hist_parts
    hist_seq, hist_tag, hist_step = histograms.seq, histograms.tag, histograms.step
    text_seq = np.array([t[0] for t in texts], dtype=np.int64)
    text_tag = np.array([t[1] for t in texts], dtype=np.int32)
    text_step = np.array([t[2] for t in texts], dtype=np.int64)

    purge_ops = _purge_operations(starts, version_marks, legacy)
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
    duplicates, warning = _duplicate_steps(run, tags, tag, step)
    if warning is not None:
        warnings.append(warning)
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
    tag = _join([d.scalar_tag for d in files], np.int32)
    step = _join([d.scalar_step for d in files], np.int64)
    wall = _join([d.scalar_wall for d in files], np.float64)
    value = _join([d.scalar_value for d in files], np.float64)
    for d in files:  # taken over, as ``assemble_run(..., release=True)`` does
        d.scalar_seq = d.scalar_tag = d.scalar_step = _EMPTY_INT
        d.scalar_wall = d.scalar_value = _EMPTY_FLOAT
        d.scalar_is_tensor = np.zeros(0, bool)
    # Rows are in (run, written) order; a stable sort by (run, tag name) groups each run's rows
    # by tag in name order, as assemble_run does run by run.
    names = sorted({t for d in files for t in d.tags})
    rank = {t: i for i, t in enumerate(names)}
    tag_rank = np.array([rank[t] for d in files for t in d.tags], dtype=np.int64)
    tag_base = _starts(np.array([len(d.tags) for d in files], dtype=np.int64))
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


def _starts(sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], out=out[1:])
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


def _join(parts: list[np.ndarray], dtype) -> np.ndarray:
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
    from tbreport.grouping import build_hparams, build_inventory

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
    # Codes for a group of runs at once (many small runs), a group bounded in rows so that the
    # temporaries stay small next to the columns.
    group: list[int] = []
    rows = 0
    for i, rd in enumerate(run_data + [None]):  # type: ignore[list-item]
        size = len(rd.scalar_tag) if rd is not None else 0
        if group and (rd is None or rows + size > _CODE_GROUP_ROWS):
            run_codes, tag_codes = _scalar_codes(
                run_data, group, tag_code, run_code_type, tag_code_type
            )
            scalar_parts_run.append(run_codes)
            scalar_parts_tag.append(tag_codes)
            group, rows = [], 0
        group.append(i)
        rows += size

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


_CODE_GROUP_ROWS = 1 << 16


def _scalar_codes(
    run_data: list[RunData], group: list[int], tag_code: dict[str, int], run_type, tag_type
) -> tuple[np.ndarray, np.ndarray]:
    """Run and tag codes of the scalar rows of runs ``group`` (releasing their tag columns)."""
    if len(group) == 1:  # a large run: its codes straight from its own columns
        rd = run_data[group[0]]
        mapping = np.array([tag_code[t] for t in rd.tags], dtype=tag_type)
        tag_codes = mapping[rd.scalar_tag] if len(rd.tags) else rd.scalar_tag.astype(tag_type)
        run_codes = np.full(len(rd.scalar_tag), group[0], dtype=run_type)
        rd.scalar_tag = np.zeros(0, np.int32)
        return run_codes, tag_codes
    sizes = np.array([len(run_data[i].scalar_tag) for i in group], dtype=np.int64)
    run_codes = np.repeat(np.asarray(group, dtype=run_type), sizes)
    mapping = np.array([tag_code[t] for i in group for t in run_data[i].tags], dtype=tag_type)
    tag_base = np.repeat(_starts(np.array([len(run_data[i].tags) for i in group])), sizes)
    local = _join([run_data[i].scalar_tag for i in group], np.int64)
    for i in group:
        run_data[i].scalar_tag = np.zeros(0, np.int32)
    tag_codes = mapping[tag_base + local] if len(local) else local.astype(tag_type)
    return run_codes, tag_codes


def _take_column(run_data: list[RunData], name: str, dtype) -> np.ndarray:
    """Concatenate one column over runs and release it from them (they are not used again)."""
    parts = [getattr(rd, name) for rd in run_data]
    for rd in run_data:
        setattr(rd, name, np.zeros(0, dtype))
    return _join(parts, dtype)


def _code_type(categories: int):
    """The integer type pandas keeps for the codes of that many categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


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


def _histogram_frame(run_data: list[RunData], run_dtype, tag_dtype) -> pd.DataFrame:
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
        if len(codes) > 1 and not (codes[1:] >= codes[:-1]).all():  # tag-name order
            order = np.argsort(codes, kind="stable")
            h, codes = h.take(order), codes[order]
        parts.append(h)
        run_parts.append(np.full(len(h), i, dtype=np.int32))
        tag_parts.append(codes)
        limits.extend(h.bucket_limits())
        counts.extend(h.buckets())
    n = len(limits)

    def column(name: str, dtype=np.float64) -> np.ndarray:
        return _concat([getattr(h, name) for h in parts], dtype)

    def objects(arrays: list[np.ndarray]) -> np.ndarray:
        out = np.empty(n, dtype=object)
        out[:] = arrays
        return out

    return pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(_concat(run_parts, np.int32), dtype=run_dtype),
            "tag": pd.Categorical.from_codes(_concat(tag_parts, np.int64), dtype=tag_dtype),
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


_NO_HISTOGRAMS = HistogramColumns.empty()
