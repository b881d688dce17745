"""``tbreport audit``: summarise archives of old runs, at any scale.

Typical use::

    from tbreport.audit import audit, write_audit

    result = audit(["runs-2023.tar.gz", "s3://bucket/runs/"], jobs=8)
    result.frame()                     # one row per logical run
    write_audit(result, "audit-out/")  # audit.csv + audit.html

Sources (directories, tar/zip archives read in place, fsspec URLs) are listed in this process;
each *unit* of run directories that holds whole logical runs is read, diagnosed and reduced to
small per-run summaries by a worker (this process, a process pool, or a Dask cluster); summaries
are cached so that unchanged runs are never read twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from tbreport._version import __version__
from tbreport.audit.cache import (
    AuditFiles,
    OutputCache,
    SourceCache,
    default_cache_dir,
    settings_fingerprint,
    unit_key,
    volatile_values,
)
from tbreport.audit.executor import (
    Backend,
    Batch,
    BatchResult,
    Progress,
    audit_batch,
    batches_of,
    default_jobs,
    run_batches,
)
from tbreport.audit.summary import AUDIT_COLUMNS, HPARAM_PREFIX, RunSummary, problem_dict
from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.outputs import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    mark_output_dir,
)
from tbreport.reading.grouping import SPLIT_DIRS, TIMESTAMP_DIR
from tbreport.reading.sources import (
    ArchiveTooLarge,
    Limits,
    RunEntry,
    SourceListing,
    SourceSpec,
    close_readers,
    list_source,
    resolve_source,
)

__all__ = [
    "AUDIT_FILES",
    "ArchiveTooLarge",
    "AuditResult",
    "Limits",
    "RunSummary",
    "audit",
    "write_audit",
]

#: The files ``write_audit`` writes into its directory.
AUDIT_FILES = ("audit.csv", "audit.html")
# A run directory with more child run directories than this is not pre-grouped with them
# (a sweep nested under a run); children that turn out to be its add_scalars series are still
# merged after the first pass.
_MAX_PREGROUPED_CHILDREN = 32
_FLOAT_COLUMNS = ("duration_s", "best_val_loss", "final_train_loss", "final_val_loss")


@dataclass
class AuditStats:
    """What an audit did.

    Attributes:
        sources: Sources audited.
        run_dirs: Run directories found.
        units: Units (groups of run directories holding whole logical runs).
        cached_units: Units whose summaries came from the cache.
        audited_units: Units read and diagnosed.
        seconds: Wall time of the audit.
    """

    sources: int = 0
    run_dirs: int = 0
    units: int = 0
    cached_units: int = 0
    audited_units: int = 0
    seconds: float = 0.0


@dataclass
class AuditResult:
    """The summaries of every logical run of every source.

    Attributes:
        sources: The sources, in the order given.
        runs: ``(source display name, summary)`` per logical run, by source then run name.
        warnings: Problems not tied to a run that was read (members skipped while listing...).
        stats: Counts and timing.
        cache_dir: The cache the audit used (None without one); :func:`write_audit` keeps the
            files it writes there too, so writing an unchanged result again renders nothing.
    """

    sources: list[SourceSpec]
    runs: list[tuple[str, RunSummary]]
    warnings: list[ReadWarning] = field(default_factory=list)
    stats: AuditStats = field(default_factory=AuditStats)
    cache_dir: Path | None = None

    def hparam_names(self) -> list[str]:
        """Every hyperparameter name, in first-seen order."""
        names: dict[str, None] = {}
        for _, summary in self.runs:
            for name in summary.hparams:
                names.setdefault(name, None)
        return list(names)

    def frame(self) -> pd.DataFrame:
        """One row per logical run: :data:`AUDIT_COLUMNS` then ``hparam:<name>`` columns.

        Losses keep NaN for a curve that ended in NaN and None when the run has no such curve.
        """
        names = self.hparam_names()
        rows = []
        for source, summary in self.runs:
            row = summary.row(source=source)
            for name in names:
                row[HPARAM_PREFIX + name] = summary.hparams.get(name)
            rows.append(row)
        columns = [*AUDIT_COLUMNS, *(HPARAM_PREFIX + n for n in names)]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("errors", "warnings", "infos", "integrity_problems"):
            frame[column] = frame[column].fillna(0).astype("int64")
        for column in (
            "first_step",
            "last_step",
            "best_val_step",
            "steps",
            "scalar_tags",
            "histogram_tags",
            "files",
            "bytes",
        ):
            frame[column] = pd.array(
                [None if v is None or _is_nan(v) else int(v) for v in frame[column]],
                dtype="Int64",
            )
        for column in _FLOAT_COLUMNS:
            frame[column] = pd.Series(
                [None if v is None else float(v) for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
        return frame


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------------------------------------
# Planning units


def _split_name(name: str) -> tuple[str, str]:
    if "/" not in name:
        return ".", name
    parent, last = name.rsplit("/", 1)
    return parent, last


def plan_units(runs: Sequence[RunEntry]) -> list[list[RunEntry]]:
    """Group run directories so that each group holds whole logical runs, as far as names tell.

    Keras ``train``/``validation`` splits and ``add_hparams`` timestamp directories always join
    their parent; other children join a parent that is itself a run (``add_scalars`` series),
    unless it has very many. The grouping is checked after reading (see :func:`audit`).

    Args:
        runs: A source's run directories, in name order.

    Returns:
        Units in the order their first run appears in ``runs``.
    """
    names = {run.name for run in runs}
    children: dict[str, int] = {}
    for run in runs:
        if run.name != ".":
            parent = _split_name(run.name)[0]
            if parent in names:
                children[parent] = children.get(parent, 0) + 1
    leader: dict[str, str] = {}

    def find(name: str) -> str:
        root = name
        while leader.get(root, root) != root:
            root = leader[root]
        while leader.get(name, name) != root:  # path compression
            leader[name], name = root, leader[name]
        return root

    for run in runs:
        if run.name == ".":
            continue
        parent, last = _split_name(run.name)
        joins = last in SPLIT_DIRS or bool(TIMESTAMP_DIR.match(last))
        if not joins and parent in names:
            joins = children.get(parent, 0) <= _MAX_PREGROUPED_CHILDREN
        if joins:
            a, b = find(run.name), find(parent)
            if a != b:
                leader[a] = b
    groups: dict[str, list[RunEntry]] = {}
    for run in runs:
        groups.setdefault(find(run.name), []).append(run)
    return list(groups.values())


def _unit_order(unit: list[RunEntry]) -> tuple[int, list[str]]:
    """Archive order: where the unit's first member lies."""
    locators = [f.locator for run in unit for f in run.files]
    numeric = [loc for loc in locators if isinstance(loc, int)]
    return (min(numeric) if numeric else 0, unit[0].name.split("/"))


