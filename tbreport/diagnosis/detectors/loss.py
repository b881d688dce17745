"""Loss-curve detectors (L1xx): overfitting, underfitting, erratic loss, non-finite values, gap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tbreport.diagnosis.detectors.base import (
    Curve,
    Detector,
    RunData,
    SkipDetector,
    fmt,
    head_level,
    mark_band,
    mark_point,
    mark_vline,
    param,
    pct,
    positive_log,
    tail_level,
    train_at,
    trend_level,
)
from tbreport.diagnosis.stats import (
    block_medians,
    mann_kendall,
    rolling_median,
    sign_change_ratio,
    small_median,
)
from tbreport.model import Finding, Severity


def _finite_curve(run: RunData, role: str, *, minimum: int, what: str) -> Curve:
    finite = run.required_curve(role).finite()
    if len(finite) < minimum:
        raise SkipDetector(f"{what} has {len(finite)} finite points, fewer than {minimum}")
    return finite


def _robust_sigma(values: np.ndarray) -> float:
    """Robust standard deviation of a curve around its own trend (rolling median, MAD)."""
    if values.size < 3:
        return 0.0
    window = max(5, int(round(0.1 * values.size)) | 1)
    resid = values - rolling_median(values, window=window)
    resid = resid[np.isfinite(resid)]
    if not resid.size:
        return 0.0
    return 1.4826 * small_median(np.abs(resid - small_median(resid)))


@dataclass(frozen=True)
class OverfitSign:
    """What `assess_overfitting` found: where the validation loss was best and how far it rose."""

    kind: str  # "rising" (a significant upward trend) or "plateau" (rose, then stays up)
    best: int  # index of the best validation point (smoothed minimum, or raw for a plateau)
    best_value: float
    final_value: float
    rise: float  # (final - best) / best
    threshold: float  # the rise this sign needs
    p_increasing: float  # one-sided Mann-Kendall p-value after the best point
    train_best: float
    train_final: float
    train_drop: float
    noise_units: float  # the rise in robust standard deviations of the validation loss


def _train_fell_beyond_noise(
    aligned: np.ndarray, train_best: float, train_tail: float, params: Overfitting.Params
) -> bool:
    """ "Keeps falling" must stand out from the training loss's own noise, measured on the
    evaluation grid (per-step minibatch noise is not the curve's)."""
    train_logged, train_is_log = positive_log(aligned)
    train_noise = _robust_sigma(train_logged[np.isfinite(train_logged)])
    return not (
        train_is_log
        and train_tail > 0
        and train_best > 0
        and np.log(train_best / train_tail) < params.min_rise_noise * train_noise
    )


def _rise_beyond_noise(val: Curve, best_value: float, final_value: float, rise: float) -> float:
    """The rise in units of the validation loss's own noise (in log space for positive losses)."""
    logged, is_log = positive_log(val.values)
    noise = _robust_sigma(logged)
    size = np.log(final_value / best_value) if is_log and best_value > 0 else rise
    if not is_log:
        noise = noise / (abs(best_value) or 1.0)
    return size / noise if noise > 0 else np.inf


def assess_overfitting(val: Curve, train: Curve, params: Overfitting.Params) -> OverfitSign | None:
    """The overfitting test shared by `overfitting` and `generalisation-gap`; None when absent.

    Two signs from the seed's table, each enough: the validation loss *rises* (a significant
    upward trend after the smoothed minimum) while the training loss keeps falling; or it rose
    and then *plateaus* above its minimum while the training loss keeps falling far below it (a
    large, growing gap). For a plateau, the best point is the raw minimum.
    """
    needed = max(params.min_points_after, int(np.ceil(params.min_fraction_after * val.values.size)))
    aligned = train_at(train, val.steps)  # the training loss at each evaluation
    rising = _rising(val, aligned, params, needed=needed)
    if rising is not None:
        return rising
    return _plateau(val, aligned, params, needed=needed)


def _rising(
    val: Curve, aligned: np.ndarray, params: Overfitting.Params, *, needed: int
) -> OverfitSign | None:
    level = trend_level(val.values, fraction=params.smoothing_fraction)
    best = int(np.nanargmin(level))
    if val.values.size - 1 - best < needed:
        return None
    best_value = float(level[best])
    final_value = float(tail_level(val.values[best + 1 :], fraction=0.34, minimum=1, maximum=10))
    rise = (final_value - best_value) / (abs(best_value) if best_value != 0 else 1.0)
    if rise < params.min_rise:
        return None
    noise_units = _rise_beyond_noise(val, best_value, final_value, rise)
    if noise_units < params.min_rise_noise:
        return None
    train_best = float(aligned[best])
    train_tail = float(tail_level(aligned[best:], fraction=0.34, maximum=10))
    train_drop = (train_best - train_tail) / (abs(train_best) or 1.0)
    if not train_drop >= params.min_train_drop:
        return None
    trend = mann_kendall(val.values[best:])
    if not trend.increasing(alpha=params.alpha):
        return None
    if not _train_fell_beyond_noise(aligned, train_best, train_tail, params):
        return None
    return OverfitSign(
        kind="rising",
        best=best,
        best_value=best_value,
        final_value=final_value,
        rise=rise,
        threshold=params.min_rise,
        p_increasing=trend.p_increasing,
        train_best=train_best,
        train_final=train_tail,
        train_drop=train_drop,
        noise_units=noise_units,
    )


def _plateau(
    val: Curve, aligned: np.ndarray, params: Overfitting.Params, *, needed: int
) -> OverfitSign | None:
    # The raw minimum: a rolling median sits above a noisy minimum and would shrink a 15% rise
    # to 10%. It must leave enough evaluations after it to call what follows a plateau.
    if val.values.size <= needed:
        return None
    best = int(np.argmin(val.values[: val.values.size - needed]))
    best_value = float(val.values[best])
    if not best_value > 0:
        return None
    final_value = float(tail_level(val.values[best + 1 :], fraction=0.34, minimum=1, maximum=10))
    rise = (final_value - best_value) / best_value
    # Without a trend a plateau needs the larger rise: `min_rise` raised above it still rules.
    needed_rise = max(params.min_rise, params.min_rise_plateau)
    if rise < needed_rise:
        return None
    noise_units = _rise_beyond_noise(val, best_value, final_value, rise)
    if noise_units < params.min_rise_noise:
        return None
    train_best = float(np.median(aligned[max(0, best - 1) : best + 2]))
    train_tail = float(tail_level(aligned[best:], fraction=0.34, maximum=10))
    train_drop = (train_best - train_tail) / (abs(train_best) or 1.0)
    gap = final_value / train_tail if train_tail > 0 else np.inf
    if not (train_drop >= params.min_train_drop_plateau and gap >= params.min_gap_plateau):
        return None
    if not _train_fell_beyond_noise(aligned, train_best, train_tail, params):
        return None
    return OverfitSign(
        kind="plateau",
        best=best,
        best_value=best_value,
        final_value=final_value,
        rise=rise,
        threshold=needed_rise,
        p_increasing=mann_kendall(val.values[best:]).p_increasing,
        train_best=train_best,
        train_final=train_tail,
        train_drop=train_drop,
        noise_units=noise_units,
    )


class Overfitting(Detector):
    """Validation loss turned up while training loss kept falling.

    ## What it detects
    The validation loss, smoothed with a rolling median, reaches its minimum at a *best step* and
    then rises: by at least `min_rise` (relative to the minimum) at the end of the run, with a
    significant upward Mann–Kendall trend (Hamed–Rao corrected, one-sided p < `alpha`) over the
    points after the best step, while the training loss over the same steps fell by at least
    `min_train_drop`. Both the rise and the fall must also exceed `min_rise_noise` robust
    standard deviations of each curve around its own trend, so noise alone never qualifies.
    Validation and training curves may be logged on different step grids: the training loss is
    taken as the median of its points since the previous evaluation.

    ## Why it matters
    Past the best step the model memorises the training set: every further step makes held-out
    performance worse, and the compute spent after it was wasted. Checkpoints from the end of
    the run are worse than the one at the best step.

    ## What to do
    - Keep the checkpoint from the best step, or stop early (patience on validation loss)
    - Increase the dropout rate
    - Add regularisation (weight decay, data augmentation)
    - Reduce model complexity
    - Get more training data

    ## Example
    `Loss/validation`: 0.92 → 0.41 at step 30 → 0.55 at step 100 while `Loss/train` fell from
    0.38 to 0.12: flagged, rise 34% > 10%, 70% of the steps came after the best step.
    """

    code = "L101"
    name = "overfitting"
    severities = (Severity.WARNING,)
    problem = "overfitting"
    # A loss that must fall: RL surrogate losses and GAN losses follow other rules.
    run_kinds = ("supervised",)
    assesses = ("supervised",)
    requires = ("val_loss", "train_loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(6, "Fewest finite validation points needed to judge.")
        min_rise: float = param(
            0.10,
            "Smallest rise of the smoothed validation loss over its minimum, relative to it.",
        )
        min_points_after: int = param(3, "Fewest validation points after the best step.")
        min_fraction_after: float = param(
            0.15, "Smallest share of the validation points that must come after the best step."
        )
        alpha: float = param(0.05, "Significance level of the upward trend after the best step.")
        min_train_drop: float = param(
            0.02, "Smallest relative fall of the training loss between the best step and the end."
        )
        smoothing_fraction: float = param(
            0.1, "Rolling-median window for the validation level, as a share of its points (≥ 3)."
        )
        min_rise_noise: float = param(
            2.0,
            "The rise (in log space) must also exceed this many robust standard deviations of the "
            "validation loss around its trend.",
        )
        min_rise_plateau: float = param(
            0.15,
            "Without a significant upward trend (the validation loss rose, then plateaus), the "
            "smallest rise over the minimum that still counts, with the two conditions below.",
        )
        min_train_drop_plateau: float = param(
            0.2,
            "For a plateau: the smallest fall of the training loss after the best step (chosen "
            "by grouped cross-validation: bench/calibrate.py).",
        )
        min_gap_plateau: float = param(
            1.5,
            "For a plateau: the smallest final validation / training loss ratio (chosen by "
            "grouped cross-validation: bench/calibrate.py).",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        val = _finite_curve(run, "val_loss", minimum=params.min_points, what="validation loss")
        train = _finite_curve(run, "train_loss", minimum=2, what="training loss")
        sign = assess_overfitting(val, train, params)
        if sign is None:
            return
        best_step = int(val.steps[sign.best])
        best_raw_value = sign.best_value
        if sign.kind == "rising":
            # The checkpoint to keep is the raw minimum up to the end of the smoothing window,
            # not the smoothed curve's argmin (a rolling median can shift it by a few points).
            window = max(3, int(round(params.smoothing_fraction * len(val))))
            raw_best = int(np.argmin(val.values[: sign.best + window // 2 + 1]))
            best_step = int(val.steps[raw_best])
            best_raw_value = float(val.values[raw_best])
        first_step, last_step = (
            int(min(val.steps[0], train.steps[0])),
            int(max(val.steps[-1], train.steps[-1])),
        )
        span = max(last_step - first_step, 1)
        past = (last_step - best_step) / span
        evidence = {
            "sign": sign.kind,
            "best_step": best_step,
            "best_value": best_raw_value,
            "smoothed_best_value": sign.best_value,
            "final_value": sign.final_value,
            "rise": sign.rise,
            "min_rise": sign.threshold,
            "trend_p_value": sign.p_increasing,
            "rise_noise_units": sign.noise_units,
            "min_rise_noise": params.min_rise_noise,
            "alpha": params.alpha,
            "train_at_best": sign.train_best,
            "train_final": sign.train_final,
            "train_drop": sign.train_drop,
            "min_train_drop": params.min_train_drop,
            "last_step": last_step,
            "steps_past_best": last_step - best_step,
            "fraction_past_best": past,
        }
        best = sign.best
        rise, final_value, train_drop = sign.rise, sign.final_value, sign.train_drop
        wall = val.wall_times
        if np.isfinite(wall[best]) and np.isfinite(wall[-1]) and wall[-1] > wall[best] > 0:
            evidence["seconds_past_best"] = float(wall[-1] - wall[best])
        yield self.finding(
            run,
            message=(
                f"validation loss rose {pct(rise)} (threshold {pct(sign.threshold)}) "
                f"from its best {fmt(best_raw_value)} at step {best_step} to {fmt(final_value)}"
                + (" and stays up" if sign.kind == "plateau" else "")
                + f" while training loss fell {pct(train_drop)}; {pct(past)} of the run came "
                "after the best step"
            ),
            step=best_step,
            evidence=evidence,
            tags=(val.tag, train.tag),
            strength=rise / sign.threshold,
            observed=rise,
            limit=sign.threshold,
            step_range=(best_step, last_step),
            marks=[
                mark_point(val.tag, best_step, best_raw_value, "best"),
                mark_band(val.tag, best_step, last_step, "after the best step"),
            ],
        )


class Underfitting(Detector):
    """Training and validation loss barely moved from their start: the model is not learning.

    ## What it detects
    The training loss (median of its last 10% of points) improved by less than
    `min_improvement` of its starting level (median of its first 10%), and the validation loss,
    when logged, did too; with only a validation loss, that one alone. Without a validation
    loss the training loss must have improved by less than `min_improvement_train_only` (a slow
    fall is also what a converged or resumed model shows). A loss that ends more than
    `max_worsening` above its start diverged instead and is left to the instability
    detectors. A run whose first logged step is `resumed_fraction` of its last or more resumes
    an earlier training (its loss converged before) and is not judged. When the peak learning
    rate is at least `high_learning_rate`, the advice is to lower it, not to raise it. Not
    reported when the run is unstable (erratic or non-finite loss, exploding gradients): a
    learning rate that is too high also stalls the loss, and the advice to raise it would make
    things worse.

    ## Why it matters
    A model that does not get better than its initialisation learns nothing from the data: the
    learning rate is too low, the model too small or too regularised, or the data does not
    carry the signal. Every step of such a run is wasted compute.

    ## What to do
    - Increase the learning rate (it may be orders of magnitude too low)
    - Increase model capacity (hidden size, number of layers)
    - Train for more epochs
    - Reduce regularisation
    - Check data quality (labels, features, normalisation)

    ## Example
    `train/loss`: 1.3975 → 1.3945 over 1,200 steps (0.2% better, threshold 15%) and `eval/loss`
    1.3915 → 1.3913: flagged.
    """

    code = "L102"
    name = "underfitting"
    severities = (Severity.WARNING,)
    problem = "underfitting"
    # A loss that must fall: RL surrogate losses and GAN losses follow other rules.
    run_kinds = ("supervised",)
    assesses = ("supervised",)
    requires_any = ("train_loss", "val_loss")
    # An unstable run "does not learn" because the learning rate is too high: the advice to
    # raise it would be harmful, so the instability is reported instead.
    explained_by = ("non-finite-loss", "exploding-gradients", "erratic-loss", "diverged-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(5, "Fewest finite training-loss points needed to judge.")
        min_improvement: float = param(
            0.15,
            "Smallest relative fall of the loss from its start to its end that counts as learning "
            "(chosen by grouped cross-validation: bench/calibrate.py).",
        )
        edge_fraction: float = param(
            0.1, "Share of the points whose median gives the start and end levels."
        )
        max_worsening: float = param(
            0.1,
            "A loss ending more than this share above its start diverged (erratic-loss, "
            "exploding-gradients) rather than failed to learn; within it, the loss is flat.",
        )
        resumed_fraction: float = param(
            0.25,
            "A run whose first logged step is at least this share of its last continues an "
            "earlier training (resumed): not judged.",
        )
        min_improvement_train_only: float = param(
            0.02,
            "With no validation loss, the smallest fall of the training loss that counts as "
            "learning (a slow fall may be a converged or resumed model).",
        )
        high_learning_rate: float = param(
            0.05,
            "A peak learning rate at or above this changes the advice: lower it rather than "
            "raise it.",
        )

    def _improvement(self, values: np.ndarray, params: Params) -> tuple[float, float, float]:
        start = head_level(values, fraction=params.edge_fraction)
        end = tail_level(values, fraction=params.edge_fraction)
        if start > 0 and end > 0:
            return start, end, 1.0 - end / start
        # Losses that can be negative (e.g. log-likelihoods): relative to the magnitude.
        return start, end, (start - end) / (abs(start) or 1.0)

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        train_curve, val_curve = run.curve("train_loss"), run.curve("val_loss")
        train = train_curve.finite() if train_curve is not None else None
        val = val_curve.finite() if val_curve is not None else None
        # The curves long enough to judge; the finding is shown on the training loss if judged.
        train_ok = train if train is not None and len(train) >= params.min_points else None
        val_ok = val if val is not None and len(val) >= params.min_points else None
        shown = train_ok if train_ok is not None else val_ok
        if shown is None:
            raise SkipDetector(
                f"neither the training nor the validation loss has {params.min_points} finite "
                "points"
            )
        first = min(int(c.steps[0]) for c in (train, val) if c is not None and len(c))
        last = max(int(c.steps[-1]) for c in (train, val) if c is not None and len(c))
        if first > 0 and first >= params.resumed_fraction * last:
            # Logging starts late in the step count: the run continues an earlier training, and
            # a flat loss there is what convergence looks like.
            raise SkipDetector(f"the run resumes at step {first} of {last}")
        evidence: dict[str, Any] = {}
        tags: list[str] = []
        parts: list[str] = []
        if train_ok is not None:
            start, end, improvement = self._improvement(train_ok.values, params)
            # A loss that rose clearly diverged: the instability detectors judge it, and
            # "increase the learning rate" would be the wrong advice.
            if not -params.max_worsening <= improvement < params.min_improvement:
                return
            # Without a held-out curve, a loss that improves slowly is indistinguishable from a
            # converged or resumed model: only a loss that did not move at all is reported.
            if val_ok is None and improvement >= params.min_improvement_train_only:
                return
            evidence.update(train_start=start, train_end=end, train_improvement=improvement)
            tags.append(train_ok.tag)
            verb = "fell" if improvement >= 0 else "rose"
            parts.append(
                f"training loss {verb} {pct(abs(improvement))} from start to end: {fmt(start)} → "
                f"{fmt(end)} over steps {train_ok.steps[0]}–{train_ok.steps[-1]}"
            )
        if val_ok is not None:
            v_start, v_end, v_improvement = self._improvement(val_ok.values, params)
            if v_improvement >= params.min_improvement or v_improvement < -params.max_worsening:
                return  # validation got clearly better: the model learns something
            evidence.update(val_start=v_start, val_end=v_end, val_improvement=v_improvement)
            tags.append(val_ok.tag)
            parts.append(f"validation loss {fmt(v_start)} → {fmt(v_end)} ({pct(v_improvement)})")
        evidence["min_improvement"] = params.min_improvement
        message = "; ".join(parts) + f" (threshold: falls {pct(params.min_improvement)})"
        lr = run.curve("learning_rate")
        advice = None
        peak_lr = float(np.nanmax(lr.values)) if lr is not None and len(lr) else float("nan")
        if np.isfinite(peak_lr):
            evidence["peak_learning_rate"] = peak_lr
            if peak_lr >= params.high_learning_rate:
                # A loss that does not move under a large learning rate is more often stuck
                # (dead units, saturation, a bad minimum) than too slow.
                advice = (
                    f"The learning rate ({fmt(peak_lr)}) is already high: try lowering it and "
                    "check for saturated or dead units; " + self.advice().split("; ", 1)[1]
                )
        improvements = [evidence.get("train_improvement"), evidence.get("val_improvement")]
        worst = max(i for i in improvements if i is not None)
        yield self.finding(
            run,
            message=message,
            step=int(shown.steps[-1]),
            evidence=evidence,
            tags=tags,
            advice=advice,
            strength=params.min_improvement / max(worst, params.min_improvement / 10),
            observed=worst,
            limit=params.min_improvement,
            step_range=(int(shown.steps[0]), int(shown.steps[-1])),
            marks=[mark_band(shown.tag, shown.steps[0], shown.steps[-1], "no progress")],
        )


def _epoch_level(run: RunData, curve: Curve) -> bool:
    """Whether a training curve holds one value per epoch (Keras epoch_loss, Lightning
    *_epoch), so its wobble is the optimiser's and not the minibatches'."""
    meaning = run.meanings.get(curve.tag)
    return meaning is None or meaning.granularity == "epoch"


class ErraticLoss(Detector):
    """Loss oscillates or spikes far beyond its trend.

    ## What it detects
    The validation loss is judged when it has at least `min_points_noise` points (it is computed
    on a fixed set, so its wobble is the optimiser's); otherwise the training loss, whose
    per-step values also carry minibatch noise. Around its own trend (a rolling median in log
    space over `window_fraction` of the points), that loss either spikes (at least `min_spikes`
    points more than `spike_factor` times the local median, after the first `skip_fraction` of
    the run) or oscillates: its typical relative deviation from the trend (median absolute log
    residual) exceeds `max_noise` while the residual changes sign at least as often as noise
    does (`min_sign_changes`); the oscillation test needs `min_points_noise` points, or, for a
    validation loss of at least `min_points`, a deviation `short_noise_factor` times larger
    (a short curve's trend is less certain). A training loss is judged per step only when the
    validation loss corroborates it ("both erratic"): a spike of `corroborating_spike_factor`
    or a typical deviation above `max_noise`; otherwise on the evaluation grid. Curves
    longer than `max_points` are first reduced to block medians. Limitation: a training loss
    logged per step with very small batches can wobble this much from minibatch noise alone;
    without a validation loss, raise `max_noise` for such runs. Not
    reported next to exploding gradients or a non-finite loss, which it would only echo.

    ## Why it matters
    A loss that jumps around its trend means the optimiser overshoots: the learning rate is too
    high for the loss landscape (or the batch too small). Progress is slow and the end point
    depends on where the last oscillation happened to land.

    ## What to do
    - Decrease the learning rate (or add warm-up / a decaying schedule)
    - Use gradient clipping
    - Increase the batch size
    - Check data normalisation and look for bad batches at the spike steps

    ## Example
    `train/loss` zig-zags between 0.15 and 0.9 around a slowly falling trend: it deviates 12%
    from the trend on a typical point (threshold 4%): flagged.
    """

    code = "L103"
    name = "erratic-loss"
    severities = (Severity.WARNING,)
    problem = "erratic-loss"
    # A loss that must fall: RL surrogate losses and GAN losses follow other rules.
    run_kinds = ("supervised",)
    assesses = ("supervised",)
    requires = ("train_loss",)
    explained_by = ("non-finite-loss",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(8, "Fewest finite loss points needed to judge.")
        window_fraction: float = param(
            0.1, "Rolling-median window of the trend, as a share of the points (at least 5)."
        )
        max_noise: float = param(
            0.04,
            "Largest typical relative deviation of the loss from its trend for a stable run "
            "(chosen by grouped cross-validation: bench/calibrate.py).",
        )
        min_points_noise: int = param(
            20, "Fewest points for the oscillation test (a trend needs enough points to be known)."
        )
        short_noise_factor: float = param(
            2.5,
            "A curve with fewer than `min_points_noise` points (but at least `min_points`) "
            "oscillates only when its typical deviation exceeds `max_noise` this many times.",
            minimum=1.0,
        )
        max_points: int = param(
            200,
            "Longer curves are first reduced to this many block medians: averages out per-step "
            "minibatch noise, keeps oscillations that last several logging intervals.",
        )
        min_sign_changes: float = param(
            0.4, "Smallest share of sign changes of the residual's differences for oscillation."
        )
        spike_factor: float = param(
            3.0, "A spike is a point this many times above its local median."
        )
        min_spikes: int = param(2, "Fewest spikes that make a run erratic.")
        corroborating_spike_factor: float = param(
            2.0,
            "A validation point this many times above its local median (or a typical deviation "
            "above `max_noise`) lets an oscillating per-step training loss count.",
        )
        huge_spike_factor: float = param(
            10.0, "One point this many times above its local median is erratic on its own."
        )
        skip_fraction: float = param(
            0.05, "Share of the run at its start ignored for spikes (the first steps are volatile)."
        )

    def _assess(self, curve: Curve, params: Params) -> dict[str, Any] | None:
        finite = curve.finite()
        if len(finite) < params.min_points:
            return None
        steps, values = block_medians(finite.steps, finite.values, max_points=params.max_points)
        y, logged = positive_log(values)
        window = max(5, int(round(params.window_fraction * y.size)))
        if window % 2 == 0:
            window += 1
        trend = rolling_median(y, window=window)
        resid = y - trend
        if not logged:  # relative to the curve's typical magnitude
            resid = resid / (small_median(np.abs(values)) or 1.0)
        noise = small_median(np.abs(resid))
        changes = sign_change_ratio(resid)
        start_skip = int(np.ceil(params.skip_fraction * y.size))
        threshold = np.log(params.spike_factor) if logged else params.spike_factor - 1.0
        spike_idx = np.nonzero(resid[start_skip:] > threshold)[0] + start_skip
        tail = resid[start_skip:]
        top = float(np.max(tail)) if tail.size else 0.0
        max_spike = float(np.exp(top)) if logged else top + 1.0
        return {
            "tag": curve.tag,
            "noise": noise,
            "sign_change_ratio": changes,
            "spikes": int(spike_idx.size),
            "spike_steps": [int(steps[i]) for i in spike_idx[:20]],
            "first_step": int(steps[spike_idx[0]]) if spike_idx.size else int(steps[0]),
            "points": int(y.size),
            "max_spike": max_spike,
        }

    @staticmethod
    def _oscillating(a: dict[str, Any], params: Params) -> bool:
        # A short curve (an evaluation per epoch for a few epochs) has a less certain trend: it
        # must wobble `short_noise_factor` times more to count.
        # Only a validation loss (a fixed set) may be judged short: a short training curve's
        # wobble is as much its minibatches' as the optimiser's.
        short = a["points"] < params.min_points_noise
        needed = params.max_noise * (params.short_noise_factor if short else 1.0)
        return (
            not a.get("spikes_only", False)
            and (not short or a.get("validation", False))
            and a["points"] >= params.min_points
            and a["noise"] > needed
            and a["sign_change_ratio"] >= params.min_sign_changes
        )

    @staticmethod
    def _spiky(a: dict[str, Any], params: Params) -> bool:
        return bool(a["spikes"] >= params.min_spikes or a["max_spike"] >= params.huge_spike_factor)

    def _erratic(self, a: dict[str, Any], params: Params) -> bool:
        return self._oscillating(a, params) or self._spiky(a, params)

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        assessment = self._assessment(run, params)
        finding = self._report(run, assessment, params)
        if finding is not None:
            yield finding

    def _assessment(self, run: RunData, params: Params) -> dict[str, Any]:
        """The wobble of the curve judged: the validation loss, else the training loss (on the
        evaluation grid when it is logged per step)."""
        # The validation loss is computed on a fixed set: its wobble is the optimiser's. A
        # training loss logged per step also carries minibatch noise (large relative noise near
        # zero loss, bad batches), so it is judged only when validation is too sparse.
        val = run.curve("val_loss")
        assessment = None
        val_wobbles = False
        if val is not None and len(val.finite()) >= params.min_points:
            assessment = self._assess(val, params)
            if assessment is not None:
                assessment["validation"] = True
            # Too short for the oscillation test on its own, the validation loss can still
            # corroborate a training loss that oscillates ("both erratic" in the seed guide).
            if assessment is not None and not self._erratic(assessment, params):
                val_wobbles = (
                    assessment["noise"] > params.max_noise
                    or assessment["max_spike"] >= params.corroborating_spike_factor
                )
                if val_wobbles and assessment["points"] < params.min_points_noise:
                    assessment = None
        if assessment is None:
            train = run.required_curve("train_loss")
            # A per-step training loss carries minibatch noise that says nothing about the
            # learning rate: judge it on the evaluation grid (one median per interval), as
            # the validation curve it would be compared with.
            grid = val if val is not None and len(val.finite()) >= 2 else run.curve("val_metric")
            if (
                not val_wobbles
                and grid is not None
                and len(grid.finite()) >= params.min_points
                and len(train) >= 2 * len(grid)
            ):
                steps = grid.finite().steps
                train = Curve(train.tag, steps, train_at(train, steps), grid.finite().wall_times)
            assessment = self._assess(train, params)
            if assessment is not None and not _epoch_level(run, train) and not val_wobbles:
                # Minibatch noise of a per-step loss is no oscillation: only spikes count.
                assessment["spikes_only"] = True
        if assessment is None:
            raise SkipDetector(f"training loss has fewer than {params.min_points} finite points")
        return assessment

    def _report(self, run: RunData, a: dict[str, Any], params: Params) -> Finding | None:
        """The finding on the judged curve, when it oscillates or spikes."""
        oscillating = self._oscillating(a, params)
        spiky = self._spiky(a, params)
        if not (oscillating or spiky):
            return None
        parts = []
        if oscillating:
            parts.append(
                f"deviates {pct(a['noise'])} from its trend on a typical point "
                f"(threshold {pct(params.max_noise)})"
            )
        if spiky:
            parts.append(
                f"has {a['spikes']} spikes above {fmt(params.spike_factor)}× its local median "
                f"(threshold {params.min_spikes})"
            )
        evidence = dict(a)
        evidence.pop("tag")
        evidence.update(
            max_noise=params.max_noise,
            min_sign_changes=params.min_sign_changes,
            spike_factor=params.spike_factor,
            min_spikes=params.min_spikes,
        )
        # The test that fired, as the observed value and its limit: the oscillation, else the
        # number of spikes, else the one huge spike.
        if oscillating:
            observed, limit = a["noise"], params.max_noise
        elif a["spikes"] >= params.min_spikes:
            observed, limit = a["spikes"], params.min_spikes
        else:
            observed, limit = a["max_spike"], params.huge_spike_factor
        return self.finding(
            run,
            message=f"{a['tag']} " + " and ".join(parts),
            step=a["first_step"],
            evidence=evidence,
            tags=(a["tag"],),
            observed=observed,
            limit=limit,
            marks=[mark_vline(a["tag"], s, "spike") for s in a["spike_steps"]],
            strength=max(
                a["noise"] / params.max_noise if oscillating else 0.0,
                a["spikes"] / params.min_spikes if spiky else 0.0,
                a["max_spike"] / params.huge_spike_factor if spiky else 0.0,
            ),
        )


def is_metric_tag(run: RunData, tag: str) -> bool:
    """Whether a tag holds a metric or statistic rather than a loss or a gradient norm."""
    meaning = run.meanings.get(tag)
    return meaning is not None and meaning.quantity not in ("loss", "gradient-norm", "unknown")


class NonFiniteLoss(Detector):
    """NaN or Inf in a loss.

    ## What it detects
    A loss, a gradient norm or a scalar of unknown meaning holding NaN or ±Inf (metrics and
    statistics are left to `non-finite-metric`). The finding names the first tag to go bad,
    its first bad step, and every affected tag.

    ## Why it matters
    Once a NaN appears it propagates to every weight: everything the run does afterwards is
    garbage, and checkpoints written after that step are unusable.

    ## What to do
    - Reduce the learning rate
    - Use gradient clipping
    - Check data normalisation and look for NaN/Inf in the inputs and labels
    - Guard divisions and logarithms in the loss (add an epsilon)

    ## Example
    `train_loss` is NaN from step 412 on (38 points): flagged as an error.
    """

    code = "L104"
    name = "non-finite-loss"
    severities = (Severity.ERROR,)
    problem = "non-finite-loss"

    @dataclass(frozen=True)
    class Params:
        loss_roles_only: bool = param(
            False, "Look only at the training/validation loss tags instead of every scalar."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        if params.loss_roles_only:
            tags = [t for role in ("train_loss", "val_loss") for t in run.roles.get(role, ())]
        else:
            # Metrics that are not losses (explained_variance, an accuracy on an empty batch)
            # are `non-finite-metric`'s: a NaN there does not poison the weights.
            tags = [t for t in run.scalar_tags if not is_metric_tag(run, t)]
        if not tags:
            raise SkipDetector("no scalar tags to check")
        # One vectorised pass first: most runs have no non-finite value at all.
        suspects = run.nonfinite_tags()
        if not suspects:
            return
        bad_tags: dict[str, dict[str, Any]] = {}
        for tag in (t for t in tags if t in suspects):
            curve = run.tag_curve(tag)
            bad = ~np.isfinite(curve.values)
            if bad.any():
                first = int(np.argmax(bad))
                bad_tags[tag] = {
                    "first_step": int(curve.steps[first]),
                    "count": int(bad.sum()),
                    "kind": "nan" if np.isnan(curve.values[first]) else "inf",
                }
        if not bad_tags:
            return
        # The first tag to go bad leads (the cause is there), losses first among ties. One-point
        # tags (the final metrics add_hparams logs at step 0) say nothing about when the run
        # broke; they still count as affected tags.
        loss_tags = {t for role in ("train_loss", "val_loss") for t in run.roles.get(role, ())}
        curves = {t for t in bad_tags if len(run.tag_curve(t)) > 1} or set(bad_tags)
        ordered = sorted(
            bad_tags,
            key=lambda t: (t not in curves, bad_tags[t]["first_step"], t not in loss_tags, t),
        )
        head = ordered[0]
        first_step = bad_tags[head]["first_step"]
        yield self.finding(
            run,
            message=(
                f"{head} is {bad_tags[head]['kind'].upper()} "
                f"from step {bad_tags[head]['first_step']} "
                f"({bad_tags[head]['count']} points; threshold: any)"
                + (f"; {len(bad_tags) - 1} more tags affected" if len(bad_tags) > 1 else "")
            ),
            step=first_step,
            evidence={
                "first_bad_step": first_step,
                "tags": {t: bad_tags[t] for t in ordered[:20]},
                "affected_tags": len(bad_tags),
                "threshold": "any non-finite value",
            },
            tags=ordered[:20],
            observed=bad_tags[head]["count"],
            limit=0,
            step_range=(first_step, int(run.scalars["step"].max())),
            marks=[mark_vline(t, bad_tags[t]["first_step"], "NaN") for t in ordered[:20]],
        )


class GeneralisationGap(Detector):
    """Validation loss ends far above training loss.

    ## What it detects
    At the end of the run (median of the last 10% of validation points, at least 3, against the
    training loss at the same steps) the validation loss exceeds the training loss by more than
    `max_gap`, relative to the training loss. Reported as information: some gap is normal. When
    the validation loss also rises (the `overfitting` test, with its default parameters when
    `overfitting` is not selected), or the run blew up or oscillates, the end values say nothing
    more and only that finding is reported.

    ## Why it matters
    A large gap means the model fits the training data much better than data it has not seen:
    it generalises poorly even if validation loss has not started to rise yet.

    ## What to do
    - Increase the dropout rate
    - Use a simpler model
    - Add regularisation or more training data
    - Check that training and validation data come from the same distribution

    ## Example
    `val_loss` 0.92 vs `train_loss` 0.21 at the end: gap 338% > 200%.
    """

    code = "L105"
    name = "generalisation-gap"
    severities = (Severity.INFO,)
    problem = "overfitting"
    # A loss that must fall: RL surrogate losses and GAN losses follow other rules.
    run_kinds = ("supervised",)
    requires = ("val_loss", "train_loss")
    # After a blow-up or with an erratic loss the end values say nothing about generalisation.
    explained_by = ("overfitting", "non-finite-loss", "exploding-gradients", "erratic-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(3, "Fewest finite validation points needed to judge.")
        max_gap: float = param(
            2.0,
            "Largest (validation − training) / training loss at the end of a healthy run (losses "
            "reduced differently, e.g. summed over batches of another size, differ by a constant "
            "factor, so only extreme gaps are reported).",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        val = _finite_curve(run, "val_loss", minimum=params.min_points, what="validation loss")
        train = _finite_curve(run, "train_loss", minimum=2, what="training loss")
        k = min(len(val), max(3, int(round(0.1 * len(val)))))
        val_end = small_median(val.values[-k:])
        train_end = small_median(train_at(train, val.steps)[-k:])
        if not (train_end > 0 and val_end > 0):
            return
        gap = (val_end - train_end) / train_end
        if gap <= params.max_gap:
            return
        if assess_overfitting(val, train, Overfitting.Params()) is not None:
            return  # a rising validation loss is reported by `overfitting`
        yield self.finding(
            run,
            message=(
                f"validation loss {fmt(val_end)} ends {pct(gap)} above training loss "
                f"{fmt(train_end)} (threshold {pct(params.max_gap)})"
            ),
            step=int(val.steps[-1]),
            evidence={
                "val_end": val_end,
                "train_end": train_end,
                "gap": gap,
                "max_gap": params.max_gap,
            },
            tags=(val.tag, train.tag),
            observed=gap,
            limit=params.max_gap,
            step_range=(int(val.steps[-k]), int(val.steps[-1])),
            marks=[
                mark_band(val.tag, val.steps[-k], val.steps[-1], "end of the run"),
                mark_point(val.tag, val.steps[-1], val_end, "validation end"),
                mark_point(train.tag, val.steps[-1], train_end, "training end"),
            ],
        )
