"""L107 diverged-loss: the training loss gave back its progress and stays up, without a NaN."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    SkipDetector,
    fmt,
    head_level,
    mark_band,
    mark_point,
    param,
    tail_level,
    trend_level,
)
from tbreport.model import Finding, Severity


class DivergedLoss(Detector):
    """The training loss jumped back up and stayed there: training diverged without a NaN.

    ## What it detects
    The training loss, smoothed with a rolling median, reaches a minimum and then ends (median
    of its last `edge_fraction` of points) at least `min_ratio` times that minimum, having given
    back at least `min_lost` of the progress it had made from its start. A training loss does
    not rise in a healthy run (overfitting raises the validation loss, not this one), so a loss
    that climbs back and stays up means the optimisation jumped out of the basin it was in.

    ## Why it matters
    The weights left a good region and did not come back: every step after the jump is wasted,
    and the end of the run is worse than its middle. It is the unstable run of the seed guide
    ("loss erratic or diverging": the learning rate is too high), caught even when it never
    turns into NaN.

    ## What to do
    - Decrease the learning rate, or stop a schedule that raises it (warm restarts, a bad step)
    - Use gradient clipping
    - Keep the checkpoint from before the jump
    - Check for a bad batch or a data change at the step of the jump

    ## Example
    `train_loss` 0.70 → 0.05 at epoch 40, then 0.44–0.77 until the end: flagged.
    """

    code = "L107"
    name = "diverged-loss"
    severities = (Severity.WARNING,)
    problem = "erratic-loss"
    run_kinds = ("supervised",)
    requires = ("train_loss",)
    explained_by = ("non-finite-loss",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(8, "Fewest finite training-loss points needed to judge.")
        min_ratio: float = param(
            2.0, "Smallest end level of the loss over its smoothed minimum that counts."
        )
        min_lost: float = param(
            0.5, "Smallest share of the progress (start minus minimum) given back at the end."
        )
        edge_fraction: float = param(
            0.2, "Share of the points whose median gives the start and end levels."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        curve = run.required_curve("train_loss")
        finite = curve.finite()
        if len(finite) < params.min_points:
            raise SkipDetector(
                f"training loss has {len(finite)} finite points, fewer than {params.min_points}"
            )
        values = finite.values
        level = trend_level(values, fraction=0.1)
        low = int(np.nanargmin(level))
        minimum = float(level[low])
        start = head_level(values, fraction=params.edge_fraction, maximum=len(values))
        end = tail_level(values, fraction=params.edge_fraction, maximum=len(values))
        if not (minimum > 0 and start > minimum):
            return  # no progress made (or a loss that can be negative): nothing to give back
        ratio = end / minimum
        lost = (end - minimum) / (start - minimum)
        if ratio < params.min_ratio or lost < params.min_lost:
            return
        # The jump: the first point after the minimum at or above half-way back to the end.
        after = np.nonzero(values[low:] >= minimum + (end - minimum) / 2)[0]
        jump = low + int(after[0]) if after.size else low
        step = int(finite.steps[jump])
        yield self.finding(
            run,
            message=(
                f"{finite.tag} fell from {fmt(start)} to {fmt(minimum)} (step "
                f"{int(finite.steps[low])}), then jumped back at step {step} and ends at "
                f"{fmt(end)}: {fmt(ratio)}× its minimum, {lost:.0%} of the progress lost "
                f"(thresholds {fmt(params.min_ratio)}×, {params.min_lost:.0%})"
            ),
            step=step,
            evidence={
                "start": start,
                "minimum": minimum,
                "minimum_step": int(finite.steps[low]),
                "end": end,
                "ratio": ratio,
                "progress_lost": lost,
                "min_ratio": params.min_ratio,
                "min_lost": params.min_lost,
            },
            tags=(finite.tag,),
            strength=min(ratio / params.min_ratio, lost / params.min_lost),
            observed=ratio,
            limit=params.min_ratio,
            step_range=(step, int(finite.steps[-1])),
            marks=[
                mark_point(finite.tag, finite.steps[low], minimum, "minimum"),
                mark_band(finite.tag, step, finite.steps[-1], "diverged"),
            ],
        )
