"""Prediction detectors (P3xx): the spread of the model's outputs collapsing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    SkipDetector,
    fmt,
    mark_band,
    mark_point,
    param,
    pct,
    trend_level,
)
from tbreport.model import Finding, Severity


class CollapsedPredictions(Detector):
    """Prediction spread (`pred_std` or similar) falls toward zero.

    ## What it detects
    The logged standard deviation of the predictions ends (its last `patience` points all) below
    `max_ratio` times its peak level (rolling median), or below `min_std` in absolute terms.

    ## Why it matters
    A model whose outputs no longer vary has collapsed to predicting a constant (usually the
    mean target): it has given up learning patterns, even if its loss looks acceptable — for
    noisy targets such as returns, the mean is a cheap local optimum.

    ## What to do
    - Try a lower learning rate
    - Try a different architecture
    - Use better features (the inputs may not carry the signal)
    - Check the loss: a strong penalty or label smoothing can push outputs to a constant

    ## Example
    `pred_std`: 0.021 at its peak (step 4) → 0.00004 for the last 5 logs (0.2% < 10%): flagged.
    """

    code = "P301"
    name = "collapsed-predictions"
    severities = (Severity.WARNING,)
    problem = "collapsed-predictions"
    requires = ("pred_std",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(4, "Fewest finite prediction-spread points needed to judge.")
        max_ratio: float = param(
            0.1, "Final spread below this share of the peak spread counts as collapsed."
        )
        min_std: float = param(1e-6, "Spread below this absolute value always counts as collapsed.")
        patience: int = param(3, "Consecutive final points that must all be collapsed.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        curve = run.required_curve("pred_std")
        finite = curve.finite()
        if len(finite) < params.min_points:
            raise SkipDetector(
                f"prediction spread has {len(finite)} finite points, fewer than {params.min_points}"
            )
        values = np.abs(finite.values)
        level = trend_level(values, fraction=0.1, minimum=3)
        peak_index = int(np.nanargmax(level))
        peak = float(level[peak_index])
        patience = min(params.patience, values.size - 1)
        tail = values[-patience:]
        ratio = float(np.max(tail)) / peak if peak > 0 else 0.0
        absolute = bool(np.all(tail < params.min_std))
        relative = (
            peak > 0
            and peak_index < values.size - patience
            and bool(np.all(tail < params.max_ratio * peak))
        )
        if not (absolute or relative):
            return
        below = values < max(params.max_ratio * peak if relative else 0.0, params.min_std)
        # Onset: the start of the final run of collapsed points.
        onset = values.size - 1
        while onset > 0 and below[onset - 1]:
            onset -= 1
        final = float(np.median(tail))
        if relative:
            message = (
                f"prediction spread fell from {fmt(peak)} (step {int(finite.steps[peak_index])}) "
                f"to {fmt(final)}: {pct(ratio)} of its peak over the last {patience} points "
                f"(threshold {pct(params.max_ratio)})"
            )
        else:
            message = (
                f"prediction spread is {fmt(final)} over the last {patience} points "
                f"(threshold {fmt(params.min_std)}): the outputs are constant"
            )
        yield self.finding(
            run,
            message=message,
            step=int(finite.steps[onset]),
            evidence={
                "peak_std": peak,
                "peak_step": int(finite.steps[peak_index]),
                "final_std": final,
                "ratio": ratio,
                "max_ratio": params.max_ratio,
                "min_std": params.min_std,
                "patience": patience,
            },
            tags=(finite.tag,),
            # The relative test when it fired (the absolute one is the floor under it).
            observed=ratio if relative else final,
            limit=params.max_ratio if relative else params.min_std,
            step_range=(int(finite.steps[onset]), int(finite.steps[-1])),
            marks=[
                mark_point(finite.tag, finite.steps[peak_index], peak, "peak")
                if relative
                else None,
                mark_band(finite.tag, finite.steps[onset], finite.steps[-1], "collapsed"),
            ],
        )
