"""``tbreport.diagnose``: run the selected detectors over every logical run of a ReadResult.

The result is plain data (:class:`Diagnosis`, a list of :class:`~tbreport.model.Finding` with the
per-run outcome attached); the presentation layer decides how it looks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from tbreport.diagnosis.config import Config, as_config
from tbreport.diagnosis.detectors import (
    ALL_DETECTORS,
    Detector,
    RunData,
    SkipDetector,
    find_detector,
    select_detectors,
)
from tbreport.diagnosis.detectors.base import ScalarArrays
from tbreport.diagnosis.roles import RolePatterns
from tbreport.diagnosis.semantics import RUN_KINDS
from tbreport.errors import ConfigError
from tbreport.model import Finding, ReadWarning, Severity
from tbreport.reading.reader import read as read_logdir
from tbreport.reading.result import ReadResult

#: 3: findings carry ``observed``, ``limit``, ``step_range`` and ``marks`` (typed, see
#: :class:`~tbreport.model.Finding`); ``step_range`` left ``evidence``.
SCHEMA_VERSION = 3
FINDING_COLUMNS = [
    "run",
    "code",
    "name",
    "severity",
    "message",
    "step",
    "evidence",
    "advice",
    "tags",
    "problem",
    "strength",
    "observed",
    "limit",
    "step_start",
    "step_end",
]


@dataclass(frozen=True)
class SkippedDetector:
    """A detector that could not judge a run, and why.

    Attributes:
        code: Detector code.
        name: Detector name.
        reason: Why, e.g. ``"no tag matched role val_loss"``.
    """

    code: str
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class RunDiagnosis:
    """The outcome of the diagnosis of one logical run.

    Attributes:
        run: Logical run path relative to the logdir.
        status: The worst finding's severity (``"error"``, ``"warning"``, ``"info"``);
            otherwise ``"healthy"`` when the detectors that matter for the run's kind ran,
            and ``"not-assessed"`` when none of them could (no data, no loss or reward).
        findings: The run's findings, worst first.
        skipped: Detectors that could not judge the run.
        roles: Role -> the tags it resolved to in this run.
        kind: ``"supervised"``, ``"reinforcement-learning"``, ``"adversarial"`` or
            ``"unknown"``.
        kind_evidence: The tags that decided the kind.
        assessed: Whether a detector that matters for the run's kind ran.
        reason: Why the run is not assessed (empty when it is).
    """

    run: str
    status: str
    findings: tuple[Finding, ...]
    skipped: tuple[SkippedDetector, ...]
    roles: Mapping[str, tuple[str, ...]]
    kind: str = "unknown"
    kind_evidence: str = ""
    assessed: bool = True
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The run as an item of the JSON document's ``runs`` list."""
        return {
            "run": self.run,
            "status": self.status,
            "kind": self.kind,
            "assessed": self.assessed,
            "reason": self.reason,
            "skipped": [s.to_dict() for s in self.skipped],
        }


