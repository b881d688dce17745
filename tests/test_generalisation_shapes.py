"""Run shapes from issue 10, each generated the way a real run logs it.

Every shape gets a run written as event files (seeded log-normal noise, realistic lengths and
logging intervals, the tag layout of a common framework) on which its detector must fire, and a
healthy look-alike on which it must stay silent. The diagnosis is the public one:
``tbreport.diagnose`` on the logdir.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tbreport
from tbreport.diagnosis.detectors.loss import ErraticLoss
from tbreport.diagnosis.stats import rolling_median
from tbreport.model import Severity
from tbreport.testing import (
    file_version_event,
    histogram_event,
    scalar_event,
    tensor_scalar_event,
    write_events,
)

Series = tuple[np.ndarray, np.ndarray]

# -- writing -------------------------------------------------------------------------------------


def _write(
    directory: Path,
    scalars: dict[str, Series],
    histograms: dict[str, list[tuple[int, np.ndarray]]] | None = None,
    *,
    tf2: bool = False,
    seconds_per_step: float = 0.05,
) -> None:
    """One event file in ``directory`` holding ``scalars`` (tag -> (steps, values)) and
    ``histograms`` (tag -> [(step, values)]), in step order as a writer emits them."""
    timed = []
    for tag, (steps, values) in scalars.items():
        for i, (step, value) in enumerate(zip(steps, values, strict=True)):
            timed.append((int(step), tag, float(value), i == 0))
    events = [file_version_event(wall_time=1000.0)]
    for step, tag, value, first in sorted(timed, key=lambda t: t[0]):
        wall = 1000.0 + seconds_per_step * step
        if tf2:
            events.append(
                tensor_scalar_event(tag, value, step=step, wall_time=wall, with_metadata=first)
            )
        else:
            events.append(scalar_event(tag, value, step=step, wall_time=wall))
    for tag, items in (histograms or {}).items():
        for step, values in items:
            wall = 1000.0 + seconds_per_step * step
            events.append(histogram_event(tag, values, step=step, wall_time=wall))
    write_events(directory / "events.out.tfevents.1000.host.1.0", events)


def _lightning(root: Path, **scalars: Series) -> Path:
    run = root / "lightning_logs" / "version_0"
    _write(run, dict(scalars))
    return run


def _keras(root: Path, train: dict[str, Series], val: dict[str, Series] | None = None) -> Path:
    run = root / "fit" / "20240101-000000"
    _write(run / "train", train, tf2=True)
    if val:
        _write(run / "validation", val, tf2=True)
    return run


def _diagnose(root: Path):
    diagnosis = tbreport.diagnose(root)
    assert len(diagnosis.runs) == 1, [r.run for r in diagnosis.runs]
    return diagnosis, diagnosis.runs[0]


def _named(diagnosis, name: str):
    found = [f for f in diagnosis if f.name == name]
    return found[0] if found else None


def _names(diagnosis) -> set[str]:
    return {f.name for f in diagnosis}


# -- curves --------------------------------------------------------------------------------------


def _lognormal(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    return np.exp(rng.normal(scale=sigma, size=n))


def _decay(t: np.ndarray, start: float, floor: float, tau: float) -> np.ndarray:
    return floor + (start - floor) * np.exp(-t / tau)


EPOCHS = 100
STEPS_PER_EPOCH = 50
LOG_EVERY = 10


def _per_step_train(rng, epochs: int, *, start=2.3, floor=0.004, tau=12.0, sigma=0.3) -> Series:
    """A per-step training loss logged every LOG_EVERY optimiser steps, falling by orders of
    magnitude (log-linear towards ``floor``), with minibatch noise."""
    steps = np.arange(LOG_EVERY - 1, epochs * STEPS_PER_EPOCH, LOG_EVERY)
    epoch = steps / STEPS_PER_EPOCH
    level = np.exp(np.log(floor) + (np.log(start) - np.log(floor)) * np.exp(-epoch / tau))
    return steps, level * _lognormal(rng, sigma, steps.size)


def _epoch_steps(epochs: int) -> np.ndarray:
    """The step of each epoch's end, where Lightning logs the validation loss."""
    return (np.arange(epochs) + 1) * STEPS_PER_EPOCH - 1


# -- 1. overfitting: validation rises 15-35% from an early minimum, then plateaus noisily ---------


def _overfit_val(rng, epochs: int, *, rise: float) -> np.ndarray:
    e = np.arange(epochs, dtype=float)
    best_epoch, best = 14, 0.45
    fall = _decay(e, 1.1, best, 4.0)
    fall = fall - fall[best_epoch] + best  # exactly `best` at its minimum
    climb = best * (1 + rise * np.clip((e - best_epoch) / 20.0, 0.0, 1.0))
    level = np.where(e <= best_epoch, fall, climb)
    return level * _lognormal(rng, 0.03, epochs)


