"""The per-run work of an audit: read a few run directories, diagnose them, keep a summary.

A *unit* is a group of run directories that together hold whole logical runs (a Keras run's
``train/`` and ``validation/``, an ``add_hparams`` session and its parent...). Auditing a unit
reads its event files, assembles and combines them exactly as ``tbreport.read`` does, runs
``tbreport.diagnose`` and reduces everything to one :class:`RunSummary` per logical run: a few
numbers, the hyperparameters, the findings and the data-integrity problems. Points are dropped as
soon as the unit is done, so an audit's memory does not grow with the number of runs.

The units of a batch are read, diagnosed and summarised together (:func:`audit_units`): for
small runs a few pandas frames per unit cost more than their points. Each unit still gets the
summaries it gets alone, and they are split back per unit for the cache.

Everything here is plain, JSON-serialisable data: it travels between processes (pool or Dask
workers) and into the cache unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from tbreport.diagnosis import diagnose, logical_runs
from tbreport.diagnosis.detectors.base import Curve
from tbreport.diagnosis.metrics import best_point, distinct_steps, final_value
from tbreport.model import Finding, ReadWarning
from tbreport.reading.hparams import HparamRecord, single_run_row, wide_table
from tbreport.reading.inputs import read_entries, read_entries_with_records
from tbreport.reading.sources import RunEntry, SourceSpec

#: Columns every audit row has, before the ``hparam:<name>`` columns.
AUDIT_COLUMNS = (
    "source",
    "run",
    "status",
    "errors",
    "warnings",
    "infos",
    "findings",
    "integrity_problems",
    "integrity",
    "first_wall_time",
    "last_wall_time",
    "duration_s",
    "first_step",
    "last_step",
    "steps",
    "scalar_tags",
    "histogram_tags",
    "best_val_loss",
    "best_val_step",
    "final_train_loss",
    "final_val_loss",
    "train_loss_tag",
    "val_loss_tag",
    "session_status",
    "run_dirs",
    "files",
    "bytes",
)
HPARAM_PREFIX = "hparam:"
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


@dataclass
class RunSummary:
    """What an audit keeps about one logical run.

    Attributes:
        run: Logical run name relative to its source (untrusted text).
        run_dirs: The run directories it is made of.
        values: The computed columns of :data:`AUDIT_COLUMNS` (all but ``source``, ``run`` and
            the ``integrity`` columns); plain Python numbers, strings or None.
        hparams: Hyperparameter name -> value.
        findings: ``Finding.to_dict()`` of each finding, worst first.
        problems: Data-integrity problems: ``kind, path, message, offset`` of each reading
            warning about the run's files.
    """

    run: str
    run_dirs: list[str]
    values: dict[str, Any]
    hparams: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        return cls(**data)

    def severity_counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for finding in self.findings:
            counts[str(finding.get("severity"))] = counts.get(str(finding.get("severity")), 0) + 1
        return counts

    def row(self, *, source: str) -> dict[str, Any]:
        """The run's ``audit.csv`` row (without the hyperparameter columns)."""
        counts = self.severity_counts()
        names: list[str] = []
        for finding in sorted(
            self.findings, key=lambda f: _SEVERITY_RANK.get(str(f.get("severity")), 3)
        ):
            label = f"{finding.get('code')} {finding.get('name')}"
            if label not in names:
                names.append(label)
        kinds: dict[str, int] = {}
        for problem in self.problems:
            kinds[str(problem.get("kind"))] = kinds.get(str(problem.get("kind")), 0) + 1
        row = {column: self.values.get(column) for column in AUDIT_COLUMNS}
        row.update(
            source=source,
            run=self.run,
            errors=counts["error"],
            warnings=counts["warning"],
            infos=counts["info"],
            findings="; ".join(names),
            integrity_problems=len(self.problems),
            integrity="; ".join(
                kind if n == 1 else f"{kind} x{n}" for kind, n in sorted(kinds.items())
            ),
            run_dirs="; ".join(self.run_dirs),
        )
        return row


def problem_dict(warning: ReadWarning) -> dict[str, Any]:
    """A reading warning as a data-integrity problem record."""
    return {
        "kind": warning.kind,
        "path": warning.path,
        "message": warning.message,
        "offset": warning.offset,
    }


