"""``tbreport.read``: every event file of a LOGDIR into DataFrames, in parallel, without loss.

Files are framed independently and parsed in batches of consecutive files (small files decode
together; files over 16 MB are streamed in chunks: `tbreport.reading.files`), in worker
processes that assemble whole runs while the LOGDIR is still being walked
(`tbreport.reading.pool`) when there is enough to do; the reading process then combines the runs
into a `ReadResult`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Literal

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.accumulator import read_runs_with_accumulator
from tbreport.reading.assemble import combine
from tbreport.reading.discovery import EventFileRef, RunRef, discover_runs, printable_name
from tbreport.reading.files import BATCH_BYTES, assembled_runs, batches, parse_batch
from tbreport.reading.parsing import FileData
from tbreport.reading.pool import PARALLEL_MIN_BYTES, PoolReader
from tbreport.reading.result import ReadResult
from tbreport.reading.runbatch import RunBatch
from tbreport.reading.rundata import RunData
from tbreport.safe_regex import Pattern, compile_pattern

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
        jobs: Processes reading files: this one and ``jobs - 1`` workers; ``None`` uses every
            core when there is enough data to make it worthwhile, ``1`` reads in this process.
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
    run_batches: list[RunBatch] | None = None
    # Workers exit while the runs are combined; they are waited for before this returns.
    with ExitStack() as cleanup:
        if engine == "fast":
            runs, warnings, run_data, run_batches = _walk_and_read(
                logdir, jobs=jobs, tag_filter=tag_filter, cleanup=cleanup
            )
        else:
            runs, warnings = discover_runs(logdir)
            run_data = read_runs_with_accumulator(runs, tag_filter=tag_filter) if runs else []
        if not runs:
            detail = f" ({len(warnings)} files skipped: {warnings[0]})" if warnings else ""
            raise InputError(f"no TensorBoard event files found under {logdir}{detail}")
        result = combine(
            printable_name(str(logdir)), run_data, batches=run_batches, discovery_warnings=warnings
        )
    # Exit 2 only when nothing at all could be read, and say why.
    nothing_read = result.scalars.empty and result.histograms.empty and result.hparam_records.empty
    damaged = all(not rd.tags for rd in run_data) and any(rd.warnings for rd in run_data)
    if nothing_read and damaged:
        problems = "; ".join(str(w) for w in result.warnings[:3])
        raise InputError(f"nothing readable under {logdir}: {problems}")
    return result


def _walk_and_read(
    logdir: str | os.PathLike[str],
    *,
    jobs: int | None,
    tag_filter: Pattern | None,
    cleanup: ExitStack,
) -> tuple[list[RunRef], list[ReadWarning], list[RunData], list[RunBatch] | None]:
    """Find the runs under ``logdir`` and read them; with workers, reading starts while the
    walk goes on (a LOGDIR of thousands of runs takes a while to list), the runs come with
    the batches they were read in, and ``cleanup`` waits for the workers to exit."""
    # As many workers as asked (every core without jobs), before the files are known: the
    # pool starts only once there is enough to share (`PoolReader.add`).
    workers = _worker_count(jobs, 1 << 62, 1 << 62)
    if workers <= 1:
        runs, warnings = discover_runs(logdir)
        return runs, warnings, read_runs(runs, jobs=1, tag_filter=tag_filter), None
    pool = PoolReader(workers=workers, jobs=jobs, tag_filter=tag_filter, parse=None)
    cleanup.callback(pool.close)
    runs, warnings = discover_runs(logdir, on_run=pool.add)
    if not pool.started:  # too little to share: as `read_runs` decides
        return runs, warnings, *_read_in_batches(runs, jobs=jobs, tag_filter=tag_filter)
    found = pool.finish()
    # The walk finds runs in name order but returns them sorted by path components.
    by_run = {id(run): rd for run, rd in zip(pool.runs, found, strict=True)}
    return runs, warnings, [by_run[id(run)] for run in runs], pool.batches


def _compile_tags(tags: str | Sequence[str] | None) -> Pattern | None:
    if tags is None:
        return None
    pattern = tags if isinstance(tags, str) else "|".join(f"(?:{t})" for t in tags)
    try:
        # Tags are untrusted: RE2 (linear time) where it can, else a time limit per match.
        return compile_pattern(pattern)
    except re.error as exc:
        raise InputError(f"invalid tag pattern {pattern!r} (--tags / tags=): {exc}") from exc


def _worker_count(jobs: int | None, total_bytes: int, n_files: int) -> int:
    if jobs is not None:
        if jobs < 1:
            raise InputError(f"jobs must be at least 1 (got {jobs})")
        return min(jobs, max(n_files, 1))
    if total_bytes < PARALLEL_MIN_BYTES or n_files < 2:
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
    out, run_batches = _read_in_batches(runs, jobs=jobs, tag_filter=tag_filter, parse=parse)
    for run_batch in run_batches or []:  # runs read in batches hand their columns back
        run_batch.give_back_columns()
    return out


def _read_in_batches(
    runs: list[RunRef],
    *,
    jobs: int | None,
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None = None,
) -> tuple[list[RunData], list[RunBatch] | None]:
    """`read_runs`, the runs read by a pool coming with the batches that hold their columns
    (None when read in this process: each run holds its own)."""
    run_batches: list[RunBatch] | None = None
    refs = [ref for run in runs for ref in run.files]
    workers = _worker_count(jobs, sum(r.size for r in refs), len(refs))
    if workers <= 1:
        # Assemble the runs of each batch as soon as their files are parsed, so parsed files do
        # not pile up.
        out: list[RunData] = []
        parsed: list[FileData] = []
        position = 0
        for batch in batches([r.size for r in refs], BATCH_BYTES):
            parsed.extend(parse_batch([refs[i] for i in batch], tag_filter, parse))
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
            out.extend(assembled_runs(ready, files))
        out.extend(assembled_runs(runs[position:], [[] for _ in runs[position:]]))
    else:
        pool = PoolReader(workers=workers, jobs=jobs, tag_filter=tag_filter, parse=parse)
        try:
            for run in runs:
                pool.add(run, early=False)
            out = pool.finish()
        finally:
            pool.close()
        run_batches = pool.batches
    _return_freed_memory()
    return out, run_batches


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