# Over seeds 10-39 the detector fires on 26/30 runs at a 15% rise (the noisy plateau has no
# significant Mann-Kendall trend, and the rise over the raw minimum must clear both
# `min_rise_plateau` and twice the curve's noise), on 30/30 from 20% on, on 1/30 at 10%, and on
# 0/30 of the look-alikes below.


@pytest.mark.parametrize(
    "rise",
    [0.15, 0.20, 0.25, 0.35],
)
def test_overfitting_rise_then_noisy_plateau_fires(tmp_path, rise):
    rng = np.random.default_rng(10)
    train = _per_step_train(rng, EPOCHS)
    val = (_epoch_steps(EPOCHS), _overfit_val(rng, EPOCHS, rise=rise))
    _lightning(tmp_path, train_loss=train, val_loss=val)
    diagnosis, run = _diagnose(tmp_path)
    finding = _named(diagnosis, "overfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.severity == Severity.WARNING
    assert finding.problem == "overfitting"
    assert run.status == "warning"
    assert 9 * STEPS_PER_EPOCH <= finding.evidence["best_step"] <= 20 * STEPS_PER_EPOCH


def test_overfitting_look_alike_val_plateaus_at_its_minimum(tmp_path):
    rng = np.random.default_rng(10)
    train = _per_step_train(rng, EPOCHS)
    e = np.arange(EPOCHS, dtype=float)
    val = (_epoch_steps(EPOCHS), _decay(e, 1.1, 0.45, 4.0) * _lognormal(rng, 0.03, EPOCHS))
    _lightning(tmp_path, train_loss=train, val_loss=val)
    diagnosis, run = _diagnose(tmp_path)
    assert _named(diagnosis, "overfitting") is None
    assert not [f for f in diagnosis if f.severity != Severity.INFO], [f.message for f in diagnosis]
    # Training loss 0.004 against validation 0.45 is a real (informational) gap; nothing worse.
    assert _names(diagnosis) <= {"generalisation-gap"}
    assert run.status in ("healthy", "info")


# -- 2. overfitting on a resumed run whose first point is already the best -----------------------


RESUME_FROM = 40_000


def _resumed(rng, val_end: float) -> tuple[Series, Series]:
    steps = np.arange(RESUME_FROM + LOG_EVERY, 2 * RESUME_FROM + 1, LOG_EVERY)
    t = (steps - RESUME_FROM) / RESUME_FROM
    train = 0.20 * np.exp(-0.45 * t) * _lognormal(rng, 0.2, steps.size)
    val_steps = np.arange(RESUME_FROM, 2 * RESUME_FROM + 1, 500)
    u = (val_steps - RESUME_FROM) / RESUME_FROM
    val = 0.40 * (val_end / 0.40) ** u * _lognormal(rng, 0.015, val_steps.size)
    val[0] = 0.40 * 0.97  # the checkpoint it resumes from was the best one
    assert np.argmin(val) == 0 if val_end > 0.40 else np.argmin(val) > 0
    return (steps, train), (val_steps, val)


def test_resumed_run_overfitting_from_its_first_point_fires(tmp_path):
    train, val = _resumed(np.random.default_rng(20), val_end=0.54)
    _write(tmp_path / "resumed", {"Loss/train": train, "Loss/validation": val})
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "overfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "overfitting"
    assert finding.severity == Severity.WARNING
    assert finding.evidence["best_step"] == RESUME_FROM
    assert finding.evidence["rise"] >= 0.25


def test_resumed_run_whose_val_keeps_falling_is_silent(tmp_path):
    train, val = _resumed(np.random.default_rng(20), val_end=0.36)
    _write(tmp_path / "resumed", {"Loss/train": train, "Loss/validation": val})
    diagnosis, run = _diagnose(tmp_path)
    assert list(diagnosis) == [], [f.message for f in diagnosis]
    assert run.status == "healthy"


# -- 3. exploding gradients tamed by clipping ----------------------------------------------------


def _hf_run(rng, grad_norm: np.ndarray, steps: np.ndarray) -> dict[str, Series]:
    t = steps / steps[-1]
    loss = _decay(t, 2.4, 0.6, 0.15) * _lognormal(rng, 0.1, steps.size)
    eval_steps = steps[49::50]
    eval_loss = _decay(eval_steps / steps[-1], 2.3, 0.7, 0.15) * _lognormal(
        rng, 0.01, eval_steps.size
    )
    lr = 5e-5 * np.minimum(1.0, steps / (0.06 * steps[-1])) * (1 - 0.9 * t)
    return {
        "train/loss": (steps, loss),
        "train/grad_norm": (steps, grad_norm),
        "train/learning_rate": (steps, lr),
        "train/epoch": (steps, steps / 500),
        "eval/loss": (eval_steps, eval_loss),
    }


@pytest.mark.parametrize("high_epochs", [1, 2, 4])
def test_exploding_gradients_tamed_by_clipping_fires(tmp_path, high_epochs):
    rng = np.random.default_rng(30)
    steps = np.arange(10, 10_001, 10)  # 20 epochs of 500 steps, logged every 10
    epoch = steps / 500
    # ~1e5 over the first epochs, brought down to ~1 over as many more and held there.
    log_norm = np.interp(epoch, [0, high_epochs, 2 * high_epochs, 20], [5.0, 5.0, 0.0, 0.0])
    norm = 10**log_norm * _lognormal(rng, 0.3, steps.size)
    _write(tmp_path / "checkpoint-runs", _hf_run(rng, norm, steps))
    diagnosis, run = _diagnose(tmp_path)
    finding = _named(diagnosis, "exploding-gradients")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "exploding-gradients"
    assert finding.severity in (Severity.WARNING, Severity.ERROR)
    assert run.status in ("warning", "error")
    assert finding.step <= high_epochs * 500


def test_healthy_gradient_norm_falling_to_a_third_is_silent(tmp_path):
    rng = np.random.default_rng(30)
    steps = np.arange(10, 10_001, 10)
    norm = _decay(steps / steps[-1], 1.0, 0.3, 0.3) * _lognormal(rng, 0.3, steps.size)
    _write(tmp_path / "checkpoint-runs", _hf_run(rng, norm, steps))
    diagnosis, run = _diagnose(tmp_path)
    assert _named(diagnosis, "exploding-gradients") is None, [f.message for f in diagnosis]
    assert list(diagnosis) == [], [f.message for f in diagnosis]
    assert run.status == "healthy"


# -- 4. erratic loss: no false alarms on ordinary noise; fires when both curves oscillate --------


def test_per_step_minibatch_noise_with_smooth_val_is_silent(tmp_path):
    rng = np.random.default_rng(40)
    train = _per_step_train(rng, EPOCHS, start=2.3, floor=0.3, tau=15.0, sigma=0.3)
    e = np.arange(EPOCHS, dtype=float)
    val = (_epoch_steps(EPOCHS), _decay(e, 2.2, 0.4, 15.0) * _lognormal(rng, 0.01, EPOCHS))
    _lightning(tmp_path, train_loss=train, val_loss=val, epoch=(_epoch_steps(EPOCHS), e))
    diagnosis, run = _diagnose(tmp_path)
    assert _named(diagnosis, "erratic-loss") is None, [f.message for f in diagnosis]
    assert list(diagnosis) == [], [f.message for f in diagnosis]
    assert run.status == "healthy"


def _typical_deviation(values: np.ndarray) -> float:
    """The erratic-loss statistic: median |log residual| around a rolling median over 10%."""
    y = np.log(values)
    window = max(5, int(round(0.1 * y.size))) | 1
    return float(np.median(np.abs(y - rolling_median(y, window=window))))


def test_deviation_just_under_the_threshold_is_silent(tmp_path):
    max_noise = ErraticLoss.Params().max_noise
    rng = np.random.default_rng(41)
    e = np.arange(150, dtype=float)
    # A normal's median |x| is 0.674 sigma: noise whose typical size is the threshold itself,
    # which the residual around a rolling median measures some 10% smaller.
    sigma = max_noise / 0.6745
    train = _decay(e, 1.9, 0.35, 25.0) * _lognormal(rng, sigma, e.size)
    val = _decay(e, 1.8, 0.45, 25.0) * _lognormal(rng, sigma, e.size)
    deviation = _typical_deviation(val)
    assert 0.85 * max_noise < deviation < max_noise, deviation
    _keras(tmp_path, {"epoch_loss": (e, train)}, {"epoch_loss": (e, val)})
    diagnosis, run = _diagnose(tmp_path)
    assert _named(diagnosis, "erratic-loss") is None, [f.message for f in diagnosis]
    assert run.status == "healthy", [f.message for f in diagnosis]


def test_loss_near_three_thousandths_with_relative_noise_is_silent(tmp_path):
    rng = np.random.default_rng(42)
    steps = np.arange(10, 20_001, 10)
    t = steps / steps[-1]
    loss = _decay(t, 0.03, 0.003, 0.05) * _lognormal(rng, 0.35, steps.size)
    eval_steps = steps[49::50]
    eval_loss = _decay(eval_steps / steps[-1], 0.03, 0.0035, 0.05) * _lognormal(
        rng, 0.04, eval_steps.size
    )
    _write(
        tmp_path / "finetune", {"train/loss": (steps, loss), "eval/loss": (eval_steps, eval_loss)}
    )
    diagnosis, _run = _diagnose(tmp_path)
    assert _named(diagnosis, "erratic-loss") is None, [f.message for f in diagnosis]
    assert list(diagnosis) == [], [f.message for f in diagnosis]


def test_sb3_ppo_run_gets_no_supervised_loss_findings(tmp_path):
    rng = np.random.default_rng(43)
    n = 200
    steps = 2048 * (np.arange(n) + 1)
    i = np.arange(n, dtype=float)
    reward = -180 + 380 / (1 + np.exp(-(i - 80) / 18)) + rng.normal(scale=12, size=n)
    value_loss = 40 * np.exp(-i / 120) * _lognormal(rng, 0.8, n)  # wildly oscillating
    policy_loss = rng.normal(scale=0.01, size=n) - 0.004  # around zero, changes sign
    entropy = -1.4 + 0.8 * i / n + rng.normal(scale=0.02, size=n)
    _write(
        tmp_path / "PPO_1",
        {
            "rollout/ep_rew_mean": (steps, reward),
            "rollout/ep_len_mean": (steps, 200 + 0.5 * i),
            "train/value_loss": (steps[1:], value_loss[1:]),
            "train/policy_gradient_loss": (steps[1:], policy_loss[1:]),
            "train/entropy_loss": (steps[1:], entropy[1:]),
            "train/loss": (steps[1:], 0.5 * value_loss[1:] + policy_loss[1:]),
            "train/learning_rate": (steps[1:], np.full(n - 1, 3e-4)),
        },
    )
    diagnosis, run = _diagnose(tmp_path)
    assert run.kind == "reinforcement-learning"
    bad = _names(diagnosis) & {"erratic-loss", "underfitting", "overfitting", "diverged-loss"}
    assert not bad, [f.message for f in diagnosis]


def test_train_and_val_both_oscillating_thirty_percent_fire(tmp_path):
    rng = np.random.default_rng(44)
    e = np.arange(EPOCHS, dtype=float)
    swing = lambda: 1 + 0.3 * rng.uniform(-1, 1, size=e.size)  # noqa: E731
    train = _decay(e, 2.0, 0.5, 20.0) * swing()
    val = _decay(e, 2.1, 0.6, 20.0) * swing()
    _keras(tmp_path, {"epoch_loss": (e, train)}, {"epoch_loss": (e, val)})
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "erratic-loss")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "erratic-loss"
    assert finding.evidence["noise"] > finding.evidence["max_noise"]