# ---------------------------------------------------------------------------------------------
# Auditing units


def audit_unit(
    spec: SourceSpec, runs: Sequence[RunEntry], *, config: Any = None
) -> list[RunSummary]:
    """Read, diagnose and summarise the run directories ``runs`` of ``spec``.

    Args:
        spec: The source the runs live in (the bytes are read from it directly).
        runs: Run directories holding whole logical runs.
        config: Diagnosis configuration (see ``tbreport.diagnose``).

    Returns:
        One summary per logical run, in run order.
    """
    return summarise(read_entries(spec, runs), config=config)


def audit_units(
    spec: SourceSpec, units: Sequence[tuple[str, Sequence[RunEntry]]], *, config: Any = None
) -> dict[str, list[RunSummary]]:
    """Read, diagnose and summarise several units of ``spec`` at once: one read, one diagnosis.

    Each unit gets what :func:`audit_unit` gives it alone. Units of one source only: their run
    names are unique, and a unit's Keras splits and sessions are all in that unit, so each run
    directory joins the same logical run as when its unit is read alone.

    Args:
        spec: The source the units live in.
        units: ``(key, run directories)`` of each unit.
        config: Diagnosis configuration.

    Returns:
        Unit key -> its summaries, in run order. A unit is left out when its summaries could
        differ from its own audit: one of its logical runs spans units (``add_scalars`` series
        cut into units), or a warning of the read names no run. Audit those with
        :func:`audit_unit`.
    """
    runs = [run for _, unit in units for run in unit]
    result, records = read_entries_with_records(spec, runs)
    names = [(key, [run.name for run in unit]) for key, unit in units]
    return summarise_units(result, records, names, config=config)


def summarise(result: Any, *, config: Any = None) -> list[RunSummary]:
    """One :class:`RunSummary` per logical run of a (small) ReadResult.

    Best and final losses follow the report's summary table (``tbreport.diagnosis.metrics``): the
    first tag of the ``train_loss``/``val_loss`` roles, its lowest finite value and its value
    at the last step.

    Args:
        result: What ``tbreport.read`` (or ``reader.combine``) returned for a few runs.
        config: Diagnosis configuration.
    """
    hparams_of = _hparams_by_run(result.hparams)
    status_of = _session_status(_frame_statuses(result.hparam_records))
    return _summaries(result, config=config, hparams_of=hparams_of, status_of=status_of)


def summarise_units(
    result: Any,
    records: Sequence[HparamRecord],
    units: Sequence[tuple[str, Sequence[str]]],
    *,
    config: Any = None,
) -> dict[str, list[RunSummary]]:
    """:func:`summarise` of a ReadResult of several units, split back per unit.

    Args:
        result: What ``read_entries`` returned for the runs of every unit.
        records: The hyperparameter records of that read (``read_entries_with_records``).
        units: ``(key, run directory names)`` of each unit.
        config: Diagnosis configuration.

    Returns:
        Unit key -> its summaries, as :func:`audit_units` describes (units left out included).
    """
    if any(warning.run is None for warning in result.warnings):
        return {}  # whose unit it belongs to is unknown
    unit_of = {name: key for key, names in units for name in names}
    inventory = result.runs
    owners: dict[str, set[str]] = {}
    logical_runs: dict[str, dict[str, None]] = {key: {} for key, _ in units}
    for run, logical in zip(
        inventory["run"].astype(str).tolist(),
        inventory["logical_run"].astype(str).tolist(),
        strict=True,
    ):
        owners.setdefault(logical, set()).add(unit_of[run])
        logical_runs[unit_of[run]][logical] = None
    shared = {key for keys in owners.values() if len(keys) > 1 for key in keys}
    records_of: dict[str, list[HparamRecord]] = {}
    for record in records:
        records_of.setdefault(unit_of[record.source_run], []).append(record)
    hparams_of: dict[str, dict[str, Any]] = {}
    for key, unit_records in records_of.items():
        if key not in shared:
            hparams_of.update(_unit_hparams(unit_records, list(logical_runs[key])))
    status_of = _session_status((r.run, r.value) for r in records if r.kind == "status")
    out: dict[str, list[RunSummary]] = {key: [] for key, _ in units if key not in shared}
    for summary in _summaries(result, config=config, hparams_of=hparams_of, status_of=status_of):
        key = unit_of[summary.run_dirs[0]]
        if key in out:
            out[key].append(summary)
    return out


