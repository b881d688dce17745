"""Weight detectors (W4xx): weights collapsing to zero or growing without bound."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    SkipDetector,
    fmt,
    histogram_rms,
    is_bias,
    layer_label,
    param,
)
from tbreport.diagnosis.stats import mann_kendall
from tbreport.model import Finding, Severity


def _weight_layers(
    run: RunData, min_points: int
) -> dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    frames = run.histogram_frames("weight_histograms")
    layers = {}
    for tag, frame in frames.items():
        if is_bias(tag) or len(frame) < min_points:
            continue
        layers[tag] = (frame["step"].to_numpy(np.int64), histogram_rms(frame), frame)
    if not layers:
        raise SkipDetector(f"no weight histogram (other than biases) has {min_points} or more logs")
    return layers


class WeightCollapse(Detector):
    """Weights of a layer shrink toward zero.

    ## What it detects
    A weight layer (biases excluded) whose root-mean-square weight ends below `max_ratio` times
    its first logged value, or whose values are at least `max_zero_fraction` exactly zero at the
    end of the run.

    ## Why it matters
    Weights collapsing to zero mean the layer's output no longer depends on its input: too much
    weight decay or L1/L2 regularisation for the learning rate, or dead units pulled to zero.
    Healthy weight distributions evolve but do not collapse.

    ## What to do
    - Reduce weight decay or L1/L2 regularisation
    - Check the learning-rate schedule and the optimiser's decoupled weight decay setting
    - Check initialisation

    ## Example
    `weights/fc1.weight` RMS 0.082 → 0.0003 (0.4% of its start, threshold 1%): flagged.
    """

    code = "W401"
    name = "weight-collapse"
    severities = (Severity.WARNING,)
    # A layer pulled to zero makes the network's output constant: the predictions collapse.
    problem = "collapsed-predictions"
    requires = ("weight_histograms",)
    # Huge updates after a blow-up throw weights anywhere, toward zero too: the blow-up is the
    # cause to fix.
    explained_by = ("exploding-gradients", "non-finite-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(3, "Fewest histogram logs of a layer needed to judge.")
        max_ratio: float = param(0.01, "Final RMS below this share of the first RMS is a collapse.")
        max_zero_fraction: float = param(
            0.95, "Final share of exactly-zero weights that is a collapse."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        layers = _weight_layers(run, params.min_points)
        collapsed: dict[str, dict[str, float]] = {}
        for tag, (steps, rms, frame) in layers.items():
            start, end = float(rms[0]), float(rms[-1])
            zero_end = float(frame["zero_fraction"].iloc[-1])
            if start > 0 and np.isfinite(end) and end / start < params.max_ratio:
                collapsed[tag] = {
                    "start_rms": start,
                    "end_rms": end,
                    "ratio": end / start,
                    "zero_fraction": zero_end,
                    "step": int(steps[-1]),
                }
            elif zero_end >= params.max_zero_fraction > float(frame["zero_fraction"].iloc[0]):
                collapsed[tag] = {
                    "start_rms": start,
                    "end_rms": end,
                    "ratio": end / start if start > 0 else float("nan"),
                    "zero_fraction": zero_end,
                    "step": int(steps[-1]),
                }
        if not collapsed:
            return
        worst = min(
            collapsed,
            key=lambda t: collapsed[t]["ratio"] if np.isfinite(collapsed[t]["ratio"]) else 0,
        )
        w = collapsed[worst]
        yield self.finding(
            run,
            message=(
                f"{len(collapsed)} layer(s) collapsed toward zero: {layer_label(worst)} RMS "
                f"{fmt(w['start_rms'])} → {fmt(w['end_rms'])} ({fmt(w['ratio'])}× its start, "
                f"threshold {fmt(params.max_ratio)}×)"
            ),
            step=int(w["step"]),
            evidence={
                "layers": {layer_label(t): v for t, v in list(collapsed.items())[:20]},
                "max_ratio": params.max_ratio,
                "max_zero_fraction": params.max_zero_fraction,
            },
            tags=list(collapsed)[:20],
            # The RMS test when its ratio is known, else the share of exact zeros.
            observed=w["ratio"] if np.isfinite(w["ratio"]) else w["zero_fraction"],
            limit=params.max_ratio if np.isfinite(w["ratio"]) else params.max_zero_fraction,
        )


class WeightGrowth(Detector):
    """Weights grow without bound.

    ## What it detects
    The global weight norm (over all non-bias weight histograms) rises to at least
    `growth_factor` times its first logged value with a significant upward Mann–Kendall trend
    (one-sided p < `alpha`), or some layer's RMS weight exceeds `max_rms`.

    ## Why it matters
    Unbounded weight growth precedes overflow and exploding activations; it also means the model
    relies on ever larger weights to fit the data, which generalises poorly.

    ## What to do
    - Add or increase weight decay
    - Reduce the learning rate
    - Use gradient clipping
    - Add normalisation layers

    ## Example
    global weight norm 12.4 → 1,930 over 40 logs (156× > 10×, p = 0.0001): flagged.
    """

    code = "W402"
    name = "weight-growth"
    severities = (Severity.WARNING,)
    problem = "exploding-gradients"
    requires = ("weight_histograms",)
    explained_by = ("exploding-gradients", "non-finite-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(3, "Fewest histogram logs needed to judge.")
        growth_factor: float = param(
            10.0, "Growth of the global weight norm that counts as unbounded."
        )
        alpha: float = param(0.05, "Significance level of the upward trend.")
        max_rms: float = param(
            1e3, "RMS weight of any layer above which weights count as blown up."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        layers = _weight_layers(run, params.min_points)
        parts = []
        for steps, rms, frame in layers.values():
            num = frame["num"].to_numpy(np.float64)
            parts.append(pd.DataFrame({"step": steps, "ss": rms**2 * num}))
        joined = pd.concat(parts).groupby("step", sort=True)["ss"].sum(min_count=1)
        steps = joined.index.to_numpy(np.int64)
        norm = np.sqrt(joined.to_numpy(np.float64))
        finite = np.isfinite(norm)
        steps, norm = steps[finite], norm[finite]
        huge = {
            t: float(np.nanmax(r))
            for t, (s, r, f) in layers.items()
            if np.nanmax(r) > params.max_rms
        }
        if norm.size < params.min_points and not huge:
            return
        growth = float(norm[-1] / norm[0]) if norm.size and norm[0] > 0 else float("nan")
        trend = mann_kendall(norm)
        evidence: dict[str, Any] = {
            "start_norm": float(norm[0]) if norm.size else float("nan"),
            "end_norm": float(norm[-1]) if norm.size else float("nan"),
            "growth": growth,
            "growth_factor": params.growth_factor,
            "trend_p_value": trend.p_increasing,
            "alpha": params.alpha,
            "max_rms": params.max_rms,
        }
        if (
            np.isfinite(growth)
            and growth >= params.growth_factor
            and trend.increasing(alpha=params.alpha)
        ):
            onset = int(np.argmax(norm >= np.sqrt(params.growth_factor) * norm[0]))
            yield self.finding(
                run,
                message=(
                    f"global weight norm grew {fmt(growth)}× ({fmt(norm[0])} → {fmt(norm[-1])}; "
                    f"threshold {fmt(params.growth_factor)}×, trend p = {fmt(trend.p_increasing)})"
                ),
                step=int(steps[onset]),
                evidence=evidence,
                tags=list(layers)[:20],
                observed=growth,
                limit=params.growth_factor,
                step_range=(int(steps[onset]), int(steps[-1])),
            )
        elif huge:
            worst = max(huge, key=huge.__getitem__)
            evidence["layer_max_rms"] = {layer_label(t): v for t, v in huge.items()}
            yield self.finding(
                run,
                message=(
                    f"{layer_label(worst)} RMS weight reached {fmt(huge[worst])} "
                    f"(threshold {fmt(params.max_rms)})"
                ),
                step=int(layers[worst][0][int(np.nanargmax(layers[worst][1]))]),
                evidence=evidence,
                tags=list(huge)[:20],
                observed=huge[worst],
                limit=params.max_rms,
            )
