"""Logdirs for the report tests, written as real event files with ``tbreport.testing``.

Imported by the other ``test_report_*`` modules; its own tests check that the logdirs hold what
the report tests rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tbreport.testing import (
    file_version_event,
    histogram_event,
    hparams_events,
    scalar_event,
    tensor_scalar_event,
    text_event,
    write_events,
)

# Markup that must never run when it reaches the report (run names, tags, text, hparams).
HOSTILE_RUN = '<img src=x onerror="window.__pwned=1">'
HOSTILE_NESTED_RUN = "a<script>window.__pwned=2</script>"  # "/" makes it two directories
HOSTILE_TAGS = (
    "<script>window.__pwned=3</script>",
    '"><img src=x onerror=window.__pwned=4>',
    "'><svg onload=window.__pwned=6>",
)
HOSTILE_TEXT = "<script>window.__pwned=7</script><img src=x onerror=window.__pwned=8> \u2028 end"
HOSTILE_HPARAMS = {
    '<b onmouseover="window.__pwned=9">lr</b>': 0.01,
    "optimizer": "<img src=x onerror=window.__pwned=10>",
    '=HYPERLINK("http://x")': "@SUM(1)",
}
FORMULA_TAG = '=HYPERLINK("http://example.invalid","x")'


def _wall(step: int, *, start: float = 1_700_000_000.0, per_step: float = 2.0) -> float:
    return start + per_step * step


def _autostock_run(
    path: Path,
    *,
    steps: int,
    overfit_at: int | None,
    seed: int,
    nan_at: int | None = None,
    hparams: dict | None = None,
) -> None:
    rng = np.random.default_rng(seed)
    events = [file_version_event(wall_time=_wall(0))]
    for step in range(steps):
        train = 1.0 / (1 + 0.08 * step) + rng.normal(0, 0.01)
        val = 1.1 / (1 + 0.06 * step) + rng.normal(0, 0.01)
        if overfit_at is not None and step > overfit_at:
            val += 0.01 * (step - overfit_at)
        if nan_at is not None and step >= nan_at:
            train = float("nan")
        wall = _wall(step)
        events.append(scalar_event("Loss/train", train, step=step, wall_time=wall))
        events.append(scalar_event("Loss/validation", val, step=step, wall_time=wall))
        events.append(
            scalar_event("Learning_Rate", 1e-3 * (0.5 ** (step // 30)), step=step, wall_time=wall)
        )
        events.append(
            scalar_event(
                "Gradient/norm", float(abs(rng.normal(1.0, 0.2))), step=step, wall_time=wall
            )
        )
        if step % 10 == 0:
            events.append(
                histogram_event(
                    "Weights/fc1", rng.normal(0, 0.1 + step / 1000, 500), step=step, wall_time=wall
                )
            )
            events.append(
                histogram_event(
                    "Gradients/fc1", rng.normal(0, 0.01, 500), step=step, wall_time=wall
                )
            )
    write_events(path / "events.out.tfevents.1700000000.host.1.0", events)
    if hparams:
        write_events(
            path / "1700000000.123456" / "events.out.tfevents.1700000001.host.1.1",
            [file_version_event(wall_time=_wall(0)), *hparams_events(hparams, wall_time=_wall(0))],
        )


def _keras_run(path: Path, *, epochs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for split, scale in (("train", 1.0), ("validation", 1.15)):
        events = [file_version_event(wall_time=_wall(0))]
        for epoch in range(epochs):
            value = scale / (1 + 0.3 * epoch) + rng.normal(0, 0.005)
            events.append(
                tensor_scalar_event(
                    "epoch_loss",
                    value,
                    step=epoch,
                    wall_time=_wall(epoch, per_step=30),
                    with_metadata=epoch == 0,
                )
            )
        write_events(path / split / f"events.out.tfevents.1700000000.host.2.{split}.v2", events)


def make_demo_logdir(root: Path) -> Path:
    """Three AutoStock-style runs (healthy, overfitting, NaN) and a Keras run, with hparams."""
    root.mkdir(parents=True, exist_ok=True)
    _autostock_run(
        root / "lstm_basic",
        steps=120,
        overfit_at=None,
        seed=1,
        hparams={"lr": 0.001, "hidden": 64, "cell": "lstm"},
    )
    _autostock_run(
        root / "lstm_overfit",
        steps=120,
        overfit_at=40,
        seed=2,
        hparams={"lr": 0.01, "hidden": 256, "cell": "lstm"},
    )
    _autostock_run(
        root / "gru_nan",
        steps=120,
        overfit_at=None,
        seed=3,
        nan_at=70,
        hparams={"lr": 0.1, "hidden": 64, "cell": "gru"},
    )
    _keras_run(root / "keras_mlp", epochs=15, seed=4)
    return root


def make_hostile_logdir(root: Path) -> Path:
    """Runs whose names, tags, text and hparams carry script and formula markup."""
    root.mkdir(parents=True, exist_ok=True)
    _autostock_run(root / HOSTILE_RUN, steps=40, overfit_at=10, seed=5, hparams=HOSTILE_HPARAMS)
    rng = np.random.default_rng(6)
    events = [file_version_event(wall_time=_wall(0))]
    for step in range(30):
        wall = _wall(step)
        events.append(
            scalar_event(
                "train_loss", 1 / (1 + step) + rng.normal(0, 0.01), step=step, wall_time=wall
            )
        )
        events.append(
            scalar_event(
                "val_loss", 1.2 / (1 + step) + 0.02 * max(0, step - 10), step=step, wall_time=wall
            )
        )
        for tag in (*HOSTILE_TAGS, FORMULA_TAG):
            events.append(scalar_event(tag, float(step), step=step, wall_time=wall))
        if step % 10 == 0:
            events.append(
                histogram_event(HOSTILE_TAGS[0], rng.normal(0, 1, 100), step=step, wall_time=wall)
            )
    events.append(text_event(HOSTILE_TAGS[1], HOSTILE_TEXT, step=0, wall_time=_wall(0)))
    write_events(root / HOSTILE_NESTED_RUN / "events.out.tfevents.1700000000.host.3.0", events)
    return root


def make_long_logdir(root: Path, *, steps: int) -> Path:
    """One run with ``steps`` noisy points per tag (for display thinning)."""
    rng = np.random.default_rng(7)
    events = [file_version_event(wall_time=_wall(0))]
    for step in range(steps):
        wall = _wall(step, per_step=0.1)
        events.append(
            scalar_event(
                "train_loss", 1 / (1 + step / 500) + rng.normal(0, 0.02), step=step, wall_time=wall
            )
        )
        events.append(scalar_event("val_loss", 1.1 / (1 + step / 500), step=step, wall_time=wall))
    write_events(root / "long" / "events.out.tfevents.1700000000.host.4.0", events)
    return root


def test_demo_logdir_reads_as_expected(tmp_path):
    import tbreport

    result = tbreport.read(make_demo_logdir(tmp_path / "demo"))
    logical = set(result.runs["logical_run"].astype(str))
    assert logical == {"lstm_basic", "lstm_overfit", "gru_nan", "keras_mlp"}, logical
    tags = set(result.logical_scalars()["tag"].astype(str))
    assert {"Loss/train", "Loss/validation", "train/epoch_loss", "validation/epoch_loss"} <= tags
    assert len(result.histograms) > 0
    assert len(result.hparams) == 3, result.hparams


def test_hostile_logdir_keeps_its_markup(tmp_path):
    import tbreport

    result = tbreport.read(make_hostile_logdir(tmp_path / "hostile"))
    runs = set(result.runs["logical_run"].astype(str))
    assert HOSTILE_RUN in runs, runs
    assert HOSTILE_NESTED_RUN in runs, runs
    assert set(HOSTILE_TAGS) <= set(result.scalars["tag"].astype(str))
    assert HOSTILE_TEXT in set(result.text["text"].astype(str))


def _sweep_run(
    path: Path,
    *,
    seed: int,
    hparams: dict,
    steps: int = 100,
    overfit_at: int | None = None,
    diverge_at: int | None = None,
    nan_at: int | None = None,
    accuracy: bool = True,
) -> None:
    rng = np.random.default_rng(seed)
    events = [file_version_event(wall_time=_wall(0))]
    for step in range(steps):
        wall = _wall(step)
        train = 1.0 / (1 + 0.05 * step) + rng.normal(0, 0.005)
        val = 1.1 / (1 + 0.04 * step) + rng.normal(0, 0.005)
        if overfit_at is not None and step > overfit_at:
            val += 0.012 * (step - overfit_at)
        if diverge_at is not None and step >= diverge_at:
            train = val = 1e30
        if nan_at is not None and step >= nan_at:
            train = float("nan")
        events.append(scalar_event("Loss/train", train, step=step, wall_time=wall))
        events.append(scalar_event("Loss/validation", val, step=step, wall_time=wall))
        events.append(scalar_event("Learning_Rate", 3e-4, step=step, wall_time=wall))
        if accuracy:
            acc = 0.5 + 0.4 * (1 - 1 / (1 + 0.05 * step)) + rng.normal(0, 0.005)
            events.append(scalar_event("Accuracy/validation", acc, step=step, wall_time=wall))
    events.extend(hparams_events(hparams, wall_time=_wall(0)))
    write_events(path / "events.out.tfevents.1700000000.host.5.0", events)


def make_sweep_logdir(root: Path) -> Path:
    """A hyperparameter sweep of four runs: healthy, overfitting, diverging to 1e30, NaN.

    Every run logs a constant learning rate of 3e-4 and a validation accuracy; the hparams hold
    constants (``optimizer``), paths (``output_dir``) and a batch size one run lacks.
    """
    root.mkdir(parents=True, exist_ok=True)
    common = {"optimizer": "adam", "epochs": 10}
    _sweep_run(
        root / "sweep" / "healthy",
        seed=11,
        hparams={
            **common,
            "output_dir": "/scratch/a",
            "lr": 0.001,
            "batch_size": 8,
            "model": "resnet18",
        },
    )
    _sweep_run(
        root / "sweep" / "overfit",
        seed=12,
        overfit_at=30,
        hparams={
            **common,
            "output_dir": "/scratch/b",
            "lr": 0.01,
            "batch_size": 16,
            "model": "resnet34",
        },
    )
    _sweep_run(
        root / "sweep" / "diverged",
        seed=13,
        diverge_at=60,
        hparams={**common, "output_dir": "/scratch/c", "lr": 1.0, "model": "resnet18"},
    )
    _sweep_run(
        root / "sweep" / "nan",
        seed=14,
        nan_at=50,
        hparams={
            **common,
            "output_dir": "/scratch/d",
            "lr": 0.1,
            "batch_size": 8,
            "model": "resnet34",
        },
    )
    return root
