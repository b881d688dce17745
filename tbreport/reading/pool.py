"""Worker processes that read batches of whole runs while this process walks the LOGDIR.

`PoolReader` feeds forked workers (spawned where there is no fork) with batches of runs; each
worker parses and assembles its runs (`tbreport.reading.files`), writes their concatenated
columns and histogram buckets to a file in shared memory and sends back where they are. Once
the walk is over, the reading process reads batches too (``jobs`` processes read in all),
sharing them out so that all end together (`lay_out`). A worker killed by the OS costs a retry,
not the read: any batch read once by a worker that died is read again only by workers.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from tbreport.model import ReadWarning
from tbreport.reading.assemble import _NO_HISTOGRAMS, assemble_run, bucket_views
from tbreport.reading.discovery import EventFileRef, RunRef
from tbreport.reading.files import assembled_runs, batches, parse_batch
from tbreport.reading.parsing import FileData, HistogramColumns
from tbreport.reading.runbatch import NO_SCALARS, SCALAR_COLUMNS, RunBatch
from tbreport.reading.rundata import RunData
from tbreport.safe_regex import Pattern

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext


# Spawning workers costs more than parsing a few megabytes in-process.
PARALLEL_MIN_BYTES = 8 << 20


def _read_runs_whole(
    runs: list[RunRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> list[RunData]:
    """Parse the files of ``runs`` as one batch and assemble each run."""
    parsed = parse_batch([ref for run in runs for ref in run.files], tag_filter, parse)
    files = []
    for run in runs:
        files.append(parsed[: len(run.files)])
        del parsed[: len(run.files)]
    return assembled_runs(runs, files)


def _read_run_batch(
    runs: list[RunRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
    spill: int | None = None,
) -> _Packed | _InFile:
    """Parse and assemble whole runs (in a worker), batch them and pack them to send; when
    there is a file ``spill`` (a descriptor inherited from the reading process), all of it
    goes there and only where it is is sent."""
    packed = _pack(RunBatch.of(_read_runs_whole(runs, tag_filter, parse)))
    if spill is None:
        return packed
    _spill(packed, spill)
    return _spill_pickled(packed, spill)


class _InFile(NamedTuple):
    """An array a worker wrote to the spill file: its offset, type and length."""

    offset: int
    dtype: str
    length: int


_Array = np.ndarray | _InFile


class _Packed(NamedTuple):
    """What a worker sends back for a batch of runs: the batch's joined scalar columns (a few
    arrays per batch rather than objects per run), tags and inventory cells, each run's
    histogram columns (None without histograms) and its other fields. The run references are
    not sent."""

    batch: RunBatch  # without runs or scalar columns
    columns: dict[str, _Array]
    # Per run: None, or its histograms' per-row columns, limits and counts.
    histograms: list[tuple[dict[str, _Array], _Array, _Array] | None]
    rest: list[tuple[Any, ...]]


# What a worker sends back: the batch, or where it is in the spill file.
_Sent = _Packed | _InFile


def _pack(batch: RunBatch) -> _Packed:
    runs = batch.runs
    columns: dict[str, _Array] = {name: getattr(batch, name) for name in SCALAR_COLUMNS}
    return _Packed(
        batch=batch.bare(),
        columns=columns,
        histograms=_histogram_entries(runs),
        rest=[
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
    )


def _histogram_entries(
    runs: list[RunData],
) -> list[tuple[dict[str, _Array], _Array, _Array] | None]:
    """Each run's histogram columns, limits and counts (None without histograms).

    Runs decoded together share their flat bucket arrays, which are sent once for all of them
    (the spill file and pickle both write an array once per batch), so they are kept as they
    are: copying out each run's buckets costs more than the buckets no row uses. A run that
    uses under half of what it would send is compacted.
    """
    used: dict[int, int] = {}  # bytes of each flat array that the rows of the batch use
    for rd in runs:
        h = rd.histograms
        if len(h):
            used[id(h.limits)] = used.get(id(h.limits), 0) + 8 * int(h.limit_size.sum())
            used[id(h.counts)] = used.get(id(h.counts), 0) + 8 * int(h.count_size.sum())
    entries: list[tuple[dict[str, _Array], _Array, _Array] | None] = []
    for rd in runs:
        h = rd.histograms
        if not len(h):
            entries.append(None)
            continue
        if 2 * used[id(h.limits)] < h.limits.nbytes or 2 * used[id(h.counts)] < h.counts.nbytes:
            h = h.compacted()
        rows: dict[str, _Array] = {name: getattr(h, name) for name in HistogramColumns._ROW_FIELDS}
        entries.append((rows, h.limits, h.counts))
    return entries


def _spill(packed: _Packed, fd: int) -> None:
    """Write the batch's arrays to the shared-memory file ``fd`` (one stretch reserved under a
    lock at its end, written without it) and leave only where they are to pickle: the reading
    process maps the stretch instead of unpickling the arrays from a pipe (which holds up the
    worker while it is read). Without space, they are pickled as usual."""
    # Each array once: runs decoded together share their buckets.
    arrays = list({id(a): a for a in _arrays(packed) if isinstance(a, np.ndarray)}.values())
    size = sum(_padded(array.nbytes) for array in arrays)
    if not size:
        return
    try:
        start = _reserve(fd, size)
        written: dict[int, _InFile] = {}
        for array in arrays:
            _write_at(fd, array, start)
            written[id(array)] = _InFile(start, array.dtype.str, len(array))
            start += _padded(array.nbytes)
    except OSError:
        return
    _replace_arrays(packed, lambda a: written[id(a)] if isinstance(a, np.ndarray) else a)


def _reserve(fd: int, size: int) -> int:
    """Where ``size`` bytes were added for this process at the end of the spill file ``fd``
    (under a lock: the workers write to it side by side)."""
    import fcntl

    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        start = os.fstat(fd).st_size
        os.ftruncate(fd, start + size)
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)
    return start


# The `_InFile` type of a pickled `_Packed`.
PICKLED = "pickle"


def _spill_pickled(packed: _Packed, fd: int) -> _Packed | _InFile:
    """``packed`` (its arrays spilled already) pickled into the spill file ``fd``: the
    worker then sends a few bytes, which the pipe takes at once, instead of waiting until
    the reading process has read them all. Without space, ``packed`` itself."""
    data = pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        start = _reserve(fd, _padded(len(data)))
        _write_at(fd, np.frombuffer(data, dtype=np.uint8), start)
    except OSError:
        return packed
    return _InFile(start, PICKLED, len(data))


def _load_pickled(where: _InFile, fd: int) -> _Packed:
    """The `_Packed` a worker pickled into the spill file ``fd`` at ``where``."""
    return cast("_Packed", pickle.loads(_read_at(fd, where.offset, where.length)))


def _read_at(fd: int, offset: int, length: int) -> bytearray:
    """``length`` bytes of the spill file ``fd`` from ``offset``."""
    data = bytearray(length)
    view = memoryview(data)
    done = 0
    while done < length:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError("spill file shorter than written")
        done += got
    return data


def _replace_arrays(packed: _Packed, change: Callable[[_Array], _Array]) -> None:
    """Replace each array of the batch (the columns, then each run's histogram columns, limits
    and counts) by ``change(array)``."""
    for name, column in packed.columns.items():
        packed.columns[name] = change(column)
    for k, entry in enumerate(packed.histograms):
        if entry is not None:
            rows = {name: change(column) for name, column in entry[0].items()}
            packed.histograms[k] = (rows, change(entry[1]), change(entry[2]))


def _arrays(packed: _Packed) -> list[_Array]:
    """The batch's arrays (an array shared by runs once per run)."""
    found: list[_Array] = []

    def keep(array: _Array) -> _Array:
        found.append(array)
        return array

    _replace_arrays(packed, keep)
    return found


