"""E604 value-loss-blow-up: an RL value (critic) loss that spikes by orders of magnitude."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    SkipDetector,
    fmt,
    mark_point,
    param,
)
from tbreport.model import Finding, Severity

# SB3 value_loss / critic_loss, CleanRL losses/value_loss and qf1_loss, RLlib vf_loss; DQN's
# TD loss (SB3 train/loss of a run without a policy loss) is a value loss too.
_VALUE_LOSS = re.compile(r"(?:^|[/_])(?:value|critic|vf|qf\d?|q|td)[_ ]?loss$", re.IGNORECASE)


class ValueLossBlowUp(Detector):
    """The value (critic) loss of an RL agent spikes far above its typical level.

    ## What it detects
    On a reinforcement-learning run, a value or critic loss (SB3 "value_loss"/"critic_loss",
    CleanRL "value_loss"/"qf1_loss", RLlib "vf_loss") whose peak after the first
    `skip_fraction` of the run is at least `spike_factor` times its median and above the level
    reached in that first part (a loss converging toward zero has a tiny median, not a spike).

    ## Why it matters
    A value loss that jumps by orders of magnitude means the value estimates were thrown far
    off (returns of a new scale, a too-large update); the advantages computed from them are
    garbage for a while, and the policy updates they drive are erratic. The seed guides read it
    as an unstable run: the learning rate is too high.

    ## What to do
    - Normalise rewards (and observations); clip the value loss or the gradients
    - Lower the learning rate (of the critic, for actor-critic methods)
    - Check the reward scale at the steps of the spikes

    ## Example
    "train/value_loss" median 0.25, peak 9.9e+03 at step 120,000 (39,000×, threshold 100×).
    """

    code = "E604"
    name = "value-loss-blow-up"
    severities = (Severity.WARNING,)
    problem = "erratic-loss"
    run_kinds = ("reinforcement-learning",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite points of the value loss needed to judge.")
        spike_factor: float = param(
            100.0,
            "Peak over median that is a blow-up. On the labelled RL runs, healthy value losses "
            "peak at 14x their median or less; unstable ones at 159x or more.",
        )
        skip_fraction: float = param(
            0.1, "Share of the run at its start ignored (the first value estimates are random)."
        )
        min_median: float = param(
            1e-8, "A median below this is a value loss at zero, whose ratio says nothing."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        tags = [
            t
            for t, m in run.meanings.items()
            if m.quantity == "loss" and _VALUE_LOSS.search(t.replace("-", "_"))
        ]
        if not tags:
            raise SkipDetector("no value or critic loss logged")
        worst = None
        for tag in tags:
            curve = run.tag_curve(tag).finite()
            if len(curve) < params.min_points:
                continue
            values = np.abs(curve.values)
            median = float(np.median(values))
            skip = int(np.ceil(params.skip_fraction * values.size))
            if median < params.min_median or skip >= values.size:
                continue
            peak_index = skip + int(np.argmax(values[skip:]))
            peak = float(values[peak_index])
            ratio = peak / median
            # A loss that fell toward zero has a tiny median: its peak must also top the level
            # it reached in that first part to be a spike, not a converging curve.
            early = float(np.max(values[: max(skip, 1)]))
            if ratio < params.spike_factor or peak <= early:
                continue
            if worst is None or ratio > worst[0]:
                worst = (ratio, tag, median, peak, int(curve.steps[peak_index]))
        if worst is None:
            return
        ratio, tag, median, peak, step = worst
        yield self.finding(
            run,
            message=(
                f"{tag} median {fmt(median)}, peak {fmt(peak)} at step {step} "
                f"({fmt(ratio)}×, threshold {fmt(params.spike_factor)}×)"
            ),
            step=step,
            evidence={
                "median": median,
                "peak": peak,
                "peak_step": step,
                "ratio": ratio,
                "spike_factor": params.spike_factor,
            },
            tags=(tag,),
            strength=ratio / params.spike_factor,
            observed=ratio,
            limit=params.spike_factor,
            marks=[mark_point(tag, step, peak, "peak")],
        )
