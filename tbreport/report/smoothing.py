"""TensorBoard's scalar smoothing, as the report's charts and smoothing slider apply it.

The report draws every curve twice: the raw points, faint, and a debiased exponential moving
average on top, exactly as TensorBoard's ``classicSmoothing`` computes it::

    last = last * w + (1 - w) * x          # only for finite x; n counts those points
    y    = last / (1 - w ** n)

Non-finite points pass through unsmoothed and a constant series is returned as is. The default
weight is TensorBoard's 0.6. The browser recomputes the same average when the slider moves
(``templates/assets/report.js``, ``smoothSeries``); :func:`ema_smooth` is the reference the
tests hold it to.

When a long curve is thinned for display, the smoothing input is one mean per bucket of points;
``counts`` then says how many original finite points each mean stands for, and the average
decays by ``w ** count`` across it, which equals smoothing the original points when they are equal
within each bucket.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

#: TensorBoard's default smoothing weight (``scalarSmoothing`` in its metrics settings).
DEFAULT_SMOOTHING = 0.6


def ema_smooth(
    values: ArrayLike, *, weight: float = DEFAULT_SMOOTHING, counts: ArrayLike | None = None
) -> np.ndarray:
    """Debiased exponential moving average, as TensorBoard's smoothing slider.

    Args:
        values: The curve in step order.
        weight: Smoothing weight in ``[0, 1)``; 0 returns the curve unchanged.
        counts: Optional number of original points each value stands for (thinned curves);
            all ones when omitted.

    Returns:
        The smoothed curve, a new float64 array of the same length.

    Raises:
        ValueError: ``weight`` outside ``[0, 1)`` or ``counts`` of another length.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    out = y.copy()
    if y.size == 0 or bool(np.all(y == y[0])):
        return out
    if counts is None:
        n = np.ones(y.size)
    else:
        n = np.asarray(counts, dtype=np.float64).reshape(-1)
        if n.size != y.size:
            raise ValueError(f"counts has {n.size} entries for {y.size} values")
    last = 0.0
    accumulated = 0.0
    for i in range(y.size):
        value = y[i]
        if not math.isfinite(value):
            continue
        decay = weight ** n[i]
        last = last * decay + (1.0 - decay) * value
        accumulated += n[i]
        out[i] = last / (1.0 - weight**accumulated)
    return out