# ---------------------------------------------------------------------------------------------
# The audit


class _SourceState:
    """One source during an audit: its listing, units, cache and results."""

    def __init__(self, spec: SourceSpec, listing: SourceListing, cache: SourceCache | None) -> None:
        self.spec = spec
        self.listing = listing
        self.cache = cache
        self.units: list[tuple[str, list[RunEntry]]] = []
        self.results: dict[str, list[dict[str, Any]]] = {}


def audit(
    paths: Sequence[str | PathLike[str]],
    *,
    jobs: int | None = None,
    executor: Backend = "local",
    scheduler: str | None = None,
    cache_dir: str | PathLike[str] | None = None,
    use_cache: bool = True,
    limits: Limits | None = None,
    config: Any = None,
    progress: bool | None = False,
    warn: Any = None,
) -> AuditResult:
    """Audit every logical run of directories, archives and URLs.

    Args:
        paths: Directories (or event files), ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archives, or
            fsspec URLs (``s3://...``, ``gs://...``, ``file://...``) of either.
        jobs: Worker processes (default: every core); ``1`` audits in this process.
        executor: ``local`` (process pool) or ``dask``.
        scheduler: Address of a running Dask scheduler (implies ``executor="dask"``).
        cache_dir: Cache directory (default ``$XDG_CACHE_HOME/tbreport`` or
            ``~/.cache/tbreport``).
        use_cache: Read and write the cache.
        limits: Caps on what archives may expand to.
        config: Diagnosis configuration (as for ``tbreport.diagnose``).
        progress: Show a progress bar on stderr (None: when stderr is a terminal).
        warn: Called with a message for things the user should know (e.g. cache trouble).

    Returns:
        An :class:`AuditResult`.

    Raises:
        InputError: A path does not exist or cannot be read.
        ArchiveTooLarge: An archive expands beyond ``limits.max_total_bytes``.
    """
    started = time.perf_counter()
    limits = limits or Limits()
    if not paths:
        raise InputError("give at least one directory, archive or URL to audit")
    if jobs is not None and jobs < 1:
        raise InputError(f"jobs must be at least 1 (got {jobs})")
    workers = jobs or default_jobs()
    backend: Backend = "dask" if scheduler else executor
    if backend not in ("local", "dask"):
        raise InputError(f"unknown executor {executor!r}; use 'local' or 'dask'")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_used = cache_root if use_cache and _cache_usable(cache_root, warn) else None

    specs = _unique_sources(paths)
    settings = settings_fingerprint(config)

    stats = AuditStats(sources=len(specs))
    states = [_plan_source(spec, cache_used, limits, settings, stats) for spec in specs]
    if stats.run_dirs == 0:
        raise _nothing_found(paths, states)

    try:
        _run(
            states,
            stats,
            workers=workers,
            backend=backend,
            scheduler=scheduler,
            config=config,
            settings=settings,
            progress=progress,
        )
    finally:
        close_readers()  # archives this process opened for in-process units
    runs, warnings = _assemble(states)
    stats.seconds = time.perf_counter() - started
    return AuditResult(
        sources=specs, runs=runs, warnings=warnings, stats=stats, cache_dir=cache_used
    )


