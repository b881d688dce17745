"""Plotly figures for the report, as plain dicts (no per-figure template, so they stay small).

Every figure is emitted once as JSON (see :func:`figure_json`) and drawn by the browser when its
section scrolls into view. Numeric arrays are base64 typed arrays (``{"dtype", "bdata"}``, the
encoding plotly itself uses), which is compact and fast to write. Smoothed lines are not stored:
each chart lists, per smoothed trace, where its input comes from, and ``report.js`` computes
TensorBoard's EMA (same formula as :mod:`tbreport.report.smoothing`) at the slider's weight.

Text from event files (run names, tags, hparams, messages) only reaches plotly through
:func:`plotly_text`, which escapes the pseudo-HTML plotly renders in names, labels and hovers.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tbreport.diagnosis.detectors.base import Curve
from tbreport.diagnosis.metrics import BestPoint, best_point
from tbreport.model import Finding, Mark, Severity
from tbreport.report.collect import RunData
from tbreport.report.scales import (
    BulkRange,
    bulk_range,
    choose_log_axis,
    constant_range,
    run_colors,
    run_dashes,
)
from tbreport.report.summary import choose_hparams
from tbreport.report.thinning import (
    DEFAULT_MAX_POINTS,
    Thinned,
    drop_flat_interior,
    minmax_thin,
    thin_indices,
)

#: Histogram percentiles drawn as bands, as TensorBoard's distributions dashboard (in %: the
#: normal distribution's 0, ±1.5σ, ±1σ, ±0.5σ and median points).
DISTRIBUTION_PERCENTILES = (0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0)

#: At most this many histogram steps are drawn per tag.
MAX_HISTOGRAM_STEPS = 300

PALETTE = (
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
SEVERITY_COLORS = {"error": "#d62728", "warning": "#e8860c", "info": "#1f77b4"}
BEST_COLOR = "#2ca02c"
NONFINITE_COLOR = "#8b0000"
ROLE_COLORS = {"train_loss": "#1f77b4", "val_loss": "#ff7f0e"}

# Below this many points a line also shows its points (few epochs of validation loss).
_MARKERS_UP_TO = 60


def plotly_text(text: Any) -> str:
    """Escape text for plotly names, labels and hover texts (plotly renders a subset of HTML)."""
    return html.escape(str(text), quote=False)


def encode_array(values: Any) -> dict[str, str]:
    """A numeric array as plotly's base64 typed-array JSON (``{"dtype": ..., "bdata": ...}``).

    Integers become uint16 or int32 when they fit, floats float32 when no finite value would
    overflow or underflow (display precision), else float64. Infinities become NaN (a gap in
    the line).
    """
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        array = array.astype(np.int64)
        if array.size and array.min() >= 0 and array.max() < 2**16:
            code, out = "u2", array.astype("<u2")
        elif array.size == 0 or (array.min() >= -(2**31) and array.max() < 2**31):
            code, out = "i4", array.astype("<i4")
        else:
            code, out = "f8", array.astype("<f8")
    else:
        floats = np.asarray(array, dtype=np.float64)
        floats = np.where(np.isinf(floats), np.nan, floats)
        finite = np.abs(floats[np.isfinite(floats)])
        nonzero = finite[finite > 0]
        fits = finite.size == 0 or (
            finite.max() < 3.0e38 and (nonzero.size == 0 or nonzero.min() > 1.0e-37)
        )
        code, out = ("f4", floats.astype("<f4")) if fits else ("f8", floats.astype("<f8"))
    return {"dtype": code, "bdata": base64.b64encode(out.tobytes()).decode("ascii")}


def _json_safe(value: Any) -> Any:
    # json.dumps would write NaN, which is not JSON; plotly reads null as "no value".
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def figure_json(payload: Any) -> str:
    """JSON for a ``<script type="application/json">`` element.

    ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u`` escapes, so no string in the
    data (a tag named ``</script>``) can end the script element or break a JavaScript parser.
    """
    text = json.dumps(
        _json_safe(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.translate(_SCRIPT_SAFE)


@dataclass
class Chart:
    """One chart of the report.

    Attributes:
        id: HTML id of the JSON element (``chart-<n>``).
        title: Heading shown above the chart (plain text; escaped by the template).
        figure: Plotly ``{"data": [...], "layout": {...}}``.
        smoothing: Per smoothed trace: ``{"target": i, "source": j}`` (smooth trace j's data)
            or ``{"target": i, "x", "y", "n"}`` (bucket means of a thinned curve), plus
            ``"constant"`` when the original curve is constant (drawn unsmoothed).
        note: Visible remark under the chart, e.g. that points were thinned for display.
        run_anchor: Anchor of the run the chart belongs to (None for comparison charts).
        small: Drawn in a grid of small charts.
        x_span: The step range the chart covers (for spacing marker labels).
        time: Step -> wall time pairs (see :func:`time_mapping`): the chart offers a step /
            wall-time / relative-time switch.
    """

    id: str
    title: str
    figure: dict[str, Any]
    smoothing: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    run_anchor: str | None = None
    small: bool = False
    x_span: float | None = None
    time: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """What the browser needs to draw the chart."""
        payload = {"figure": self.figure, "smooth": self.smoothing}
        if self.time is not None:
            payload["time"] = self.time
        return payload

    def json(self) -> str:
        """The payload as script-safe JSON."""
        return figure_json(self.payload())


def _base_layout(*, height: int, ytitle: str = "", ylog: bool = False) -> dict[str, Any]:
    return {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 34, "b": 40},
        "font": {"size": 11},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "closest",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
        "xaxis": {
            "title": {"text": "step"},
            "gridcolor": "#ececec",
            "zeroline": False,
            "automargin": True,
        },
        "yaxis": {
            "title": {"text": plotly_text(ytitle)},
            "type": "log" if ylog else "linear",
            "gridcolor": "#ececec",
            "zeroline": False,
            "exponentformat": "e",
            "automargin": True,
        },
        "shapes": [],
        "annotations": [],
    }


def _thinning_note(shown: int, total: int) -> str | None:
    if shown >= total:
        return None
    return f"thinned for display: showing {shown:,} of {total:,} points (CSV keeps all)"


def _add_note_annotation(layout: dict[str, Any], note: str | None) -> None:
    if note:
        layout["annotations"].append(
            {
                "text": plotly_text(note),
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": 1,
                "xanchor": "right",
                "yanchor": "bottom",
                "yshift": 14,
                "showarrow": False,
                "font": {"size": 10, "color": "#777777"},
            }
        )


def _distribution_percentiles(rows: pd.DataFrame, percentiles: Sequence[float]) -> np.ndarray:
    """Percentiles of each histogram row, interpolated inside buckets; shape (rows, len(p))."""
    fractions = np.asarray(percentiles, dtype=np.float64) / 100.0
    out = np.full((len(rows), fractions.size), np.nan)
    limits_col = rows["bucket_limit"].to_numpy()
    counts_col = rows["bucket"].to_numpy()
    mins = rows["min"].to_numpy(dtype=np.float64, na_value=np.nan)
    maxs = rows["max"].to_numpy(dtype=np.float64, na_value=np.nan)
    for i in range(len(rows)):
        limits = np.asarray(limits_col[i], dtype=np.float64)
        counts = np.asarray(counts_col[i], dtype=np.float64)
        if limits.size == 0 or limits.size != counts.size:
            continue
        total = counts.sum()
        if not total > 0:
            continue
        lo, hi = mins[i], maxs[i]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            finite = limits[np.isfinite(limits)]
            if finite.size == 0:
                continue
            lo = finite.min() if not math.isfinite(lo) else lo
            hi = finite.max() if not math.isfinite(hi) else hi
        # Edges: the data minimum, then each bucket's right edge, clipped to [min, max]
        # (TensorFlow's outer buckets reach ±DBL_MAX).
        edges = np.clip(np.concatenate([[lo], limits]), lo, hi)
        cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / total
        out[i] = np.interp(fractions, cumulative, edges)
    return out


def _compared_curves(
    runs: Sequence[RunData], role: str | None, tag: str | None
) -> list[tuple[RunData, Curve]]:
    """The runs that have the role's first curve (or the tag), with that curve."""
    picked: list[tuple[RunData, Curve]] = []
    for run in runs:
        curve = run.first_curve(role) if role else run.scalars.get(tag or "")
        if curve is not None and len(curve):
            picked.append((run, curve))
    return picked


def _comparison_layout(
    kept: list[np.ndarray], *, ytitle: str, prefix: str, bulk: BulkRange
) -> dict[str, Any]:
    """A comparison chart's layout: the legend on the right (titled with the runs' common
    prefix), the y range of the runs on scale, a linear/log switch."""
    ylog = choose_log_axis(kept)
    layout = _base_layout(height=420, ytitle=ytitle, ylog=ylog)
    layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 10}}
    if prefix:
        layout["legend"]["title"] = {"text": plotly_text(prefix), "font": {"size": 10}}
    layout["margin"]["r"] = 10
    if bulk.range is not None:
        set_value_ranges(layout, kept, toggle=True, bulk=bulk.range)
    else:
        set_value_ranges(layout, kept, toggle=True)
    return layout


