"""The per-run summary table: one row per logical run (``summary.csv`` and the HTML overview)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from tbreport.diagnosis.detectors.base import Curve
from tbreport.diagnosis.metrics import BestPoint, best_point, final_value, step_range
from tbreport.model import Finding, Severity
from tbreport.report.collect import RunData

#: Prefix of hyperparameter columns in the summary table.
HPARAM_PREFIX = "hparam:"

#: Columns of the summary table before the hyperparameter columns.
SUMMARY_COLUMNS = (
    "run",
    "status",
    "errors",
    "warnings",
    "infos",
    "best_val_loss",
    "best_val_step",
    "final_train_loss",
    "final_val_loss",
    "first_step",
    "last_step",
    "duration_s",
    "train_loss_tag",
    "val_loss_tag",
    "finding",
    "finding_message",
    "finding_strength",
)


def best_marker(curve: Curve | None, findings: Sequence[Finding] = ()) -> BestPoint | None:
    """The best point a chart marks: the one a finding measured from (a ``"best"`` point mark
    on the curve's tag, e.g. overfitting's best step), else the curve's lowest value, so the
    best-step marker and the finding's marker never disagree."""
    if curve is not None:
        for finding in findings:
            for mark in finding.marks:
                if (
                    mark.kind == "point"
                    and mark.label == "best"
                    and mark.tag == curve.tag
                    and mark.value is not None  # a point mark has both (Mark checks it)
                    and mark.step is not None
                ):
                    return BestPoint(value=mark.value, step=mark.step)
    return best_point(curve)


def finding_rank(finding: Finding) -> tuple[int, float]:
    """Sort key of a finding, worst first: severity, then strength (unknown strength last)."""
    strength = finding.strength
    known = strength if strength is not None and math.isfinite(strength) else -math.inf
    return (-Severity(finding.severity).rank, -known)


def worst_finding(findings: Sequence[Finding]) -> Finding | None:
    """The finding a reader should see first: the most severe, then the strongest."""
    if not findings:
        return None
    return min(findings, key=finding_rank)


def hparam_names(runs: Sequence[RunData]) -> list[str]:
    """Every hyperparameter name over ``runs``, in first-seen order."""
    names: dict[str, None] = {}
    for run in runs:
        for name in run.hparams:
            names.setdefault(name, None)
    return list(names)


def summarize(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per logical run: health, best and final losses, steps, duration, hparams.

    Args:
        runs: The report's runs (see :func:`tbreport.report.collect.collect`).

    Returns:
        A DataFrame with :data:`SUMMARY_COLUMNS` then one ``hparam:<name>`` column per
        hyperparameter. Missing numbers are NaN, missing steps are ``<NA>`` (Int64).
    """
    names = hparam_names(runs)
    rows = []
    for run in runs:
        train = run.first_curve("train_loss")
        val = run.first_curve("val_loss")
        best = best_point(val)
        first, last = step_range(
            [curve.steps for curve in run.scalars.values()]
            + [rows["step"].to_numpy() for rows in run.histograms.values()]
        )
        worst = worst_finding(run.findings)
        counts = run.severity_counts()
        duration = run.last_wall_time - run.first_wall_time
        row = {
            "run": run.run,
            "status": run.status,
            "errors": counts["error"],
            "warnings": counts["warning"],
            "infos": counts["info"],
            "best_val_loss": best.value if best else math.nan,
            "best_val_step": best.step if best else None,
            "final_train_loss": final_value(train),
            "final_val_loss": final_value(val),
            "first_step": first,
            "last_step": last,
            "duration_s": float(duration) if math.isfinite(duration) else math.nan,
            "train_loss_tag": train.tag if train else None,
            "val_loss_tag": val.tag if val else None,
            "finding": f"{worst.code} {worst.name}" if worst else None,
            "finding_message": worst.message if worst else None,
            "finding_strength": (
                float(worst.strength) if worst and worst.strength is not None else math.nan
            ),
        }
        for name in names:
            row[HPARAM_PREFIX + name] = run.hparams.get(name)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, *(HPARAM_PREFIX + n for n in names)])
    for column in ("best_val_step", "first_step", "last_step"):
        frame[column] = frame[column].astype("Int64")
    for column in ("errors", "warnings", "infos"):
        frame[column] = frame[column].astype("int64")
    for column in (
        "best_val_loss",
        "final_train_loss",
        "final_val_loss",
        "duration_s",
        "finding_strength",
    ):
        frame[column] = frame[column].astype("float64")
    return frame


# Hyperparameters that name where a run wrote its files, or the run itself: they differ between
# every pair of runs and explain nothing.
_PATH_LIKE_NAMES = re.compile(
    r"(^|[._/-])(output_dir|logging_dir|log_dir|logdir|run_name|save_dir|checkpoint_dir|"
    r"resume_from_checkpoint|hub_model_id|dirpath|default_root_dir|run_id|.*_(dir|path|file))$",
    re.IGNORECASE,
)
# What people tune first, in the order they look for it.
_LEADING_HPARAMS = (
    re.compile(r"(^|[._/-])(lr|learning_rate|base_lr|init_lr|max_lr)$", re.IGNORECASE),
    re.compile(r"(^|[._/-])((per_device_)?(train_)?batch_size|bs)$", re.IGNORECASE),
    re.compile(r"(^|[._/-])((num_train_|max_|n_|num_)?epochs)$", re.IGNORECASE),
    re.compile(
        r"(^|[._/-])(model|arch|architecture|model_name|model_type|network|backbone|"
        r"model_name_or_path|net)$",
        re.IGNORECASE,
    ),
)


def _looks_like_path(value: Any) -> bool:
    return isinstance(value, str) and ("/" in value or "\\" in value)


def choose_hparams(runs: Sequence[RunData], *, limit: int) -> tuple[list[str], int]:
    """The hyperparameters worth a column in the overview, and how many were left out.

    Constants (with more than one run) and path-like values (``output_dir``, ``run_name``, any
    value that is a path in every run that has it) carry no information and are dropped; a run
    that lacks a hyperparameter does not make it vary. Learning rate, batch size, epochs and the
    architecture come first, the rest keep their first-seen order.

    Args:
        runs: The report's runs.
        limit: At most this many names.
    """
    names = hparam_names(runs)
    kept = []
    for name in names:
        present = [run.hparams[name] for run in runs if name in run.hparams]
        if _PATH_LIKE_NAMES.search(name) or (present and all(map(_looks_like_path, present))):
            continue
        if len(runs) > 1 and len({repr(v) for v in present}) < 2:
            continue
        kept.append(name)

    def priority(name: str) -> int:
        for i, pattern in enumerate(_LEADING_HPARAMS):
            if pattern.search(name):
                return i
        return len(_LEADING_HPARAMS)

    kept.sort(key=priority)  # stable: first-seen order within each group
    chosen = kept[:limit]
    return chosen, len(names) - len(chosen)
