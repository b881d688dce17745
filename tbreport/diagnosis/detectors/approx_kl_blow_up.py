"""E605 approx-kl-blow-up: policy updates that move the policy far more than intended."""

from __future__ import annotations

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


class ApproxKlBlowUp(Detector):
    """The approximate KL divergence of policy updates spikes: updates far larger than intended.

    ## What it detects
    On a reinforcement-learning run, the approximate KL divergence between the policy before
    and after an update (SB3 and CleanRL "approx_kl", the `approx_kl` role) reaches at least
    `min_kl` and at least `spike_factor` times its median, after the first `skip_fraction` of
    the run.

    ## Why it matters
    PPO-style methods assume each update changes the policy a little (a KL of about 0.01-0.05).
    An update whose KL is ten or a hundred times that has thrown the policy somewhere the
    advantages no longer describe: learning turns erratic and the reward can collapse. The
    seed guides read it as a learning rate that is too high.

    ## What to do
    - Lower the learning rate, or anneal it
    - Set a target KL ("target_kl" in SB3) to stop an epoch of updates early
    - Reduce the number of epochs per rollout or the clip range
    - Normalise advantages and observations

    ## Example
    "train/approx_kl" median 0.015, peak 2.3 at step 410k (150×, thresholds 100× and 0.5).
    """

    code = "E605"
    name = "approx-kl-blow-up"
    severities = (Severity.WARNING,)
    problem = "erratic-loss"
    run_kinds = ("reinforcement-learning",)
    requires = ("approx_kl",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite KL points needed to judge.")
        spike_factor: float = param(
            100.0,
            "Peak over median that is a blow-up; healthy labelled PPO runs peak at 18x or less.",
        )
        min_kl: float = param(
            0.5, "Smallest peak KL that counts (healthy labelled PPO runs stay below 0.34)."
        )
        skip_fraction: float = param(0.05, "Share of the run at its start ignored.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        curve = run.required_curve("approx_kl")
        finite = curve.finite()
        if len(finite) < params.min_points:
            raise SkipDetector(f"approx_kl has {len(finite)} finite points, too few to judge")
        values = np.abs(finite.values)
        median = float(np.median(values))
        skip = int(np.ceil(params.skip_fraction * values.size))
        if skip >= values.size or median <= 0:
            return
        peak_index = skip + int(np.argmax(values[skip:]))
        peak = float(values[peak_index])
        ratio = peak / median
        if peak < params.min_kl or ratio < params.spike_factor:
            return
        step = int(finite.steps[peak_index])
        yield self.finding(
            run,
            message=(
                f"{finite.tag} median {fmt(median)}, peak {fmt(peak)} at step {step} "
                f"({fmt(ratio)}×; thresholds {fmt(params.spike_factor)}× and "
                f"{fmt(params.min_kl)})"
            ),
            step=step,
            evidence={
                "median": median,
                "peak": peak,
                "peak_step": step,
                "ratio": ratio,
                "spike_factor": params.spike_factor,
                "min_kl": params.min_kl,
            },
            tags=(finite.tag,),
            strength=min(ratio / params.spike_factor, peak / params.min_kl),
            observed=ratio,
            limit=params.spike_factor,
            marks=[mark_point(finite.tag, step, finite.values[peak_index], "peak")],
        )
