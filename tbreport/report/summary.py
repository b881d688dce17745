"""The per-run summary table: one row per logical run (``summary.csv`` and the HTML overview)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tbreport.report.collect import Curve, RunData

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
)


@dataclass(frozen=True)
class BestPoint:
    """Where a curve reaches its lowest finite value.

    Attributes:
        value: The lowest finite value.
        step: The first step where it is reached.
    """

    value: float
    step: int


def best_point(curve: Curve | None) -> BestPoint | None:
    """The lowest finite value of a curve and its first step; None without finite values."""
    if curve is None or len(curve) == 0:
        return None
    finite = np.isfinite(curve.values)
    if not finite.any():
        return None
    masked = np.where(finite, curve.values, np.inf)
    i = int(np.argmin(masked))
    return BestPoint(value=float(curve.values[i]), step=int(curve.steps[i]))


def final_value(curve: Curve | None) -> float:
    """The value at the last step (NaN stays NaN: a run that ends in NaN should say so)."""
    if curve is None or len(curve) == 0:
        return math.nan
    return float(curve.values[-1])


def step_range(run: RunData) -> tuple[int | None, int | None]:
    """First and last step over the run's scalars and histograms."""
    firsts: list[int] = []
    lasts: list[int] = []
    for curve in run.scalars.values():
        if len(curve):
            firsts.append(int(curve.steps[0]))
            lasts.append(int(curve.steps[-1]))
    for rows in run.histograms.values():
        if len(rows):
            firsts.append(int(rows["step"].iloc[0]))
            lasts.append(int(rows["step"].iloc[-1]))
    if not firsts:
        return None, None
    return min(firsts), max(lasts)


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
        first, last = step_range(run)
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
        }
        for name in names:
            row[HPARAM_PREFIX + name] = run.hparams.get(name)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, *(HPARAM_PREFIX + n for n in names)])
    for column in ("best_val_step", "first_step", "last_step"):
        frame[column] = frame[column].astype("Int64")
    for column in ("errors", "warnings", "infos"):
        frame[column] = frame[column].astype("int64")
    for column in ("best_val_loss", "final_train_loss", "final_val_loss", "duration_s"):
        frame[column] = frame[column].astype("float64")
    return frame