class Diagnosis(list[Finding]):
    """The findings of a diagnosis (ordered by run, then severity, then step), plus per-run
    outcomes.

    Attributes:
        runs: One :class:`RunDiagnosis` per logical run, in run order.
        read: The ReadResult that was diagnosed.
        detectors: The codes of the detectors that ran.
        views: Logical run -> the per-run view the detectors judged (curves, histograms, tag
            meanings, roles, kind), built once: the report and the audit draw from it too.
    """

    def __init__(
        self,
        findings: list[Finding] | tuple[Finding, ...] = (),
        *,
        runs: list[RunDiagnosis] | None = None,
        read: ReadResult | None = None,
        detectors: tuple[str, ...] = (),
        views: Mapping[str, RunData] | None = None,
    ) -> None:
        super().__init__(findings)
        self.runs: list[RunDiagnosis] = list(runs or [])
        self.read = read
        self.detectors = detectors
        self.views: dict[str, RunData] = dict(views or {})

    def __repr__(self) -> str:
        counts = self.counts()
        return (
            f"Diagnosis(runs={len(self.runs)}, findings={len(self)}, "
            f"error={counts['error']}, warning={counts['warning']}, info={counts['info']})"
        )

    def counts(self) -> dict[str, int]:
        """Number of findings per severity."""
        out = {s.value: 0 for s in Severity}
        for f in self:
            out[Severity(f.severity).value] += 1
        return out

    def worst(self) -> Severity | None:
        """The worst severity among the findings, or None."""
        return max((Severity(f.severity) for f in self), key=lambda s: s.rank, default=None)

    def to_frame(self, *, as_text: bool = False) -> pd.DataFrame:
        """One row per finding: ``run, code, name, severity, message, step, evidence, advice,
        tags, problem, strength, observed, limit, step_start, step_end`` (the last two: the
        finding's ``step_range``).

        Args:
            as_text: ``evidence`` as JSON text and ``tags`` comma-separated, for CSV; by default
                ``evidence`` stays a dict and ``tags`` a tuple, to work with in a notebook.
        """
        rows = [
            {
                "run": f.run,
                "code": f.code,
                "name": f.name,
                "severity": Severity(f.severity).value,
                "message": f.message,
                "step": f.step,
                "evidence": (
                    json.dumps(dict(f.evidence), sort_keys=True) if as_text else dict(f.evidence)
                ),
                "advice": f.advice,
                "tags": ",".join(f.tags) if as_text else tuple(f.tags),
                "problem": f.problem,
                "strength": f.strength,
                "observed": f.observed,
                "limit": f.limit,
                "step_start": f.step_range[0] if f.step_range else None,
                "step_end": f.step_range[1] if f.step_range else None,
            }
            for f in self
        ]
        frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
        for column in ("step", "step_start", "step_end"):
            frame[column] = frame[column].astype("Int64")
        for column in ("strength", "observed", "limit"):
            frame[column] = frame[column].astype("float64")
        return frame

    def to_json_dict(self, *, logdir: str) -> dict[str, Any]:
        """The ``tbreport check --format json`` document (``schema_version`` 3)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "logdir": logdir,
            "runs": [r.to_dict() for r in self.runs],
            "findings": [f.to_dict() for f in self],
        }


# -- engine -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    detector: Detector
    params: Any
    #: Declared severity -> the configured one (empty: the detector's own levels).
    severities: Mapping[Severity, Severity] = dataclasses.field(default_factory=dict)


def _severity(value: Any, cls: type[Detector], where: str) -> Severity:
    try:
        return Severity(str(value).strip().lower())
    except ValueError:
        raise ConfigError(
            f"detector {cls.code} ({cls.name}): {where} must be error, warning or info, "
            f"got {value!r}"
        ) from None


def severity_override(cls: type[Detector], value: Any) -> dict[Severity, Severity]:
    """What a configured ``severity`` of a detector means: declared level -> configured level.

    A single level (``severity = "error"``) is taken only by a detector that raises one level:
    for a detector that raises several, one level for all would erase the difference it
    draws, so it is refused and a table per level is asked for
    (``severity = { warning = "info", error = "warning" }``). A table names levels the
    detector declares; the ones it leaves out keep their severity.

    Raises:
        ConfigError: An unknown severity, a level the detector does not raise, or a single
            level for a detector that raises several.
    """
    declared = ", ".join(map(str, cls.severities))
    if isinstance(value, Mapping):
        mapping = {}
        for level, target in value.items():
            source = _severity(level, cls, "a severity table's key")
            if source not in cls.severities:
                raise ConfigError(
                    f"detector {cls.code} ({cls.name}) never raises {source} (it raises "
                    f"{declared}), so severity.{level} maps nothing"
                )
            mapping[source] = _severity(target, cls, f"severity.{level}")
        return mapping
    target = _severity(value, cls, "severity")
    if len(cls.severities) > 1:
        example = ", ".join(f'{s} = "{s}"' for s in cls.severities)
        raise ConfigError(
            f"detector {cls.code} ({cls.name}) raises {declared}: one severity for all would "
            f"make them the same; map each level instead, e.g. severity = {{ {example} }}"
        )
    return {cls.severities[0]: target}


def _plan(config: Config) -> list[_Plan]:
    detectors = select_detectors(
        select=config.select, extend_select=config.extend_select, ignore=config.ignore
    )
    overrides: dict[type[Detector], dict[str, Any]] = {}
    for key, values in config.detectors.items():
        overrides.setdefault(find_detector(key), {}).update(values)
    plans = []
    for cls in detectors:
        values = dict(overrides.get(cls, {}))
        severity = values.pop("severity", None)
        mapping = severity_override(cls, severity) if severity is not None else {}
        plans.append(_Plan(cls(), cls.make_params(values), mapping))
    return plans


def _histograms_by_logical_run(read: ReadResult) -> dict[str, pd.DataFrame]:
    histograms = read.histograms
    if histograms is None or histograms.empty:
        return {}
    logical = read.logical_histograms() if hasattr(read, "logical_histograms") else histograms
    return {str(run): frame for run, frame in logical.groupby("run", observed=True, sort=False)}


def _warnings_by_logical_run(
    warnings: list[ReadWarning], run_to_logical: Mapping[str, str]
) -> dict[str, list[ReadWarning]]:
    out: dict[str, list[ReadWarning]] = {}
    for warning in warnings:
        if warning.run is None:
            continue
        logical = run_to_logical.get(warning.run, warning.run)
        out.setdefault(logical, []).append(warning)
    return out


def iter_run_data(read: ReadResult, *, patterns: RolePatterns | None = None) -> Iterator[RunData]:
    """One :class:`RunData` per logical run of ``read``, in inventory order.

    Args:
        read: What ``tbreport.read`` returned.
        patterns: Tag-role patterns; the defaults when None.
    """
    patterns = patterns or RolePatterns.build()
    inventory = read.runs
    scalars = read.logical_scalars()
    # Each run's rows as a slice of one frame whose tags became strings once, and its tag codes
    # for listing tags: no pandas group per run, no iteration over string values.
    tag_column = scalars["tag"]
    if not isinstance(tag_column.dtype, pd.CategoricalDtype):
        tag_column = tag_column.astype("category")
    tag_codes = tag_column.cat.codes.to_numpy()
    tag_names = [str(t) for t in tag_column.cat.categories]
    # Tags stay categorical: turning millions of rows into strings cost more than diagnosing.
    columns = scalars[["tag", "step", "wall_time", "value"]].assign(tag=tag_column)
    steps = columns["step"].to_numpy(np.int64)
    values = columns["value"].to_numpy(np.float64)
    wall_times = columns["wall_time"].to_numpy(np.float64)
    # Detectors cut curves from array slices; a run's frame is built only if one asks for it.
    rows_of_run = dict(_rows_by_run(scalars["run"]))
    histograms_by_run = _histograms_by_logical_run(read)
    run_to_logical, logical_runs, members_of = _logical_layout(
        inventory, [*rows_of_run, *histograms_by_run]
    )
    warnings_by_run = _warnings_by_logical_run(list(read.warnings or []), run_to_logical)
    empty_scalars = _empty_scalars()
    no_histograms = read.histograms.iloc[0:0] if read.histograms is not None else pd.DataFrame()
    for logical in logical_runs:
        rows = rows_of_run.get(logical)
        run_codes = tag_codes[rows] if rows is not None else tag_codes[:0]
        run_histograms = histograms_by_run.get(logical)
        if run_histograms is None:
            run_histograms = no_histograms
        # Tags in written order and their counts from codes: iterating the values of a string
        # column one by one cost more than all the detectors.
        scalar_tags, counts = _codes_in_order(run_codes, tag_names)
        histogram_tags = _tags_in_order(run_histograms["tag"])[0] if len(run_histograms) else []
        if len(run_histograms):
            run_histograms = run_histograms.assign(tag=run_histograms["tag"].astype(str))
        semantics, roles = patterns.describe(
            scalar_tags=scalar_tags,
            histogram_tags=histogram_tags,
            counts=counts,
        )
        members = (
            inventory.iloc[_as_slice(members_of.get(logical, []))]
            if inventory is not None and len(inventory)
            else None
        )
        arrays = None
        run_scalars: pd.DataFrame | Callable[[], pd.DataFrame] = empty_scalars
        if rows is not None:
            arrays = ScalarArrays(
                codes=run_codes,
                names=tag_names,
                steps=steps[rows],
                values=values[rows],
                wall_times=wall_times[rows],
            )
            run_scalars = functools.partial(_frame_rows, columns, rows)
        yield RunData(
            run=logical,
            scalars=run_scalars,
            arrays=arrays,
            histograms=run_histograms,
            roles=roles,
            warnings=warnings_by_run.get(logical, []),
            inventory=members,
            semantics=semantics,
        )


def _logical_layout(
    inventory: pd.DataFrame | None, seen_runs: list[str]
) -> tuple[dict[str, str], list[str], dict[str, list[int]]]:
    """Each run's logical run, the logical runs in inventory order (else in ``seen_runs``
    order), and each logical run's member positions in the inventory."""
    if inventory is None or not len(inventory):
        return {}, list(dict.fromkeys(seen_runs)), {}
    logical_names = inventory["logical_run"].astype(str)
    run_to_logical = dict(zip(inventory["run"].astype(str), logical_names, strict=True))
    members_of: dict[str, list[int]] = {}
    for position, logical in enumerate(logical_names.tolist()):
        members_of.setdefault(logical, []).append(position)
    return run_to_logical, list(dict.fromkeys(logical_names)), members_of