def _summaries(
    result: Any,
    *,
    config: Any,
    hparams_of: dict[str, dict[str, Any]],
    status_of: dict[str, str],
) -> list[RunSummary]:
    """One summary per logical run of ``result``, in run order; ``hparams_of`` and
    ``status_of`` give each logical run's hyperparameters and session status."""
    diagnosis = diagnose(result, config=config)
    diagnosed = {str(r.run): r for r in diagnosis.runs} if diagnosis is not None else {}
    # The per-run views the diagnosis judged (or, without detectors, the same views built with
    # the user's roles): curves, tags and steps come from them, not from a regrouping here.
    views = dict(diagnosis.views) if diagnosis is not None else logical_runs(result, config=config)
    inventory = result.runs
    logical_of = dict(
        zip(
            inventory["run"].astype(str).tolist(),
            inventory["logical_run"].astype(str).tolist(),
            strict=True,
        )
    )
    facts = _inventory_facts(inventory)
    problems_of: dict[str | None, list[dict[str, Any]]] = {}
    for warning in result.warnings:
        owner = logical_of.get(warning.run, warning.run) if warning.run is not None else None
        problems_of.setdefault(owner, []).append(problem_dict(warning))

    summaries = []
    for name in dict.fromkeys(logical_of.values()):
        run_diagnosis = diagnosed.get(name)
        fact = facts[name]
        values_row = _values_row(views.get(name), run_diagnosis, fact)
        values_row["session_status"] = status_of.get(name)
        values_row["files"], values_row["bytes"] = fact["files"], fact["bytes"]
        findings = run_diagnosis.findings if run_diagnosis is not None else ()
        summaries.append(
            RunSummary(
                run=name,
                run_dirs=fact["run_dirs"],
                values=values_row,
                hparams=hparams_of.get(name, {}),
                findings=[_finding_dict(f) for f in findings],
                problems=problems_of.get(name, []) + problems_of.get(None, []),
            )
        )
    return summaries


def _values_row(view: Any, run_diagnosis: Any, fact: dict[str, Any]) -> dict[str, Any]:
    """A run's status, time and step bounds, tag counts and losses, for the audit's table (in
    its column order; the session status, files and bytes follow)."""
    train, val = _role_points(view, "train_loss"), _role_points(view, "val_loss")
    best = best_point(val)
    first_wall, last_wall = fact["first_wall_time"], fact["last_wall_time"]
    return {
        "status": run_diagnosis.status if run_diagnosis is not None else "healthy",
        "first_wall_time": _iso_time(first_wall),
        "last_wall_time": _iso_time(last_wall),
        "duration_s": _finite_or_none(last_wall - first_wall),
        "first_step": fact["first_step"],
        "last_step": fact["last_step"],
        "steps": distinct_steps(_run_steps(view)),
        "scalar_tags": len(view.scalar_tags) if view is not None else 0,
        "histogram_tags": len(view.histogram_tags) if view is not None else 0,
        "best_val_loss": best.value if best else None,
        "best_val_step": best.step if best else None,
        # NaN stays NaN (the run ended in NaN); None when the run has no such curve.
        "final_train_loss": final_value(train) if train else None,
        "final_val_loss": final_value(val) if val else None,
        "train_loss_tag": train.tag if train else None,
        "val_loss_tag": val.tag if val else None,
    }


def _role_points(view: Any, role: str) -> Curve | None:
    """Every point of the first tag of a role in a run's view (None: no view, or no such tag)."""
    if view is None:
        return None
    tags = view.roles.get(role, ())
    return view.points(tags[0]) if tags else None


def _run_steps(view: Any) -> list[np.ndarray]:
    if view is None:
        return []
    parts = [view.scalars["step"].to_numpy(np.int64)]
    if len(view.histograms):
        parts.append(view.histograms["step"].to_numpy(np.int64))
    return parts


