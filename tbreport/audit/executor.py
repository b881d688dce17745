"""Run audit batches in this process, in a local process pool, or on a Dask cluster.

A batch is a few units of one source, read and diagnosed together. Whoever runs it reads the
units' bytes straight from the source (a shared path or URL), so only the small unit
descriptions and summaries travel.
Batches are handed out in source order; with the archive handles each worker keeps open, a
worker reading a compressed archive only ever seeks forward.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

from tbreport.audit.summary import RunSummary, audit_unit, audit_units
from tbreport.errors import InputError, TbreportError
from tbreport.reading.sources import RunEntry, SourceSpec

Backend = Literal["local", "dask"]


@dataclass
class Batch:
    """Units of one source for one worker call.

    Attributes:
        spec: The source.
        units: ``(cache key, run directories)`` of each unit.
        config: Diagnosis configuration.
    """

    spec: SourceSpec
    units: list[tuple[str, list[RunEntry]]]
    config: Any = None

    @property
    def run_dirs(self) -> int:
        return sum(len(runs) for _, runs in self.units)


@dataclass
class BatchResult:
    """Summaries (as dicts) per unit key; ``failed`` keys are not to be cached."""

    summaries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


def audit_batch(batch: Batch) -> BatchResult:
    """Audit every unit of ``batch`` (runs in workers; importable by Dask).

    Units are read, diagnosed and summarised together in groups of bounded size; a group that
    fails is audited unit by unit, so that a bad run sinks only its own unit.
    """
    out = BatchResult()
    for group in _read_groups(batch.units):
        together: dict[str, list[RunSummary]] = {}
        if len(group) > 1:
            try:
                together = audit_units(batch.spec, group, config=batch.config)
            except Exception:  # fails again below, in its own unit only
                if os.environ.get("TBREPORT_DEBUG"):
                    raise
        for key, runs in group:
            summaries = together.get(key)
            if summaries is None:
                summaries = _audit_alone(batch, key, runs, out)
            out.summaries[key] = [s.to_dict() for s in summaries]
    return out


def _audit_alone(
    batch: Batch, key: str, runs: list[RunEntry], out: BatchResult
) -> list[RunSummary]:
    """One unit audited on its own; a failure marks its runs (and ``out.failed``) instead of
    raising, except for tbreport's own errors (a bad configuration...)."""
    try:
        return audit_unit(batch.spec, runs, config=batch.config)
    except TbreportError:
        raise
    except Exception as exc:  # one bad run must not sink an audit of thousands
        if os.environ.get("TBREPORT_DEBUG"):
            raise
        out.failed.add(key)
        return _unaudited(batch, runs, f"audit failed: {type(exc).__name__}: {exc}")


#: Units read together hold at most about this many bytes of event files (a unit larger than
#: this is read alone), so that a batch's memory stays that of a few small runs; runs this
#: large cost far more to parse and diagnose than the frames that reading together saves.
GROUP_BYTES = 8 << 20


def _read_groups(
    units: list[tuple[str, list[RunEntry]]],
) -> list[list[tuple[str, list[RunEntry]]]]:
    """Consecutive units cut into groups of at most :data:`GROUP_BYTES` each."""
    groups: list[list[tuple[str, list[RunEntry]]]] = []
    size = GROUP_BYTES + 1
    for key, runs in units:
        unit_size = sum(member.size for run in runs for member in run.files)
        if size + unit_size > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append((key, runs))
        size += unit_size
    return groups


def _unaudited(batch: Batch, runs: list[RunEntry], message: str) -> list[RunSummary]:
    return [
        RunSummary(
            run=run.name,
            run_dirs=[run.name],
            values={"status": "unaudited"},
            problems=[
                {
                    "kind": "audit-failed",
                    "path": batch.spec.run_display(run.name),
                    "message": message,
                    "offset": None,
                }
            ],
        )
        for run in runs
    ]


def _lost_result(batch: Batch) -> BatchResult:
    """What a batch yields when its worker died twice: its runs, marked unaudited."""
    out = BatchResult()
    message = (
        "the worker process auditing this run died each time (killed by the OS, out of memory?); "
        "try fewer --jobs or a lower --max-member-bytes"
    )
    for key, runs in batch.units:
        out.summaries[key] = [s.to_dict() for s in _unaudited(batch, runs, message)]
        out.failed.add(key)
    return out


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: Units per batch at most: a batch's units are read and diagnosed together, so bigger batches
#: cost less per unit; at least four batches per worker still balance the load.
MAX_BATCH_UNITS = 64


