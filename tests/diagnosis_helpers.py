"""Synthetic training curves and the six tag layouts, for detector tests.

``make_curves(problem)`` gives the logical curves of a run with one problem (or none);
``write_run(root, name, layout, curves)`` writes them as event files the way that framework lays
them out, and returns the logical run path ``tbreport.read`` will report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tbreport.model import PROBLEMS as PROBLEMS  # re-exported: one synthetic shape each
from tbreport.testing import (
    file_version_event,
    histogram_event,
    scalar_event,
    tensor_histogram_event,
    tensor_scalar_event,
    write_events,
)

LAYOUTS = ("autostock", "puffin", "hf", "lightning", "keras", "add_scalars")

Series = tuple[np.ndarray, np.ndarray]


@dataclass
class Curves:
    """Logical curves of one run: role -> (steps, values); histograms: layer -> [(step, values)]."""

    train_loss: Series
    val_loss: Series | None = None
    learning_rate: Series | None = None
    grad_norm: Series | None = None
    pred_std: Series | None = None
    gradient_histograms: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    weight_histograms: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)


def decay(
    n: int, *, start: float = 1.0, floor: float = 0.2, tau: float | None = None
) -> np.ndarray:
    """A healthy loss shape: exponential decay from ``start`` to ``floor``."""
    t = np.arange(n, dtype=float)
    tau = tau or n / 5
    return floor + (start - floor) * np.exp(-t / tau)


def make_curve(kind: str, n: int = 60, *, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    """One loss-like curve of ``n`` points: healthy, overfit-val, flat, erratic or nan."""
    rng = np.random.default_rng(seed)
    wiggle = np.exp(rng.normal(scale=noise, size=n))
    if kind == "healthy":
        return decay(n) * wiggle
    if kind == "healthy-val":
        return decay(n, start=1.05, floor=0.25) * wiggle
    if kind == "overfit-train":
        return decay(n, floor=0.01, tau=n / 6) * wiggle
    if kind == "overfit-val":
        t = np.arange(n, dtype=float)
        best = int(0.3 * n)
        base = decay(n, start=1.05, floor=0.3, tau=n / 10)
        rise = np.where(t > best, 0.5 * (t - best) / (n - best), 0.0)
        return (base + rise) * wiggle
    if kind == "flat":
        return np.full(n, 1.386) * np.exp(rng.normal(scale=0.003, size=n))
    if kind == "erratic":
        values = decay(n, floor=0.5) * np.exp(rng.normal(scale=0.45, size=n))
        spikes = rng.choice(np.arange(n // 10, n), size=max(3, n // 15), replace=False)
        values[spikes] *= 8.0
        return values
    if kind == "nan":
        values = decay(n) * wiggle
        values[int(0.6 * n) :] = np.nan
        return values
    raise ValueError(kind)


def _histograms(
    layers: dict[str, float],
    steps: np.ndarray,
    *,
    seed: int,
    zero_share: float = 0.0,
    scale_by_step=None,
) -> dict[str, list[tuple[int, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    for layer, scale in layers.items():
        items = []
        for i, step in enumerate(steps):
            factor = scale_by_step(i) if scale_by_step else 1.0
            values = rng.normal(scale=scale * factor, size=512)
            if zero_share:
                values[: int(zero_share * values.size)] = 0.0
            items.append((int(step), values))
        out[layer] = items
    return out


def make_curves(problem: str | None, *, n: int = 60, seed: int = 0) -> Curves:
    """The curves of a run that has ``problem`` (a detector name), or a healthy run for None."""
    steps = np.arange(n)
    hist_steps = steps[::10]
    rng = np.random.default_rng(seed + 100)
    curves = Curves(
        train_loss=(steps, make_curve("healthy", n, seed=seed)),
        val_loss=(steps, make_curve("healthy-val", n, seed=seed + 1)),
        learning_rate=(steps, np.full(n, 1e-3)),
        grad_norm=(steps, np.exp(rng.normal(scale=0.2, size=n))),
        pred_std=(steps, 0.5 + 0.05 * np.tanh(steps / 10.0) + rng.normal(scale=0.01, size=n)),
        gradient_histograms=_histograms(
            {"fc1.weight": 1e-2, "fc2.weight": 2e-2}, hist_steps, seed=seed
        ),
        weight_histograms=_histograms(
            {"fc1.weight": 0.1, "fc2.weight": 0.12},
            hist_steps,
            seed=seed + 1,
            scale_by_step=lambda i: 1.0 + 0.02 * i,
        ),
    )
    if problem is None:
        return curves
    if problem == "overfitting":
        curves.train_loss = (steps, make_curve("overfit-train", n, seed=seed))
        curves.val_loss = (steps, make_curve("overfit-val", n, seed=seed + 1))
    elif problem == "underfitting":
        curves.train_loss = (steps, make_curve("flat", n, seed=seed))
        curves.val_loss = (steps, make_curve("flat", n, seed=seed + 1))
    elif problem == "erratic-loss":
        curves.train_loss = (steps, make_curve("erratic", n, seed=seed))
        curves.val_loss = (steps, make_curve("erratic", n, seed=seed + 1))
    elif problem == "non-finite-loss":
        curves.train_loss = (steps, make_curve("nan", n, seed=seed))
        curves.val_loss = (steps, make_curve("nan", n, seed=seed + 1))
    elif problem == "exploding-gradients":
        curves.grad_norm = (steps, 10 ** (5.0 * steps / n) * np.exp(rng.normal(scale=0.2, size=n)))
        curves.gradient_histograms = _histograms(
            {"fc1.weight": 1e-2, "fc2.weight": 2e-2},
            hist_steps,
            seed=seed,
            scale_by_step=lambda i: 10 ** (5.0 * i / len(hist_steps)),
        )
    elif problem == "vanishing-gradients":
        curves.grad_norm = None  # only histograms: the layer ratio must show it
        curves.gradient_histograms = _histograms(
            {"layers.0.weight": 1e-9, "layers.4.weight": 1e-6, "layers.9.weight": 1e-3},
            hist_steps,
            seed=seed,
        )
    elif problem == "dead-neurons":
        curves.gradient_histograms = _histograms(
            {"fc1.weight": 1e-2, "fc2.weight": 2e-2}, hist_steps, seed=seed, zero_share=0.9
        )
    elif problem == "collapsed-predictions":
        curves.pred_std = (steps, 0.5 * np.exp(-steps / 5.0) + 1e-5)
    else:
        raise ValueError(problem)
    return curves


# -- layouts -------------------------------------------------------------------------------------

LAYOUT_TAGS = {
    "autostock": {
        "train_loss": "Loss/train",
        "val_loss": "Loss/validation",
        "learning_rate": "Learning_Rate",
        "grad_norm": "Gradient/norm",
        "pred_std": "Predictions/std",
        "gradient_histograms": "Gradients/{}",
        "weight_histograms": "Weights/{}",
    },
    "puffin": {
        "train_loss": "train_loss",
        "val_loss": "val_loss",
        "learning_rate": "learning_rate",
        "grad_norm": "grad_norm",
        "pred_std": "pred_std",
        "gradient_histograms": "gradients/{}",
        "weight_histograms": "weights/{}",
    },
    "hf": {
        "train_loss": "train/loss",
        "val_loss": "eval/loss",
        "learning_rate": "train/learning_rate",
        "grad_norm": "train/grad_norm",
        "pred_std": "eval/pred_std",
        "gradient_histograms": "gradients/{}",
        "weight_histograms": "parameters/{}",
    },
    "lightning": {
        "train_loss": "train_loss",
        "val_loss": "val_loss",
        "learning_rate": "lr-Adam",
        "grad_norm": "grad_2.0_norm_total",
        "pred_std": "val_pred_std",
        "gradient_histograms": "grad/{}",
        "weight_histograms": "weight/{}",
    },
}


class _Writer:
    def __init__(self) -> None:
        self.events = [file_version_event(wall_time=1.0)]

    def scalar(
        self, tag: str, series: Series, *, tensor: bool = False, step_scale: int = 1
    ) -> None:
        steps, values = series
        for i, (step, value) in enumerate(zip(steps, values, strict=True)):
            wall = 1000.0 + float(step) * step_scale
            if tensor:
                self.events.append(
                    tensor_scalar_event(
                        tag,
                        float(value),
                        step=int(step) * step_scale,
                        wall_time=wall,
                        with_metadata=i == 0,
                    )
                )
            else:
                self.events.append(
                    scalar_event(tag, float(value), step=int(step) * step_scale, wall_time=wall)
                )

    def histograms(
        self, pattern: str, layers, *, tensor: bool = False, step_scale: int = 1
    ) -> None:
        for layer, items in layers.items():
            for i, (step, values) in enumerate(items):
                wall = 1000.0 + step * step_scale
                if tensor:
                    self.events.append(
                        tensor_histogram_event(
                            pattern.format(layer),
                            values,
                            step=step * step_scale,
                            wall_time=wall,
                            with_metadata=i == 0,
                        )
                    )
                else:
                    self.events.append(
                        histogram_event(
                            pattern.format(layer), values, step=step * step_scale, wall_time=wall
                        )
                    )

    def write(self, directory: Path, name: str = "events.out.tfevents.1000.host.1.0") -> None:
        write_events(directory / name, self.events)


def write_run(root: Path, name: str, layout: str, curves: Curves) -> str:
    """Write ``curves`` under ``root/name`` in ``layout``; returns the logical run path."""
    directory = root / name
    if layout in LAYOUT_TAGS:
        _write_tagged_layout(directory, layout, curves)
    elif layout == "keras":
        _write_keras(directory, curves)
    elif layout == "add_scalars":
        _write_add_scalars(directory, curves)
    else:
        raise ValueError(layout)
    return name


def _write_tagged_layout(directory: Path, layout: str, curves: Curves) -> None:
    """One directory, the tags of ``LAYOUT_TAGS[layout]``."""
    tags = LAYOUT_TAGS[layout]
    w = _Writer()
    scale = 50 if layout == "lightning" else (10 if layout == "hf" else 1)
    for role in ("train_loss", "learning_rate", "grad_norm"):
        series = getattr(curves, role)
        if series is not None:
            w.scalar(tags[role], series, step_scale=scale)
    if layout == "lightning":
        # Lightning: val once per "epoch" of 4 logged train intervals, on its own step grid.
        if curves.val_loss is not None:
            steps, values = curves.val_loss
            w.scalar(tags["val_loss"], (steps[3::4] * 50 + 49, values[3::4]))
        if curves.pred_std is not None:
            steps = curves.pred_std[0]
            w.scalar(tags["pred_std"], (steps[3::4] * 50 + 49, curves.pred_std[1][3::4]))
    else:
        for role in ("val_loss", "pred_std"):
            series = getattr(curves, role)
            if series is not None:
                w.scalar(tags[role], series, step_scale=scale)
    if layout == "autostock" and curves.val_loss is not None:
        w.scalar("Best_Val_Loss", (curves.val_loss[0], np.fmin.accumulate(curves.val_loss[1])))
    w.histograms(tags["gradient_histograms"], curves.gradient_histograms, step_scale=scale)
    w.histograms(tags["weight_histograms"], curves.weight_histograms, step_scale=scale)
    w.write(directory)


def _write_keras(directory: Path, curves: Curves) -> None:
    """Keras: train/ and validation/ sub-runs, TF2 tensors."""
    train, validation = _Writer(), _Writer()
    train.scalar("epoch_loss", curves.train_loss, tensor=True)
    if curves.learning_rate is not None:
        train.scalar("epoch_learning_rate", curves.learning_rate, tensor=True)
    if curves.val_loss is not None:
        validation.scalar("epoch_loss", curves.val_loss, tensor=True)
    if curves.pred_std is not None:
        validation.scalar("epoch_pred_std", curves.pred_std, tensor=True)
    if curves.grad_norm is not None:
        train.scalar("epoch_grad_norm", curves.grad_norm, tensor=True)
    train.histograms(
        "{}/histogram",
        {k.replace(".weight", "/kernel"): v for k, v in curves.weight_histograms.items()},
        tensor=True,
    )
    train.histograms("gradients/{}", curves.gradient_histograms, tensor=True)
    train.write(directory / "train")
    validation.write(directory / "validation")


def _write_add_scalars(directory: Path, curves: Curves) -> None:
    """torch's add_scalars: one directory per series of the loss."""
    # torch add_scalars("Loss", {"train": ..., "validation": ...}): one directory per series.
    main, loss_train, loss_val = _Writer(), _Writer(), _Writer()
    loss_train.scalar("Loss", curves.train_loss)
    loss_train.write(directory / "Loss_train")
    if curves.val_loss is not None:
        loss_val.scalar("Loss", curves.val_loss)
        loss_val.write(directory / "Loss_validation")
    for role, tag in (
        ("learning_rate", "lr"),
        ("grad_norm", "grad_norm"),
        ("pred_std", "pred_std"),
    ):
        series = getattr(curves, role)
        if series is not None:
            main.scalar(tag, series)
    main.histograms("gradients/{}", curves.gradient_histograms)
    main.histograms("weights/{}", curves.weight_histograms)
    main.write(directory)


