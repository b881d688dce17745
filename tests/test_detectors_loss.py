"""Loss detectors on in-memory curves: firing, silence, robustness to noise, evidence."""

from __future__ import annotations

import numpy as np
import pytest
from diagnosis_helpers import check, decay, make_curve, run_data

from tbreport.model import Severity

N = 60
STEPS = np.arange(N)


def _run(train, val=None, **extra):
    scalars = {"train_loss": (STEPS[: len(train)], train)}
    if val is not None:
        scalars["val_loss"] = (STEPS[: len(val)], val)
    scalars.update(extra)
    return run_data(scalars)


# -- overfitting ---------------------------------------------------------------------------------


def test_overfitting_reports_best_step_rise_and_compute_past_best():
    train, val = make_curve("overfit-train", N), make_curve("overfit-val", N, seed=1)
    (finding,), _ = check("overfitting", _run(train, val))
    ev = finding.evidence
    assert 12 <= ev["best_step"] <= 24, "the validation minimum is at 30% of the run"
    assert finding.step == ev["best_step"]
    assert ev["rise"] >= ev["min_rise"] == 0.10
    assert ev["train_drop"] > 0.5
    assert 0.6 < ev["fraction_past_best"] < 0.8
    assert ev["steps_past_best"] == N - 1 - ev["best_step"]
    assert finding.step_range == (ev["best_step"], N - 1)
    assert finding.observed == ev["rise"]
    assert finding.limit == 0.10
    best = next(m for m in finding.marks if m.kind == "point")
    assert (best.tag, best.step, best.value, best.label) == (
        "val_loss",
        ev["best_step"],
        ev["best_value"],
        "best",
    )
    assert "seconds_past_best" in ev
    assert f"step {ev['best_step']}" in finding.message
    assert "threshold 10%" in finding.message
    assert finding.severity == Severity.WARNING
    assert "Increase the dropout rate" in finding.advice


def test_one_bad_validation_epoch_at_the_end_is_not_overfitting():
    train, val = make_curve("healthy", N), make_curve("healthy-val", N, seed=1)
    val[-1] *= 1.8  # one noisy epoch
    findings, _ = check("overfitting", _run(train, val))
    assert findings == []


def test_validation_rising_while_training_rises_too_is_not_overfitting():
    val = make_curve("overfit-val", N, seed=1)
    train = val * 0.8  # both go up together: divergence, not overfitting
    findings, _ = check("overfitting", _run(train, val))
    assert findings == []


def test_small_rise_below_threshold_is_silent_but_threshold_is_configurable():
    t = np.arange(N, dtype=float)
    val = np.where(t < 20, 1.0 - 0.02 * t, 0.6 + 0.002 * (t - 20))  # rises 13% of 0.6 by the end
    train = decay(N, floor=0.05)
    assert check("overfitting", _run(train, val), min_rise=0.2)[0] == []
    assert len(check("overfitting", _run(train, val))[0]) == 1


def test_overfitting_with_validation_on_another_step_grid():
    # Lightning: training loss every 50 steps, validation once per epoch of 200 steps.
    train_steps = np.arange(0, 8000, 50)
    train = decay(train_steps.size, floor=0.01, tau=train_steps.size / 6)
    val_steps = np.arange(199, 8000, 200)
    val_values = make_curve("overfit-val", val_steps.size, seed=2)
    data = run_data({"train_loss": (train_steps, train), "val_loss": (val_steps, val_values)})
    (finding,), _ = check("overfitting", data)
    assert finding.evidence["best_step"] in set(val_steps.tolist())


def test_overfitting_needs_enough_validation_points():
    findings, reason = check(
        "overfitting", _run(make_curve("healthy", N), make_curve("healthy", 4))
    )
    assert findings == []
    assert "fewer than 6" in reason
    _, reason = check("overfitting", _run(make_curve("healthy", N)))
    assert reason == "no tag matched role val_loss"


# -- underfitting --------------------------------------------------------------------------------


def test_flat_losses_are_underfitting_with_evidence():
    (finding,), _ = check(
        "underfitting", _run(make_curve("flat", N), make_curve("flat", N, seed=1))
    )
    ev = finding.evidence
    assert abs(ev["train_improvement"]) < 0.02
    assert ev["min_improvement"] == 0.15
    assert "val_improvement" in ev
    assert "Increase the learning rate" in finding.advice


def test_learning_run_is_not_underfitting():
    assert (
        check("underfitting", _run(make_curve("healthy", N), make_curve("healthy-val", N)))[0] == []
    )


def test_validation_improving_clears_a_flat_training_loss():
    train = make_curve("flat", N)
    val = decay(N, start=1.4, floor=0.7)
    assert check("underfitting", _run(train, val))[0] == []


