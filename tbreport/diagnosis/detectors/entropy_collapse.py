"""E603 entropy-collapse: the policy becomes deterministic in the first half of the run."""

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
    mark_point,
    param,
    trend_level,
)
from tbreport.model import Finding, Severity


class EntropyCollapse(Detector):
    """Policy entropy collapses early: the agent stops exploring before it has learned.

    ## What it detects
    On a reinforcement-learning run, the policy entropy (SB3 "entropy_loss" is its negative;
    its magnitude is used) of a discrete policy, smoothed with a rolling median, falls below
    `max_ratio` of its start within the first `early_fraction` of the run. Continuous policies
    (an entropy that changes sign) are not judged: their entropy has no floor at zero.

    ## Why it matters
    A policy that becomes deterministic early stops exploring: it commits to what it found in
    the first episodes and cannot discover better actions, so the reward plateaus low. The
    agent's predictions (its action distribution) have collapsed.

    ## What to do
    - Raise the entropy coefficient ("ent_coef") or use an entropy schedule
    - Lower the learning rate of the policy
    - Check the reward scale: huge rewards drown the entropy bonus

    ## Example
    "train/entropy_loss" -1.91 → -0.06 by 30% of the run (3% of its start, threshold 5%).
    """

    code = "E603"
    name = "entropy-collapse"
    severities = (Severity.WARNING,)
    problem = "collapsed-predictions"
    run_kinds = ("reinforcement-learning",)
    requires = ("entropy",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite entropy points needed to judge.")
        max_ratio: float = param(0.05, "Entropy below this share of its start has collapsed.")
        early_fraction: float = param(
            0.5, "The collapse must happen within this share of the run to count as early."
        )
        min_start: float = param(0.1, "A starting entropy below this is already deterministic.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        curve = run.required_curve("entropy")
        finite = curve.finite()
        if len(finite) < params.min_points:
            raise SkipDetector(f"entropy has {len(finite)} finite points, too few to judge")
        values = finite.values
        if np.any(values > 0) and np.any(values < 0):
            raise SkipDetector("the entropy changes sign (a continuous policy)")
        magnitude = np.abs(values)
        start = head_level(magnitude, fraction=0.05, maximum=len(values))
        if start < params.min_start:
            return
        level = trend_level(magnitude, fraction=0.05)
        below = np.nonzero(level < params.max_ratio * start)[0]
        if not below.size or below[0] > params.early_fraction * len(values):
            return
        first = int(below[0])
        step = int(finite.steps[first])
        yield self.finding(
            run,
            message=(
                f"{finite.tag} fell from {fmt(start)} to {fmt(float(level[first]))} by step "
                f"{step} ({first / len(values):.0%} of the run; threshold "
                f"{params.max_ratio:.0%} of its start within {params.early_fraction:.0%})"
            ),
            step=step,
            evidence={
                "entropy_start": start,
                "entropy_at_collapse": float(level[first]),
                "collapse_step": step,
                "run_fraction": first / len(values),
                "max_ratio": params.max_ratio,
                "early_fraction": params.early_fraction,
            },
            tags=(finite.tag,),
            strength=params.max_ratio * start / max(float(level[first]), 1e-12),
            observed=float(level[first]) / start,
            limit=params.max_ratio,
            marks=[mark_point(finite.tag, step, finite.values[first], "collapsed")],
        )
