"""``tbreport.read``: every event file of a LOGDIR into DataFrames, in parallel, without loss.

Files are framed independently and parsed in batches of consecutive files (small files decode
together; files over 16 MB are streamed in chunks), in worker processes that assemble whole runs
(`tbreport.reading.assemble`) when there is enough to do; the reading process then combines the
runs into a `ReadResult`.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from numpy.typing import DTypeLike

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.accumulator import read_runs_with_accumulator
from tbreport.reading.assemble import (
    _EMPTY_FLOAT,
    _NO_HISTOGRAMS,
    assemble_run,
    assemble_runs,
    combine,
)
from tbreport.reading.discovery import EventFileRef, RunRef, discover_runs, printable_name
from tbreport.reading.grouping import take_facts
from tbreport.reading.parsing import (
    FileData,
    HistogramColumns,
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
    if engine not in ("fast", "accumulator"):
        raise InputError(f"unknown engine {engine!r}; use 'fast' or 'accumulator'")
    if engine == "fast":
        runs, warnings, run_data = _walk_and_read(logdir, jobs=jobs, tag_filter=tag_filter)
    else:
        runs, warnings = discover_runs(logdir)
        run_data = read_runs_with_accumulator(runs, tag_filter=tag_filter) if runs else []
    if not runs:
        detail = f" ({len(warnings)} files skipped: {warnings[0]})" if warnings else ""
        raise InputError(f"no TensorBoard event files found under {logdir}{detail}")
    result = combine(printable_name(str(logdir)), run_data, discovery_warnings=warnings)
    # Exit 2 only when nothing at all could be read, and say why.
    nothing_read = result.scalars.empty and result.histograms.empty and result.hparam_records.empty
    damaged = all(not rd.tags for rd in run_data) and any(rd.warnings for rd in run_data)
    if nothing_read and damaged:
        problems = "; ".join(str(w) for w in result.warnings[:3])
        raise InputError(f"nothing readable under {logdir}: {problems}")
    return result


def _walk_and_read(
    logdir: str | os.PathLike[str], *, jobs: int | None, tag_filter: Pattern | None
) -> tuple[list[RunRef], list[ReadWarning], list[RunData]]:
    """Find the runs under ``logdir`` and read them; with workers, reading starts while the
    walk goes on (a LOGDIR of thousands of runs takes a while to list)."""
    workers = _worker_count(jobs, 1 << 62, 1 << 62)
    if workers <= 1:
        runs, warnings = discover_runs(logdir)
        return runs, warnings, read_runs(runs, jobs=1, tag_filter=tag_filter)
    pool = _PoolReader(workers=workers, jobs=jobs, tag_filter=tag_filter, parse=None)
    try:
        runs, warnings = discover_runs(logdir, on_run=pool.add)
        if not pool.started:  # too little to share: as `read_runs` decides
            pool.close()
            return runs, warnings, read_runs(runs, jobs=jobs, tag_filter=tag_filter)
        found = pool.finish()
    finally:
        pool.close()
    # The walk finds runs in name order but returns them sorted by path components.
    by_run = {id(run): rd for run, rd in zip(pool.runs, found, strict=True)}
    return runs, warnings, [by_run[id(run)] for run in runs]


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
            out.extend(_assembled(ready, files))
        out.extend(_assembled(runs[position:], [[] for _ in runs[position:]]))
    else:
        pool = _PoolReader(workers=workers, jobs=jobs, tag_filter=tag_filter, parse=parse)
        for run in runs:
            pool.add(run, early=False)
        out = pool.finish()
    _return_freed_memory()
    return out


def _assembled(runs: list[RunRef], files: list[list[FileData]]) -> list[RunData]:
    """The runs assembled, with the facts the inventory needs (taken by whoever assembles)."""
    out = assemble_runs(runs, files)
    take_facts(out)
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
    spill: int | None = None,
) -> _RunBatch:
    """Parse and assemble whole runs (in a worker); histogram buckets go to the file ``spill``
    (a descriptor inherited from the reading process) when there is one."""
    parsed = _parse_batch([ref for run in runs for ref in run.files], tag_filter, parse)
    files = []
    for run in runs:
        files.append(parsed[: len(run.files)])
        del parsed[: len(run.files)]
    batch = _RunBatch(_assembled(runs, files))
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

    def __getstate__(self) -> dict[str, Any]:
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
                    rd.facts,
                )
                for rd in runs
            ],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spilled = state["spilled"]
        bounds = np.concatenate(([0], np.cumsum(state["sizes"]))).tolist()
        runs = []
        for i, (tags, texts, hparams, files, size, purged, dups, warnings, facts) in enumerate(
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
                    facts=facts,
                    **columns,
                )
            )
        self.runs = runs


def _write_at(fd: int, values: np.ndarray, offset: int) -> None:
    """All of ``values``' bytes at ``offset`` of ``fd`` (OSError when they do not fit)."""
    data = np.ascontiguousarray(values).data.cast("B")
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


