"""Gather what the report shows about each logical run from a ReadResult and a Diagnosis.

This is the only place that walks the reading layer's DataFrames for the report: it groups rows
by logical run and tag once (no per-run filtering of the big frames) and hands the chart, summary
and template code plain per-run records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from tbreport.diagnosis import logical_runs
from tbreport.diagnosis.detectors.base import Curve
from tbreport.model import Finding, ReadWarning, Severity


@dataclass
class RunData:
    """Everything the report shows about one logical run.

    Attributes:
        run: Logical run name, relative to the logdir (untrusted text).
        anchor: HTML id of the run's section (``run-<n>``; never derived from the name).
        status: ``healthy``, ``info``, ``warning`` or ``error``.
        findings: The run's findings, in diagnosis order.
        skipped: Detectors that could not run, with their reasons.
        roles: Role -> tags, from the diagnosis (or resolved here when there is none).
        scalars: Tag -> curve, in first-seen order.
        histograms: Tag -> histogram rows sorted by step.
        text: Text summaries (``tag, step, wall_time, text``) sorted by tag then step.
        hparams: Hyperparameter name -> value (missing values left out).
        warnings: Reading warnings about this run's files.
        first_wall_time: Earliest wall time in the run, or NaN.
        last_wall_time: Latest wall time in the run, or NaN.
        kind: The run's kind from the diagnosis (``supervised``, ``reinforcement-learning``...).
        reason: Why the run could not be assessed (empty when it was).
    """

    run: str
    anchor: str
    status: str = "healthy"
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Any] = field(default_factory=list)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scalars: dict[str, Curve] = field(default_factory=dict)
    histograms: dict[str, pd.DataFrame] = field(default_factory=dict)
    text: pd.DataFrame | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    warnings: list[ReadWarning] = field(default_factory=list)
    first_wall_time: float = math.nan
    last_wall_time: float = math.nan
    kind: str = ""
    reason: str = ""

    def first_curve(self, role: str) -> Curve | None:
        """The curve of the first scalar tag of ``role``, if any."""
        for tag in self.roles.get(role, ()):
            if tag in self.scalars:
                return self.scalars[tag]
        return None

    def severity_counts(self) -> dict[str, int]:
        """Number of findings per severity value (``error``, ``warning``, ``info``)."""
        counts = {s.value: 0 for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
        for finding in self.findings:
            counts[Severity(finding.severity).value] += 1
        return counts


@dataclass
class ReportData:
    """The report's input, organised per logical run.

    Attributes:
        runs: One entry per logical run, in diagnosis order.
        global_warnings: Reading warnings not tied to a run.
        findings: Every finding, in diagnosis order.
    """

    runs: list[RunData]
    global_warnings: list[ReadWarning]
    findings: list[Finding]

    def by_name(self) -> dict[str, RunData]:
        """Run name -> run."""
        return {r.run: r for r in self.runs}


def _text_values(series: pd.Series) -> np.ndarray:
    return series.astype(object).to_numpy()


def _logical_map(inventory: pd.DataFrame | None) -> dict[str, tuple[str, str, str]]:
    """Run directory -> (logical run, sub-run kind, sub-run key)."""
    if inventory is None or inventory.empty or "run" not in inventory:
        return {}
    runs = _text_values(inventory["run"])
    logical = _text_values(inventory.get("logical_run", inventory["run"]))
    kinds = (
        _text_values(inventory["subrun_kind"])
        if "subrun_kind" in inventory
        else np.array([""] * len(runs), dtype=object)
    )
    keys = (
        _text_values(inventory["subrun_key"])
        if "subrun_key" in inventory
        else np.array([""] * len(runs), dtype=object)
    )
    return {
        str(r): (str(lr), str(k or ""), str(key or ""))
        for r, lr, k, key in zip(runs, logical, kinds, keys, strict=True)
    }


def _fold_tag(tag: str, kind: str, key: str) -> str:
    # The same renaming as ReadResult.logical_scalars(): Keras splits prefix the split name,
    # add_scalars series are suffixed to the main tag.
    if kind == "keras-split" and key:
        return f"{key}/{tag}"
    if kind == "add-scalars" and key:
        return f"{tag}/{key}"
    return tag


def fold_to_logical(frame: pd.DataFrame, inventory: pd.DataFrame | None) -> pd.DataFrame:
    """Rename ``run``/``tag`` of a per-directory frame (histograms, text) to logical runs and tags.

    Args:
        frame: A frame with ``run`` and ``tag`` columns, as the reader returns them.
        inventory: ``ReadResult.runs`` (``run, logical_run, subrun_kind, subrun_key``).

    Returns:
        A copy with object-typed ``run`` and ``tag`` columns naming logical runs and tags.
    """
    out = frame.copy()
    if out.empty:
        out["run"] = out["run"].astype(object)
        out["tag"] = out["tag"].astype(object)
        return out
    mapping = _logical_map(inventory)
    new_runs = np.empty(len(out), dtype=object)
    new_tags = np.empty(len(out), dtype=object)
    # Few distinct (run, tag) pairs, many rows: rename each pair once.
    for (run, tag), idx in _group_positions(out).items():
        logical, kind, key = mapping.get(run, (run, "", ""))
        new_runs[idx] = logical
        new_tags[idx] = _fold_tag(tag, kind, key)
    out["run"] = new_runs
    out["tag"] = new_tags
    return out


def _run_order(
    diagnosed: list[str],
    mapping: dict[str, tuple[str, str, str]],
    views: dict[str, Any],
    text: pd.DataFrame,
    hparams: dict[str, dict[str, Any]],
) -> list[str]:
    """Run order: the diagnosis order, then runs the diagnosis does not know about."""
    names = list(diagnosed)
    seen = set(names)
    extra_sources = [logical for logical, _, _ in mapping.values()]
    extra_sources.extend(views)
    if not text.empty:
        extra_sources.extend(str(r) for r in pd.unique(text["run"].astype(object)))
    extra_sources.extend(hparams)
    for name in extra_sources:
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _add_series(
    runs: dict[str, RunData],
    views: dict[str, Any],
    text: pd.DataFrame,
    hparams: dict[str, dict[str, Any]],
) -> None:
    """Every point of every tag and the histograms, from the per-run views the diagnosis judged
    (built once, with the user's roles) rather than from a regrouping here; texts and
    hyperparameters."""
    for name, view in views.items():
        if name not in runs:
            continue
        for tag in view.scalar_tags:
            runs[name].scalars[tag] = view.points(tag)
        for tag in view.histogram_tags:
            runs[name].histograms[tag] = view.histogram_rows(tag)
    if not text.empty:
        for run, rows in text.groupby("run", sort=False):
            runs[str(run)].text = rows.sort_values(["tag", "step"], kind="stable").reset_index(
                drop=True
            )
    for run, values_by_name in hparams.items():
        runs[run].hparams = values_by_name


def _place_warnings(
    warnings: Iterable[ReadWarning],
    mapping: dict[str, tuple[str, str, str]],
    runs: dict[str, RunData],
) -> list[ReadWarning]:
    """Each reading warning to its logical run; returns those of no run."""
    global_warnings: list[ReadWarning] = []
    for warning in warnings:
        warning_run = getattr(warning, "run", None)
        logical = (
            mapping.get(str(warning_run), (str(warning_run), "", ""))[0]
            if warning_run is not None
            else None
        )
        if logical in runs:
            runs[logical].warnings.append(warning)
        else:
            global_warnings.append(warning)
    return global_warnings


def _add_judgement(data: RunData, rd: Any | None, view: Any | None) -> None:
    """Status, findings, skipped detectors, roles and kind from the run's diagnosis (or only
    the roles and kind from its view, for a run the diagnosis does not know)."""
    if rd is not None:
        data.status = str(rd.status)
        data.findings = list(rd.findings)
        data.skipped = list(rd.skipped)
        data.roles = {str(k): tuple(v) for k, v in dict(rd.roles).items()}
        data.kind = str(getattr(rd, "kind", "") or "")
        data.reason = str(getattr(rd, "reason", "") or "")
    elif view is not None:
        data.roles = {str(k): tuple(v) for k, v in view.roles.items()}
        data.kind = view.kind


def _add_wall_times(data: RunData, walls: dict[str, tuple[float, float]]) -> None:
    """The run's first and last wall time: from the inventory, else from its curves."""
    data.first_wall_time, data.last_wall_time = walls.get(data.run, (math.nan, math.nan))
    if math.isnan(data.first_wall_time) and data.scalars:
        all_walls = np.concatenate([c.wall_times for c in data.scalars.values()])
        if np.isfinite(all_walls).any():
            data.first_wall_time = float(np.nanmin(all_walls))
            data.last_wall_time = float(np.nanmax(all_walls))