# -- in-memory runs for unit tests -------------------------------------------------------------


def histogram_rows(tag: str, items: list[tuple[int, np.ndarray]]) -> list[dict]:
    """Rows of ``ReadResult.histograms`` for one tag (summary statistics as the reader gives)."""
    rows = []
    for step, values in items:
        values = np.asarray(values, dtype=np.float64)
        rows.append(
            {
                "tag": tag,
                "step": int(step),
                "wall_time": 1000.0 + step,
                "min": float(values.min()),
                "max": float(values.max()),
                "num": float(values.size),
                "sum": float(values.sum()),
                "sum_squares": float((values**2).sum()),
                "mean": float(values.mean()),
                "std": float(values.std()),
                "zero_fraction": float(np.mean(np.abs(values) <= 1e-10)),
            }
        )
    return rows


def run_data(
    scalars: dict[str, tuple] | None = None,
    histograms: dict[str, list[tuple[int, np.ndarray]]] | None = None,
    *,
    run: str = "run",
    roles: dict[str, str | list[str]] | None = None,
    warnings=(),
    described: bool = False,
):
    """A RunData built in memory; roles resolved by the default patterns (plus ``roles``).

    With ``described``, the tags' meanings and the run's kind are read as ``tbreport.diagnose``
    reads them (an RL run is then judged as one); without, the run counts as supervised.
    """
    import pandas as pd

    from tbreport.diagnosis.detectors import RunData
    from tbreport.diagnosis.roles import RolePatterns

    rows = []
    for tag, (steps, values) in (scalars or {}).items():
        for step, value in zip(steps, values, strict=True):
            rows.append(
                {
                    "tag": tag,
                    "step": int(step),
                    "wall_time": 1000.0 + float(step),
                    "value": float(value),
                }
            )
    scalar_frame = pd.DataFrame(rows, columns=["tag", "step", "wall_time", "value"])
    hist_rows = [
        row for tag, items in (histograms or {}).items() for row in histogram_rows(tag, items)
    ]
    hist_frame = pd.DataFrame(hist_rows)
    semantics, resolved = RolePatterns.build(roles).describe(
        scalar_tags=list(dict.fromkeys(scalar_frame["tag"])),
        histogram_tags=list(dict.fromkeys(hist_frame["tag"])) if len(hist_frame) else [],
        counts=scalar_frame["tag"].value_counts().to_dict() if described else None,
    )
    return RunData(
        run=run,
        scalars=scalar_frame,
        histograms=hist_frame,
        roles=resolved,
        warnings=warnings,
        semantics=semantics if described else None,
    )


def check(detector_name: str, data, **overrides):
    """Run one detector on a RunData: (findings, skip reason or None)."""
    from tbreport.diagnosis.detectors import SkipDetector, find_detector

    detector = find_detector(detector_name)()
    missing = detector.missing_roles(data)
    if missing:
        return [], missing
    try:
        return list(detector.check(data, detector.make_params(overrides))), None
    except SkipDetector as exc:
        return [], str(exc)
