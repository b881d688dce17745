"""Run metrics: where a curve is best, where it ends, which steps a run covers.

They belong to the diagnosis layer: the report and the audit display them, never compute them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import Curve


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


def step_range(step_columns: Iterable[np.ndarray]) -> tuple[int | None, int | None]:
    """First and last step of a run from the step columns of its tags, each sorted by step
    (curves, histogram rows); (None, None) when there is none."""
    firsts: list[int] = []
    lasts: list[int] = []
    for steps in step_columns:
        if len(steps):
            firsts.append(int(steps[0]))
            lasts.append(int(steps[-1]))
    if not firsts:
        return None, None
    return min(firsts), max(lasts)


def distinct_steps(step_columns: Iterable[np.ndarray]) -> int:
    """How many different steps a run logged anything at, over all its step columns."""
    parts = [np.asarray(steps, dtype=np.int64) for steps in step_columns if len(steps)]
    return int(np.unique(np.concatenate(parts)).size) if parts else 0