def _padded(nbytes: int) -> int:
    """``nbytes`` rounded up to a multiple of 8, so that every array in the file is aligned."""
    return (nbytes + 7) & ~7


def _unpack(packed: _Packed | _InFile, fd: int | None) -> RunBatch:
    """The batch of runs sent, their arrays in the spill file ``fd`` (if any) mapped."""
    if isinstance(packed, _InFile):
        if fd is None:
            raise RuntimeError("a worker's batch is in a spill file this process does not have")
        packed = _load_pickled(packed, fd)
    in_file = [a for a in _arrays(packed) if isinstance(a, _InFile)]
    if in_file:
        if fd is None:
            raise RuntimeError("a worker's arrays are in a spill file this process does not have")
        _replace_arrays(packed, _mapper(in_file, fd))
    runs = []
    for i, (tags, texts, hparams, files, size, purged, dups, warnings, facts) in enumerate(
        packed.rest
    ):
        entry = packed.histograms[i]
        histograms = (
            HistogramColumns(
                **cast("dict[str, np.ndarray]", entry[0]),
                limits=cast("np.ndarray", entry[1]),
                counts=cast("np.ndarray", entry[2]),
            )
            if entry is not None
            else _NO_HISTOGRAMS
        )
        runs.append(
            RunData(
                ref=None,  # type: ignore[arg-type]  # set by the reading process
                tags=tags,
                histograms=histograms,
                texts=texts,
                hparam_contents=hparams,
                files=files,
                bytes=size,
                purged=purged,
                duplicate_steps=dups,
                warnings=warnings,
                facts=facts,
                **NO_SCALARS,
            )
        )
    columns = cast("dict[str, Any]", packed.columns)  # all arrays by now
    return dataclasses.replace(packed.batch, runs=runs, **columns)


