"""Gradient detectors (G2xx): exploding, vanishing, dead neurons (from scalars or histograms)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tbreport.diagnosis.detectors.base import (
    Detector,
    RunData,
    SkipDetector,
    exact_zero_fraction,
    fmt,
    frozen_layers,
    global_norm_by_step,
    histogram_nonfinite,
    histogram_rms,
    is_bias,
    is_embedding,
    layer_label,
    mark_band,
    mark_point,
    mark_vline,
    param,
    pct,
)
from tbreport.diagnosis.stats import small_median
from tbreport.model import Finding, Mark, Severity


class _GradientNorm(NamedTuple):
    """A run's gradient norm per step, and where it comes from."""

    source: str  # "scalar" (a logged norm) or "histograms" (the global norm over them)
    steps: np.ndarray
    norm: np.ndarray
    tags: list[str]


def _gradient_norm(run: RunData) -> _GradientNorm:
    """The scalar gradient norm if logged, else the global L2 norm over the gradient
    histograms."""
    curve = run.curve("grad_norm")
    if curve is not None and len(curve):
        return _GradientNorm("scalar", curve.steps, curve.values, [curve.tag])
    frames = run.histogram_frames("gradient_histograms")
    if not frames:
        raise SkipDetector("no tag matched role grad_norm or gradient_histograms")
    steps, norm = global_norm_by_step(frames)
    # A step whose histogram statistics are non-finite makes the norm non-finite.
    bad_steps = set()
    for frame in frames.values():
        bad = histogram_nonfinite(frame)
        bad_steps.update(frame["step"].to_numpy()[bad].tolist())
    if bad_steps:
        norm = norm.copy()
        norm[np.isin(steps, list(bad_steps))] = np.nan
    return _GradientNorm("histograms", steps, norm, list(frames))