def _empty_scalars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tag": pd.Series([], dtype=object),
            "step": pd.Series([], dtype="int64"),
            "wall_time": pd.Series([], dtype="float64"),
            "value": pd.Series([], dtype="float64"),
        }
    )


def _frame_rows(frame: pd.DataFrame, rows: slice | np.ndarray) -> pd.DataFrame:
    return frame.iloc[rows]


def _rows_by_run(runs: pd.Series) -> Iterator[tuple[str, slice | np.ndarray]]:
    """Each run's row positions (a slice when its rows are contiguous, as the reader writes them),
    runs in order of first appearance."""
    codes, uniques = pd.factorize(runs, sort=False)
    if len(codes) and (np.diff(codes) >= 0).all():
        bounds = np.searchsorted(codes, np.arange(len(uniques) + 1))
        for i, run in enumerate(uniques):
            yield str(run), slice(int(bounds[i]), int(bounds[i + 1]))
        return
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for i, run in enumerate(uniques):
        yield str(run), order[bounds[i] : bounds[i + 1]]


def _as_slice(positions: list[int]) -> slice | list[int]:
    """Consecutive positions as a slice (``iloc`` then returns a view, not a copy)."""
    if positions and positions[-1] - positions[0] == len(positions) - 1:
        return slice(positions[0], positions[-1] + 1)
    return positions