def _clipping_note(clipped_names: list[str], clipped_max: float) -> str:
    """What a comparison chart clipped to the bulk of the runs leaves out."""
    runs_text = ", ".join(clipped_names[:3]) + (
        f" and {len(clipped_names) - 3} more" if len(clipped_names) > 3 else ""
    )
    return (
        f"y axis clipped to the bulk of the runs: {runs_text} "
        f"{'goes' if len(clipped_names) == 1 else 'go'} off scale "
        f"(up to {clipped_max_text(clipped_max)})"
    )


def _smoothing_entry(
    thinned: Thinned, values: np.ndarray, *, target: int, source: int
) -> dict[str, Any]:
    """How the page smooths a curve: the smoothed trace ``target`` from the raw trace
    ``source``, or from the thinned curve's block means when the curve was thinned."""
    constant = bool(values.size and np.all(values == values[0]))
    if thinned.smooth_steps is None:
        entry: dict[str, Any] = {"target": target, "source": source}
    else:
        entry = {
            "target": target,
            "x": encode_array(thinned.smooth_steps),
            "y": encode_array(thinned.smooth_values),
            "n": encode_array(thinned.smooth_counts),
        }
    if constant:
        entry["constant"] = True
    return entry


class _StepLabel(NamedTuple):
    """A label on the dotted line at a step: a finding's code, the best point or a NaN."""

    label: str
    hover: str
    color: str
    rank: int  # the highest-ranked label at a step gives the line its colour


