"""Thinning long curves for display only; CSV output always keeps every point.

A browser draws a few thousand points per line well; 100 runs x 10,000 steps would not stay
usable. :func:`minmax_thin` keeps, per bucket of consecutive points, the lowest and the highest
value and the first non-finite one, so spikes and NaNs stay visible, while :func:`bucket_means`
gives the smoothing input for the same buckets (see :mod:`tbreport.report.smoothing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: Above this many points a trace is thinned for display.
DEFAULT_MAX_POINTS = 2000


@dataclass(frozen=True)
class Thinned:
    """A curve as drawn, and the smoothing input for it.

    Attributes:
        steps: Display x values (original steps, in order).
        values: Display y values (non-finite values kept as they are).
        total: How many points the original curve has.
        smooth_steps: x of the smoothing input (the last step of each bucket), or None when the
            curve was not thinned and the smoothing input is the curve itself.
        smooth_values: Mean of the finite values in each bucket (NaN when there are none).
        smooth_counts: Number of finite values in each bucket.
    """

    steps: np.ndarray
    values: np.ndarray
    total: int
    smooth_steps: np.ndarray | None = None
    smooth_values: np.ndarray | None = None
    smooth_counts: np.ndarray | None = None

    @property
    def thinned(self) -> bool:
        """Whether points were dropped for display."""
        return len(self.steps) < self.total


def _first_per_bucket(indices: np.ndarray, bucket_of: np.ndarray) -> np.ndarray:
    # indices are sorted, so the first index of each bucket is where its bucket id first appears.
    if indices.size == 0:
        return indices
    _, first = np.unique(bucket_of[indices], return_index=True)
    return indices[first]


def drop_flat_interior(steps: ArrayLike, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Drop points inside runs of equal values, keeping each run's first and last point.

    Lossless for a line chart (the dropped points lie on the segment between the kept ones), and
    it shrinks step schedules such as a learning rate to a handful of points.
    """
    x = np.asarray(steps)
    y = np.asarray(values, dtype=np.float64)
    if y.size < 3:
        return x, y
    same_as_prev = np.zeros(y.size, dtype=bool)
    same_as_prev[1:] = y[1:] == y[:-1]
    same_as_next = np.zeros(y.size, dtype=bool)
    same_as_next[:-1] = y[:-1] == y[1:]
    keep = ~(same_as_prev & same_as_next)
    if keep.all():
        return x, y
    return x[keep], y[keep]


def bucket_bounds(total: int, *, buckets: int) -> np.ndarray:
    """Start offsets of ``buckets`` near-equal runs of consecutive points (plus ``total``)."""
    return np.linspace(0, total, buckets + 1).astype(np.int64)


def minmax_thin(
    steps: ArrayLike, values: ArrayLike, *, max_points: int = DEFAULT_MAX_POINTS
) -> Thinned:
    """Thin a curve to about ``max_points`` points, keeping extremes and NaNs per bucket.

    Args:
        steps: x values in order (int or float).
        values: y values; NaN and infinities are allowed.
        max_points: Curves with at most this many points are returned whole.

    Returns:
        A :class:`Thinned` curve; when thinned, it has at most ``1.5 * max_points`` points
        (three only in buckets holding a non-finite value) and the smoothing input.
    """
    x = np.asarray(steps)
    y = np.asarray(values, dtype=np.float64)
    total = int(y.size)
    if total <= max_points or max_points < 4:
        return Thinned(steps=x, values=y, total=total)
    buckets = max_points // 2
    bounds = bucket_bounds(total, buckets=buckets)
    starts = bounds[:-1]
    bucket_of = np.repeat(np.arange(buckets), np.diff(bounds))
    finite = np.isfinite(y)

    low = np.where(finite, y, np.inf)
    high = np.where(finite, y, -np.inf)
    bucket_min = np.minimum.reduceat(low, starts)
    bucket_max = np.maximum.reduceat(high, starts)
    has_finite = np.add.reduceat(finite.astype(np.int64), starts)
    min_idx = _first_per_bucket(np.flatnonzero(finite & (low == bucket_min[bucket_of])), bucket_of)
    max_idx = _first_per_bucket(np.flatnonzero(finite & (high == bucket_max[bucket_of])), bucket_of)
    nonfinite_idx = _first_per_bucket(np.flatnonzero(~finite), bucket_of)
    keep = np.unique(np.concatenate([min_idx, max_idx, nonfinite_idx]))

    sums = np.add.reduceat(np.where(finite, y, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(has_finite > 0, sums / np.maximum(has_finite, 1), np.nan)
    return Thinned(
        steps=x[keep],
        values=y[keep],
        total=total,
        smooth_steps=x[bounds[1:] - 1],
        smooth_values=means,
        smooth_counts=has_finite,
    )


def thin_indices(total: int, *, max_points: int) -> np.ndarray:
    """Evenly spaced indices (first and last included) to keep at most ``max_points`` items.

    Used for histograms, where every kept step is a whole distribution.
    """
    if total <= max_points:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_points).round().astype(np.int64))