def _codes_in_order(codes: np.ndarray, names: list[str]) -> tuple[list[str], dict[str, int]]:
    """The distinct tags of category codes in order of first appearance, and their counts."""
    present, first, counts = np.unique(codes[codes >= 0], return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    tags = [names[i] for i in present[order].tolist()]
    return tags, dict(zip(tags, counts[order].tolist(), strict=True))


def _tags_in_order(column: pd.Series) -> tuple[list[str], dict[str, int]]:
    """The distinct tags of a column in order of first appearance, and how often each occurs."""
    codes, uniques = pd.factorize(column, sort=False)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    tags = [str(t) for t in uniques]
    return tags, dict(zip(tags, counts.tolist(), strict=True))


MEANING_COLUMNS = [
    "run",
    "kind",
    "tag",
    "roles",
    "split",
    "quantity",
    "goal",
    "granularity",
    "component",
    "points",
    "evidence",
]


def describe_meanings(
    read: ReadResult,
    *,
    config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """What every scalar tag of every logical run was taken to mean, one row per tag.

    Columns: ``run, kind, tag, roles, split, quantity, goal, granularity, component, points,
    evidence``; ``roles`` names the roles the tag plays (``train_loss``, ...), comma-separated,
    so a user can see what the detectors judge and correct it with ``--role``.

    Args:
        read: What ``tbreport.read`` returned.
        config: As for :func:`diagnose` (its ``roles`` overrides apply).
    """
    patterns = RolePatterns.build(as_config(config).roles)
    rows = []
    for run in iter_run_data(read, patterns=patterns):
        played: dict[str, list[str]] = {}
        for role, tags in run.roles.items():
            for tag in tags:
                for part in run.semantics.loss_sum.get(role, (tag,)) if run.semantics else (tag,):
                    played.setdefault(part, []).append(role)
        counts = run.scalars["tag"].value_counts(sort=False)
        counts = counts[counts > 0]  # a categorical column counts every category
        for tag, meaning in run.meanings.items():
            rows.append(
                {
                    "run": run.run,
                    "kind": run.kind,
                    "tag": tag,
                    "roles": ",".join(played.get(tag, ())),
                    "split": meaning.split,
                    "quantity": meaning.quantity,
                    "goal": meaning.goal,
                    "granularity": meaning.granularity,
                    "component": meaning.component,
                    "points": int(counts.get(tag, 0)),
                    "evidence": meaning.evidence,
                }
            )
    return pd.DataFrame(rows, columns=MEANING_COLUMNS)


def diagnose_run(run: RunData, plans: list[_Plan]) -> RunDiagnosis:
    """Run the planned detectors on one logical run."""
    findings: list[Finding] = []
    skipped: list[SkippedDetector] = []
    for plan in plans:
        detector = plan.detector
        missing = detector.missing_roles(run)
        if missing:
            skipped.append(SkippedDetector(detector.code, detector.name, missing))
            continue
        try:
            produced = list(detector.check(run, plan.params))
        except SkipDetector as exc:
            skipped.append(SkippedDetector(detector.code, detector.name, str(exc)))
            continue
        except Exception as exc:  # a detector bug must not hide the other detectors' results
            if os.environ.get("TBREPORT_DEBUG"):
                raise
            skipped.append(
                SkippedDetector(
                    detector.code, detector.name, f"errored: {type(exc).__name__}: {exc}"
                )
            )
            continue
        if plan.severities:
            produced = [
                dataclasses.replace(f, severity=plan.severities.get(f.severity, f.severity))
                for f in produced
            ]
        findings.extend(produced)
    findings, explained = _drop_explained(findings, plans)
    skipped.extend(explained)
    findings.sort(key=_finding_order)
    worst = max((Severity(f.severity) for f in findings), key=lambda s: s.rank, default=None)
    reason = _unassessed_reason(run, plans, skipped)
    if worst is not None and worst.rank >= Severity.WARNING.rank:
        status = worst.value
    elif reason:
        status = NOT_ASSESSED
    else:
        status = "healthy" if worst is None else worst.value
    return RunDiagnosis(
        run=run.run,
        status=status,
        findings=tuple(findings),
        skipped=tuple(skipped),
        roles=dict(run.roles),
        kind=run.kind,
        kind_evidence=run.semantics.kind_evidence if run.semantics is not None else "",
        assessed=not reason,
        reason=reason,
    )


NOT_ASSESSED = "not-assessed"
#: The detectors that must run before a run of each kind can be called healthy: the ones that
#: judge whether it learned at all (each declares the kinds it ``assesses``).
KEY_DETECTORS: Mapping[str, tuple[str, ...]] = {
    kind: tuple(d.name for d in ALL_DETECTORS if kind in d.assesses) for kind in RUN_KINDS
}


def _unassessed_reason(run: RunData, plans: list[_Plan], skipped: list[SkippedDetector]) -> str:
    """Why no detector that matters for the run's kind ran ("" when one did)."""
    if run.scalars.empty and len(run.histograms) == 0:
        return "the run has no scalar or histogram points"
    keys = KEY_DETECTORS.get(run.kind, ())
    if not keys:
        return (
            f"no detector judges {run.kind} runs"
            if run.kind != "unknown"
            else "no loss, metric or reward tag was recognised (teach one with --role)"
        )
    selected = {p.detector.name for p in plans}
    wanted = [k for k in keys if k in selected]
    if not wanted:
        return f"the detectors that judge {run.kind} runs ({', '.join(keys)}) were not selected"
    not_run = {s.name: s.reason for s in skipped if not s.reason.startswith("explained by")}
    if all(k in not_run for k in wanted):
        return "every key detector was skipped: " + "; ".join(f"{k}: {not_run[k]}" for k in wanted)
    return ""


def _drop_explained(
    findings: list[Finding], plans: list[_Plan]
) -> tuple[list[Finding], list[SkippedDetector]]:
    """Drop symptoms whose root cause was also found on the run (``Detector.explained_by``)."""
    by_name = {p.detector.name: p.detector for p in plans}
    found = {f.name: f for f in findings}
    kept: list[Finding] = []
    explained: list[SkippedDetector] = []
    for finding in findings:
        detector = by_name.get(finding.name)
        causes = [
            c
            for c in (detector.explained_by if detector else ())
            if c in found and c != finding.name
        ]
        if causes:
            cause = found[causes[0]]
            reason = f"explained by {cause.name} ({cause.code}), reported instead"
            if not any(s.code == finding.code for s in explained):
                explained.append(SkippedDetector(finding.code, finding.name, reason))
            continue
        kept.append(finding)
    return kept, explained


def _finding_order(f: Finding) -> tuple[int, bool, int, str]:
    return (-Severity(f.severity).rank, f.step is None, f.step or 0, f.code)


def diagnose(
    logdir_or_read_result: str | os.PathLike[str] | ReadResult,
    *,
    config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> Diagnosis:
    """Diagnose every logical run of a logdir (or of what ``tbreport.read`` returned).

    Args:
        logdir_or_read_result: A TensorBoard logdir, a single event file, or a ``ReadResult``.
        config: A :class:`~tbreport.diagnosis.config.Config`, a ``[tool.tbreport]`` mapping,
            a path to a ``pyproject.toml``/``tbreport.toml``, or None for the defaults (no file
            is read implicitly).

    Returns:
        A :class:`Diagnosis`: the findings as a list, ordered by run, then severity, then step,
        with ``.runs`` (per-run status, skipped detectors, resolved roles) and ``.to_frame()``.

    Raises:
        InputError: The logdir cannot be read.
        ConfigError: The configuration is invalid.

    Example:
        >>> diagnosis = tbreport.diagnose("runs/")          # doctest: +SKIP
        >>> diagnosis.to_frame()[["run", "name", "message"]]  # doctest: +SKIP
    """
    cfg = as_config(config)
    plans = _plan(cfg)
    patterns = RolePatterns.build(cfg.roles)
    if hasattr(logdir_or_read_result, "scalars") and hasattr(logdir_or_read_result, "runs"):
        read = cast(ReadResult, logdir_or_read_result)  # or an object with its frames
    else:
        read = read_logdir(logdir_or_read_result)
    views = {run.run: run for run in iter_run_data(read, patterns=patterns)}
    run_results = [diagnose_run(run, plans) for run in views.values()]
    run_results.sort(key=lambda r: r.run)
    findings = [f for r in run_results for f in r.findings]
    return Diagnosis(
        findings,
        runs=run_results,
        read=read,
        detectors=tuple(p.detector.code for p in plans),
        views=views,
    )


def logical_runs(
    read: ReadResult,
    *,
    config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> dict[str, RunData]:
    """The per-run views of a ReadResult without diagnosing it: logical run -> its curves,
    histograms, tag meanings, roles and kind (the user's ``config`` roles applied).

    Args:
        read: What ``tbreport.read`` returned.
        config: As for :func:`diagnose`.
    """
    patterns = RolePatterns.build(as_config(config).roles)
    return {run.run: run for run in iter_run_data(read, patterns=patterns)}