def _inventory_facts(inventory: Any) -> dict[str, dict[str, Any]]:
    """Per logical run: its directories, files, bytes, and step and wall-time bounds."""
    facts: dict[str, dict[str, Any]] = {}
    # Columns as lists: rows as dicts cost more than the rest of a small run's summary.
    columns = [
        inventory[name].tolist()
        for name in (
            "logical_run",
            "run",
            "files",
            "bytes",
            "first_step",
            "last_step",
            "first_wall_time",
            "last_wall_time",
        )
    ]
    for logical_run, run, files, size, first_step, last_step, first_wall, last_wall in zip(
        *columns, strict=True
    ):
        fact = facts.setdefault(
            str(logical_run),
            {
                "run_dirs": [],
                "files": 0,
                "bytes": 0,
                "first_step": None,
                "last_step": None,
                "first_wall_time": math.nan,
                "last_wall_time": math.nan,
            },
        )
        fact["run_dirs"].append(str(run))
        fact["files"] += int(files)
        fact["bytes"] += int(size)
        first, last = _integer(first_step), _integer(last_step)
        if first is not None:
            fact["first_step"] = (
                first if fact["first_step"] is None else min(fact["first_step"], first)
            )
        if last is not None:
            fact["last_step"] = last if fact["last_step"] is None else max(fact["last_step"], last)
        fact["first_wall_time"] = float(np.fmin(fact["first_wall_time"], _nan(first_wall)))
        fact["last_wall_time"] = float(np.fmax(fact["last_wall_time"], _nan(last_wall)))
    return facts


def _nan(value: Any) -> float:
    number = _number(value)
    return math.nan if number is None else number


def _hparams_by_run(hparams: Any) -> dict[str, dict[str, Any]]:
    if hparams is None or hparams.empty:
        return {}
    out: dict[str, dict[str, Any]] = {}
    columns = [c for c in hparams.columns if c != "run"]
    for record in hparams.to_dict("records"):
        values = {str(c): _plain(record[c]) for c in columns}
        out[str(record["run"])] = {k: v for k, v in values.items() if not _missing(v)}
    return out


def _unit_hparams(
    records: list[HparamRecord], logical_runs: list[str]
) -> dict[str, dict[str, Any]]:
    """What :func:`_hparams_by_run` gives for the ``hparams`` table of one unit read alone.

    A table's column becomes numbers across its rows (an int beside a float becomes a float),
    so a unit's values come from a table of that unit only; the usual unit, one logical run
    with hyperparameters, needs no table.
    """
    row = single_run_row(records)
    if row is None:
        if not any(record.kind == "hparam" for record in records):
            return {}
        return _hparams_by_run(wide_table(records, pd.DataFrame({"logical_run": logical_runs})))
    run, values = row
    return {run: {name: value for name, value in values.items() if not _missing(value)}}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _finding_dict(finding: Finding) -> dict[str, Any]:
    data = finding.to_dict()
    data["evidence"] = {str(k): _plain(v) for k, v in dict(data.get("evidence") or {}).items()}
    data["tags"] = [str(t) for t in data.get("tags") or ()]
    return data


def _session_status(statuses: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """Logical run -> its last ``add_hparams`` session status (``success``, ``failure``...), from
    the ``(run, value)`` of the ``status`` records in order."""
    out: dict[str, str] = {}
    for run, value in statuses:
        text = str(value)
        out[str(run)] = text[len("STATUS_") :].lower() if text.startswith("STATUS_") else text
    return out


def _frame_statuses(records: Any) -> Iterable[tuple[Any, Any]]:
    """The ``(run, value)`` of the ``status`` rows of a ``hparam_records`` frame."""
    if records is None or records.empty:
        return ()
    statuses = records[records["kind"] == "status"]
    return zip(statuses["run"], statuses["value"], strict=True)


def _plain(value: Any) -> Any:
    """A JSON-able plain value (numpy scalars and arrays unwrapped, pandas NA as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _number(value: Any) -> float | None:
    value = _plain(value)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _finite_or_none(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    value = _plain(value)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return int(value)


def _iso_time(seconds: float) -> str | None:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    try:
        moment = datetime.fromtimestamp(float(seconds), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
