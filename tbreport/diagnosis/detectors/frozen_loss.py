"""P302 frozen-loss: a loss pinned to one value while training goes on (constant predictions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Curve,
    Detector,
    RunData,
    SkipDetector,
    fmt,
    frozen_layers,
    mark_band,
    mark_hline,
    param,
)
from tbreport.diagnosis.detectors.gradients import DeadNeurons
from tbreport.model import Finding, Severity


class FrozenLoss(Detector):
    """The loss stops at one value to the last digits: the model's outputs no longer change.

    ## What it detects
    A training (or, without one, validation) loss that moved earlier in the run and then stays
    within a relative band of `rtol` for its last `min_fraction` of points (at least
    `min_points`). Minibatch noise alone moves a loss far more than that: a loss this still
    means the predictions no longer depend on the weights or the inputs. A loss pinned at zero
    (a perfect fit) is not reported.

    ## Why it matters
    The network's outputs have collapsed to a constant (a ReLU or clamp before the output that
    is always off, dead units, saturated activations), so no gradient reaches the weights and
    the rest of the run learns nothing: the prediction spread has collapsed, even when it is
    not logged.

    ## What to do
    - Look at the predictions: a constant output means a dead final activation or a clamp
    - Remove or change the last activation (no ReLU or max(x, 0) before a regression output)
    - Lower the learning rate and check initialisation (units pushed into the dead zone)
    - Normalise inputs and targets

    ## Example
    `train/epoch_loss` is 1.000 (±0) from epoch 3 to 203 after 3.27 → 5.52: flagged.
    """

    code = "P302"
    name = "frozen-loss"
    severities = (Severity.WARNING,)
    problem = "collapsed-predictions"
    run_kinds = ("supervised",)
    requires_any = ("train_loss", "val_loss")
    explained_by = ("non-finite-loss", "collapsed-predictions", "diverged-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest points the loss must stay frozen for.")
        min_fraction: float = param(
            0.3, "Smallest share of the run, at its end, the loss must stay frozen for."
        )
        rtol: float = param(
            1e-4,
            "Largest (max - min) / |median| of the frozen stretch. Healthy losses on the "
            "labelled runs move by 2e-3 or more over their last 30%.",
        )
        min_level: float = param(1e-6, "A loss below this is a perfect fit, not a collapse.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        curve = run.curve("train_loss") or run.curve("val_loss")
        if curve is None:  # pragma: no cover - guarded by `requires_any`
            raise SkipDetector("no loss to judge")
        finite = curve.finite()
        n = len(finite)
        if n < params.min_points + 2:
            raise SkipDetector(f"{finite.tag} has {n} finite points, too few to judge")
        frozen_from = _frozen_start(finite, rtol=params.rtol)
        span = n - frozen_from
        if frozen_from == 0 or span < max(params.min_points, params.min_fraction * n):
            return
        level = float(np.median(finite.values[frozen_from:]))
        if abs(level) < params.min_level:
            return
        # Every weight layer stopped changing (a learning rate of 0): the loss is still because
        # nothing trains, not because the outputs collapsed; dead-neurons reports the network.
        # Judged as dead-neurons judges it, with its parameters' defaults.
        dead = DeadNeurons.Params()
        stopped = frozen_layers(
            run.histogram_frames("weight_histograms"),
            min_points=dead.min_points,
            min_fraction=dead.min_frozen_fraction,
            rtol=dead.rtol,
        )
        if stopped is not None and stopped.whole_network:
            return
        band = finite.values[frozen_from:]
        spread = float((band.max() - band.min()) / abs(level))
        step = int(finite.steps[frozen_from])
        yield self.finding(
            run,
            message=(
                f"{finite.tag} stays at {fmt(level)} (±{fmt(spread / 2 * abs(level))}) from step "
                f"{step} to {int(finite.steps[-1])}, {span} of {n} points "
                f"(threshold: relative band {fmt(params.rtol)} over {params.min_fraction:.0%})"
            ),
            step=step,
            evidence={
                "frozen_value": level,
                "relative_band": spread,
                "rtol": params.rtol,
                "frozen_points": span,
                "points": n,
            },
            tags=(finite.tag,),
            strength=span / max(params.min_fraction * n, 1.0),
            observed=spread,
            limit=params.rtol,
            step_range=(step, int(finite.steps[-1])),
            marks=[
                mark_band(finite.tag, step, finite.steps[-1], "frozen"),
                mark_hline(finite.tag, level, "frozen level"),
            ],
        )


def _frozen_start(curve: Curve, *, rtol: float) -> int:
    """Index of the first point of the longest stretch at the end of the curve that stays within
    a relative band of ``rtol`` around its own values (``len(curve)`` when none)."""
    reverse = curve.values[::-1]
    low = np.minimum.accumulate(reverse)
    high = np.maximum.accumulate(reverse)
    scale = np.maximum(np.abs(low), np.abs(high))
    outside = (high - low) > rtol * scale
    # Points from the end while the running band stays within rtol of its level.
    inside = int(np.argmax(outside)) if outside.any() else reverse.size
    return reverse.size - inside