# -- 5. divergence without NaN -------------------------------------------------------------------


def _diverging(rng, *, diverge: bool) -> tuple[Series, Series]:
    e = np.arange(80, dtype=float)
    train = np.exp(np.interp(e, [0, 40], [np.log(0.7), np.log(0.05)]))
    val = np.exp(np.interp(e, [0, 40], [np.log(0.75), np.log(0.09)]))
    if diverge:
        train[41:] = rng.uniform(0.44, 0.77, size=39)
        val[41:] = rng.uniform(0.5, 0.8, size=39)
    else:
        train[41:] = 0.05 * np.exp(-(e[41:] - 40) / 60)
        val[41:] = 0.09 * np.exp(-(e[41:] - 40) / 120)
    train = train * _lognormal(rng, 0.04, e.size)
    val = val * _lognormal(rng, 0.02, e.size)
    return (_epoch_steps(80), train), (_epoch_steps(80), val)


def test_loss_that_jumps_back_to_a_plateau_diverged(tmp_path):
    train, val = _diverging(np.random.default_rng(50), diverge=True)
    _lightning(tmp_path, train_loss=train, val_loss=val)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "diverged-loss")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "erratic-loss"
    assert 38 * STEPS_PER_EPOCH <= finding.step <= 43 * STEPS_PER_EPOCH