def batches_of(
    units: list[tuple[str, list[RunEntry]]], spec: SourceSpec, *, workers: int, config: Any
) -> list[Batch]:
    """Cut a source's units into batches: small enough to balance, big enough to be cheap."""
    if not units:
        return []
    per_batch = max(1, min(MAX_BATCH_UNITS, len(units) // max(workers * 4, 1)))
    return [
        Batch(spec=spec, units=units[i : i + per_batch], config=config)
        for i in range(0, len(units), per_batch)
    ]


def run_batches(
    batches: list[Batch],
    *,
    jobs: int,
    backend: Backend = "local",
    scheduler: str | None = None,
) -> Iterator[tuple[Batch, BatchResult]]:
    """Run ``batches``; yield each with its result as it completes.

    Args:
        batches: What to do, in source order.
        jobs: Local worker processes (``1``: in this process); for ``backend="dask"`` without a
            scheduler, the workers of the local Dask cluster started for the audit.
        backend: ``local`` (process pool) or ``dask``.
        scheduler: Address of an existing Dask scheduler (``tcp://host:8786``).

    Raises:
        InputError: Dask is not installed or the scheduler cannot be reached.
    """
    if backend == "dask" or scheduler:
        yield from _run_dask(batches, jobs=jobs, scheduler=scheduler)
    elif jobs <= 1 or len(batches) <= 1:
        for batch in batches:
            yield batch, audit_batch(batch)
    else:
        yield from _run_pool(batches, jobs=jobs)


def _run_pool(batches: list[Batch], *, jobs: int) -> Iterator[tuple[Batch, BatchResult]]:
    # A worker killed by the OS (out of memory) breaks the whole pool: the batches it took down
    # are run once more in fresh workers, and those lost again are reported as unaudited.
    lost = yield from _pool_pass(batches, jobs=jobs)
    if lost:
        lost = yield from _pool_pass(lost, jobs=jobs)
    # Lost again: one batch per process, to tell the batch that kills from the others; then
    # one unit per process, to tell the unit that kills from the rest of its batch.
    for batch in lost:
        if (yield from _pool_pass([batch], jobs=1)):
            for part in _units_alone(batch):
                if (yield from _pool_pass([part], jobs=1)):
                    yield part, _lost_result(part)


def _units_alone(batch: Batch) -> list[Batch]:
    """A batch of one unit per unit of ``batch`` (itself when it has only one)."""
    if len(batch.units) == 1:
        return [batch]
    return [Batch(spec=batch.spec, units=[unit], config=batch.config) for unit in batch.units]


def _pool_pass(
    batches: list[Batch], *, jobs: int
) -> Generator[tuple[Batch, BatchResult], None, list[Batch]]:
    """Run ``batches`` in a process pool, yielding results; return those a dead worker lost."""
    import multiprocessing

    # fork keeps start-up cheap (workers inherit the imported modules); nothing in this process
    # runs threads that could hold a lock at fork time (the progress bar refreshes by hand).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    window = jobs * 2  # bounded: batches wait here, not as pickled copies in the pool's queue
    pending: dict[Any, Batch] = {}
    queue = iter(batches)
    lost: list[Batch] = []
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)

    def submit(batch: Batch) -> None:
        try:
            pending[pool.submit(audit_batch, batch)] = batch
        except BrokenProcessPool:  # a worker died while we were still submitting
            lost.append(batch)

    try:
        for batch in _take(queue, window):
            submit(batch)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(batch)
                    continue
                if not lost:
                    for nxt in _take(queue, 1):
                        submit(nxt)
                yield batch, result
        lost.extend(queue)
        return lost
    finally:
        # On an error or Ctrl-C, do not wait for batches nobody will look at.
        pool.shutdown(wait=not pending, cancel_futures=True)


def _take(iterator: Iterator[Batch], n: int) -> list[Batch]:
    out = []
    for _ in range(n):
        try:
            out.append(next(iterator))
        except StopIteration:
            break
    return out


def _run_dask(
    batches: list[Batch], *, jobs: int, scheduler: str | None
) -> Iterator[tuple[Batch, BatchResult]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError(
            "the Dask executor needs dask.distributed: pip install 'tbreport[dask]'"
        ) from None
    import logging

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="20s")
        else:
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise InputError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        window = workers * 4
        queue = iter(batches)
        by_future: dict[Any, Batch] = {}
        first = _take(queue, window)
        futures = [client.submit(audit_batch, b, pure=False) for b in first]
        by_future.update(zip(futures, first, strict=True))
        completed = as_completed(futures)
        for future in completed:
            batch = by_future.pop(future)
            result = future.result()
            future.release()
            for nxt in _take(queue, 1):
                new = client.submit(audit_batch, nxt, pure=False)
                by_future[new] = nxt
                completed.add(new)
            yield batch, result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------
# Progress on stderr


class Progress:
    """A progress bar on stderr (rich), silent unless stderr is a terminal.

    Refreshed by hand, never from a thread, so forking pool workers stays safe.
    """

    def __init__(self, *, total: int, description: str, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        self._last = 0.0
        if not enabled or total <= 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._bar = RichProgress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            auto_refresh=False,
            transient=False,
        )
        self._task = self._bar.add_task(description, total=total)
        self._bar.start()

    def advance(self, n: int) -> None:
        if self._bar is None:
            return
        self._bar.advance(self._task, n)
        now = time.monotonic()
        if now - self._last > 0.1:
            self._last = now
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