class ExplodingGradients(Detector):
    """Gradient norm spikes or grows by orders of magnitude.

    ## What it detects
    The gradient norm (the `grad_norm` scalar, or the global L2 norm over the gradient
    histograms) becomes non-finite, or its peak exceeds `growth_factor` times its typical level
    (the lower of the whole run's median and the median of its first `early_fraction`) and is an
    outlier for the run's own spread (robust z of its log against the early part at least
    `min_z`), so heavy-tailed per-step norms that span decades do not count. A norm that turns
    NaN without growing first (a NaN label or a log of zero, not an explosion) is left to
    `non-finite-loss` when that reports the run. A norm whose median over the first
    `early_fraction` is already `max_early_norm` or more exploded from the start (a bad
    initialisation, a learning rate far too high), with no calm baseline to grow from.
    Severity is error when the norm ends non-finite or grows by more than `error_factor`,
    warning otherwise.

    ## Why it matters
    Huge gradients make updates that throw the weights far from where they were: the loss jumps
    or diverges, and once an overflow produces Inf/NaN the run is lost.

    ## What to do
    - Reduce the learning rate
    - Use gradient clipping (e.g. `clip_grad_norm_` at 1.0)
    - Check data normalisation (inputs and targets)
    - Add normalisation layers, or lower the initial weight scale

    ## Example
    `Gradient/norm`: median 0.8, peak 4.1e+03 at step 37 (5,100× > 100×), NaN from step 41:
    flagged as an error.
    """

    code = "G201"
    name = "exploding-gradients"
    severities = (Severity.WARNING, Severity.ERROR)
    problem = "exploding-gradients"
    requires_any = ("grad_norm", "gradient_histograms")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(3, "Fewest gradient-norm points needed to judge.")
        growth_factor: float = param(
            100.0,
            "Peak gradient norm over its median that counts as exploding (orders of magnitude).",
        )
        error_factor: float = param(
            1000.0, "Growth above which the finding is an error, not a warning."
        )
        early_fraction: float = param(
            0.2, "Share of the run at its start whose median is the early level of the norm."
        )
        max_early_norm: float = param(
            3e3,
            "A median gradient norm over the first `early_fraction` of the run at or above this is "
            "exploding from the start. On the labelled runs no healthy run starts above 300 and "
            "bad initialisations start at 5e3 or more; cross-validation ties from 1e3 to 3e3, "
            "and the larger value is kept for large models' legitimately larger norms.",
        )
        min_z: float = param(
            3.5,
            "The peak's robust z-score (log10 norm against the early part's median and MAD) must "
            "reach this too (Iglewicz and Hoaglin's outlier cut-off).",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        gradient = _gradient_norm(run)
        norm = gradient.norm
        if norm.size < params.min_points:
            raise SkipDetector(
                f"gradient norm has {norm.size} points, fewer than {params.min_points}"
            )
        if not np.isfinite(norm).all():
            finding = self._nonfinite(run, gradient, params)
        else:
            finding = self._early(run, gradient, params)
            if finding is None:
                finding = self._growth(run, gradient, params)
        if finding is not None:
            yield finding

    @staticmethod
    def _evidence(gradient: _GradientNorm, params: Params) -> dict[str, Any]:
        return {"source": gradient.source, "growth_factor": params.growth_factor}

    def _nonfinite(self, run: RunData, gradient: _GradientNorm, params: Params) -> Finding | None:
        """A norm that becomes non-finite (unless a non-finite loss or input explains it)."""
        _, steps, norm, tags = gradient
        finite = np.isfinite(norm)
        evidence = self._evidence(gradient, params)
        first = int(np.argmax(~finite))
        typical = small_median(norm[finite]) if finite.any() else float("nan")
        peak = float(np.max(norm[finite])) if finite.any() else float("nan")
        grew = finite[:first].any() and peak >= params.growth_factor * float(
            small_median(norm[:first][: max(1, int(np.ceil(params.early_fraction * first)))])
        )
        if not grew and _any_nonfinite_scalar(run):
            # NaN gradients with no growth before them come from a NaN loss or input
            # (a bad label, a log of zero), not from an explosion: non-finite-loss reports it.
            return None
        evidence.update(
            first_nonfinite_step=int(steps[first]),
            nonfinite_points=int((~finite).sum()),
            typical_norm=typical,
            peak_norm=peak,
        )
        return self.finding(
            run,
            message=(
                f"gradient norm is non-finite from step {int(steps[first])} "
                f"({int((~finite).sum())} points; typical {fmt(typical)} before)"
            ),
            step=int(steps[first]),
            evidence=evidence,
            tags=tags[:20],
            severity=Severity.ERROR,
            observed=int((~finite).sum()),
            limit=0,
            step_range=(int(steps[first]), int(steps[-1])),
            marks=[mark_band(tags[0], steps[first], steps[-1], "non-finite")],
        )

    def _early(self, run: RunData, gradient: _GradientNorm, params: Params) -> Finding | None:
        """A norm already huge over the first steps: no calm baseline to grow from."""
        source, steps, norm, tags = gradient
        evidence = self._evidence(gradient, params)
        early = norm[: max(1, int(np.ceil(params.early_fraction * norm.size)))]
        early_level = small_median(early)
        if early_level < params.max_early_norm:
            return None
        # Exploding from the first steps (a bad initialisation, a learning rate far too
        # high): there is no calm baseline to grow from, but the size alone is the sign.
        peak_index = int(np.argmax(norm))
        evidence.update(
            early_norm=early_level,
            max_early_norm=params.max_early_norm,
            peak_norm=float(norm[peak_index]),
            peak_step=int(steps[peak_index]),
            final_norm=small_median(norm[-max(1, norm.size // 10) :]),
        )
        return self.finding(
            run,
            message=(
                f"gradient norm is {fmt(early_level)} over the first "
                f"{pct(params.early_fraction)} of the run "
                f"(threshold {fmt(params.max_early_norm)}), peaking at "
                f"{fmt(float(norm[peak_index]))} at step {int(steps[peak_index])}"
            ),
            step=int(steps[0]),
            evidence=evidence,
            tags=tags[:20],
            strength=early_level / params.max_early_norm,
            observed=early_level,
            limit=params.max_early_norm,
            step_range=(int(steps[0]), int(steps[early.size - 1])),
            marks=[
                mark_band(tags[0], steps[0], steps[early.size - 1], "early"),
                _peak_mark(source, tags[0], steps[peak_index], norm[peak_index]),
            ],
        )

    def _growth(self, run: RunData, gradient: _GradientNorm, params: Params) -> Finding | None:
        """A peak far above the norm's typical level, and extreme for the run's own spread."""
        source, steps, norm, tags = gradient
        evidence = self._evidence(gradient, params)
        early = norm[: max(1, int(np.ceil(params.early_fraction * norm.size)))]
        # Typical level: the lower of the run's median and its early median, so a steady climb
        # (whose median sits half-way up) is measured from where it started.
        typical = min(small_median(norm), small_median(early))
        peak_index = int(np.argmax(norm))
        peak = float(norm[peak_index])
        if typical <= 0:
            return None
        growth = peak / typical
        if growth < params.growth_factor:
            return None
        # The peak must also be extreme for this run's own spread (robust z of log norms over the
        # early part of the run): per-step norms of a noisy but healthy run range over decades.
        early_log = np.log10(early[early > 0]) if (early > 0).any() else np.zeros(1)
        spread = 1.4826 * small_median(np.abs(early_log - small_median(early_log)))
        z = (np.log10(peak) - small_median(early_log)) / spread if spread > 0 else np.inf
        if z < params.min_z:
            return None
        # Onset: the first point above growth_factor × typical.
        onset = int(np.argmax(norm >= params.growth_factor * typical))
        severity = Severity.ERROR if growth >= params.error_factor else Severity.WARNING
        evidence.update(
            typical_norm=typical,
            early_fraction=params.early_fraction,
            peak_norm=peak,
            peak_step=int(steps[peak_index]),
            growth=growth,
            robust_z=z,
            min_z=params.min_z,
            error_factor=params.error_factor,
            onset_step=int(steps[onset]),
        )
        until = int(steps[max(peak_index, onset)] if peak_index > onset else steps[-1])
        return self.finding(
            run,
            message=(
                f"gradient norm peaks at {fmt(peak)} at step {int(steps[peak_index])}, "
                f"{fmt(growth)}× its typical level {fmt(typical)} "
                f"(threshold {fmt(params.growth_factor)}×)"
            ),
            step=int(steps[onset]),
            evidence=evidence,
            tags=tags[:20],
            severity=severity,
            strength=growth / params.growth_factor,
            observed=growth,
            limit=params.growth_factor,
            step_range=(int(steps[onset]), until),
            marks=[
                mark_band(tags[0], steps[onset], until, "growth"),
                _peak_mark(source, tags[0], steps[peak_index], peak),
            ],
        )


def _peak_mark(source: str, tag: str, step: int, value: float) -> Mark | None:
    """The peak of the norm: a point on the scalar norm's curve; a step on a histogram chart
    (the global norm over the histograms is no curve of any tag)."""
    if source == "scalar":
        return mark_point(tag, step, value, "peak")
    return mark_vline(tag, step, "peak")


def _any_nonfinite_scalar(run: RunData) -> bool:
    """Whether any scalar of the run is NaN/Inf (what non-finite-loss reports)."""
    return bool(run.nonfinite_tags())


def _layer_rms(frames: dict[str, pd.DataFrame]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {tag: (f["step"].to_numpy(np.int64), histogram_rms(f)) for tag, f in frames.items()}


class VanishingGradients(Detector):
    """Gradients near zero, overall or in the early layers relative to the late ones.

    ## What it detects
    Any of: (1) the gradients' root-mean-square value over the second half of the run is below
    `min_rms` (from gradient histograms; a scalar norm is compared with `min_norm`); (2) with
    gradient histograms, the first weight layer's gradient RMS is below `min_layer_ratio` times
    the last layer's (median over the second half of the run); (3) the gradient norm fell below
    `min_decay` times its early level. Layers whose gradients are mostly exact zeros
    (`max_zero_fraction`) are dead, not vanishing, and are left out.

    ## Why it matters
    Layers whose gradients vanish stop learning: the early layers of a deep network keep their
    random initial features and the loss stalls. Sigmoid/tanh stacks without normalisation or
    skip connections are the usual cause.

    ## What to do
    - Use residual (skip) connections
    - Try different activation functions (ReLU family instead of sigmoid/tanh)
    - Add batch or layer normalisation
    - Check initialisation (He/Xavier scaling)

    ## Example
    `Gradients/net.0.weight` RMS 2.1e-11 vs `Gradients/net.20.weight` 9.7e-03: ratio 2.2e-09
    < 1e-03: flagged.
    """

    code = "G202"
    name = "vanishing-gradients"
    severities = (Severity.WARNING,)
    problem = "vanishing-gradients"
    requires_any = ("grad_norm", "gradient_histograms")
    # Tiny early-layer gradients next to exploded late-layer ones are a consequence: the blow-up
    # is what to fix.
    explained_by = ("exploding-gradients", "non-finite-loss")

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(2, "Fewest logged steps needed to judge.")
        min_rms: float = param(
            1e-7, "Smallest healthy root-mean-square gradient element (histograms)."
        )
        min_norm: float = param(1e-6, "Smallest healthy scalar gradient norm.")
        min_layer_ratio: float = param(
            1e-3, "Smallest healthy ratio of the first to the last layer's gradient RMS."
        )
        min_decay: float = param(
            1e-3, "Smallest healthy ratio of the late gradient norm to its early level."
        )
        max_zero_fraction: float = param(
            0.8,
            "Layers with at least this share of exactly-zero gradients are left to dead-neurons.",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        frames = run.histogram_frames("gradient_histograms")
        curve = run.curve("grad_norm")
        if frames:
            yield from self._from_histograms(run, frames, params)
            return
        if curve is None:
            raise SkipDetector("no tag matched role grad_norm or gradient_histograms")
        norm = curve.finite()
        if len(norm) < params.min_points:
            raise SkipDetector(
                f"gradient norm has {len(norm)} finite points, fewer than {params.min_points}"
            )
        half = norm.values[norm.values.size // 2 :]
        late = small_median(half)
        early = small_median(norm.values[: max(1, norm.values.size // 10)])
        evidence = {
            "late_norm": late,
            "early_norm": early,
            "min_norm": params.min_norm,
            "min_decay": params.min_decay,
            "source": "scalar",
        }
        half_step = int(norm.steps[norm.values.size // 2])
        second_half = (half_step, int(norm.steps[-1]))
        if late < params.min_norm:
            yield self.finding(
                run,
                message=(
                    f"gradient norm is {fmt(late)} over the second half "
                    f"(threshold {fmt(params.min_norm)})"
                ),
                step=half_step,
                evidence=evidence,
                tags=(norm.tag,),
                observed=late,
                limit=params.min_norm,
                step_range=second_half,
                marks=[mark_band(norm.tag, *second_half, "second half")],
            )
        elif early > 0 and late / early < params.min_decay:
            evidence["decay"] = late / early
            yield self.finding(
                run,
                message=(
                    f"gradient norm fell to {fmt(late / early)} of its early level "
                    f"({fmt(early)} → {fmt(late)}; threshold {fmt(params.min_decay)})"
                ),
                step=half_step,
                evidence=evidence,
                tags=(norm.tag,),
                observed=late / early,
                limit=params.min_decay,
                step_range=second_half,
                marks=[mark_band(norm.tag, *second_half, "second half")],
            )

    def _from_histograms(
        self, run: RunData, frames: dict[str, pd.DataFrame], params: Params
    ) -> Iterator[Finding]:
        frames = _live_frames(frames, max_zero_fraction=params.max_zero_fraction)
        layers = _layer_rms(frames)
        steps_all = sorted({int(s) for steps, _ in layers.values() for s in steps})
        if len(steps_all) < params.min_points:
            raise SkipDetector(
                f"gradient histograms cover {len(steps_all)} steps, fewer than {params.min_points}"
            )
        cutoff = steps_all[len(steps_all) // 2]
        late: dict[str, float] = {}
        for tag, (steps, rms) in layers.items():
            keep = (steps >= cutoff) & np.isfinite(rms)
            if keep.any():
                late[tag] = small_median(rms[keep])
        if not late:
            return
        overall = _overall_rms({t: f[f["step"] >= cutoff] for t, f in frames.items()})
        weights = [t for t in late if not is_bias(t)] or list(late)
        first, last = weights[0], weights[-1]
        second_half = (int(cutoff), int(steps_all[-1]))
        evidence = {
            "source": "histograms",
            "overall_rms": overall,
            "min_rms": params.min_rms,
            "from_step": int(cutoff),
            "layer_rms": {layer_label(t): late[t] for t in weights[:50]},
        }
        if np.isfinite(overall) and overall < params.min_rms:
            yield self.finding(
                run,
                message=(
                    f"gradients' RMS is {fmt(overall)} from step {cutoff} on "
                    f"(threshold {fmt(params.min_rms)})"
                ),
                step=int(cutoff),
                evidence=evidence,
                tags=weights[:20],
                observed=overall,
                limit=params.min_rms,
                step_range=second_half,
                marks=[mark_band(t, *second_half, "second half") for t in weights[:20]],
            )
            return
        if len(weights) >= 2 and late[last] > 0:
            ratio = late[first] / late[last]
            evidence.update(
                first_layer=first,
                last_layer=last,
                first_layer_rms=late[first],
                last_layer_rms=late[last],
                layer_ratio=ratio,
                min_layer_ratio=params.min_layer_ratio,
            )
            if ratio < params.min_layer_ratio:
                yield self.finding(
                    run,
                    message=(
                        f"first layer's gradient RMS {fmt(late[first])} ({layer_label(first)}) is "
                        f"{fmt(ratio)}× the last layer's {fmt(late[last])} ({layer_label(last)}); "
                        f"threshold {fmt(params.min_layer_ratio)}×"
                    ),
                    step=int(cutoff),
                    evidence=evidence,
                    tags=(first, last),
                    observed=ratio,
                    limit=params.min_layer_ratio,
                    step_range=second_half,
                    marks=[mark_band(t, *second_half, "second half") for t in (first, last)],
                )


def _live_frames(
    frames: dict[str, pd.DataFrame], *, max_zero_fraction: float
) -> dict[str, pd.DataFrame]:
    """The gradient histograms not mostly exact zeros over their second half: exactly-zero
    gradients are dead units, not vanishing ones, and are left to dead-neurons."""
    live = {}
    for tag, frame in frames.items():
        half = exact_zero_fraction(frame.iloc[len(frame) // 2 :])
        half = half[np.isfinite(half)]  # rows without buckets say nothing
        if not (half.size and small_median(half) >= max_zero_fraction):
            live[tag] = frame
    if not live:
        raise SkipDetector("every gradient histogram is mostly exact zeros (see dead-neurons)")
    return live


def _overall_rms(frames_late: dict[str, pd.DataFrame]) -> float:
    """The RMS over all gradient elements: the median global norm per step over the square root
    of the elements a step holds."""
    num = sum(float(f["num"].sum()) for f in frames_late.values())
    _, norms = global_norm_by_step(frames_late)
    per_step_elems = num / max(len({s for f in frames_late.values() for s in f["step"]}), 1)
    return small_median(norms) / np.sqrt(per_step_elems) if per_step_elems else float("nan")


class DeadNeurons(Detector):
    """A layer whose gradients are mostly exactly zero, or whose weights stop changing.

    ## What it detects
    From gradient histograms: a weight layer (not a bias, not an embedding, whose rows for
    tokens absent from a batch get no gradient) where at least `max_zero_fraction` of the
    gradient values are exactly zero (median over the second half of the run, at least
    `min_points` logged steps) — dead ReLU units pass no gradient to their weights. Exact zeros
    are read from the histogram's zero bucket (±1e-12, PyTorch's and TensorFlow's default
    bins), so tiny vanishing gradients are not mistaken for dead ones. From weight histograms:
    a weight layer whose histogram statistics stay identical (relative tolerance `rtol`) over
    the last `min_frozen_fraction` of its logs (and at least `min_points` of them) after having
    changed, while other layers keep changing, or every layer frozen that way (the whole
    network stopped learning, e.g. a learning rate of 0). Not reported next to exploding or
    vanishing gradients or a non-finite loss, which saturate units or stall updates as a side
    effect.

    ## Why it matters
    A unit that outputs zero for every input gets no gradient and never recovers: the layer's
    capacity is lost for the rest of training. A layer whose weights do not change does not
    learn at all (a frozen layer, a detached graph, an optimiser that misses it).

    ## What to do
    - Lower the learning rate (large updates push ReLU units into the dead zone)
    - Use LeakyReLU/ELU/GELU instead of ReLU
    - Check initialisation (He initialisation, non-negative biases for ReLU)
    - Check that every layer's parameters are given to the optimiser and require gradients

    ## Example
    `Gradients/fc1.weight`: 90% of gradient values exactly zero from step 0 on (threshold 80%):
    flagged.
    """

    code = "G203"
    name = "dead-neurons"
    severities = (Severity.WARNING,)
    problem = "dead-neurons"
    requires_any = ("gradient_histograms", "weight_histograms")
    # A blow-up drives units into saturation, where float32 gradients are exactly zero: the
    # explosion is the cause to fix.
    # Gradients far below float32's resolution land in the histogram's zero bucket: with
    # vanishing gradients the "exact zeros" are underflow, not dead units.
    # Weights pulled to zero (weight-collapse) zero the units' outputs and their gradients.
    explained_by = (
        "exploding-gradients",
        "non-finite-loss",
        "vanishing-gradients",
        "weight-collapse",
    )

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(3, "Fewest histogram logs of a layer needed to judge.")
        max_zero_fraction: float = param(
            0.5,
            "Share of exactly-zero gradient values above which a layer is dead (chosen by "
            "grouped cross-validation: bench/calibrate.py).",
        )
        min_frozen_fraction: float = param(
            0.3,
            "The smallest share of a layer's weight logs, at the end of the run, that must be "
            "identical for the layer to count as frozen (and at least `min_points`).",
        )
        rtol: float = param(
            0.0,
            "Relative tolerance under which two weight histograms are identical (0: exactly the "
            "same statistics, as a layer the optimiser never updates keeps them).",
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        grads = run.histogram_frames("gradient_histograms")
        weights = run.histogram_frames("weight_histograms")
        enough = [f for f in (*grads.values(), *weights.values()) if len(f) >= params.min_points]
        if not enough:
            raise SkipDetector(f"no histogram tag has {params.min_points} or more logged steps")
        dead, onsets = _zero_gradient_layers(grads, params)
        if dead:
            first_step = min(onsets.values())
            worst = max(dead, key=dead.__getitem__)
            last_step = int(max(f["step"].max() for f in grads.values()))
            yield self.finding(
                run,
                message=(
                    f"{len(dead)} layer(s) have mostly zero gradients: {layer_label(worst)} "
                    f"{pct(dead[worst])} exactly zero (threshold {pct(params.max_zero_fraction)})"
                ),
                step=first_step,
                evidence={
                    "zero_fraction": {layer_label(t): v for t, v in dead.items()},
                    "max_zero_fraction": params.max_zero_fraction,
                    "kind": "zero-gradients",
                },
                tags=list(dead)[:20],
                observed=dead[worst],
                limit=params.max_zero_fraction,
                step_range=(first_step, last_step),
                marks=[
                    mark_band(t, onsets[t], grads[t]["step"].max(), "zero gradients")
                    for t in list(dead)[:20]
                ],
            )
            return
        # Weights that stop changing while gradients still flow: the optimiser no longer applies
        # updates (a learning rate of 0, parameters left out of the optimiser). Gradients too
        # small to move the weights are vanishing-gradients' finding, which explains this one.
        frozen = frozen_layers(
            weights,
            min_points=params.min_points,
            min_fraction=params.min_frozen_fraction,
            rtol=params.rtol,
        )
        if frozen:
            tags, step, whole = frozen.tags, frozen.since_step, frozen.whole_network
            what = (
                "the whole network stopped changing"
                if whole
                else f"{len(tags)} layer(s) stopped changing while others learn"
            )
            yield self.finding(
                run,
                message=(
                    f"{what}: "
                    f"{', '.join(layer_label(t) for t in tags[:3])} identical from step {step} "
                    f"to the end (threshold: {pct(params.min_frozen_fraction)} of the logs, "
                    f"rtol {fmt(params.rtol)})"
                ),
                step=step,
                evidence={
                    "frozen_layers": [layer_label(t) for t in tags],
                    "since_step": step,
                    "min_points": params.min_points,
                    "rtol": params.rtol,
                    "kind": "frozen-weights",
                },
                tags=tags[:20],
                step_range=(step, int(max(weights[t]["step"].max() for t in tags))),
                marks=[mark_band(t, step, weights[t]["step"].max(), "frozen") for t in tags[:20]],
            )


def _zero_gradient_layers(
    grads: dict[str, pd.DataFrame], params: DeadNeurons.Params
) -> tuple[dict[str, float], dict[str, int]]:
    """Layers whose gradients are mostly exactly zero over the second half of the run (their
    median share of zeros), and the step from which each is."""
    dead: dict[str, float] = {}
    onsets: dict[str, int] = {}
    for tag, frame in grads.items():
        # An embedding's rows for tokens absent from the batch get exactly zero gradient.
        if is_bias(tag) or is_embedding(tag) or len(frame) < params.min_points:
            continue
        half = frame.iloc[len(frame) // 2 :]
        zeros = exact_zero_fraction(frame)
        late = zeros[len(frame) // 2 :]
        late = late[np.isfinite(late)]
        zero = small_median(late) if late.size else 0.0
        if zero >= params.max_zero_fraction:
            dead[tag] = zero
            onset = frame["step"].to_numpy()[zeros >= params.max_zero_fraction]
            step = int(onset[0]) if onset.size else int(half["step"].iloc[0])
            onsets[tag] = step
    return dead, onsets