class _PoolReader:
    """Runs read in batches by worker processes, fed while the runs are still being found.

    While the LOGDIR is walked (`add`), small batches keep every worker busy; the runs found
    meanwhile wait and, once all are known (`finish`), are cut into a few batches per worker,
    largest first, so that the work evens out. Workers assemble whole runs and send back
    compact arrays (histogram buckets through a file in shared memory), so the reading process
    only combines.

    A worker killed by the OS costs a retry, not the read: batches whose worker died are read
    again once in fresh workers; the files of batches lost a second time are then parsed one
    per process (to tell the file that kills from the others) and those runs assembled here, a
    file lost then being reported as unreadable.
    """

    def __init__(
        self,
        *,
        workers: int,
        jobs: int | None,
        tag_filter: Pattern | None,
        parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
    ) -> None:
        import multiprocessing

        # fork keeps start-up cheap; the parent holds no threads when the pool starts.
        self.method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.context = multiprocessing.get_context(self.method)
        self.workers = workers
        self.tag_filter = tag_filter
        self.parse = parse
        self.runs: list[RunRef] = []
        self.waiting: list[int] = []  # runs found and not yet given to a worker
        self.waiting_bytes = 0
        self.results: dict[int, RunData] = {}
        self.lost: list[list[int]] = []
        self.pool: ProcessPoolExecutor | None = None
        self.shared = 0  # runs the workers were given when they started
        self.futures: dict[Future[_RunBatch], list[int]] = {}
        self.spill_file: tuple[int, str] | None = None
        self.spilled: list[tuple[RunData, tuple[int, int, int, int]]] = []
        self.bytes_found = 0
        # Without a number of jobs, workers start only for this much data (see `_worker_count`).
        self.min_bytes = _PARALLEL_MIN_BYTES if jobs is None else 0

    @property
    def started(self) -> bool:
        """Whether workers were started."""
        return self.pool is not None

    def add(self, run: RunRef, *, early: bool = True) -> None:
        """Take ``run``; when ``early`` (found by a walk that goes on), a batch of the runs
        waiting goes to a worker that is short of work."""
        self.runs.append(run)
        self.waiting.append(len(self.runs) - 1)
        size = sum(f.size for f in run.files)
        self.waiting_bytes += size
        self.bytes_found += size
        if not early:
            return
        self._collect([future for future in self.futures if future.done()])
        while (
            self.waiting_bytes >= _EARLY_BATCH_BYTES
            and self.bytes_found >= self.min_bytes
            and len(self.futures) < 2 * self.workers
            and len(self.runs) >= 2 * self.workers  # enough files for every worker
        ):
            self._submit([self._take_waiting(_EARLY_BATCH_BYTES)], workers=self.workers)

    def _take_waiting(self, size: int) -> list[int]:
        """The first runs waiting, of at least ``size`` bytes (or all of them)."""
        taken = 0
        count = 0
        while count < len(self.waiting) and taken < size:
            taken += self._task_bytes([self.waiting[count]])
            count += 1
        task, self.waiting = self.waiting[:count], self.waiting[count:]
        self.waiting_bytes -= taken
        return task

    def finish(self) -> list[RunData]:
        """Every run added, read and assembled, in the order added."""
        try:
            sizes = [sum(f.size for f in self.runs[i].files) for i in self.waiting]
            # A few batches per worker, biggest first so that a large file does not come last.
            limit = max(1 << 16, min(_BATCH_BYTES, sum(sizes) // (4 * self.workers)))
            counts = [len(self.runs[i].files) for i in self.waiting]
            tasks = [[self.waiting[k] for k in task] for task in _batches(sizes, limit, counts)]
            self.waiting, self.waiting_bytes = [], 0
            tasks.sort(key=self._task_bytes, reverse=True)
            self._submit(tasks, workers=min(self.workers, max(len(tasks), 1)))
            self._wait()
            if self.lost:  # the whole pool went down with one worker: once more, fresh workers
                todo, self.lost = self.lost, []
                self._close_pool()
                self._submit(todo, workers=min(self.workers, len(todo)))
                self._wait()
            if self.spill_file is not None and self.spilled:
                _attach_spilled(self.spill_file[0], self.spilled)
        finally:
            self.close()
        self._read_lost_one_file_per_process()
        return [self.results[i] for i in range(len(self.runs))]

    def close(self) -> None:
        """Stop the workers and remove the shared-memory file (also when giving up)."""
        self._close_pool()
        if self.spill_file is not None:
            os.close(self.spill_file[0])
            os.unlink(self.spill_file[1])
            self.spill_file = None

    def _task_bytes(self, task: list[int]) -> int:
        return sum(f.size for i in task for f in self.runs[i].files)

    def _submit(self, tasks: list[list[int]], *, workers: int) -> None:
        """Give ``tasks`` to the workers, starting ``workers`` of them if none are running."""
        if self.pool is None:
            self._start_pool(workers)
        assert self.pool is not None
        try:
            for task in tasks:
                # Runs known when the workers started are sent by position.
                work = [i if i < self.shared else self.runs[i] for i in task]
                try:
                    future = self.pool.submit(_read_batch_in_worker, work)
                except BrokenProcessPool:  # a worker died while we were still submitting
                    self.lost.append(task)
                    continue
                self.futures[future] = task
        finally:
            gc.unfreeze()

    def _start_pool(self, size: int) -> None:
        # Forked workers write histogram buckets to a file in shared memory they inherit (the
        # same file for a retry: it holds what the first workers wrote).
        if self.spill_file is None and self.method == "fork":
            self.spill_file = _spill_file()
        spill = self.spill_file[0] if self.spill_file is not None else None
        # Forked workers share this process's objects until they write to them: a garbage
        # collection in a worker would touch (and so copy) every one of them. Frozen until the
        # workers are started (at the first submission, `_submit` unfreezes).
        gc.freeze()
        # The runs known by now go to each worker once (inherited when forked).
        self.shared = len(self.runs)
        self.pool = ProcessPoolExecutor(
            max_workers=size,
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(self.runs[: self.shared], self.tag_filter, self.parse, spill),
        )

    def _collect(self, done: list[Future[_RunBatch]]) -> None:
        """Keep the batches ``done``."""
        for future in done:
            task = self.futures.pop(future)
            try:
                batch = future.result()
            except BrokenProcessPool:
                self.lost.append(task)
                continue
            for i, rd in zip(task, batch.runs, strict=True):
                rd.ref = self.runs[i]
                self.results[i] = rd
            for position, *where in batch.spilled:
                self.spilled.append((batch.runs[position], _four(where)))

    def _wait(self) -> None:
        if self.futures:
            wait(list(self.futures))
        self._collect(list(self.futures))

    def _close_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.futures.clear()

    def _read_lost_one_file_per_process(self) -> None:
        lost_runs = [i for task in self.lost for i in task]
        if not lost_runs:
            return
        refs = [ref for i in lost_runs for ref in self.runs[i].files]
        parsed = _parse_one_per_process(refs, self.context, self.tag_filter, self.parse)
        position = 0
        for i in lost_runs:
            count = len(self.runs[i].files)
            files = [parsed[k] for k in range(position, position + count)]
            position += count
            self.results[i] = assemble_run(self.runs[i], files, release=True)


def _four(values: list[int]) -> tuple[int, int, int, int]:
    return values[0], values[1], values[2], values[3]


# While the walk goes on, workers get batches of about this many bytes.
_EARLY_BATCH_BYTES = 1 << 19

# What every worker of a pool reads with: set once per worker by `_start_worker`.
_worker_settings: tuple[
    list[RunRef],
    Pattern | None,
    Callable[[EventFileRef, Pattern | None], FileData] | None,
    int | None,
] = ([], None, None, None)


def _start_worker(
    runs: list[RunRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
    spill: int | None,
) -> None:
    global _worker_settings
    _worker_settings = (runs, tag_filter, parse, spill)
    _keep_freed_memory()


def _read_batch_in_worker(work: list[int | RunRef]) -> _RunBatch:
    """`_read_run_batch` of runs given by position in the worker's runs, or whole."""
    runs, tag_filter, parse, spill = _worker_settings
    batch = [runs[item] if isinstance(item, int) else item for item in work]
    return _read_run_batch(batch, tag_filter, parse, spill)


def _keep_freed_memory() -> None:
    """Let a worker's heap keep what it frees, up to a few hundred MB: each batch then reuses
    the pages of the last one instead of faulting in fresh ones (a third of a worker's time on
    many small runs). The worker exits when the read is done; elsewhere this does nothing."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 256 << 20)
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)


# glibc's mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


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