def test_underfitting_handles_negative_losses():
    # A log-likelihood going from -1.0 to -1.01 barely moves; from -1 to -3 learns.
    flat = -1.0 - 0.01 * np.linspace(0, 1, N)
    learning = -1.0 - 2.0 * np.linspace(0, 1, N)
    assert len(check("underfitting", _run(flat))[0]) == 1
    assert check("underfitting", _run(learning))[0] == []


# -- erratic loss --------------------------------------------------------------------------------


def test_oscillating_loss_is_erratic():
    (finding,), _ = check("erratic-loss", _run(make_curve("erratic", N)))
    assert (
        finding.evidence["noise"] > finding.evidence["max_noise"] or finding.evidence["spikes"] >= 2
    )
    assert "Decrease the learning rate" in finding.advice


def test_a_single_spike_is_not_erratic():
    train = make_curve("healthy", N)
    train[30] *= 10
    assert check("erratic-loss", _run(train))[0] == []


def test_two_spikes_are_erratic_and_their_steps_reported():
    train = make_curve("healthy", N)
    train[[25, 40]] *= 10
    (finding,), _ = check("erratic-loss", _run(train))
    assert finding.evidence["spike_steps"] == [25, 40]
    assert finding.step == 25


def test_minibatch_noise_of_a_healthy_run_is_not_erratic():
    rng = np.random.default_rng(4)
    steps = np.arange(0, 20000, 10)
    train = decay(steps.size, floor=0.3) * np.exp(rng.normal(scale=0.12, size=steps.size))
    assert check("erratic-loss", run_data({"train_loss": (steps, train)}))[0] == []


# -- non-finite ----------------------------------------------------------------------------------


def test_nan_reports_first_bad_step_and_every_tag():
    train = make_curve("nan", N)
    val = make_curve("healthy", N)
    val[50] = np.inf
    (finding,), _ = check(
        "non-finite-loss", _run(train, val, **{"metrics/acc": (STEPS, np.ones(N))})
    )
    assert finding.severity == Severity.ERROR
    assert finding.step == 36 == finding.evidence["first_bad_step"]
    assert set(finding.evidence["tags"]) == {"train_loss", "val_loss"}
    assert finding.evidence["tags"]["val_loss"] == {"first_step": 50, "count": 1, "kind": "inf"}
    assert finding.tags[0] == "train_loss"


def test_finite_run_has_no_non_finite_finding():
    assert check("non-finite-loss", _run(make_curve("healthy", N)))[0] == []


def test_non_finite_can_be_limited_to_loss_tags():
    other = np.ones(N)
    other[5] = np.nan
    data = _run(make_curve("healthy", N), **{"grad_norm": (STEPS, other)})
    assert len(check("non-finite-loss", data)[0]) == 1
    assert check("non-finite-loss", data, loss_roles_only=True)[0] == []


# -- generalisation gap --------------------------------------------------------------------------


def test_large_final_gap_is_information():
    train = decay(N, floor=0.05)
    val = decay(N, start=1.1, floor=0.4)
    (finding,), _ = check("generalisation-gap", _run(train, val))
    assert finding.severity == Severity.INFO
    assert finding.evidence["gap"] > 1.0


def test_gap_is_not_repeated_when_overfitting_is_reported():
    train, val = make_curve("overfit-train", N), make_curve("overfit-val", N, seed=1)
    assert check("generalisation-gap", _run(train, val))[0] == []


@pytest.mark.parametrize(
    "name", ["overfitting", "underfitting", "erratic-loss", "generalisation-gap"]
)
def test_loss_detectors_skip_runs_without_a_training_loss(name):
    data = run_data({"something_else": (STEPS, np.ones(N))})
    findings, reason = check(name, data)
    assert findings == []
    assert reason
    assert "role" in reason


def test_per_step_batch_noise_is_judged_by_the_validation_loss():
    # Lightning: a single batch's loss every 50 steps (noisy near zero), validation per epoch.
    rng = np.random.default_rng(9)
    steps = np.arange(0, 4000, 50)
    train = decay(steps.size, start=1.0, floor=0.03) * np.exp(
        rng.normal(scale=0.6, size=steps.size)
    )
    val_steps = np.arange(199, 4000, 100)
    smooth_val = decay(val_steps.size, start=1.0, floor=0.05) * np.exp(
        rng.normal(scale=0.01, size=val_steps.size)
    )
    data = run_data({"train_loss": (steps, train), "val_loss": (val_steps, smooth_val)})
    assert check("erratic-loss", data)[0] == []
    bouncing = smooth_val * np.exp(rng.normal(scale=0.5, size=val_steps.size))
    data = run_data({"train_loss": (steps, train), "val_loss": (val_steps, bouncing)})
    (finding,), _ = check("erratic-loss", data)
    assert finding.tags == ("val_loss",)