def test_same_start_without_the_jump_is_silent(tmp_path):
    train, val = _diverging(np.random.default_rng(50), diverge=False)
    _lightning(tmp_path, train_loss=train, val_loss=val)
    diagnosis, run = _diagnose(tmp_path)
    assert list(diagnosis) == [], [f.message for f in diagnosis]
    assert run.status == "healthy"


# -- 6. dead network: every weight histogram identical from step 100 on --------------------------


def _autostock(rng, *, freeze_at: int | None) -> tuple[dict, dict]:
    steps = np.arange(0, 201, 5)
    loss_steps = np.arange(0, 201)
    layers = {"Weights/lstm": 0.08, "Weights/fc1": 0.05, "Weights/fc2": 0.12}
    weights = {tag: rng.normal(scale=s, size=2048) for tag, s in layers.items()}
    hist: dict[str, list[tuple[int, np.ndarray]]] = {tag: [] for tag in layers}
    for step in steps:
        for tag in layers:
            if freeze_at is None or step <= freeze_at:
                lr = 2e-3 if freeze_at is not None or step < 100 else 2e-4
                weights[tag] = weights[tag] - lr * rng.normal(size=weights[tag].size)
            hist[tag].append((int(step), weights[tag].copy()))
    stop = freeze_at if freeze_at is not None else 10**9
    progress = np.minimum(loss_steps, stop) / 60
    train = (0.02 + 0.05 * np.exp(-progress)) * _lognormal(rng, 0.15, loss_steps.size)
    val_steps = loss_steps[::5]
    val = (0.025 + 0.05 * np.exp(-progress[::5])) * _lognormal(rng, 0.02, val_steps.size)
    scalars = {"Loss/train": (loss_steps, train), "Loss/validation": (val_steps, val)}
    return scalars, hist


