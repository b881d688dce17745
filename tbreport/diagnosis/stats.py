"""Robust statistics for noisy training curves (numpy only).

Detectors decide on smoothed levels, robust scales and trend tests, never on one point:

- :func:`tensorboard_smooth` is TensorBoard's debiased EMA, for the curve the user saw.
- :func:`rolling_median` and :func:`robust_z` (median / MAD) separate spikes from the trend.
- :func:`mann_kendall` (with the Hamed–Rao correction for autocorrelated series) and
  :func:`sens_slope` say whether a curve really rises or falls over a window.
- :func:`block_medians` shrinks long per-step series to a few hundred robust points first, which
  also weakens the step-to-step autocorrelation that would inflate a trend test.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

try:  # a faster exact rolling median; pandas' is the fallback
    from bottleneck import move_median
except ImportError:  # pragma: no cover - bottleneck is a dependency; a broken install still works
    move_median = None

#: 0.6745 = Φ⁻¹(0.75): scales a MAD to a standard deviation for normal data (Iglewicz & Hoaglin).
MAD_TO_SIGMA = 0.6744897501960817

_NORMAL = NormalDist()


def as_float_array(values: ArrayLike) -> np.ndarray:
    """``values`` as a 1-D float64 array (a copy only when needed)."""
    return np.asarray(values, dtype=np.float64).reshape(-1)


def tensorboard_smooth(values: ArrayLike, *, weight: float = 0.6) -> np.ndarray:
    """TensorBoard's scalar smoothing: a debiased exponential moving average.

    Non-finite points pass through unsmoothed and do not advance the average; a constant series
    is returned as is (both as in TensorBoard's ``classicSmoothing``).

    Args:
        values: The curve, in step order.
        weight: The smoothing slider, in ``[0, 1)``; TensorBoard's default is 0.6.

    Returns:
        The smoothed curve, same length as ``values``.
    """
    y = as_float_array(values)
    out = y.copy()
    if y.size == 0 or np.all(y == y[0]):
        return out
    last = 0.0
    accumulated = 0
    for i, value in enumerate(y):
        if not math.isfinite(value):
            continue
        last = last * weight + (1.0 - weight) * value
        accumulated += 1
        debias = 1.0 - weight**accumulated if weight != 1 else 1.0
        out[i] = last / debias
    return out


def rolling_median(values: ArrayLike, *, window: int) -> np.ndarray:
    """Centred rolling median; the edges use the part of the window that exists.

    NaNs are ignored inside each window (a window of only NaNs gives NaN).
    """
    y = as_float_array(values)
    n = y.size
    if n == 0 or window <= 1:
        return y.copy()
    half = window // 2
    if n * (2 * half + 1) <= _SMALL_WINDOWS:
        return _rolling_median_sorted(y, half)
    # A C double heap (bottleneck) or skip-list (pandas): O(n log w), where a per-window median
    # over 10,000-point curves cost seconds. Edge windows shrink; NaNs are skipped.
    if not np.isinf(y).any():
        if move_median is not None and 2 * half + 1 <= n + half:
            # A trailing window ending `half` points ahead is the centred one; the NaN tail
            # shrinks the last windows as the missing head shrinks the first ones.
            padded = np.concatenate([y, np.full(half, np.nan)])
            moved: np.ndarray = move_median(padded, window=2 * half + 1, min_count=1)
            return moved[half:]
        rolled = pd.Series(y).rolling(2 * half + 1, center=True, min_periods=1).median()
        return rolled.to_numpy(dtype=np.float64)
    # pandas drops infinities from its windows; keep them, exactly, the slow way (rare curves).
    padded = np.concatenate([np.full(half, np.nan), y, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with warnings.catch_warnings():  # all-NaN windows are expected at gaps
        warnings.simplefilter("ignore", RuntimeWarning)
        medians: np.ndarray = np.nanmedian(windows, axis=1)
        return medians


#: Up to this many window elements in all (points x window), the rolling median sorts every
#: window at once: on the short curves most runs have, pandas' per-call overhead dominated.
_SMALL_WINDOWS = 50_000


def _rolling_median_sorted(y: np.ndarray, half: int) -> np.ndarray:
    """`rolling_median` by sorting each (NaN-padded) window: NaNs sort last, so the median of
    a window is the middle of its first ``count`` values; infinities stay, exactly."""
    n = y.size
    padded = np.full(n + 2 * half, np.nan)
    padded[half : half + n] = y
    layout = _window_layout(n, half)
    windows = padded[layout.members]  # a copy, sorted in place
    windows.sort(axis=1)
    if np.isnan(y).any():
        count = np.count_nonzero(~np.isnan(windows), axis=1)
        low = windows[layout.rows, np.maximum(count - 1, 0) // 2]
        high = windows[layout.rows, np.maximum(count, 1) // 2 - (count == 0)]
        with np.errstate(invalid="ignore"):  # inf + -inf in one window: NaN, as their median
            middle = np.where(count % 2 == 1, low, (low + high) / 2)
        return np.where(count > 0, middle, np.nan)
    # No NaN: only the edge windows are short, and their counts depend on n and half alone.
    low = windows[layout.rows, layout.low]
    high = windows[layout.rows, layout.high]
    with np.errstate(invalid="ignore"):
        medians: np.ndarray = np.where(layout.odd, low, (low + high) / 2)
    return medians


class _WindowLayout(NamedTuple):
    members: np.ndarray  # (n, window) positions in the padded curve
    rows: np.ndarray
    low: np.ndarray  # per window without NaN: the lower and upper middle positions
    high: np.ndarray
    odd: np.ndarray  # whether the window holds an odd number of points


@functools.lru_cache(maxsize=32)
def _window_layout(n: int, half: int) -> _WindowLayout:
    """Index arrays of the rolling windows of ``n`` points (the runs of a logdir share lengths,
    so the many short curves of a diagnosis reuse them); read-only, as they are shared."""
    rows = np.arange(n)
    members = rows[:, None] + np.arange(2 * half + 1)
    count = np.minimum(rows + half, n - 1) - np.maximum(rows - half, 0) + 1
    layout = _WindowLayout(members, rows, (count - 1) // 2, count // 2, count % 2 == 1)
    for array in layout:
        array.flags.writeable = False
    return layout


def small_median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array without its dispatch overhead (tens of microseconds, which
    the many medians of short curves added up to); NaN when any value is NaN, as np.median."""
    ordered = np.sort(values)
    n = ordered.size
    if n == 0 or np.isnan(ordered[-1]):
        return float("nan")
    if n % 2:  # the middle value itself, as np.median (twice a huge value would overflow)
        return float(ordered[n // 2])
    return float((ordered[n // 2 - 1] + ordered[n // 2]) / 2)


def mad(values: ArrayLike) -> float:
    """Median absolute deviation from the median (unscaled); NaNs ignored; 0.0 when empty."""
    y = as_float_array(values)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return 0.0
    return small_median(np.abs(y - small_median(y)))


def robust_z(
    values: ArrayLike, *, center: float | None = None, scale: float | None = None
) -> np.ndarray:
    """Modified z-scores ``0.6745·(x − median) / MAD`` (Iglewicz & Hoaglin; flag ``|z| > 3.5``).

    Args:
        values: The sample, e.g. residuals of a curve around its rolling median.
        center: The centre to measure from; the sample median by default.
        scale: The MAD to divide by; the sample MAD by default. When the MAD is zero the mean
            absolute deviation stands in (times 1.2533, its normal-consistent ratio), and when that
            is zero too every non-central point gets an infinite score.
    """
    y = as_float_array(values)
    finite = y[np.isfinite(y)]
    if center is None:
        center = small_median(finite) if finite.size else 0.0
    if scale is None:
        scale = mad(finite)
        if scale == 0.0 and finite.size:
            scale = float(np.mean(np.abs(finite - center))) * 1.2533 * MAD_TO_SIGMA
    deviation = y - center
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == 0.0:
            return np.where(deviation == 0, 0.0, np.sign(deviation) * np.inf)
        scores: np.ndarray = MAD_TO_SIGMA * deviation / scale
        return scores


def block_medians(
    steps: ArrayLike, values: ArrayLike, *, max_points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a long series to at most ``max_points`` block medians (steps: block medians too).

    Short series are returned unchanged (as float arrays). NaNs are ignored inside blocks.
    """
    s = as_float_array(steps)
    y = as_float_array(values)
    n = y.size
    if n <= max_points:
        return s, y
    edges = np.linspace(0, n, max_points + 1).astype(int)
    out_s = np.empty(max_points)
    out_y = np.empty(max_points)
    # Blocks have at most two sizes: one median call per size over a matrix of blocks, not one
    # per block (thousands of calls per diagnosis).
    sizes = np.diff(edges)
    y = np.where(np.isfinite(y), y, np.nan)
    for size in np.unique(sizes).tolist():
        blocks = np.flatnonzero(sizes == size)
        index = edges[blocks][:, None] + np.arange(size)[None, :]
        out_s[blocks] = np.median(s[index], axis=1)
        with warnings.catch_warnings():  # an all-NaN block is NaN, as documented
            warnings.simplefilter("ignore", RuntimeWarning)
            out_y[blocks] = np.nanmedian(y[index], axis=1)
    return out_s, out_y


def sens_slope(
    values: ArrayLike, steps: ArrayLike | None = None, *, max_points: int = 500
) -> float:
    """Sen's slope: the median of all pairwise slopes ``(y_j − y_i)/(t_j − t_i)``, ``i < j``.

    Args:
        values: The series.
        steps: Its x positions; ``0, 1, 2, …`` by default.

    Returns:
        The slope per unit of ``steps`` (0.0 for fewer than two finite points).
    """
    y = as_float_array(values)
    t = np.arange(y.size, dtype=np.float64) if steps is None else as_float_array(steps)
    keep = np.isfinite(y) & np.isfinite(t)
    y, t = y[keep], t[keep]
    if y.size > max_points:  # quadratic in the points: use block medians of long series
        t, y = block_medians(t, y, max_points=max_points)
    if y.size < 2:
        return 0.0
    i, j = np.triu_indices(y.size, k=1)
    dt = t[j] - t[i]
    ok = dt != 0
    if not ok.any():
        return 0.0
    return float(np.median((y[j] - y[i])[ok] / dt[ok]))


@dataclass(frozen=True)
class TrendTest:
    """The outcome of a Mann–Kendall test.

    Attributes:
        n: Points tested.
        s: Kendall's S (positive: mostly rising).
        tau: Kendall's tau in ``[-1, 1]``.
        z: Normal score of S (continuity-corrected).
        p_increasing: One-sided p-value for "rising".
        p_decreasing: One-sided p-value for "falling".
        slope: Sen's slope per point tested (per block when a long series was reduced).
    """

    n: int
    s: float
    tau: float
    z: float
    p_increasing: float
    p_decreasing: float
    slope: float

    def increasing(self, *, alpha: float = 0.05) -> bool:
        """Whether the series rises significantly at level ``alpha`` (one-sided)."""
        return self.p_increasing < alpha


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if (counts > 1).any():
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def _autocorrelation(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean()
    denominator = float(np.dot(centred, centred))
    if denominator == 0.0:
        return np.zeros(values.size)
    full = np.correlate(centred, centred, mode="full")[values.size - 1 :]
    return full / denominator


def mann_kendall(
    values: ArrayLike, *, hamed_rao: bool = True, alpha: float = 0.05, max_points: int = 500
) -> TrendTest:
    """Mann–Kendall monotonic-trend test, optionally with the Hamed–Rao variance correction.

    Training curves are autocorrelated, which makes the plain test see trends in noise. Hamed and
    Rao (1998) inflate the variance of S by the significant autocorrelations of the ranks of the
    detrended series (significance at ``alpha``, as in ``pymannkendall``). Series of fewer than
    10 points use the plain test: their autocorrelation estimates are meaningless.

    Args:
        values: The series in step order; non-finite points are dropped.
        hamed_rao: Apply the autocorrelation correction.
        alpha: Level used to decide which autocorrelations are significant.
        max_points: Longer series are first reduced to this many block medians (the test is
            quadratic in the number of points).

    Returns:
        A :class:`TrendTest`. Fewer than 3 points give S = 0 and p-values of 1.
    """
    y = as_float_array(values)
    y = y[np.isfinite(y)]
    if y.size > max_points:
        _, y = block_medians(np.arange(y.size), y, max_points=max_points)
    n = y.size
    if n < 3:
        return TrendTest(n=n, s=0.0, tau=0.0, z=0.0, p_increasing=1.0, p_decreasing=1.0, slope=0.0)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(y[j] - y[i]).sum())
    _, counts = np.unique(y, return_counts=True)
    ties = counts[counts > 1].astype(np.float64)
    var_s = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18.0
    slope = sens_slope(y)
    if hamed_rao and n >= 10:
        detrended = y - np.arange(1, n + 1) * slope
        acf = _autocorrelation(_ranks(detrended))
        bound = _NORMAL.inv_cdf(1 - alpha / 2) / math.sqrt(n)
        lags = np.arange(1, n - 2)
        rho = acf[1 : n - 2]
        significant = np.abs(rho) > bound
        correction_sum = float(
            np.sum(((n - lags) * (n - lags - 1) * (n - lags - 2) * rho)[significant])
        )
        factor = 1 + 2 / (n * (n - 1) * (n - 2)) * correction_sum
        # A negative factor (strong anti-correlation) would make the variance meaningless.
        var_s *= max(factor, 1e-3)
    if var_s <= 0:
        z = 0.0
    elif s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    tau = s / (0.5 * n * (n - 1))
    return TrendTest(
        n=n,
        s=s,
        tau=tau,
        z=z,
        p_increasing=1.0 - _NORMAL.cdf(z),
        p_decreasing=_NORMAL.cdf(z),
        slope=slope,
    )


def sign_change_ratio(values: ArrayLike) -> float:
    """Share of consecutive first differences that change sign (0: monotone, ~0.67: white noise).

    TheDeepChecker's "smoothness" is one minus this. Zero differences are skipped.
    """
    y = as_float_array(values)
    d = np.diff(y[np.isfinite(y)])
    d = d[d != 0]
    if d.size < 2:
        return 0.0
    return float(np.mean(np.sign(d[1:]) != np.sign(d[:-1])))