def _group_positions(frame: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    if frame is None or frame.empty:
        return {}
    # Grouped by two columns: the keys are (run, tag) pairs.
    grouped = cast(
        "dict[tuple[Any, Any], np.ndarray]",
        frame.groupby(["run", "tag"], observed=True, sort=False).indices,
    )
    return {(str(r), str(t)): idx for (r, t), idx in grouped.items()}


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _hparams_by_run(hparams: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if hparams is None or hparams.empty or "run" not in hparams:
        return {}
    out: dict[str, dict[str, Any]] = {}
    columns = [c for c in hparams.columns if c != "run"]
    hparams = _whole_numbers_as_integers(hparams, columns)
    for record in hparams.to_dict("records"):
        out[str(record["run"])] = {
            str(c): _plain(record[c]) for c in columns if _present(record[c])
        }
    return out


def _whole_numbers_as_integers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Float columns holding only whole numbers become integers (batch size 8, not 8.0).

    A run without the hyperparameter makes pandas store the column as float (NaN); the value
    people set was an integer.
    """
    frame = frame.copy()
    for column in columns:
        series = frame[column]
        if series.dtype.kind != "f":
            continue
        present = series.dropna()
        values = present.to_numpy(dtype=np.float64)
        if present.empty or not np.all(np.isfinite(values)):
            continue
        if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
            integers = [None if math.isnan(v) else int(v) for v in series.to_numpy(np.float64)]
            frame[column] = pd.Series(integers, index=series.index, dtype=object)
    return frame


def _wall_bounds(inventory: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
    if inventory is None or inventory.empty or "first_wall_time" not in inventory:
        return {}
    mapping = _logical_map(inventory)
    bounds: dict[str, tuple[float, float]] = {}
    firsts = inventory["first_wall_time"].to_numpy(dtype=np.float64, na_value=np.nan)
    lasts = inventory["last_wall_time"].to_numpy(dtype=np.float64, na_value=np.nan)
    for run, first, last in zip(_text_values(inventory["run"]), firsts, lasts, strict=True):
        logical = mapping.get(str(run), (str(run), "", ""))[0]
        lo, hi = bounds.get(logical, (math.nan, math.nan))
        bounds[logical] = (np.fmin(lo, first), np.fmax(hi, last))
    return bounds


def collect(read: Any, diagnosis: Any | None) -> ReportData:
    """Organise a ReadResult and its Diagnosis per logical run.

    Args:
        read: A ``ReadResult`` (``scalars``, ``histograms``, ``text``, ``hparams``, ``runs``,
            ``warnings``, ``logical_scalars()``).
        diagnosis: The ``Diagnosis`` of ``read``, or None to show data without findings (roles
            are then resolved with the default patterns).

    Returns:
        The per-run records the report renders.
    """
    inventory = getattr(read, "runs", None)
    text = fold_to_logical(read.text, inventory)
    hparams = _hparams_by_run(getattr(read, "hparams", None))
    walls = _wall_bounds(inventory)
    mapping = _logical_map(inventory)

    views = dict(getattr(diagnosis, "views", None) or {}) if diagnosis is not None else {}
    if not views:
        views = logical_runs(read)
    run_diagnoses: dict[str, Any] = (
        {str(rd.run): rd for rd in diagnosis.runs} if diagnosis is not None else {}
    )
    names = _run_order(list(run_diagnoses), mapping, views, text, hparams)
    runs = {name: RunData(run=name, anchor=f"run-{i}") for i, name in enumerate(names)}
    _add_series(runs, views, text, hparams)
    global_warnings = _place_warnings(getattr(read, "warnings", []) or [], mapping, runs)
    for name, data in runs.items():
        _add_judgement(data, run_diagnoses.get(name), views.get(name))
        _add_wall_times(data, walls)

    findings = list(diagnosis) if diagnosis is not None else []
    return ReportData(runs=list(runs.values()), global_warnings=global_warnings, findings=findings)