def test_whole_network_frozen_from_step_100_is_dead(tmp_path):
    scalars, hist = _autostock(np.random.default_rng(60), freeze_at=100)
    _write(tmp_path / "autostock", scalars, hist)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "dead-neurons")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "dead-neurons"
    assert finding.step == 100
    assert "whole network" in finding.message


def test_weights_that_keep_drifting_slightly_are_alive(tmp_path):
    scalars, hist = _autostock(np.random.default_rng(60), freeze_at=None)
    _write(tmp_path / "autostock", scalars, hist)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "dead-neurons") is None, [f.message for f in diagnosis]


# -- 7. underfitting with one training point and validation at chance ----------------------------


def _chance_run(root: Path, rng, *, learns: bool) -> None:
    e = np.arange(50, dtype=float)
    steps = _epoch_steps(50)
    if learns:
        val = _decay(e, 0.69, 0.3, 10.0) * _lognormal(rng, 0.01, e.size)
        acc = 1 - np.exp(-val) * 0.5 / np.exp(-0.69)
    else:
        val = 0.693 + rng.normal(scale=0.002, size=e.size)
        acc = 0.5 + rng.normal(scale=0.004, size=e.size)
    _lightning(
        root,
        # log_every_n_steps=50 on a 50-step epoch, only the first epoch's point landed
        train_loss=(np.array([49]), np.array([0.6934])),
        val_loss=(steps, val),
        val_acc=(steps, acc),
        epoch=(steps, e),
    )


def test_validation_at_chance_with_one_training_point_underfits(tmp_path):
    _chance_run(tmp_path, np.random.default_rng(70), learns=False)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "underfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "underfitting"
    assert abs(finding.evidence["val_improvement"]) < 0.15


def test_validation_falling_from_chance_is_not_underfitting(tmp_path):
    _chance_run(tmp_path, np.random.default_rng(70), learns=True)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "underfitting") is None, [f.message for f in diagnosis]


# -- 8. underfitting: not on a perfect fit; advice that follows the learning rate ----------------


def test_loss_at_exactly_zero_with_perfect_accuracy_is_not_underfitting(tmp_path):
    e = np.arange(100, dtype=float)
    steps = _epoch_steps(100)
    rng = np.random.default_rng(80)
    # A separable toy set: the loss underflows float32 to exactly 0 by epoch 30.
    train = 0.69 * np.exp(-e / 1.2) * _lognormal(rng, 0.05, e.size)
    train[train < 1e-10] = 0.0
    val = train.copy()
    acc = np.where(e < 4, 0.5 + 0.125 * e, 1.0)
    _lightning(
        tmp_path,
        train_loss=(steps, train),
        val_loss=(steps, val),
        val_acc=(steps, acc),
        epoch=(steps, e),
    )
    diagnosis, _run = _diagnose(tmp_path)
    assert (train == 0.0).sum() >= 50
    assert _named(diagnosis, "underfitting") is None, [f.message for f in diagnosis]
    assert _named(diagnosis, "frozen-loss") is None, [f.message for f in diagnosis]
    assert list(diagnosis) == [], [f.message for f in diagnosis]


def _flat_hf_run(root: Path, rng, lr: float) -> None:
    steps = np.arange(10, 5_001, 10)
    loss = 1.386 * _lognormal(rng, 0.05, steps.size)
    eval_steps = steps[49::50]
    eval_loss = 1.3915 * _lognormal(rng, 0.002, eval_steps.size)
    _write(
        root / "flat",
        {
            "train/loss": (steps, loss),
            "train/learning_rate": (steps, np.full(steps.size, lr)),
            "eval/loss": (eval_steps, eval_loss),
        },
    )


def test_underfitting_at_a_high_learning_rate_advises_lowering_it(tmp_path):
    _flat_hf_run(tmp_path, np.random.default_rng(81), lr=0.1)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "underfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "underfitting"
    assert "lower" in finding.advice.lower()
    assert "Increase the learning rate" not in finding.advice


def test_underfitting_at_a_low_learning_rate_advises_raising_it(tmp_path):
    _flat_hf_run(tmp_path, np.random.default_rng(81), lr=1e-5)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "underfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "underfitting"
    assert "Increase the learning rate" in finding.advice


# -- 9. evidence: the raw best point and the first tag to go non-finite --------------------------


def test_overfitting_evidence_names_the_raw_minimum(tmp_path):
    rng = np.random.default_rng(90)
    e = np.arange(60, dtype=float)
    val = 0.47 * (1 + 0.6 * np.clip((e - 5) / 40, 0, 1)) * _lognormal(rng, 0.01, e.size)
    val[:6] = [0.93, 0.66, 0.53, 0.461, 0.498, 0.487]  # one lucky evaluation at epoch 3
    train = 0.9 * np.exp(-e / 12) * _lognormal(rng, 0.03, e.size)
    _lightning(tmp_path, train_loss=(e, train), val_loss=(e, val))
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "overfitting")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "overfitting"
    assert finding.evidence["best_step"] == 3
    assert finding.evidence["best_value"] == pytest.approx(0.461, rel=1e-6)
    assert finding.evidence["smoothed_best_value"] != pytest.approx(0.461, rel=1e-3)
    assert finding.step == 3
    assert "0.461" in finding.message