def _add_step_line(layout: dict[str, Any], step: int, marks: list[_StepLabel]) -> None:
    """A dotted vertical line at ``step`` with its labels above the plot (hover: the messages)."""
    marks.sort(key=lambda m: -m[3])
    color = marks[0][2]
    labels = list(dict.fromkeys(m[0] for m in marks))
    layout["shapes"].append(
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": step,
            "x1": step,
            "y0": 0,
            "y1": 1,
            "line": {"color": color, "width": 1.2, "dash": "dot"},
        }
    )
    layout["annotations"].append(
        {
            "x": step,
            "xref": "x",
            "y": 1,
            "yref": "paper",
            "yanchor": "bottom",
            "text": plotly_text(" ".join(labels)),
            "hovertext": "<br>".join(plotly_text(m[1]) for m in marks),
            "showarrow": False,
            "font": {"size": 10, "color": color},
        }
    )


class ChartBuilder:
    """Builds the report's charts; numbers them so every chart gets a unique id.

    Args:
        max_points: Display thinning threshold per trace.
    """

    def __init__(self, *, max_points: int = DEFAULT_MAX_POINTS) -> None:
        self.max_points = max_points
        self._count = 0

    # -- helpers -------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._count += 1
        return f"chart-{self._count}"

    def _curve_traces(
        self,
        data: list[dict[str, Any]],
        smoothing: list[dict[str, Any]],
        curve: Curve,
        *,
        name: str,
        color: str,
        smooth: bool = True,
        max_points: int | None = None,
        yaxis: str | None = None,
        legendgroup: str | None = None,
        meta: str | None = None,
        show_legend: bool = True,
    ) -> tuple[int, int]:
        """Append a curve's raw (and smoothed) traces; returns (points shown, points total)."""
        budget = self.max_points if max_points is None else max_points
        few = len(curve) <= _MARKERS_UP_TO
        steps, values = curve.steps, curve.values
        if not few and not smooth:
            # Without smoothing the flat stretches need no points (a learning-rate schedule).
            steps, values = drop_flat_interior(steps, values)
        thinned = minmax_thin(steps, values, max_points=budget)
        total = len(curve)
        raw: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines+markers" if few else "lines",
            "name": plotly_text(name),
            "x": encode_array(thinned.steps),
            "y": encode_array(thinned.values),
            "line": {"color": color, "width": 1.5 if not smooth else 1},
            "marker": {"size": 4, "color": color},
            "hovertemplate": "step %{x}: %{y:.6g}",
            "legendgroup": legendgroup or name,
        }
        if yaxis:
            raw["yaxis"] = yaxis
        if meta:
            raw["meta"] = meta
        if not smooth:
            raw["showlegend"] = show_legend
            data.append(raw)
            # Dropping flat stretches is lossless: only real thinning counts as "not shown".
            shown = total if not thinned.thinned else len(thinned.steps)
            return shown, total
        raw["opacity"] = 0.28
        raw["showlegend"] = False
        raw["name"] = plotly_text(f"{name} (raw)")
        raw_index = len(data)
        data.append(raw)
        smoothed: dict[str, Any] = {
            "type": "scatter",
            "mode": "markers" if total == 1 else "lines",  # a one-point line is invisible
            "name": plotly_text(name),
            "x": [],
            "y": [],
            "line": {"color": color, "width": 2},
            "hovertemplate": "step %{x}: %{y:.6g} (smoothed)",
            "legendgroup": legendgroup or name,
            "showlegend": show_legend,
        }
        if yaxis:
            smoothed["yaxis"] = yaxis
        if meta:
            smoothed["meta"] = meta
        target = len(data)
        data.append(smoothed)
        smoothing.append(_smoothing_entry(thinned, curve.values, target=target, source=raw_index))
        return len(thinned.steps), total

    @staticmethod
    def add_marks(
        layout: dict[str, Any],
        *,
        findings: Iterable[Finding] = (),
        best: BestPoint | None = None,
        nonfinite: Iterable[tuple[str, int]] = (),
        tags: Collection[str] | None = None,
        data: list[dict[str, Any]] | None = None,
        axes: Mapping[str, str] | None = None,
        span: tuple[float, float] | None = None,
    ) -> None:
        """Vertical lines with labels at the steps findings point at (hover shows the message),
        and what each finding's :class:`~tbreport.model.Mark` records ask for on this chart.

        Args:
            tags: The tags the chart shows: only their marks are drawn. None (a chart hosting
                findings about tags it does not show): the steps of every mark (lines and
                bands), never values in another tag's units.
            data: The chart's traces: points and levels are added as traces, in data
                coordinates, so they follow the log-axis and time switches. Without it, only
                steps are marked.
            axes: Tag -> the y axis its curve is drawn on (``"y2"``), when not the first.
            span: The steps the chart covers, for the extent of a level.
        """
        by_step: dict[int, list[_StepLabel]] = {}

        def add(step: int, label: str, hover: str, color: str, rank: int) -> None:
            by_step.setdefault(int(step), []).append(_StepLabel(label, hover, color, rank))

        for finding in findings:
            severity = Severity(finding.severity)
            color = SEVERITY_COLORS[severity.value]
            if finding.step is not None:
                add(
                    finding.step,
                    finding.code,
                    f"{finding.code} {finding.name}: {finding.message}",
                    color,
                    severity.rank + 1,
                )
            for mark in finding.marks:
                if tags is not None and mark.tag not in tags:
                    continue
                if mark.kind == "vline" and mark.step != finding.step:
                    layout["shapes"].append(_vline_shape(mark, color))
                elif mark.kind == "band":
                    layout["shapes"].append(_band_shape(mark, color))
                elif mark.kind in ("point", "hline") and tags is not None and data is not None:
                    trace = _value_trace(mark, finding, color, span)
                    if trace is not None:
                        axis = (axes or {}).get(mark.tag)
                        if axis:
                            trace["yaxis"] = axis
                        data.append(trace)
        if best is not None:
            add(best.step, "best", f"best validation loss {best.value:.6g}", BEST_COLOR, 0)
        for tag, step in nonfinite:
            add(step, "NaN", f"first non-finite value of {tag}", NONFINITE_COLOR, 4)
        for step, labels in sorted(by_step.items()):
            _add_step_line(layout, step, labels)

    # -- per-run charts ------------------------------------------------------------------

    def scalar_chart(
        self,
        run: RunData,
        tags: Sequence[str],
        *,
        title: str,
        ytitle: str = "",
        ylog: bool = False,
        smooth: bool = True,
        findings: Sequence[Finding] = (),
        best: BestPoint | None = None,
        colors: Sequence[str] | None = None,
        small: bool = False,
        mark_nonfinite: bool = False,
        axis_toggle: bool = False,
    ) -> Chart | None:
        """Raw and smoothed lines of ``tags`` of one run, with marks at finding steps.

        With ``axis_toggle``, the chart gets a linear/log switch and starts on a log axis when
        the values span decades (:func:`tbreport.report.scales.choose_log_axis`), unless a
        finding on the chart is a rise or plateau a log axis would hide.
        """
        curves = [run.scalars[t] for t in tags if t in run.scalars]
        if not curves:
            return None
        layout = _base_layout(height=230 if small else 330, ytitle=ytitle, ylog=ylog)
        if small:
            layout["showlegend"] = False
        data: list[dict[str, Any]] = []
        smoothing: list[dict[str, Any]] = []
        shown = total = 0
        nonfinite: list[tuple[str, int]] = []
        for i, curve in enumerate(curves):
            color = colors[i] if colors and i < len(colors) else PALETTE[i % len(PALETTE)]
            s, t = self._curve_traces(
                data, smoothing, curve, name=curve.tag, color=color, smooth=smooth
            )
            shown += s
            total += t
            if mark_nonfinite:
                bad = np.flatnonzero(~np.isfinite(curve.values))
                if bad.size:
                    nonfinite.append((curve.tag, int(curve.steps[bad[0]])))
        self.add_marks(
            layout,
            findings=findings,
            best=best,
            nonfinite=nonfinite,
            tags={c.tag for c in curves},
            data=data,
            span=_step_bounds(curves),
        )
        values = [c.values for c in curves]
        if axis_toggle and not ylog and choose_log_axis(values, findings):
            layout["yaxis"]["type"] = "log"
        set_value_ranges(layout, values, toggle=axis_toggle)
        span = _step_span(curves)
        stagger_labels(layout, span)
        note = _thinning_note(shown, total)
        _add_note_annotation(layout, note)
        return Chart(
            id=self._new_id(),
            title=title,
            figure={"data": data, "layout": layout},
            smoothing=smoothing,
            note=note,
            run_anchor=run.anchor,
            small=small,
            x_span=span,
            time=time_mapping(curves),
        )

    def prediction_chart(self, run: RunData, *, findings: Sequence[Finding] = ()) -> Chart | None:
        """Mean of the predictions (left axis) and their spread (std, right axis)."""
        mean = run.first_curve("pred_mean")
        std = run.first_curve("pred_std")
        if mean is None and std is None:
            return None
        layout = _base_layout(height=300, ytitle="mean" if mean is not None else "std")
        data: list[dict[str, Any]] = []
        smoothing: list[dict[str, Any]] = []
        shown = total = 0
        if mean is not None:
            s, t = self._curve_traces(data, smoothing, mean, name=mean.tag, color="#1f77b4")
            shown, total = shown + s, total + t
        if std is not None:
            axis = "y2" if mean is not None else None
            s, t = self._curve_traces(
                data, smoothing, std, name=std.tag, color="#9467bd", yaxis=axis
            )
            shown, total = shown + s, total + t
            if axis:
                layout["yaxis2"] = {
                    "title": {"text": "std"},
                    "overlaying": "y",
                    "side": "right",
                    "gridcolor": "#f4f4f4",
                    "zeroline": False,
                    "rangemode": "tozero",
                    "exponentformat": "e",
                }
                layout["margin"]["r"] = 60
        shown_curves = [c for c in (mean, std) if c is not None]
        self.add_marks(
            layout,
            findings=findings,
            tags={c.tag for c in shown_curves},
            data=data,
            axes={std.tag: "y2"} if std is not None and mean is not None else None,
            span=_step_bounds(shown_curves),
        )
        note = _thinning_note(shown, total)
        _add_note_annotation(layout, note)
        return Chart(
            id=self._new_id(),
            title="Predictions: mean and spread",
            figure={"data": data, "layout": layout},
            smoothing=smoothing,
            note=note,
            run_anchor=run.anchor,
        )

    def distribution_chart(
        self, run: RunData, tag: str, *, color: str, findings: Sequence[Finding] = ()
    ) -> Chart | None:
        """A histogram tag as distribution over time: percentile bands and the median."""
        rows = run.histograms.get(tag)
        if rows is None or rows.empty:
            return None
        keep = thin_indices(len(rows), max_points=MAX_HISTOGRAM_STEPS)
        rows = rows.iloc[keep]
        percentiles = _distribution_percentiles(rows, DISTRIBUTION_PERCENTILES)
        steps = encode_array(rows["step"].to_numpy(dtype=np.int64))
        data: list[dict[str, Any]] = []
        last = len(DISTRIBUTION_PERCENTILES) - 1
        for band in range(last // 2):  # outermost band first, so inner bands draw on top
            lower, upper = percentiles[:, band], percentiles[:, last - band]
            opacity = 0.15 + 0.15 * band
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": steps,
                    "y": encode_array(lower),
                    "line": {"width": 0, "color": color},
                    "hoverinfo": "skip",
                    "showlegend": False,
                }
            )
            p_lo, p_hi = DISTRIBUTION_PERCENTILES[band], DISTRIBUTION_PERCENTILES[last - band]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": steps,
                    "y": encode_array(upper),
                    "fill": "tonexty",
                    "fillcolor": _rgba(color, opacity),
                    "line": {"width": 0, "color": color},
                    "name": f"p{p_lo:g}–p{p_hi:g}",
                    "hovertemplate": f"step %{{x}}: p{p_hi:g} %{{y:.4g}}<extra></extra>",
                    "showlegend": False,
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": steps,
                "y": encode_array(percentiles[:, last // 2]),
                "line": {"width": 1.5, "color": color},
                "name": "median",
                "hovertemplate": "step %{x}: median %{y:.4g}<extra></extra>",
                "showlegend": False,
            }
        )
        layout = _base_layout(height=220)
        layout["showlegend"] = False
        layout["margin"] = {"l": 55, "r": 10, "t": 26, "b": 36}
        step_values = rows["step"].to_numpy(dtype=np.int64)
        self.add_marks(
            layout,
            findings=findings,
            tags={tag},
            data=data,
            span=(float(step_values.min()), float(step_values.max())) if len(rows) else None,
        )
        total = len(run.histograms[tag])
        note = None
        if len(rows) < total:
            note = f"thinned for display: showing {len(rows):,} of {total:,} steps"
            _add_note_annotation(layout, note)
        return Chart(
            id=self._new_id(),
            title=tag,
            figure={"data": data, "layout": layout},
            note=note,
            run_anchor=run.anchor,
            small=True,
        )

    # -- comparison charts ---------------------------------------------------------------

    def comparison_chart(
        self,
        runs: Sequence[RunData],
        role: str | None = None,
        *,
        title: str,
        tag: str | None = None,
        colors: dict[str, tuple[str, str]] | None = None,
        ytitle: str | None = None,
        smooth: bool = True,
        min_runs: int = 1,
    ) -> Chart | None:
        """One role (e.g. validation loss) or one tag of every run on one chart.

        A run far off the others' scale (a loss of 1e30) does not flatten them: the y range is
        clipped to the bulk of the runs, and the clipped runs say so in the legend and a note.

        Args:
            runs: The report's runs.
            role: The role whose first tag is drawn per run; or None with ``tag``.
            title: Chart title.
            tag: A tag drawn for every run that has it (when ``role`` is None).
            colors: Run anchor -> (colour, dash), the same in every comparison chart.
            ytitle: Y axis title [default: ``title``].
            smooth: Draw smoothed lines (not for schedules such as the learning rate).
            min_runs: Fewer runs with the curve give no chart.
        """
        picked = _compared_curves(runs, role, tag)
        if len(picked) < max(min_runs, 1):
            return None
        if colors is None:
            colors = comparison_colors(runs)
        data: list[dict[str, Any]] = []
        smoothing: list[dict[str, Any]] = []
        shown = total = 0
        budget = max(200, self.max_points // 4)
        prefix = common_run_prefix([run.run for run, _ in picked])
        bulk = bulk_range([curve.values for _, curve in picked])
        clipped_names = []
        for i, (run, curve) in enumerate(picked):
            name = run.run[len(prefix) :]
            if i in bulk.clipped:
                clipped_names.append(name)
                name = f"{name} (off scale ↑)"
            color, dash = colors.get(run.anchor, (PALETTE[i % len(PALETTE)], "solid"))
            first = len(data)
            s, t = self._curve_traces(
                data,
                smoothing,
                curve,
                name=name,
                color=color,
                smooth=smooth,
                max_points=budget,
                legendgroup=run.anchor,
                meta=run.anchor,
            )
            for trace in data[first:]:
                trace["line"]["dash"] = dash
            shown, total = shown + s, total + t
        kept = [c.values for i, (_, c) in enumerate(picked) if i not in bulk.clipped]
        layout = _comparison_layout(kept, ytitle=ytitle or title, prefix=prefix, bulk=bulk)
        notes = []
        thinning = _thinning_note(shown, total)
        if thinning:
            notes.append(thinning)
        if clipped_names:
            notes.append(_clipping_note(clipped_names, bulk.clipped_max))
        note = "; ".join(notes) or None
        # Inside the figure only the short thinning note: the clipping note (run names) would run
        # into the axis switch; it is shown under the chart.
        _add_note_annotation(layout, thinning)
        return Chart(
            id=self._new_id(),
            title=title,
            figure={"data": data, "layout": layout},
            smoothing=smoothing,
            note=note,
        )

    def hparam_parallel_chart(
        self, runs: Sequence[RunData], *, max_dimensions: int = 10
    ) -> Chart | None:
        """Every run as a line across its varying hyperparameters, ending at its score and
        coloured by it (plotly's parallel coordinates; drag along an axis to filter)."""
        score = run_scores(runs)
        if score is None:
            return None
        label, lower_is_better, values = score
        scored = [run for run in runs if run.anchor in values]
        names, _ = choose_hparams(scored, limit=max_dimensions)
        dimensions: list[dict[str, Any]] = []
        for name in names:
            column = [run.hparams.get(name) for run in scored]
            dimension = parallel_dimension(name, column)
            if dimension is not None:
                dimensions.append(dimension)
        if not dimensions:
            return None
        scores = [values[run.anchor] for run in scored]
        dimensions.append({"label": plotly_text(label), "values": scores})
        trace = {
            "type": "parcoords",
            "line": {
                "color": scores,
                "colorscale": "Viridis",
                "reversescale": lower_is_better,  # the best runs in the brightest colour
                "showscale": True,
                "colorbar": {"title": {"text": plotly_text(label)}, "thickness": 12},
            },
            "dimensions": dimensions,
            "labelangle": -20,
            "labelside": "bottom",
        }
        layout = {
            "height": 380,
            "margin": {"l": 70, "r": 70, "t": 40, "b": 60},
            "font": {"size": 11},
            "paper_bgcolor": "#ffffff",
            "annotations": [],
            "shapes": [],
        }
        return Chart(
            id=self._new_id(),
            title=f"Hyperparameters against {label} (parallel coordinates)",
            figure={"data": [trace], "layout": layout},
        )

    def hparam_charts(
        self, runs: Sequence[RunData], *, max_charts: int = 12
    ) -> tuple[list[Chart], int]:
        """Each varying hyperparameter against the best validation loss, one small chart each.

        Returns:
            The charts and how many varying hyperparameters were left out.
        """
        best: dict[str, BestPoint] = {}
        for run in runs:  # anchors are unique
            point = best_point(run.first_curve("val_loss"))
            if point is not None:
                best[run.anchor] = point
        scored = [run for run in runs if run.anchor in best]
        if len(scored) < 2:
            return [], 0
        names: dict[str, None] = {}
        for run in scored:
            for name in run.hparams:
                names.setdefault(name, None)
        varying = []
        for name in names:
            values = {repr(run.hparams.get(name)) for run in scored if name in run.hparams}
            if len(values) >= 2:
                varying.append(name)
        charts = []
        for name in varying[:max_charts]:
            points = [(run, run.hparams[name]) for run in scored if name in run.hparams]
            numeric = all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for _, v in points
            )
            xs: list[Any] = [float(v) if numeric else plotly_text(v) for _, v in points]
            ys = [best[run.anchor].value for run, _ in points]
            xaxis: dict[str, Any] = {
                "title": {"text": plotly_text(name)},
                "gridcolor": "#ececec",
                "automargin": True,
            }
            if numeric:
                positive = [x for x in xs if x > 0]
                if len(positive) == len(xs) and max(xs) / min(xs) >= 100:
                    xaxis["type"] = "log"
            else:
                xaxis["type"] = "category"
            layout = _base_layout(height=250, ytitle="best val loss")
            layout["xaxis"] = xaxis
            layout["showlegend"] = False
            layout["margin"] = {"l": 60, "r": 10, "t": 16, "b": 40}
            trace = {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": ys,
                "text": [plotly_text(run.run) for run, _ in points],
                "marker": {"size": 8, "color": "#1f77b4", "opacity": 0.8},
                "hovertemplate": "%{text}<br>%{x}: best val loss %{y:.6g}<extra></extra>",
            }
            charts.append(
                Chart(
                    id=self._new_id(),
                    title=name,
                    figure={"data": [trace], "layout": layout},
                    small=True,
                )
            )
        return charts, max(0, len(varying) - max_charts)