def _write_at(fd: int, values: np.ndarray, offset: int) -> None:
    """All of ``values``' bytes at ``offset`` of ``fd`` (OSError when they do not fit)."""
    data = np.ascontiguousarray(values).data.cast("B")
    while len(data):
        written = os.pwrite(fd, data, offset)
        if written <= 0:
            raise OSError("nothing written")
        data, offset = data[written:], offset + written


def _spill_file() -> tuple[int, str] | None:
    """A new empty file in shared memory (``/dev/shm``) for the workers' arrays, or None where
    there is none."""
    if not os.path.isdir("/dev/shm"):
        return None
    try:
        import fcntl  # noqa: F401 - the workers lock the file
        import tempfile

        return tempfile.mkstemp(prefix="tbreport-", dir="/dev/shm")
    except (ImportError, OSError):
        return None


def _mapper(in_file: list[_InFile], fd: int) -> Callable[[_Array], _Array]:
    """How to turn the arrays ``in_file`` of the spill file ``fd`` into arrays: views of a
    private (copy on write) mapping of the stretch that holds them, so there is no copy and the
    arrays are writable without any other process seeing the change."""
    import mmap

    first = min(a.offset for a in in_file)
    first -= first % mmap.ALLOCATIONGRANULARITY  # mmap needs an aligned start
    end = max(a.offset + np.dtype(a.dtype).itemsize * a.length for a in in_file)
    try:
        flat = np.frombuffer(
            mmap.mmap(
                fd,
                end - first,
                flags=mmap.MAP_PRIVATE,
                prot=mmap.PROT_READ | mmap.PROT_WRITE,
                offset=first,
            ),
            dtype=np.uint8,
        )
    except (OSError, ValueError):  # no mapping allowed: read the stretch into memory
        flat = np.frombuffer(_read_at(fd, first, end - first), dtype=np.uint8)

    def resolve(a: _Array) -> _Array:
        if isinstance(a, np.ndarray):
            return a
        dtype = np.dtype(a.dtype)
        start = a.offset - first
        return flat[start : start + dtype.itemsize * a.length].view(dtype)

    return resolve


class _Given(NamedTuple):
    """A batch given to the workers: its runs, and its slot in the progress table."""

    task: list[int]
    slot: int