def test_non_finite_finding_names_the_first_tag_to_go_bad(tmp_path):
    rng = np.random.default_rng(91)
    steps = np.arange(0, 501)
    loss = _decay(steps / 500, 0.9, 0.2, 0.3) * _lognormal(rng, 0.1, steps.size)
    norm = 1.2 * _lognormal(rng, 0.3, steps.size)
    norm[411:] = np.inf  # the gradients overflow first ...
    loss[412:] = np.nan  # ... the loss follows one step later
    val_steps = steps[::10]
    val = _decay(val_steps / 500, 0.95, 0.25, 0.3) * _lognormal(rng, 0.02, val_steps.size)
    val[val_steps >= 420] = np.nan
    _write(
        tmp_path / "autostock",
        {
            "Loss/train": (steps, loss),
            "Loss/validation": (val_steps, val),
            "Gradient/norm": (steps, norm),
        },
    )
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "non-finite-loss")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "non-finite-loss"
    assert finding.step == 411
    assert finding.message.startswith("Gradient/norm is INF from step 411")
    assert finding.evidence["tags"]["Loss/train"]["first_step"] == 412
    assert finding.evidence["affected_tags"] == 3


# -- 10. frozen loss ----------------------------------------------------------------------------


def test_keras_loss_pinned_at_one_for_200_epochs_is_frozen(tmp_path):
    e = np.arange(203, dtype=float)
    loss = np.ones(e.size)
    loss[:3] = [3.27, 4.41, 5.52]
    _keras(tmp_path, {"epoch_loss": (e, loss)})
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "frozen-loss")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.problem == "collapsed-predictions"
    assert finding.step == 3
    assert finding.evidence["frozen_value"] == 1.0


def test_keras_loss_converging_smoothly_is_not_frozen(tmp_path):
    rng = np.random.default_rng(100)
    e = np.arange(203, dtype=float)
    loss = _decay(e, 3.3, 0.2, 20.0) * _lognormal(rng, 0.002, e.size)
    _keras(tmp_path, {"epoch_loss": (e, loss)})
    diagnosis, _run = _diagnose(tmp_path)
    assert _named(diagnosis, "frozen-loss") is None, [f.message for f in diagnosis]
    assert list(diagnosis) == [], [f.message for f in diagnosis]


# -- layers in model order, frozen weights with live gradients, embeddings ------------------------


def _layer_run(root: Path, rng, rms: dict[str, float], *, wall_gap: float = 0.0) -> None:
    """A torch-style run: a falling loss and one gradient histogram per layer every 10 steps,
    layers written in the order of ``rms`` (layer -> gradient RMS), ``wall_gap`` seconds apart
    (0: one wall time per step, as a writer that stamps the whole step at once)."""
    steps = np.arange(0, 300)
    loss = _decay(steps.astype(float), 1.0, 0.3, 80.0) * _lognormal(rng, 0.05, steps.size)
    events = [file_version_event(wall_time=1000.0)]
    for step, value in zip(steps, loss, strict=True):
        wall = 1000.0 + float(step)
        events.append(scalar_event("Loss/train", float(value), step=int(step), wall_time=wall))
        if step % 10 == 0:
            for i, (layer, size) in enumerate(rms.items()):
                grads = rng.normal(scale=size, size=4096)
                events.append(
                    histogram_event(
                        f"Gradients/{layer}", grads, step=int(step), wall_time=wall + i * wall_gap
                    )
                )
    write_events(root / "events.out.tfevents.1000.host.1.0", events)


def test_vanishing_first_layer_of_a_deep_net_is_judged_against_the_last(tmp_path):
    # Sorted by name, net.16 comes before net.8: the middle layer would pass for the last one.
    rms = {"net.0.weight": 1e-9, "net.8.weight": 1e-7, "net.16.weight": 1e-2}
    _layer_run(tmp_path, np.random.default_rng(70), rms)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "vanishing-gradients")
    assert finding is not None, [f.message for f in diagnosis]
    assert "net.16.weight" in finding.message
    assert "net.0.weight" in finding.message


def test_deep_net_with_even_gradients_has_no_vanishing_finding(tmp_path):
    rms = {"net.0.weight": 3e-3, "net.8.weight": 5e-3, "net.16.weight": 1e-2}
    _layer_run(tmp_path, np.random.default_rng(70), rms)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "vanishing-gradients") is None, [f.message for f in diagnosis]