def _unique_sources(paths: Sequence[str | PathLike[str]]) -> list[SourceSpec]:
    """The sources ``paths`` name, each once."""
    specs: list[SourceSpec] = []
    for path in paths:
        spec = resolve_source(str(path))
        if all((s.kind, s.location) != (spec.kind, spec.location) for s in specs):
            specs.append(spec)
    return specs


def _nothing_found(paths: Sequence[str | PathLike[str]], states: list[_SourceState]) -> InputError:
    """The error for sources without a single event file, with the first reasons why."""
    shown = ", ".join(str(p) for p in paths[:3])
    problems = [w for s in states for w in s.listing.warnings if w.kind != "no-runs"][:3]
    detail = f" ({'; '.join(str(w) for w in problems)})" if problems else ""
    return InputError(f"no TensorBoard event files found in {shown}{detail}")


def _cache_usable(cache_root: Path, warn: Any) -> bool:
    """Whether the cache directory exists or could be made (else ``warn`` says so)."""
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if warn:
            warn(f"cache disabled: cannot create {cache_root} ({exc.strerror or exc})")
        return False
    return True


def _plan_source(
    spec: SourceSpec,
    cache_root: Path | None,
    limits: Limits,
    settings: str,
    stats: AuditStats,
) -> _SourceState:
    """A source's listing (from the cache when it has one) and its units of work, keyed for
    the cache; ``stats`` counts them."""
    cache = SourceCache(cache_root, spec) if cache_root is not None else None
    listing = cache.load_listing(limits) if cache is not None else None
    if listing is None:
        listing = list_source(spec, limits=limits)
        if cache is not None:
            cache.store_listing(listing, limits)
    state = _SourceState(spec, listing, cache)
    units = plan_units(listing.runs)
    units.sort(key=_unit_order)
    state.units = [(unit_key(spec, unit, settings=settings), unit) for unit in units]
    stats.run_dirs += len(listing.runs)
    stats.units += len(units)
    if not listing.runs:
        listing.warnings.append(
            ReadWarning(
                kind="no-runs",
                path=spec.display,
                message="no TensorBoard event files found; nothing to audit here",
            )
        )
    return state


def _run(
    states: list[_SourceState],
    stats: AuditStats,
    *,
    workers: int,
    backend: Backend,
    scheduler: str | None,
    config: Any,
    settings: str,
    progress: bool | None,
) -> None:
    """Take what the cache has, audit the rest, merge logical runs that were split."""
    try:
        _audit_states(
            states,
            stats,
            workers=workers,
            backend=backend,
            scheduler=scheduler,
            config=config,
            settings=settings,
            progress=progress,
        )
    except BaseException:
        # What was audited stays cached, even when the audit is interrupted.
        for state in states:
            if state.cache is not None:
                state.cache.flush(final=False)
        raise
    for state in states:
        if state.cache is not None:
            state.cache.flush()


def _audit_states(
    states: list[_SourceState],
    stats: AuditStats,
    *,
    workers: int,
    backend: Backend,
    scheduler: str | None,
    config: Any,
    settings: str,
    progress: bool | None,
) -> None:
    with Progress(total=stats.run_dirs, description="auditing runs", enabled=progress) as bar:
        batches: list[Batch] = []
        for state in states:
            todo = []
            for key, unit in state.units:
                cached = state.cache.get(key) if state.cache is not None else None
                if cached is not None:
                    state.results[key] = cached
                    stats.cached_units += 1
                    bar.advance(len(unit))
                else:
                    todo.append((key, unit))
            batches += batches_of(todo, state.spec, workers=workers, config=config)
        by_spec = {state.spec: state for state in states}
        for batch, result in run_batches(
            batches, jobs=workers, backend=backend, scheduler=scheduler
        ):
            _take_result(by_spec[batch.spec], result)
            stats.audited_units += len(batch.units)
            bar.advance(batch.run_dirs)
        for state in states:
            stats.audited_units += _merge_split_runs(state, config=config, settings=settings)


