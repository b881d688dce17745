"""Axis ranges and scales that cannot mislead, and colours for many runs.

Plain functions over numbers: the chart builders call them and put the results in the figures,
so no range is ever decided in a template or in the browser.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors import ALL_DETECTORS
from tbreport.model import Finding

#: A linear axis flattens curves that span more than this ratio (max/min of positive values).
LOG_AXIS_RATIO = 1e3

#: A run whose values reach this many bulk spans beyond the other runs' is drawn off scale.
OUTLIER_SPANS = 10.0

# Problems shown by a change of a curve's level (a rise, a plateau): a log axis compresses them,
# so a chart that carries such a finding stays linear whatever its span. Detectors of other
# problems ask for it themselves (``Detector.linear_axis``).
LINEAR_PROBLEMS = frozenset({"overfitting", "underfitting", "erratic-loss"})

_TEN_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def constant_range(values: Iterable[np.ndarray], *, log: bool = False) -> list[float] | None:
    """A y range centred on the value when every finite value is the same, else None.

    Plotly's automatic range for a constant series is ``value ± 1``: a fixed learning rate of
    3e-4 would read as 0. The range returned spans ±50% of the value (±1 for 0); on a log axis
    it is given in decades, as plotly expects.
    """
    parts = [_finite(v) for v in values]
    joined = np.concatenate(parts) if parts else np.empty(0)
    if joined.size == 0:
        return None
    low, high = float(joined.min()), float(joined.max())
    scale = max(abs(low), abs(high))
    if high - low > 1e-9 * scale and high != low:
        return None
    value = low
    if log:
        if value <= 0:
            return None
        centre = math.log10(value)
        return [centre - 0.5, centre + 0.5]
    pad = abs(value) * 0.5 if value != 0 else 1.0
    return [value - pad, value + pad]


@dataclass(frozen=True)
class BulkRange:
    """The y range that shows the bulk of several runs, and the runs drawn off scale.

    Attributes:
        range: ``[low, high]`` in data units (None: plotly's own range is right).
        clipped: Indices (into the curves given) of the runs that leave the range.
        clipped_max: The largest value of a clipped run (for the note).
    """

    range: list[float] | None
    clipped: tuple[int, ...]
    clipped_max: float = math.nan


def bulk_range(curves: Sequence[np.ndarray]) -> BulkRange:
    """Clip a comparison chart to the runs that agree, so one diverging run (a loss of 1e30)
    does not flatten the others.

    Each run is summarised by its finite minimum and maximum. A run whose maximum lies more
    than :data:`OUTLIER_SPANS` times the bulk's span above the median maximum (or whose minimum
    as far below the median minimum) is an outlier; at most a quarter of the runs (at least one)
    can be. The range then covers the other runs with a 5% margin.
    """
    lows, highs, index = [], [], []
    for i, values in enumerate(curves):
        finite = _finite(values)
        if finite.size:
            lows.append(float(finite.min()))
            highs.append(float(finite.max()))
            index.append(i)
    if len(index) < 3:
        return BulkRange(None, ())
    lo_med, hi_med = float(np.median(lows)), float(np.median(highs))
    span = max(hi_med - lo_med, abs(hi_med) * 1e-6, 1e-12)
    out = [
        i
        for i, lo, hi in zip(index, lows, highs, strict=True)
        if hi > hi_med + OUTLIER_SPANS * span or lo < lo_med - OUTLIER_SPANS * span
    ]
    # A few runs off scale is divergence; many is a spread (learning rates over decades),
    # which a log axis shows better than a clipped one.
    if not out or len(out) > max(1, len(index) // 4):
        return BulkRange(None, ())
    keep = [k for k, i in enumerate(index) if i not in out]
    low = min(lows[k] for k in keep)
    high = max(highs[k] for k in keep)
    margin = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    clipped_max = max(highs[index.index(i)] for i in out)
    return BulkRange([low - margin, high + margin], tuple(out), clipped_max)


def spans_decades(values: Iterable[np.ndarray]) -> bool:
    """Whether positive values span so many decades that a linear axis would flatten most."""
    parts = [_finite(v) for v in values]
    parts = [p for p in parts if p.size]
    if not parts:
        return False
    joined = np.concatenate(parts)
    if float(joined.min()) < 0:
        return False
    positive = joined[joined > 0]
    # A few zeros (a warm-up starting at 0) may fall off a log axis; many may not.
    if positive.size == 0 or positive.size < 0.9 * joined.size:
        return False
    return float(positive.max()) / float(positive.min()) > LOG_AXIS_RATIO


def finding_wants_linear(findings: Iterable[Finding]) -> bool:
    """Whether a finding on the chart is about a change of level a log axis would hide."""
    linear = {d.code for d in ALL_DETECTORS if d.linear_axis}
    return any(f.problem in LINEAR_PROBLEMS or f.code in linear for f in findings)


def choose_log_axis(values: Iterable[np.ndarray], findings: Iterable[Finding] = ()) -> bool:
    """Log axis when the data span decades, unless the chart's finding is a rise or plateau
    (a 23% rise of the validation loss must stay visible)."""
    return spans_decades(values) and not finding_wants_linear(findings)


def run_colors(count: int) -> list[str]:
    """``count`` distinguishable colours: the usual ten, then evenly spread hues with
    alternating lightness (golden-angle steps, so neighbours always differ)."""
    if count <= len(_TEN_COLORS):
        return list(_TEN_COLORS[:count])
    colors = []
    for i in range(count):
        hue = (i * 0.381966) % 1.0
        lightness = (0.38, 0.52, 0.30)[i % 3]
        saturation = (0.75, 0.60, 0.85)[(i // 3) % 3]
        r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
        colors.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colors


def run_dashes(count: int) -> list[str]:
    """Line dashes that add a second cue beyond 10 runs (solid for the first 10)."""
    styles = ("solid", "dash", "dot", "dashdot")
    return ["solid" if count <= 10 else styles[(i // 10) % len(styles)] for i in range(count)]
