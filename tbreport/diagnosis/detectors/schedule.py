"""Learning-rate schedule detectors (R5xx)."""

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
    mark_vline,
    param,
    pct,
)
from tbreport.model import Finding, Severity


class LrScheduleNoEffect(Detector):
    """A learning-rate drop that the training loss did not respond to.

    ## What it detects
    The learning rate falls by at least `min_drop_factor` within one logging interval (a step
    or plateau schedule), yet the median training loss over the `window_fraction` of the run
    after the drop is not at least `min_response` lower than over the same span before it.
    Smooth schedules (cosine, linear) and constant rates have no drop to judge.

    ## Why it matters
    A step down in learning rate normally gives a visible drop in loss; when nothing happens,
    the schedule is not doing its job: the rate was already too low, the drop came after the
    model converged, or the scheduler acts on an optimiser that is not used.

    ## What to do
    - Check that the scheduler is attached to the optimiser that trains the model
    - Drop the learning rate earlier, or start from a higher rate
    - Plot the learning rate alongside the loss: a drop should match a drop in loss

    ## Example
    `learning_rate` 1e-3 → 1e-4 at step 50; `train_loss` 0.412 before, 0.411 after (0.2% lower,
    threshold 1%).
    """

    code = "R501"
    name = "lr-schedule-no-effect"
    severities = (Severity.INFO,)
    run_kinds = ("supervised",)
    linear_axis = True
    requires = ("learning_rate", "train_loss")

    @dataclass(frozen=True)
    class Params:
        min_drop_factor: float = param(
            3.0, "Learning-rate fall within one interval that is a schedule step."
        )
        min_response: float = param(
            0.01, "Smallest relative fall of the training loss after a drop."
        )
        window_fraction: float = param(
            0.1, "Span before and after a drop compared, as a share of the run."
        )
        min_points: int = param(3, "Fewest training-loss points on each side of a drop.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        lr = run.required_curve("learning_rate").finite()
        train = run.required_curve("train_loss").finite()
        if len(lr) < 3 or len(train) < 2 * params.min_points:
            raise SkipDetector("too few learning-rate or training-loss points")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = lr.values[:-1] / lr.values[1:]
        drops = np.nonzero((ratio >= params.min_drop_factor) & (lr.values[1:] > 0))[0] + 1
        span = max(int(train.steps[-1] - train.steps[0]), 1)
        window = max(int(params.window_fraction * span), 1)
        for i in drops:
            step = int(lr.steps[i])
            before = train.values[(train.steps < step) & (train.steps >= step - window)]
            after = train.values[(train.steps > step) & (train.steps <= step + window)]
            if before.size < params.min_points or after.size < params.min_points:
                continue
            b, a = float(np.median(before)), float(np.median(after))
            response = (b - a) / (abs(b) or 1.0)
            if response >= params.min_response:
                continue
            yield self.finding(
                run,
                message=(
                    f"learning rate fell {fmt(lr.values[i - 1])} → {fmt(lr.values[i])} "
                    f"at step {step} "
                    f"but training loss moved {fmt(b)} → {fmt(a)} ({pct(response)} lower, "
                    f"threshold {pct(params.min_response)})"
                ),
                step=step,
                evidence={
                    "lr_before": float(lr.values[i - 1]),
                    "lr_after": float(lr.values[i]),
                    "loss_before": b,
                    "loss_after": a,
                    "response": response,
                    "min_response": params.min_response,
                    "min_drop_factor": params.min_drop_factor,
                },
                tags=(lr.tag, train.tag),
                observed=response,
                limit=params.min_response,
                step_range=(step - window, step + window),
                marks=[
                    mark_vline(lr.tag, step, "drop"),
                    mark_band(train.tag, step - window, step + window, "before and after"),
                ],
            )
            return