def test_named_layers_are_ordered_by_when_they_were_written(tmp_path):
    # Sorted by name: decoder, encoder, head. Written: encoder, decoder, head.
    rms = {"encoder.weight": 1e-9, "decoder.weight": 1e-4, "head.weight": 1e-2}
    _layer_run(tmp_path, np.random.default_rng(71), rms, wall_gap=1e-3)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "vanishing-gradients")
    assert finding is not None, [f.message for f in diagnosis]
    assert "encoder.weight" in finding.message


def _frozen_with_gradients(root: Path, rng, *, lr_zero_from: int | None) -> None:
    """Weights and gradient histograms every 5 steps; from ``lr_zero_from`` on the learning
    rate is 0, so the gradients keep flowing but the weights never change again."""
    layers = {"fc1.weight": 0.05, "fc2.weight": 0.08, "head.weight": 0.1}
    weights = {layer: rng.normal(scale=s, size=2048) for layer, s in layers.items()}
    events = [file_version_event(wall_time=1000.0)]
    for step in range(0, 201):
        wall = 1000.0 + step
        frozen = lr_zero_from is not None and step >= lr_zero_from
        lr = 0.0 if frozen else 1e-3
        events.append(scalar_event("Learning_Rate", lr, step=step, wall_time=wall))
        loss = (0.4 + 0.6 * np.exp(-min(step, lr_zero_from or step) / 40)) * rng.lognormal(0, 0.05)
        events.append(scalar_event("Loss/train", float(loss), step=step, wall_time=wall))
        if step % 5:
            continue
        for layer in layers:
            grads = rng.normal(scale=0.01, size=2048)
            weights[layer] = weights[layer] - lr * grads * 100
            events.append(
                histogram_event(f"Weights/{layer}", weights[layer], step=step, wall_time=wall)
            )
            events.append(histogram_event(f"Gradients/{layer}", grads, step=step, wall_time=wall))
    write_events(root / "events.out.tfevents.1000.host.1.0", events)


def test_weights_frozen_while_gradients_flow_are_a_stopped_network(tmp_path):
    _frozen_with_gradients(tmp_path, np.random.default_rng(72), lr_zero_from=80)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "dead-neurons")
    assert finding is not None, [f.message for f in diagnosis]
    # The last update was logged at step 75: the weights are identical from that log on.
    assert "whole network" in finding.message
    assert finding.step == 75


def test_weights_updated_by_the_same_gradients_are_alive(tmp_path):
    _frozen_with_gradients(tmp_path, np.random.default_rng(72), lr_zero_from=None)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "dead-neurons") is None, [f.message for f in diagnosis]


def _zero_gradients(root: Path, rng, layer: str, share: float = 0.95) -> None:
    steps = np.arange(0, 200)
    loss = _decay(steps.astype(float), 1.0, 0.3, 50.0) * _lognormal(rng, 0.05, steps.size)
    events = [file_version_event(wall_time=1000.0)]
    for step, value in zip(steps, loss, strict=True):
        events.append(scalar_event("Loss/train", float(value), step=int(step), wall_time=1000.0))
        if step % 10 == 0:
            for tag in (f"Gradients/{layer}", "Gradients/head.weight"):
                grads = rng.normal(scale=1e-2, size=4096)
                if tag.endswith(layer):
                    grads[rng.random(4096) < share] = 0.0  # exactly zero: dead units
                events.append(histogram_event(tag, grads, step=int(step), wall_time=1000.0))
    write_events(root / "events.out.tfevents.1000.host.1.0", events)


def test_dense_layer_with_mostly_zero_gradients_is_dead(tmp_path):
    _zero_gradients(tmp_path, np.random.default_rng(73), "fc1.weight")
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "dead-neurons")
    assert finding is not None, [f.message for f in diagnosis]
    assert "fc1.weight" in finding.message, [f.message for f in diagnosis]


def test_embedding_table_with_mostly_zero_gradients_is_not_dead(tmp_path):
    # Rows of tokens absent from the batch get exactly zero gradient: sparse by design.
    _zero_gradients(tmp_path, np.random.default_rng(73), "embedding.weight")
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "dead-neurons") is None, [f.message for f in diagnosis]


# -- erratic loss on short validation curves (10-16 epochs) ---------------------------------------


def _short_keras(root: Path, val: np.ndarray, rng) -> None:
    e = np.arange(val.size, dtype=float)
    train = _decay(e, 0.9, 0.05, 3.0) * _lognormal(rng, 0.02, e.size)
    _keras(root, {"epoch_loss": (e, train)}, {"epoch_loss": (e, val)})


def test_short_validation_loss_jumping_around_its_trend_is_erratic(tmp_path):
    # 16 epochs whose evaluations jump some 12% around their trend on a typical epoch (a
    # learning rate too high), as the erratic runs of the labelled corpora do.
    rng = np.random.default_rng(80)
    e = np.arange(16, dtype=float)
    val = _decay(e, 0.4, 0.08, 2.0) * _lognormal(rng, 0.17, e.size)
    _short_keras(tmp_path, val, rng)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "erratic-loss")
    assert finding is not None, [f.message for f in diagnosis]
    assert finding.evidence["points"] == 16