def run_scores(runs: Sequence[RunData]) -> tuple[str, bool, dict[str, float]] | None:
    """What ranks the runs, with each run's value: the best validation loss when at least two
    runs have one, else the best of the run kind's main metric (accuracy, mAP), else the best
    reward. Returns (label, lower is better, run anchor -> value), or None."""
    for role, label, lower in (
        ("val_loss", "best val loss", True),
        ("val_metric", "best val metric", False),
        ("reward", "best reward", False),
    ):
        values = {}
        tags = set()
        for run in runs:
            curve = run.first_curve(role)
            if curve is None:
                continue
            finite = curve.values[np.isfinite(curve.values)]
            if finite.size:
                values[run.anchor] = float(finite.min() if lower else finite.max())
                tags.add(curve.tag)
        if len(values) >= 2:
            if role != "val_loss" and len(tags) == 1:
                label = f"best {next(iter(tags))}"
            return label, lower, values
    return None


def parallel_dimension(name: str, column: Sequence[Any]) -> dict[str, Any] | None:
    """One parallel-coordinates axis: numbers as numbers (log10 when they span decades),
    anything else (or a column with gaps) as categories; None when nothing varies."""
    numeric = all(
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and math.isfinite(float(v))
        for v in column
    )
    if numeric:
        numbers = [float(v) for v in column]
        if len(set(numbers)) < 2:
            return None
        if min(numbers) > 0 and max(numbers) / min(numbers) >= 100:
            return {
                "label": plotly_text(f"{name} (log10)"),
                "values": [math.log10(v) for v in numbers],
            }
        return {"label": plotly_text(name), "values": numbers}
    texts = ["–" if v is None else str(v) for v in column]
    categories = sorted(set(texts), key=_category_key)
    if len(categories) < 2:
        return None
    code = {c: i for i, c in enumerate(categories)}
    return {
        "label": plotly_text(name),
        "values": [code[t] for t in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": [plotly_text(c) for c in categories],
    }


def _category_key(text: str) -> tuple[int, float, str]:
    # Numbers in numeric order, then text, the missing mark last.
    if text == "–":
        return (2, 0.0, text)
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def time_mapping(curves: Sequence[Curve], *, max_points: int = 500) -> dict[str, Any] | None:
    """Step -> wall time pairs of a run's curves, for the chart's step / wall-time switch.

    None when the wall times are missing or all equal (nothing to switch to).
    """
    if not curves:
        return None
    steps = np.concatenate([c.steps for c in curves])
    walls = np.concatenate([c.wall_times for c in curves])
    ok = np.isfinite(walls)
    steps, walls = steps[ok], walls[ok]
    if steps.size < 2 or float(walls.max()) == float(walls.min()):
        return None
    order = np.argsort(steps, kind="stable")
    steps, walls = steps[order], walls[order]
    unique, first = np.unique(steps, return_index=True)
    walls = np.maximum.accumulate(walls[first])  # a time axis never runs backwards
    keep = thin_indices(unique.size, max_points=max_points)
    base = float(walls[0])
    # Seconds after the first point: epoch seconds would lose minutes in float32.
    return {
        "steps": encode_array(unique[keep].astype(np.float64)),
        "base": base,
        "walls": encode_array(walls[keep] - base),
    }


def clipped_max_text(value: float) -> str:
    """The largest value of an off-scale run, for the chart's note."""
    if not math.isfinite(value):
        return "non-finite"
    return f"{value:.3g}"


def set_value_ranges(
    layout: dict[str, Any],
    values: Sequence[np.ndarray],
    *,
    toggle: bool,
    bulk: list[float] | None = None,
) -> None:
    """Fix the y range where plotly's automatic one would mislead, for both axis types.

    A constant series gets a range around its value; a clipped comparison gets the bulk's
    range. With ``toggle``, a linear/log switch is added that keeps the right range per type.
    """
    is_log = layout["yaxis"].get("type") == "log"
    ranges: dict[str, list[float] | None] = {"linear": None, "log": None}
    if bulk is not None:
        ranges["linear"] = bulk
        positive = [v[np.isfinite(v) & (v > 0)] for v in values]
        positive = [p for p in positive if p.size]
        if positive:
            floor = min(float(p.min()) for p in positive)
            ceiling = max(float(p.max()) for p in positive)
            ranges["log"] = [math.log10(floor) - 0.1, math.log10(ceiling) + 0.1]
    else:
        ranges["linear"] = constant_range(values)
        ranges["log"] = constant_range(values, log=True)
    current = ranges["log" if is_log else "linear"]
    if current is not None:
        layout["yaxis"]["range"] = current
        layout["yaxis"]["autorange"] = False
    if toggle:
        add_axis_toggle(layout, ranges=ranges)


def add_axis_toggle(
    layout: dict[str, Any], *, ranges: dict[str, list[float] | None] | None = None
) -> None:
    """A linear/log switch for the y axis (plotly's own update menu; no custom code)."""
    active = 1 if layout["yaxis"].get("type") == "log" else 0
    ranges = ranges or {}

    def args(kind: str) -> list[dict[str, Any]]:
        chosen = ranges.get(kind)
        if chosen is None:
            return [{"yaxis.type": kind, "yaxis.autorange": True}]
        return [{"yaxis.type": kind, "yaxis.range": chosen, "yaxis.autorange": False}]

    layout.setdefault("updatemenus", []).append(
        {
            "type": "dropdown",
            "direction": "down",
            "showactive": True,
            "active": active,
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yanchor": "bottom",
            "pad": {"t": 0, "b": 6, "l": 0, "r": 0},
            "font": {"size": 9},
            "bgcolor": "#f7f8fa",
            "bordercolor": "#d0d5dd",
            "buttons": [
                {"label": "linear axis", "method": "relayout", "args": args("linear")},
                {"label": "log axis", "method": "relayout", "args": args("log")},
            ],
        }
    )


def comparison_colors(runs: Sequence[RunData]) -> dict[str, tuple[str, str]]:
    """Run anchor -> (colour, dash), fixed per run so every comparison chart agrees."""
    colors = run_colors(len(runs))
    dashes = run_dashes(len(runs))
    return {run.anchor: (colors[i], dashes[i]) for i, run in enumerate(runs)}


def _step_bounds(curves: Sequence[Curve]) -> tuple[float, float] | None:
    """The first and last step of the curves (None when they hold no point)."""
    lows = [int(c.steps[0]) for c in curves if len(c)]
    highs = [int(c.steps[-1]) for c in curves if len(c)]
    return (float(min(lows)), float(max(highs))) if lows else None


def _step_span(curves: Sequence[Curve]) -> float | None:
    lows = [int(c.steps[0]) for c in curves if len(c)]
    highs = [int(c.steps[-1]) for c in curves if len(c)]
    if not lows:
        return None
    return float(max(highs) - min(lows))


#: Marker labels closer than this share of the x span are stacked, not drawn over each other.
LABEL_GAP = 0.06


def stagger_labels(layout: dict[str, Any], span: float | None) -> None:
    """Lift marker labels that would overlap their neighbour to a higher row (up to 3)."""
    labels = [a for a in layout["annotations"] if a.get("xref") == "x"]
    if len(labels) < 2 or not span:
        return
    labels.sort(key=lambda a: a["x"])
    rows_end: list[float] = []  # per row: the x where its last label ends
    for label in labels:
        width = span * LABEL_GAP * max(1.0, len(str(label.get("text", ""))) / 6)
        row = next((i for i, end in enumerate(rows_end) if label["x"] >= end), None)
        if row is None:
            row = len(rows_end) if len(rows_end) < 3 else len(rows_end) - 1
            if row == len(rows_end):
                rows_end.append(0.0)
        rows_end[row] = label["x"] + width
        label["yshift"] = 13 * row
    layout["margin"]["t"] = max(layout["margin"]["t"], 34 + 13 * (len(rows_end) - 1))


def common_run_prefix(names: Sequence[str]) -> str:
    """The directory prefix (ending in ``/``) all run names share, or ``""``.

    Only whole path components count, and at least one component must remain of every name.
    """
    if len(names) < 2:
        return ""
    parts = [name.split("/") for name in names]
    shared = []
    for components in zip(*(p[:-1] for p in parts), strict=False):
        if all(c == components[0] for c in components):
            shared.append(components[0])
        else:
            break
    return "/".join(shared) + "/" if shared else ""


def _rgba(hex_color: str, alpha: float) -> str:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _vline_shape(mark: Mark, color: str) -> dict[str, Any]:
    """A thin line at a step a finding points at besides its own (a spike, a drop)."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": mark.step,
        "x1": mark.step,
        "y0": 0,
        "y1": 1,
        "opacity": 0.45,
        "line": {"color": color, "width": 1, "dash": "dot"},
    }


def _band_shape(mark: Mark, color: str) -> dict[str, Any]:
    """A faint band over the steps a finding is about."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": mark.step,
        "x1": mark.step_end,
        "y0": 0,
        "y1": 1,
        "fillcolor": color,
        "opacity": 0.07,
        "line": {"width": 0},
        "layer": "below",
    }


def _value_trace(
    mark: Mark, finding: Finding, color: str, span: tuple[float, float] | None
) -> dict[str, Any] | None:
    """A point (an open circle on the curve) or a level (a dashed line across the chart)."""
    label = mark.label or finding.name
    hover = plotly_text(f"{finding.code} {label}") + ": %{y:.6g} at step %{x}<extra></extra>"
    trace: dict[str, Any] = {
        "type": "scatter",
        "name": plotly_text(label),
        "showlegend": False,
        "hovertemplate": hover,
    }
    if mark.kind == "point":
        trace.update(
            mode="markers",
            x=[mark.step],
            y=[mark.value],
            marker={"size": 10, "symbol": "circle-open", "color": color, "line": {"width": 2}},
        )
        return trace
    if span is None:
        return None
    trace.update(
        mode="lines",
        x=[span[0], span[1]],
        y=[mark.value, mark.value],
        line={"color": color, "width": 1, "dash": "dash"},
    )
    return trace
