"""Labels for zoo runs: the recipe's intent, checked against the numbers the writer logged.

A problem is ``required`` when the logged curves clearly show it (thresholds below), ``allowed``
when they show it weakly, or when it was intended but the layout does not log what would show it
(e.g. collapsed predictions without a prediction-spread tag). An intended problem that the
numbers contradict is dropped and the ``why`` says so; a problem that was not intended but is
clearly visible (a "healthy" run that went NaN) is required all the same.

After a blow-up (a NaN, a divergence, or a first training loss >= 100 x the constant
prediction's: activations blown up at initialisation) a loss stuck high is a side effect of the
blow-up, not a model too weak to learn, and units it killed are its side effect:
underfitting and dead neurons are then allowed, not required.

Thresholds (on the logged series; "tail" = median of the last sixth, at least 3 points):

- overfitting: validation tail >= 1.15 x its minimum while the training tail fell to <= 0.8 x
  its level at that minimum (weak: >= 1.07 x and train still falling);
- underfitting: validation tail >= 0.9 x and training tail >= 0.85 x the loss of the best
  constant prediction (weak: 0.8 / 0.75);
- erratic_loss: validation loss spikes (> 1.5 x its rolling median, at least 2) or wobbles
  (median |log residual| >= 0.08) (weak: 1 spike or 0.04); or it diverged: the training loss
  jumped to >= 3 x its earlier minimum and stayed (last quarter), at >= 0.3 x the constant
  prediction's loss;
- nan_loss: a logged training or validation loss is NaN or infinite;
- exploding_gradients: gradient norm peak >= 1e3 and >= 100 x the late median, or >= 100 x the
  early median (growth), or >= 1e4 while the first logged training loss is >= 100 x the constant
  prediction's (blown-up activations) (weak: peak >= 100 and >= 30 x late);
- vanishing_gradients: first-layer gradient RMS < 1e-3 x the last layer's (median of the second
  half of the histograms), or a gradient norm below 1e-6 (weak: ratio < 1e-2);
- dead_neurons: a layer with >= 50% exactly-zero gradients (median of the second half; weak
  30%; only weak when the layer's gradient RMS is below 1e-10, where zeros are underflow, and
  in layouts whose histograms have equal-width buckets, where exact zeros share
  a bucket with small values and cannot be read off the logged numbers), or the whole network
  frozen (all logged weight histograms identical over the last 3
  logs after having changed, or a validation loss constant to 1e-7 over the last 40%);
- collapsed_predictions: the last 3 prediction-spread points all < 0.1 x its peak, or < 1e-6
  (weak: < 0.25 x, or the output layer's weight RMS ending below 1% of its start).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tools.zoo.recipes import PROBLEMS, Recipe
from tools.zoo.train import History
from tools.zoo.writers import Recorder


def _g(x: float) -> str:
    return f"{x:.3g}"


def _tail(values: np.ndarray) -> float:
    return float(np.median(values[-max(3, values.size // 6) :]))


def _rolling_median(values: np.ndarray, window: int = 5) -> np.ndarray:
    half = window // 2
    return np.array(
        [np.median(values[max(0, i - half) : i + half + 1]) for i in range(values.size)]
    )


def _finite(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(values)
    return steps[ok], values[ok]


class _Verdict:
    def __init__(self) -> None:
        self.strong: set[str] = set()
        self.weak: set[str] = set()
        self.why: list[str] = []
        self.observable: set[str] = set()


def _losses(v: _Verdict, rec: Recorder, h: History) -> None:
    ts, tv = rec.series("train_loss")
    vs, vv = rec.series("val_loss")
    v.observable |= {"nan_loss", "underfitting", "overfitting", "erratic_loss"}
    bad = [(int(s), "train") for s, x in zip(ts, tv, strict=True) if not math.isfinite(x)]
    bad += [(int(s), "val") for s, x in zip(vs, vv, strict=True) if not math.isfinite(x)]
    if bad:
        first = min(bad)
        v.strong.add("nan_loss")
        v.why.append(f"{first[1]} loss non-finite from step {first[0]}")
    ts, tv = _finite(ts, tv)
    vs, vv = _finite(vs, vv)
    if tv.size >= 3:
        v.why.append(f"train {_g(tv[0])} -> {_g(_tail(tv))}")
    if vv.size >= 3:
        i = int(np.argmin(vv))
        v.why.append(
            f"val {_g(vv[0])} -> min {_g(vv[i])} at step {vs[i]} -> {_g(_tail(vv))} "
            f"({(_tail(vv) / vv[i] - 1) * 100:+.0f}% vs min)"
        )
    if bad:
        return  # the curves after a NaN say nothing more
    _overfitting(v, ts, tv, vs, vv)
    _underfitting(v, tv, vv, h)
    _erratic(v, vv)
    _diverged(v, tv, h)


def _overfitting(
    v: _Verdict, ts: np.ndarray, tv: np.ndarray, vs: np.ndarray, vv: np.ndarray
) -> None:
    # Overfitting: validation rises from its minimum while training keeps falling.
    if vv.size >= 6 and tv.size >= 3:
        i = int(np.argmin(vv))
        rise = _tail(vv) / vv[i] - 1
        before = tv[ts <= vs[i]]
        train_at_min = float(np.median(before[-3:])) if before.size else float(tv[0])
        train_end = _tail(tv)
        if rise >= 0.15 and train_end <= 0.8 * train_at_min and i < vv.size - 3:
            v.strong.add("overfitting")
        elif rise >= 0.07 and train_end < train_at_min:
            v.weak.add("overfitting")
        if rise >= 0.07:
            v.why.append(f"train {_g(train_at_min)} at val min -> {_g(train_end)}")


def _underfitting(v: _Verdict, tv: np.ndarray, vv: np.ndarray, h: History) -> None:
    # Underfitting: neither loss beats the best constant prediction by much.
    if vv.size >= 3 and tv.size >= 3 and h.baseline_val > 0:
        rv, rt = _tail(vv) / h.baseline_val, _tail(tv) / h.baseline_train
        if rv >= 0.9 and rt >= 0.85:
            v.strong.add("underfitting")
        elif rv >= 0.8 and rt >= 0.75:
            v.weak.add("underfitting")
        if rv >= 0.8:
            v.why.append(
                f"constant-prediction loss {_g(h.baseline_val)} (val/const {rv:.2f}, "
                f"train/const {rt:.2f})"
            )


def _erratic(v: _Verdict, vv: np.ndarray) -> None:
    # Erratic: spikes or wobble of the validation loss around its trend.
    if vv.size >= 8 and np.all(vv > 0):
        resid = np.log(vv) - np.log(_rolling_median(vv))
        resid = resid[max(1, vv.size // 10) :]
        spikes = int(np.sum(resid > math.log(1.5)))
        noise = float(np.median(np.abs(resid)))
        if spikes >= 2 or noise >= 0.08:
            v.strong.add("erratic_loss")
        elif spikes >= 1 or noise >= 0.04:
            v.weak.add("erratic_loss")
        if spikes or noise >= 0.04:
            v.why.append(f"val spikes >1.5x trend: {spikes}, median |log residual| {noise:.3f}")


def _diverged(v: _Verdict, tv: np.ndarray, h: History) -> None:
    # Divergence without NaN: a jump from a low level to a high plateau that stays.
    if tv.size >= 8:
        blocks = np.array_split(tv, min(tv.size, 60))
        level = np.array([np.median(b) for b in blocks])
        quarter = max(2, level.size // 4)
        early_min = float(np.min(level[:-quarter]))
        late = level[-quarter:]
        if (
            early_min > 0
            and np.all(late >= 3 * early_min)
            and np.min(late) >= 0.3 * h.baseline_train
        ):
            v.strong.add("erratic_loss")
            v.strong.add("_diverged")
            v.why.append(
                f"train diverged: min {_g(early_min)} -> plateau {_g(float(np.median(late)))}"
            )


def _grad_norm_series(rec: Recorder) -> tuple[np.ndarray, np.ndarray, str]:
    steps, values = rec.series("grad_norm")
    if values.size:
        return steps, values, rec.tags["grad_norm"]
    # No scalar: the global norm over the logged gradient histograms.
    by_step: dict[int, float] = {}
    for points in rec.grad_hists.values():
        for step, grads in points:
            by_step[step] = by_step.get(step, 0.0) + float(np.sum(grads.astype(np.float64) ** 2))
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.sqrt(np.array([by_step[s] for s in steps])), "gradient histograms"


#: Layouts writing TF2 tensor histograms (30 equal-width buckets from min to max): exact zeros
#: land in the bucket around zero together with small values, so their share is not logged.
EQUAL_WIDTH_HISTOGRAM_LAYOUTS = frozenset({"tf2loop"})


def _blown_up_at_init(rec: Recorder, h: History) -> bool:
    _, tv = rec.series("train_loss")
    tv = tv[np.isfinite(tv)]
    return bool(tv.size) and h.baseline_train > 0 and tv[0] >= 100 * h.baseline_train


def _gradients(v: _Verdict, rec: Recorder, h: History, layout: str) -> None:
    _steps, norm, source = _grad_norm_series(rec)
    if norm.size >= 3:
        v.observable.add("exploding_gradients")
        finite = norm[np.isfinite(norm)]
        if finite.size >= 3:
            peak = float(finite.max())
            late = float(np.median(finite[finite.size // 2 :]))
            early = float(np.median(finite[: max(1, finite.size // 5)]))
            first_nan = int(np.argmax(~np.isfinite(norm))) if not np.isfinite(norm).all() else None
            pre = norm[:first_nan] if first_nan else finite
            growth = (
                peak / float(np.median(pre[: max(1, pre.size // 5)]))
                if pre.size and np.median(pre[: max(1, pre.size // 5)]) > 0
                else 1.0
            )
            blown_up = _blown_up_at_init(rec, h)  # activations at init
            if (peak >= 1e3 and peak >= 100 * late) or growth >= 100 or (peak >= 1e4 and blown_up):
                v.strong.add("exploding_gradients")
            elif peak >= 100 and peak >= 30 * late:
                v.weak.add("exploding_gradients")
            v.why.append(
                f"grad norm ({source}) early {_g(early)}, peak {_g(peak)}, late {_g(late)}"
            )
            if late < 1e-6:
                v.strong.add("vanishing_gradients")
                v.why.append(f"grad norm late median {_g(late)} < 1e-6")
        v.observable.add("vanishing_gradients")
    # Per-layer statistics from the gradient histograms.
    names = [n for n in h.hist_params if len(rec.grad_hists.get(n, [])) >= 3]
    if names:
        v.observable |= {"vanishing_gradients", "dead_neurons"}
        zero: dict[str, float] = {}
        rms: dict[str, float] = {}
        for name in names:
            points = rec.grad_hists[name]
            late = points[len(points) // 2 :]
            zero[name] = float(np.median([np.mean(g == 0) for _, g in late]))
            rms[name] = float(
                np.median([np.sqrt(np.mean(g.astype(np.float64) ** 2)) for _, g in late])
            )
        hidden = names[:-1] if len(names) > 1 else names
        worst = max(hidden, key=lambda n: zero[n])
        # Zeros in a layer whose gradients underflow (RMS < 1e-10) are vanishing gradients
        # rounded to zero, not dead units: debatable at most.
        visible = layout not in EQUAL_WIDTH_HISTOGRAM_LAYOUTS and rms[worst] >= 1e-10
        if zero[worst] >= 0.5 and visible:
            v.strong.add("dead_neurons")
        elif zero[worst] >= 0.3:
            v.weak.add("dead_neurons")
        if zero[worst] >= 0.3:
            v.why.append(f"{worst} gradients {zero[worst] * 100:.0f}% exactly zero")
        first, last = names[0], names[-1]
        if len(names) > 1 and zero[first] < 0.5 and rms[last] > 0:
            ratio = rms[first] / rms[last]
            if ratio < 1e-3:
                v.strong.add("vanishing_gradients")
            elif ratio < 1e-2:
                v.weak.add("vanishing_gradients")
            if ratio < 1e-2:
                v.why.append(
                    f"grad RMS {first} {_g(rms[first])} vs {last} {_g(rms[last])} "
                    f"(ratio {_g(ratio)})"
                )


def _frozen(v: _Verdict, rec: Recorder) -> None:
    logged = {n: p for n, p in rec.weight_hists.items() if len(p) >= 5}
    if logged:
        v.observable.add("dead_neurons")
        frozen = all(
            all(np.array_equal(p[-1][1], q[1]) for q in p[-3:])
            and not np.array_equal(p[0][1], p[-1][1])
            for p in logged.values()
        )
        if frozen:
            v.strong.add("dead_neurons")
            v.why.append("all logged weight histograms identical over the last 3 logs")
    _, vv = rec.series("val_loss")
    if vv.size >= 10 and np.isfinite(vv).all():
        v.observable.add("dead_neurons")
        tail = vv[-max(4, int(0.4 * vv.size)) :]
        if np.ptp(tail) <= 1e-7 * max(abs(float(np.mean(tail))), 1e-12):
            v.strong.add("dead_neurons")
            v.why.append(
                f"val loss constant at {_g(float(tail[-1]))} for the last {tail.size} logs"
            )


def _collapsed_weights(v: _Verdict, rec: Recorder, h: History) -> None:
    """An output layer whose weights shrank to < 1% of their start makes the predictions
    (almost) constant even when their spread is not logged: debatable, so allowed."""
    if not h.hist_params:
        return
    points = rec.weight_hists.get(h.hist_params[-1], [])
    if len(points) < 3:
        return
    start, end = (
        float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) for w in (points[0][1], points[-1][1])
    )
    if start > 0 and np.isfinite(end) and end < 0.01 * start:
        v.weak.add("collapsed_predictions")
        v.why.append(f"output layer weight RMS {_g(start)} -> {_g(end)}")


def _predictions(v: _Verdict, rec: Recorder) -> None:
    _, ps = rec.series("pred_std")
    ps = np.abs(ps[np.isfinite(ps)])
    if ps.size < 4:
        return
    v.observable.add("collapsed_predictions")
    level = _rolling_median(ps, 3)
    peak_i = int(np.argmax(level))
    peak = float(level[peak_i])
    tail = ps[-3:]
    if np.all(tail < 1e-6) or (peak_i < ps.size - 3 and np.all(tail < 0.1 * peak)):
        v.strong.add("collapsed_predictions")
    elif peak_i < ps.size - 3 and np.all(tail < 0.25 * peak):
        v.weak.add("collapsed_predictions")
    if np.all(tail < 0.25 * peak) or np.all(tail < 1e-6):
        v.why.append(f"pred_std peak {_g(peak)} -> {_g(float(np.median(tail)))}")


def label_run(*, recipe: Recipe, history: History, rec: Recorder) -> dict[str, Any]:
    """The labels.json entry for one run: required, allowed, why (plus family, layout, ...)."""
    v = _Verdict()
    _losses(v, rec, history)
    _gradients(v, rec, history, recipe.layout)
    _frozen(v, rec)
    _predictions(v, rec)
    _collapsed_weights(v, rec, history)
    diverged = "_diverged" in v.strong
    v.strong.discard("_diverged")
    if "nan_loss" in v.strong:
        # After a blow-up every other symptom is a side effect: debatable at most.
        for p in v.strong - {"nan_loss", "exploding_gradients"}:
            v.weak.add(p)
        v.strong &= {"nan_loss", "exploding_gradients"}
    if diverged or _blown_up_at_init(rec, history):
        # A loss stuck high after diverging, or after activations blew up at initialisation, is
        # not a model too weak to learn.
        # Units killed by the blow-up are its side effect too.
        for p in v.strong & {"underfitting", "dead_neurons"}:
            v.weak.add(p)
        v.strong -= {"underfitting", "dead_neurons"}
        v.weak |= {"exploding_gradients"}
    intent = "erratic_loss" if recipe.intent == "divergence" else recipe.intent
    note = f"intent {recipe.intent} ({recipe.variant})"
    if intent in PROBLEMS and intent not in v.strong:
        if intent in v.weak:
            note += ", shown only weakly"
        elif intent not in v.observable:
            v.weak.add(intent)
            note += ", not visible in the logged tags"
        else:
            note += ", not shown by the logged numbers"
    required = sorted(p for p in v.strong if p in PROBLEMS)
    allowed = sorted(p for p in v.weak - v.strong if p in PROBLEMS)
    return {
        "required": required,
        "allowed": allowed,
        "why": "; ".join([note, *v.why]),
        "family": recipe.family,
        "layout": recipe.layout,
        "intent": recipe.intent,
        "variant": recipe.variant,
    }
