"""L106 non-finite-metric: NaN or Inf in a metric or statistic that is not a loss."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tbreport.diagnosis.detectors.base import Detector, RunData, mark_vline
from tbreport.diagnosis.detectors.loss import is_metric_tag
from tbreport.model import Finding, Severity


class NonFiniteMetric(Detector):
    """NaN or Inf in a metric that is not a loss.

    ## What it detects
    A metric or statistic (accuracy, explained variance, reward, learning rate...) holding NaN
    or ±Inf while the losses stay finite. Reported as information: the value was undefined
    (Stable-Baselines3 logs a NaN `explained_variance` when the returns have no variance; an
    accuracy over an empty batch is 0/0), which does not poison the weights as a NaN loss does.

    ## Why it matters
    A metric that is undefined for long stretches cannot be trusted for model selection, and
    it can hide a real problem, such as an agent whose episodes all end at once.

    ## What to do
    - Check how the metric is computed at the steps named (empty batches, zero variance)
    - Guard the computation (skip the log when the denominator is zero)

    ## Example
    `train/explained_variance` is NaN at 2,522 of 4,000 steps from step 880,000: reported.
    """

    code = "L106"
    name = "non-finite-metric"
    severities = (Severity.INFO,)
    # Once a loss is NaN every metric computed from the model follows: the loss is the cause.
    explained_by = ("non-finite-loss",)

    @dataclass(frozen=True)
    class Params:
        """No parameters."""

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        suspects = run.nonfinite_tags()
        if not suspects:
            return
        bad: dict[str, dict[str, Any]] = {}
        for tag in sorted(t for t in suspects if is_metric_tag(run, str(t))):
            curve = run.tag_curve(str(tag))
            mask = ~np.isfinite(curve.values)
            if mask.any():
                first = int(np.argmax(mask))
                bad[str(tag)] = {
                    "first_step": int(curve.steps[first]),
                    "count": int(mask.sum()),
                    "points": len(curve),
                }
        if not bad:
            return
        head = min(bad, key=lambda t: (bad[t]["first_step"], t))
        info = bad[head]
        yield self.finding(
            run,
            message=(
                f"{head} is not finite at {info['count']} of {info['points']} points from step "
                f"{info['first_step']}" + (f"; {len(bad) - 1} more metrics" if len(bad) > 1 else "")
            ),
            step=info["first_step"],
            evidence={
                "tags": {t: bad[t] for t in list(bad)[:20]},
                "affected_tags": len(bad),
                "threshold": "any non-finite value",
            },
            tags=list(bad)[:20],
            observed=info["count"],
            limit=0,
            marks=[mark_vline(t, bad[t]["first_step"], "NaN") for t in list(bad)[:20]],
        )
