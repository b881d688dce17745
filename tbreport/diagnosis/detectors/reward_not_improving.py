"""E601 reward-not-improving: an RL agent whose episode reward never got better."""

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
    head_level,
    mark_band,
    param,
    pct,
    tail_level,
    trend_level,
)
from tbreport.model import Finding, Severity


def finite_reward(run: RunData, *, min_points: int) -> Curve:
    """The finite points of the run's episode reward; skips the detector when too few."""
    curve = run.required_curve("reward")
    finite = curve.finite()
    if len(finite) < min_points:
        raise SkipDetector(f"reward has {len(finite)} finite points, fewer than {min_points}")
    return finite


def share_above(level: np.ndarray, threshold: float) -> float:
    """The share of a smoothed reward's points above ``threshold``: how long the agent stayed
    clearly better than at its start (it learned, whatever came after)."""
    return float(np.mean(level > threshold))


class RewardNotImproving(Detector):
    """The episode reward ends no better than it started: the agent is not learning.

    ## What it detects
    On a reinforcement-learning run, the episode reward (the `reward` role: SB3's
    "rollout/ep_rew_mean", CleanRL's "charts/episodic_return", RLlib's "episode_reward_mean",
    "reward" or "reward_100"...) at the end
    (median of its last `edge_fraction` of points) improved by less than `min_improvement` over
    its start (median of its first `edge_fraction`), relative to the larger of the two
    magnitudes, and the smoothed reward never stayed that far above its start for
    `min_learning_share` of the run. A reward that fell counts too. Rewards are compared,
    never losses: an RL loss is a moving target and says little about learning.

    ## Why it matters
    An agent whose return does not rise learns nothing from its experience: the learning rate,
    the exploration, the reward scale or the value function is wrong, and every further
    environment step is wasted compute. This is underfitting in the seed guides' vocabulary.

    ## What to do
    - Check the reward signal and its scale (normalise rewards and observations)
    - Tune the learning rate and exploration (entropy coefficient, epsilon schedule)
    - Check that the value function fits (explained variance well above 0)
    - Train for more environment steps, or try another algorithm

    ## Example
    "rollout/ep_rew_mean" -118 → -98 over 1M steps (17% better, threshold 30%): flagged.
    """

    code = "E601"
    name = "reward-not-improving"
    severities = (Severity.WARNING,)
    problem = "underfitting"
    run_kinds = ("reinforcement-learning",)
    assesses = ("reinforcement-learning",)
    requires = ("reward",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite reward points needed to judge.")
        min_improvement: float = param(
            0.3,
            "Smallest rise of the reward from start to end, relative to the larger of the "
            "start and end magnitudes. On the labelled real runs, agents that learn reach "
            "0.71 or more and agents that do not reach 0.17 at most.",
        )
        edge_fraction: float = param(
            0.1, "Share of the points whose median gives the start and end levels."
        )
        min_learning_share: float = param(
            0.1,
            "A run whose smoothed reward spent at least this share of its points "
            "`min_improvement` above the start learned, even if the reward fell back later.",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        finite = finite_reward(run, min_points=params.min_points)
        values = finite.values
        start = head_level(values, fraction=params.edge_fraction, maximum=len(values))
        end = tail_level(values, fraction=params.edge_fraction, maximum=len(values))
        scale = max(abs(start), abs(end))
        improvement = (end - start) / scale if scale > 0 else 0.0
        if improvement >= params.min_improvement:
            return
        # An agent that spent a good part of the run clearly above its start did learn: a
        # reward that fell back later collapsed, which is another problem than never learning.
        level = trend_level(values, fraction=params.edge_fraction)
        margin = params.min_improvement * max(abs(start), float(np.max(np.abs(level))))
        learning_share = share_above(level, start + margin)
        if learning_share >= params.min_learning_share:
            return
        best = int(np.argmax(values))
        yield self.finding(
            run,
            message=(
                f"{finite.tag} went from {fmt(start)} to {fmt(end)} "
                f"({'+' if improvement >= 0 else ''}{pct(improvement)}, threshold "
                f"+{pct(params.min_improvement)}) over steps {finite.steps[0]}–{finite.steps[-1]}"
            ),
            step=int(finite.steps[-1]),
            evidence={
                "reward_start": start,
                "reward_end": end,
                "reward_best": float(values[best]),
                "best_step": int(finite.steps[best]),
                "improvement": improvement,
                "learning_share": learning_share,
                "min_improvement": params.min_improvement,
            },
            tags=(finite.tag,),
            strength=(params.min_improvement - improvement) / params.min_improvement + 1.0,
            observed=improvement,
            limit=params.min_improvement,
            step_range=(int(finite.steps[0]), int(finite.steps[-1])),
            marks=[mark_band(finite.tag, finite.steps[0], finite.steps[-1], "no progress")],
        )
