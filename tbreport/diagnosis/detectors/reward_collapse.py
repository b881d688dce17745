"""E602 reward-collapse: an RL agent that learned, then lost most of what it had gained."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    fmt,
    head_level,
    mark_band,
    mark_point,
    param,
    tail_level,
    trend_level,
)
from tbreport.diagnosis.detectors.reward_not_improving import finite_reward, share_above
from tbreport.model import Finding, Severity


class RewardCollapse(Detector):
    """The episode reward rose, then fell back and stays down: the policy collapsed.

    ## What it detects
    On a reinforcement-learning run, the smoothed episode reward (rolling median over
    `smoothing_fraction` of the points) first rises to a peak at least `min_gain` above its
    start (relative to the larger magnitude), and the reward at the end (median of the last
    `edge_fraction`) has given back at least `min_lost` of that gain, after the reward stayed
    that far above its start for at least `min_learning_share` of the run.

    ## Why it matters
    The agent found a good policy and then lost it: updates too large for the value estimates
    (catastrophic forgetting, a learning rate or clip range too high, an exploding value loss),
    so the end of the run is worse than its middle. It is the unstable run of the seed guide.

    ## What to do
    - Keep the checkpoint from the reward's peak (evaluate and save the best policy)
    - Lower the learning rate, or the clip range / target-network update rate
    - Clip gradients and normalise rewards and advantages
    - Check the value loss for spikes at the same steps

    ## Example
    "rollout/ep_rew_mean" 2.2 → 43 at 150k steps → 19 at 1M (59% of the gain lost): flagged.
    """

    code = "E602"
    name = "reward-collapse"
    severities = (Severity.WARNING,)
    problem = "erratic-loss"
    run_kinds = ("reinforcement-learning",)
    requires = ("reward",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite reward points needed to judge.")
        min_gain: float = param(
            0.3, "Smallest rise of the smoothed peak over the start, relative to the magnitude."
        )
        min_lost: float = param(0.5, "Smallest share of the gain given back at the end.")
        min_learning_share: float = param(
            0.1,
            "Smallest share of the points the smoothed reward must have spent `min_gain` above "
            "its start (as in reward-not-improving, which reports the runs below it).",
        )
        smoothing_fraction: float = param(0.1, "Rolling-median window, as a share of points.")
        edge_fraction: float = param(
            0.1, "Share of the points whose median gives the start and end levels."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        finite = finite_reward(run, min_points=params.min_points)
        values = finite.values
        level = trend_level(values, fraction=params.smoothing_fraction)
        peak_index = int(np.nanargmax(level))
        peak = float(level[peak_index])
        start = head_level(values, fraction=params.edge_fraction, maximum=len(values))
        end = tail_level(values, fraction=params.edge_fraction, maximum=len(values))
        scale = max(abs(start), abs(peak))
        gain = peak - start
        if scale <= 0 or gain / scale < params.min_gain:
            return
        lost = (peak - end) / gain
        if lost < params.min_lost:
            return
        # It must have learned for a while: a brief blip above the start is no collapse (the
        # agent never learned, which reward-not-improving reports).
        margin = params.min_gain * scale
        learning_share = share_above(level, start + margin)
        if learning_share < params.min_learning_share:
            return
        step = int(finite.steps[peak_index])
        yield self.finding(
            run,
            message=(
                f"{finite.tag} rose from {fmt(start)} to {fmt(peak)} at step {step}, then fell "
                f"to {fmt(end)}: {lost:.0%} of the gain lost (threshold {params.min_lost:.0%})"
            ),
            step=step,
            evidence={
                "reward_start": start,
                "reward_peak": peak,
                "peak_step": step,
                "reward_end": end,
                "gain_lost": lost,
                "learning_share": learning_share,
                "min_lost": params.min_lost,
            },
            tags=(finite.tag,),
            strength=lost / params.min_lost,
            observed=lost,
            limit=params.min_lost,
            step_range=(step, int(finite.steps[-1])),
            marks=[
                mark_point(finite.tag, step, peak, "peak"),
                mark_band(finite.tag, step, finite.steps[-1], "after the peak"),
            ],
        )