def _take_result(state: _SourceState, result: BatchResult) -> None:
    for key, summaries in result.summaries.items():
        if state.cache is not None and key not in result.failed:
            summaries = state.cache.put(key, summaries)
        state.results[key] = summaries


def _merge_split_runs(state: _SourceState, *, config: Any, settings: str) -> int:
    """Re-audit together units whose runs turned out to share a logical run; returns how many
    merged units were audited."""
    producers: dict[str, list[int]] = {}
    for index, (key, _) in enumerate(state.units):
        for summary in state.results.get(key, []):
            producers.setdefault(summary["run"], []).append(index)
    leader = list(range(len(state.units)))

    def find(i: int) -> int:
        while leader[i] != i:
            leader[i] = leader[leader[i]]
            i = leader[i]
        return i

    split = False
    for indices in producers.values():
        for other in indices[1:]:
            a, b = find(indices[0]), find(other)
            if a != b:
                leader[b] = a
                split = True
    if not split:
        return 0
    groups: dict[int, list[int]] = {}
    for index in range(len(state.units)):
        groups.setdefault(find(index), []).append(index)
    merged_units: list[tuple[str, list[RunEntry]]] = []
    audited = 0
    for members in groups.values():
        if len(members) == 1:
            merged_units.append(state.units[members[0]])
            continue
        runs = sorted(
            (run for i in members for run in state.units[i][1]),
            key=lambda r: tuple(r.name.split("/")),
        )
        key = unit_key(state.spec, runs, settings=settings)
        for i in members:
            state.results.pop(state.units[i][0], None)
        cached = state.cache.get(key) if state.cache is not None else None
        if cached is not None:
            state.results[key] = cached
        else:
            _take_result(state, audit_batch(Batch(state.spec, [(key, runs)], config)))
            audited += 1
        merged_units.append((key, runs))
    state.units = merged_units
    return audited


def _assemble(states: list[_SourceState]) -> tuple[list[tuple[str, RunSummary]], list[ReadWarning]]:
    runs: list[tuple[str, RunSummary]] = []
    leftover: list[ReadWarning] = []
    for state in states:
        summaries = [
            RunSummary.from_dict(data)
            for key, _ in state.units
            for data in state.results.get(key, [])
        ]
        summaries.sort(key=lambda s: tuple(s.run.split("/")))
        owner: dict[str, RunSummary] = {}
        for summary in summaries:
            for run_dir in summary.run_dirs:
                owner[run_dir] = summary
        for warning in state.listing.warnings:
            target = owner.get(warning.run) if warning.run is not None else None
            if target is not None:
                target.problems.insert(0, problem_dict(warning))
            else:
                leftover.append(warning)
        runs.extend((state.spec.display, summary) for summary in summaries)
    return runs, leftover


def write_audit(
    result: AuditResult, directory: str | PathLike[str], *, force: bool = False
) -> list[Path]:
    """Write ``audit.csv`` and ``audit.html`` into ``directory``.

    When the audit used a cache, the files are kept there too, by a hash of the result: writing
    an unchanged result again (a re-audit of the same runs) renders nothing.

    Args:
        result: What :func:`audit` returned.
        directory: The output directory (created when missing).
        force: Write into a directory holding files tbreport did not write.

    Returns:
        The files written.

    Raises:
        InputError: ``directory`` is a file, or holds files tbreport did not write and
            ``force`` is not set.
    """
    target = check_output_dir(directory, known_names=AUDIT_FILES, force=force)
    target.mkdir(parents=True, exist_ok=True)
    kept = OutputCache.of(result.cache_dir, result) if result.cache_dir is not None else None
    files = kept.load() if kept is not None else None
    if files is None:
        files = _render_files(result)
        if kept is not None:
            kept.store(files)
    csv_path = atomic_write_bytes(target / "audit.csv", files.csv)
    html_path = atomic_write_text(target / "audit.html", files.page(volatile_values(result)))
    mark_output_dir(target, generator=f"tbreport {__version__} audit")
    return [csv_path, html_path]


def _render_files(result: AuditResult) -> AuditFiles:
    # The report package (jinja2 templates) only when files are rendered: audit workers, which
    # import this package, never need it.
    from tbreport.audit.render import render_audit_page
    from tbreport.report.csvsafe import csv_text

    frame = result.frame()
    for column in _FLOAT_COLUMNS:
        # NaN (the run ended in NaN) must not read as "no value" (an empty cell).
        frame[column] = [_csv_float(v) for v in frame[column]]
    placeholders = AuditFiles.new_placeholders()
    return AuditFiles(
        csv=csv_text(frame).encode("utf-8"),
        html=render_audit_page(result, volatile=placeholders),
        placeholders=placeholders,
    )


def _csv_float(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value
