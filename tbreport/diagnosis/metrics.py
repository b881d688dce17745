"""Run metrics computed from a curve: where it is best, where it ends.

They belong to the diagnosis layer: the report and the audit display them, never compute them.
"""

from __future__ import annotations

import math
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