def test_short_validation_loss_falling_fast_with_one_bump_is_not_erratic(tmp_path):
    # A real 10-epoch run: a steep fall (the rolling median lags it) and one 14% bump.
    val = np.array([0.638, 0.559, 0.361, 0.242, 0.223, 0.254, 0.189, 0.205, 0.199, 0.178])
    _short_keras(tmp_path, val, np.random.default_rng(81))
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "erratic-loss") is None, [f.message for f in diagnosis]


def test_per_step_noise_beside_a_steady_short_validation_loss_is_not_erratic(tmp_path):
    # tensorboardX-style: a per-step training loss near 0.015 with 40% minibatch noise, and 8
    # evaluations that wobble 3-4% (under max_noise): neither says the learning rate is wrong.
    rng = np.random.default_rng(82)
    steps = np.arange(16, 528, 16)
    train = 0.015 * _lognormal(rng, 0.55, steps.size)
    val_steps = np.arange(64, 576, 64)
    val = 0.044 * np.array([1.0, 1.04, 1.0, 0.99, 1.06, 1.03, 0.96, 1.0])
    _write(tmp_path / "run", {"train/loss": (steps, train), "valid/loss": (val_steps, val)})
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "erratic-loss") is None, [f.message for f in diagnosis]


# -- weights thrown toward zero by a blow-up -----------------------------------------------------


def _collapsing_weights(root: Path, rng, *, blow_up: bool) -> None:
    """The last layer's weights shrink to 1e-5 of their start; with ``blow_up`` the gradient
    norm jumps from ~1 to 1e5 at step 100 first (the collapse is the blow-up's doing)."""
    events = [file_version_event(wall_time=1000.0)]
    for step in range(0, 200):
        wall = 1000.0 + step
        norm = 1e5 if blow_up and step >= 100 else 1.0
        events.append(
            scalar_event("grad_norm", norm * rng.lognormal(0, 0.1), step=step, wall_time=wall)
        )
        loss = 0.5 + 0.5 * np.exp(-step / 40)
        events.append(
            scalar_event("Loss/train", loss * rng.lognormal(0, 0.05), step=step, wall_time=wall)
        )
        if step % 10 == 0:
            shrink = 1e-5 ** (step / 190)
            for layer, scale in (("fc1.weight", 0.1), ("head.weight", 0.1 * shrink)):
                values = rng.normal(scale=scale, size=1024)
                events.append(
                    histogram_event(f"Weights/{layer}", values, step=step, wall_time=wall)
                )
    write_events(root / "events.out.tfevents.1000.host.1.0", events)


def test_weights_shrinking_to_zero_are_collapsed_predictions(tmp_path):
    _collapsing_weights(tmp_path, np.random.default_rng(90), blow_up=False)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "weight-collapse")
    assert finding is not None
    assert finding.problem == "collapsed-predictions"


def test_weights_thrown_to_zero_by_exploding_gradients_are_its_side_effect(tmp_path):
    _collapsing_weights(tmp_path, np.random.default_rng(90), blow_up=True)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "exploding-gradients") is not None, [f.message for f in diagnosis]
    assert _named(diagnosis, "weight-collapse") is None, [f.message for f in diagnosis]


def test_half_of_a_layers_units_dead_is_reported(tmp_path):
    # A conv layer with 60% of its gradient values exactly zero: most of its filters are dead.
    _zero_gradients(tmp_path, np.random.default_rng(74), "convs.0.weight", share=0.6)
    diagnosis, _ = _diagnose(tmp_path)
    finding = _named(diagnosis, "dead-neurons")
    assert finding is not None, [f.message for f in diagnosis]


def test_a_fifth_of_gradients_exactly_zero_is_ordinary_relu_sparsity(tmp_path):
    _zero_gradients(tmp_path, np.random.default_rng(74), "convs.0.weight", share=0.2)
    diagnosis, _ = _diagnose(tmp_path)
    assert _named(diagnosis, "dead-neurons") is None, [f.message for f in diagnosis]


@pytest.mark.parametrize(("early_norm", "fires"), [(5e3, True), (3e2, False)])
def test_gradient_norm_in_the_thousands_from_the_start_is_exploding(tmp_path, early_norm, fires):
    # A bad initialisation starts at thousands and is tamed to tens; a large healthy model
    # starts at a few hundred and settles the same way.
    rng = np.random.default_rng(75)
    steps = np.arange(0, 400, 4)
    norm = early_norm * np.exp(-steps / 150) + 20 * _lognormal(rng, 0.1, steps.size)
    loss = _decay(steps.astype(float), 2.0, 0.4, 80.0) * _lognormal(rng, 0.05, steps.size)
    _write(tmp_path / "run", {"train/loss": (steps, loss), "train/grad_norm": (steps, norm)})
    diagnosis, _ = _diagnose(tmp_path)
    assert (_named(diagnosis, "exploding-gradients") is not None) == fires, [
        f.message for f in diagnosis
    ]