class PoolReader:
    """Runs read in batches by worker processes, fed while the runs are still being found.

    ``workers`` processes read: this one and ``workers - 1`` worker processes. While this
    process walks the LOGDIR (`add`), small batches keep the workers busy; the runs found
    meanwhile wait and, once all are known (`finish`), are cut into a few batches per reader.
    Then the batches left, largest first, are shared out so that all end together (`lay_out`,
    from the speed measured and when each worker started what it holds, in memory the workers
    share): the workers' through their queues, this process's read here, crossing no process
    boundary. Workers assemble whole runs and write their arrays to a file in shared memory,
    which this process maps batch by batch as they arrive (building histogram bucket views
    meanwhile), so that it only combines at the end, while the workers exit.

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
        self.workers = workers  # processes reading, this one included
        self.pool_size = max(workers - 1, 1)
        self.tag_filter = tag_filter
        self.parse = parse
        self.runs: list[RunRef] = []
        self.sizes: list[int] = []  # bytes of each run's files
        self.waiting: list[int] = []  # runs found and not yet given to a worker
        self.waiting_bytes = 0
        self.todo: deque[list[int]] = deque()  # batches cut by `finish`, largest first
        self.results: dict[int, RunData] = {}
        self.batches: list[RunBatch] = []  # every run read, as read
        self.lost: list[list[int]] = []
        self.pool: ProcessPoolExecutor | None = None
        self.shared = 0  # runs the workers were given when they started
        self.futures: dict[Future[_Sent | None], _Given] = {}
        # Futures as they finish (appended by the pool's thread): `add`, called once per run
        # found, looks here instead of asking every future whether it is done.
        self.finished: deque[Future[_Sent | None]] = deque()
        self.spill_file: tuple[int, str] | None = None
        self.bytes_found = 0
        # When each batch given to the workers started (shared with forked workers), and how
        # long a byte takes to read, as last measured: what `_plan` needs to even out the end.
        self.progress: Progress | None = None
        self.next_slot = 0
        self.seconds_per_byte_here: float | None = None
        self.seconds_per_byte_there: float | None = None  # in a worker
        self.stopping: threading.Thread | None = None  # waits for the workers to exit
        # Without a number of jobs, workers start only for this much data (see `_worker_count`).
        self.min_bytes = PARALLEL_MIN_BYTES if jobs is None else 0

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
        self.sizes.append(size)
        self.waiting_bytes += size
        self.bytes_found += size
        if (
            not early
            or self.waiting_bytes < EARLY_BATCH_BYTES
            or self.bytes_found < self.min_bytes
            or len(self.runs) < 2 * self.workers  # enough files for every worker
        ):
            return
        if len(self.futures) >= 2 * self.pool_size and not self.finished:
            return  # every worker has work and nothing came back
        self._collect_finished()
        while self.waiting_bytes >= EARLY_BATCH_BYTES and len(self.futures) < 2 * self.pool_size:
            self._submit([self._take_waiting(EARLY_BATCH_BYTES)], workers=self.pool_size)

    def _take_waiting(self, size: int) -> list[int]:
        """The first runs waiting, of at least ``size`` bytes (or all of them)."""
        taken = 0
        count = 0
        while count < len(self.waiting) and taken < size:
            taken += self.sizes[self.waiting[count]]
            count += 1
        task, self.waiting = self.waiting[:count], self.waiting[count:]
        self.waiting_bytes -= taken
        return task

    def finish(self) -> list[RunData]:
        """Every run added, read and assembled, in the order added.

        The workers are told to stop and exit while this process goes on: `close` (which the
        caller must call) waits for them.
        """
        try:
            sizes = [self.sizes[i] for i in self.waiting]
            counts = [len(self.runs[i].files) for i in self.waiting]
            cut = shrinking_batches(sizes, counts, readers=self.workers)
            tasks = [[self.waiting[k] for k in task] for task in cut]
            self.waiting, self.waiting_bytes = [], 0
            # Biggest first, so that a large file does not come last.
            tasks.sort(key=self._task_bytes, reverse=True)
            self.todo = deque(tasks)
            self._share_work()
            if self.lost:  # the whole pool went down with one worker: once more, fresh workers
                todo, self.lost = self.lost, []
                self._close_pool()
                self._submit(todo, workers=min(self.pool_size, len(todo)))
                self._wait()
        except BaseException:
            self.close()
            raise
        if self.lost:  # no process is forked while the pool's threads still run
            self.close()
        else:
            self._stop_in_background()
        self._read_lost_one_file_per_process()
        return [self.results[i] for i in range(len(self.runs))]

    def close(self) -> None:
        """Stop the workers, wait until they have exited and remove the shared-memory file
        (also when giving up)."""
        if self.stopping is not None:
            self.stopping.join()
            self.stopping = None
        self._close_pool()
        if self.spill_file is not None:
            os.close(self.spill_file[0])
            os.unlink(self.spill_file[1])
            self.spill_file = None

    def _share_work(self) -> None:
        """Read every batch of `todo` between this process and the workers (`_plan`); with
        nothing left to plan, take back what the workers have not started (`_take_back`)."""
        while self.todo or self.futures:
            self._collect_finished()
            mine = self._plan() if self.todo else None
            if mine is None:
                mine = self._take_back()
            if mine is not None:
                self._read_here(mine)
            elif self.futures:  # everything left is the workers': wait for one to finish
                done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
                self._collect(list(done))

    def _take_back(self) -> list[int] | None:
        """A batch given to the workers that none has started, taken back to read here: the
        one after which all would end soonest, if sooner than the workers would end with
        all they hold (the batches given are a guess of how long each side takes; near the
        end, a worker may hold one too many). None when there is none to take back.

        Only once a worker has read a batch: until then its speed is unknown, and it may still
        be starting (a batch given to a worker first is also never read here when the worker
        is slow to start).
        """
        here, there = self.seconds_per_byte_here, self.seconds_per_byte_there
        if self.progress is None or here is None or there is None:
            return None
        workers_end = self._workers_busy(time.monotonic(), there) / self.pool_size
        best: Future[_Sent | None] | None = None
        best_end = workers_end
        for future, (task, slot) in self.futures.items():
            if future.done() or self.progress.started_at(slot) is not None:
                continue
            size = self._task_bytes(task)
            saved = (size * there + HANDOVER_SECONDS) / self.pool_size
            end = max(size * here, workers_end - saved)
            if end < best_end:
                best, best_end = future, end
        if best is None or not self.progress.take_back(self.futures[best].slot):
            return None
        return self.futures.pop(best).task  # the worker that comes to it returns None

    def _plan(self) -> list[int] | None:
        """Submit to the workers their part of `todo` (`lay_out`) that they would start before
        this process is done with its next batch, and return that batch (taken out of `todo`;
        None if it has none).

        Laid out again before each batch this process reads, from what the workers really did,
        so that all end within a small batch of each other and no batch waits in a worker's
        queue that this process could have read. Until a speed is measured, costs are bytes.
        """
        here = self.seconds_per_byte_here or self.seconds_per_byte_there
        there = self.seconds_per_byte_there or here
        unit = here or 1.0
        tasks = list(self.todo)
        costs = [self._task_bytes(task) * unit for task in tasks]
        to_workers, mine = lay_out(
            costs,
            workers_busy=self._workers_busy(time.monotonic(), there),
            workers=self.pool_size,
            handover=HANDOVER_SECONDS if there else 0.0,
            workers_slowdown=there / here if here and there else 1.0,
        )
        # This process looks again once its batch is read: the workers get what they would
        # start before then, with a margin (a batch may take longer than measured).
        horizon = (1 + QUEUE_MARGIN) * costs[mine] if mine is not None else None
        given = [k for k, start in to_workers if horizon is None or start <= horizon]
        for k in given:
            # A pool started here needs no more workers than there are batches for them.
            self._submit([tasks[k]], workers=min(self.pool_size, len(to_workers)))
        taken = {*given, *([mine] if mine is not None else [])}
        self.todo = deque(task for k, task in enumerate(tasks) if k not in taken)
        return tasks[mine] if mine is not None else None

    def _workers_busy(self, now: float, per_byte: float | None) -> float:
        """Seconds of work (bytes without a measured speed) the workers hold in all: their
        batches not finished, less what was read since each started."""
        busy = 0.0
        for future, (task, slot) in self.futures.items():
            if future.done():
                continue
            if per_byte is None:
                busy += self._task_bytes(task)
                continue
            cost = self._task_bytes(task) * per_byte + HANDOVER_SECONDS
            started = self.progress.started_at(slot) if self.progress is not None else None
            if started is not None:
                cost = max(cost - (now - started), 0.0)
            busy += cost
        return busy

    def _measured(self, size: int, seconds: float, *, here: bool) -> None:
        """Keep the speed of a batch of ``size`` bytes read in ``seconds`` (``here``: by this
        process, else by a worker: the two differ, a worker being faster once warm)."""
        if size > 0 and seconds > 0:
            if here:
                self.seconds_per_byte_here = seconds / size
            else:
                self.seconds_per_byte_there = seconds / size

    def _read_here(self, task: list[int]) -> None:
        """Read the runs of ``task`` in this process."""
        started = time.monotonic()
        runs = _read_runs_whole([self.runs[i] for i in task], self.tag_filter, self.parse)
        batch = RunBatch.of(runs)
        self._measured(self._task_bytes(task), time.monotonic() - started, here=True)
        self._keep(task, batch)

    def _keep(self, task: list[int], batch: RunBatch) -> None:
        self.batches.append(batch)
        for i, rd in zip(task, batch.runs, strict=True):
            rd.ref = self.runs[i]
            self.results[i] = rd
            # Built now, while the workers still read, rather than when runs are combined.
            if len(rd.histograms):
                rd.bucket_views = bucket_views(rd.histograms)

    def _task_bytes(self, task: list[int]) -> int:
        return sum(self.sizes[i] for i in task)

    def _submit(self, tasks: list[list[int]], *, workers: int) -> None:
        """Give ``tasks`` to the workers, starting ``workers`` of them if none are running."""
        if self.pool is None:
            self._start_pool(workers)
        assert self.pool is not None
        try:
            for task in tasks:
                # Runs known when the workers started are sent by position.
                work = [i if i < self.shared else self.runs[i] for i in task]
                slot = self.next_slot % PROGRESS_SLOTS
                self.next_slot += 1
                if self.progress is not None:
                    self.progress.clear(slot)
                try:
                    future = self.pool.submit(_read_batch_in_worker, work, slot)
                except BrokenProcessPool:  # a worker died while we were still submitting
                    self.lost.append(task)
                    continue
                self.futures[future] = _Given(task, slot)
                future.add_done_callback(self.finished.append)
        finally:
            gc.unfreeze()

    def _start_pool(self, size: int) -> None:
        # Forked workers write their arrays to a file in shared memory they inherit (the same
        # file for a retry: it holds what the first workers wrote).
        if self.spill_file is None and self.method == "fork":
            self.spill_file = _spill_file()
        spill = self.spill_file[0] if self.spill_file is not None else None
        if self.method == "fork":  # a new table for new workers (a dead one may hold the lock)
            self.progress = Progress.shared(self.context)
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
            initargs=(self.runs[: self.shared], self.tag_filter, self.parse, spill, self.progress),
        )

    def _collect(self, done: list[Future[_Sent | None]]) -> None:
        """Keep the batches ``done``."""
        for future in done:
            given = self.futures.pop(future, None)
            if given is None:  # collected already (`_wait` and `finished` both name it)
                continue
            task, slot = given
            try:
                packed = future.result()
            except BrokenProcessPool:
                self.lost.append(task)
                continue
            if packed is None:  # only for a batch taken back, whose future was forgotten then
                continue
            seconds = self.progress.seconds(slot) if self.progress is not None else None
            if seconds is not None:
                self._measured(self._task_bytes(task), seconds, here=False)
            self._keep(task, _unpack(packed, self.spill_file[0] if self.spill_file else None))

    def _collect_finished(self) -> None:
        """Keep the batches the workers finished since the last look."""
        done = []
        while self.finished:
            done.append(self.finished.popleft())
        self._collect(done)

    def _wait(self) -> None:
        while self.futures:
            done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
            self._collect(list(done))

    def _stop_in_background(self) -> None:
        """Tell the workers to exit, and wait for them in a thread of this process (exiting
        takes a worker a few milliseconds); `close` waits for that thread."""
        pool, self.pool = self.pool, None
        self._close_pool()
        if pool is not None:
            self.stopping = threading.Thread(target=pool.shutdown, name="tbreport-pool-stop")
            self.stopping.start()

    def _close_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.futures.clear()
        self.finished.clear()

    def _read_lost_one_file_per_process(self) -> None:
        lost_runs = [i for task in self.lost for i in task]
        if not lost_runs:
            return
        refs = [ref for i in lost_runs for ref in self.runs[i].files]
        parsed = _parse_one_per_process(refs, self.context, self.tag_filter, self.parse)
        position = 0
        runs = []
        for i in lost_runs:
            count = len(self.runs[i].files)
            files = [parsed[k] for k in range(position, position + count)]
            position += count
            runs.append(assemble_run(self.runs[i], files, release=True))
        self._keep(lost_runs, RunBatch.of(runs))


# What a batch read by a worker costs beyond reading it (sending it there and back), in seconds.
HANDOVER_SECONDS = 0.002
# Workers are given what they would start until this process's batch is read, and this much
# longer again (in that batch's lengths): a batch may take longer than measured, and a worker
# that runs dry waits until this process looks again.
QUEUE_MARGIN = 1.0
# Batches given to workers whose start and end are kept (a ring: far more than are ever queued).
PROGRESS_SLOTS = 1024
# The progress table's lock is held for microseconds: waited for longer, its holder died.
LOCK_SECONDS = 1.0
# While the walk goes on, workers get batches of about this many bytes.
EARLY_BATCH_BYTES = 2 << 20
# The last batches of a read, when the work left is cut finer and finer: about 15 ms of work
# (smaller ones cost more in hand-overs than they save in waiting at the end).
SMALLEST_BATCH_BYTES = 1 << 20
# The largest batches cut once the walk is over, as large as the workers' early ones: a
# reader's heap grows to what its largest batch needs, a page fault per 4 KB page (a few
# microseconds each here; the workers then keep it), so a larger first batch costs more than
# the hand-overs it saves (5,000 small runs, jobs=2: 2 MB against 4 MB, 1% to 3.5% faster).
LARGEST_BATCH_BYTES = EARLY_BATCH_BYTES


def lay_out(
    costs: list[float],
    *,
    workers_busy: float,
    workers: int,
    handover: float,
    workers_slowdown: float = 1.0,
) -> tuple[list[tuple[int, float]], int | None]:
    """Batches costing ``costs`` here (largest first) laid out between this process and
    ``workers`` workers that hold ``workers_busy`` of work in all: each batch goes to the side
    that would finish it first, a worker taking ``workers_slowdown`` times as long as this
    process, plus ``handover`` (the batch is sent there and back).

    Returns the workers' batches (positions in ``costs``) with when they would start them,
    and this process's first batch (None when the workers take everything).
    """
    workers_free = workers_busy / workers
    mine_free = 0.0
    to_workers: list[tuple[int, float]] = []
    mine: int | None = None
    for k, cost in enumerate(costs):
        there = (cost * workers_slowdown + handover) / workers
        if workers_free + there <= mine_free + cost:
            to_workers.append((k, workers_free))
            workers_free += there
        else:
            if mine is None:
                mine = k
            mine_free += cost
    return to_workers, mine


def shrinking_batches(sizes: list[int], counts: list[int], *, readers: int) -> list[list[int]]:
    """Consecutive runs (``sizes`` bytes, ``counts`` files each) cut into batches of about a
    ``2 * readers``-th of the bytes still to cut, between :data:`LARGEST_BATCH_BYTES` and
    :data:`SMALLEST_BATCH_BYTES` (a larger run alone).

    Shared out largest first (`lay_out`), the readers then finish within a small batch of
    each other, while the first batches stay large (fewer, cheaper hand-overs).
    """

    def limit(remaining: int) -> int:
        return max(SMALLEST_BATCH_BYTES, min(LARGEST_BATCH_BYTES, remaining // (2 * readers)))

    return batches(sizes, limit, counts)


# What every worker of a pool reads with: set once per worker by `_start_worker`.
_worker_settings: tuple[
    list[RunRef],
    Pattern | None,
    Callable[[EventFileRef, Pattern | None], FileData] | None,
    int | None,
    Progress | None,
] = ([], None, None, None, None)


def _start_worker(
    runs: list[RunRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
    spill: int | None,
    progress: Progress | None,
) -> None:
    global _worker_settings
    _worker_settings = (runs, tag_filter, parse, spill, progress)
    _keep_freed_memory()


def _read_batch_in_worker(work: list[int | RunRef], slot: int) -> _Sent | None:
    """`_read_run_batch` of runs given by position in the worker's runs, or whole; when it
    started and ended is written to ``slot`` of the progress table (if shared). None when the
    reading process took the batch back before this worker came to it."""
    runs, tag_filter, parse, spill, progress = _worker_settings
    if progress is not None and not progress.start(slot):
        return None
    batch = [runs[item] if isinstance(item, int) else item for item in work]
    packed = _read_run_batch(batch, tag_filter, parse, spill)
    if progress is not None:
        progress.end(slot)
    return packed


class Progress:
    """When each batch given to the workers started and ended, in memory that forked workers
    share: a ring of :data:`PROGRESS_SLOTS` slots, one per batch.

    A batch is read once: a worker claims its slot before reading it (`start`), and the
    reading process may take back a batch no worker has claimed yet (`take_back`), under one
    lock, so that the last batches queued for a worker are read by whoever is free first.

    A worker killed while it holds the lock never releases it: past :data:`LOCK_SECONDS`
    nothing is taken back and workers read what they are given, so nothing waits for it (a
    batch taken back that a worker reads all the same is read twice, its worker's copy
    dropped).
    """

    # What a slot's start time holds before a worker claims it, and once taken back.
    _NOT_STARTED = 0.0
    _TAKEN_BACK = -1.0

    def __init__(self, times: np.ndarray, lock: Any) -> None:
        self.times = times  # (start, end) per slot, in `time.monotonic` seconds
        self.lock = lock

    @classmethod
    def shared(cls, context: BaseContext) -> Progress | None:
        """A new table in shared anonymous memory, or None where there is none."""
        import mmap

        try:
            memory = mmap.mmap(-1, PROGRESS_SLOTS * 16)  # shared with the processes forked
            lock = context.Lock()
        except (OSError, ValueError, ImportError):  # no shared memory or semaphores here
            return None
        return cls(np.frombuffer(memory, dtype=np.float64).reshape(PROGRESS_SLOTS, 2), lock)

    def clear(self, slot: int) -> None:
        """Make ``slot`` ready for a new batch (before it is given to a worker)."""
        self.times[slot] = self._NOT_STARTED

    def start(self, slot: int) -> bool:
        """Claim ``slot``'s batch for the calling worker, noting when it starts: False if the
        reading process took it back."""
        locked = self.lock.acquire(timeout=LOCK_SECONDS)
        try:
            if locked and self.times[slot, 0] == self._TAKEN_BACK:
                return False
            self.times[slot, 0] = time.monotonic()
            return True
        finally:
            if locked:
                self.lock.release()

    def end(self, slot: int) -> None:
        """Note that ``slot``'s batch was read."""
        self.times[slot, 1] = time.monotonic()

    def take_back(self, slot: int) -> bool:
        """Take ``slot``'s batch back from the workers if none has started it."""
        if not self.lock.acquire(timeout=LOCK_SECONDS):
            return False
        try:
            if self.times[slot, 0] != self._NOT_STARTED:
                return False
            self.times[slot, 0] = self._TAKEN_BACK
            return True
        finally:
            self.lock.release()

    def started_at(self, slot: int) -> float | None:
        """When a worker started ``slot``'s batch (None if none has)."""
        started = float(self.times[slot, 0])
        return started if started > 0 else None

    def seconds(self, slot: int) -> float | None:
        """How long a worker took to read ``slot``'s batch (None until it has)."""
        started, ended = (float(t) for t in self.times[slot])
        return ended - started if started > 0 and ended > 0 else None


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
                out.append(pool.submit(parse_batch, [ref], tag_filter, parse).result()[0])
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
