"""Prediction, weight, schedule and data-integrity detectors."""

from __future__ import annotations

import numpy as np
from diagnosis_helpers import check, decay, run_data

from tbreport.model import ReadWarning, Severity

N = 40
STEPS = np.arange(N)


def _layers(scales, steps, *, factor=lambda i: 1.0, seed=0, zero_share=0.0):
    rng = np.random.default_rng(seed)
    out = {}
    for tag, scale in scales.items():
        items = []
        for i, step in enumerate(steps):
            values = rng.normal(scale=scale * factor(i), size=300)
            values[: int(zero_share * values.size)] = 0.0
            items.append((int(step), values))
        out[tag] = items
    return out


# -- collapsed predictions -------------------------------------------------------------------------


def test_prediction_spread_falling_to_zero_is_collapse():
    pred_std = 0.3 * np.exp(-STEPS / 4.0) + 1e-6
    (finding,), _ = check("collapsed-predictions", run_data({"pred_std": (STEPS, pred_std)}))
    ev = finding.evidence
    assert ev["ratio"] < ev["max_ratio"]
    assert ev["peak_step"] <= 2
    assert finding.step_range[1] == N - 1
    assert finding.step == finding.step_range[0]
    assert finding.observed == ev["ratio"]
    assert finding.limit == ev["max_ratio"]
    assert "lower learning rate" in finding.advice


def test_stable_prediction_spread_is_silent():
    rng = np.random.default_rng(2)
    pred_std = 0.2 + 0.02 * rng.normal(size=N)
    assert check("collapsed-predictions", run_data({"pred_std": (STEPS, pred_std)}))[0] == []


def test_one_low_point_at_the_end_is_not_collapse():
    pred_std = np.full(N, 0.2)
    pred_std[-1] = 1e-4
    assert check("collapsed-predictions", run_data({"pred_std": (STEPS, pred_std)}))[0] == []


def test_collapse_is_skipped_without_a_prediction_spread():
    _, reason = check("collapsed-predictions", run_data({"train_loss": (STEPS, np.ones(N))}))
    assert reason == "no tag matched role pred_std"


# -- weights ---------------------------------------------------------------------------------------


def test_weights_shrinking_to_zero_collapse():
    hist = _layers(
        {"weights/fc1.weight": 0.1, "weights/fc2.weight": 0.1},
        range(0, N, 5),
        factor=lambda i: 0.3**i,
    )
    (finding,), _ = check("weight-collapse", run_data(histograms=hist))
    assert finding.evidence["layers"]["fc1.weight"]["ratio"] < 0.01


def test_weights_growing_without_bound():
    hist = _layers(
        {"weights/fc1.weight": 0.1, "weights/fc2.weight": 0.1},
        range(0, N, 5),
        factor=lambda i: 2.0**i,
    )
    (finding,), _ = check("weight-growth", run_data(histograms=hist))
    assert finding.evidence["growth"] >= 10
    assert finding.evidence["trend_p_value"] < 0.05


def test_normal_weight_drift_is_silent():
    hist = _layers(
        {"weights/fc1.weight": 0.1, "weights/fc2.weight": 0.1},
        range(0, N, 5),
        factor=lambda i: 1 + 0.05 * i,
    )
    data = run_data(histograms=hist)
    assert check("weight-growth", data)[0] == []
    assert check("weight-collapse", data)[0] == []


# -- learning-rate schedule ------------------------------------------------------------------------


def test_lr_drop_without_loss_response():
    lr = np.where(STEPS < 20, 1e-3, 1e-4)
    loss = np.full(N, 0.5) + 0.001 * np.sin(STEPS)
    (finding,), _ = check(
        "lr-schedule-no-effect", run_data({"lr": (STEPS, lr), "train_loss": (STEPS, loss)})
    )
    assert finding.step == 20
    assert finding.severity == Severity.INFO
    assert finding.evidence["lr_before"] == 1e-3
    assert finding.evidence["lr_after"] == 1e-4


def test_lr_drop_followed_by_a_loss_drop_is_fine():
    lr = np.where(STEPS < 20, 1e-3, 1e-4)
    loss = np.where(STEPS < 20, 0.5, 0.35)
    assert (
        check("lr-schedule-no-effect", run_data({"lr": (STEPS, lr), "train_loss": (STEPS, loss)}))[
            0
        ]
        == []
    )


def test_smooth_schedules_have_nothing_to_judge():
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * STEPS / N))  # cosine
    loss = decay(N)
    assert (
        check("lr-schedule-no-effect", run_data({"lr": (STEPS, lr), "train_loss": (STEPS, loss)}))[
            0
        ]
        == []
    )


# -- data integrity --------------------------------------------------------------------------------


def test_conflicting_duplicate_steps_are_reported_identical_repeats_are_not():
    steps = np.concatenate([STEPS, STEPS[:5]])
    values = np.concatenate([np.ones(N), np.full(5, 2.0)])
    (finding,), _ = check("duplicate-steps", run_data({"loss": (steps, values)}))
    assert finding.evidence["conflicting_steps"] == 5
    assert finding.severity == Severity.INFO
    same = np.concatenate([np.ones(N), np.ones(5)])
    assert check("duplicate-steps", run_data({"epoch": (steps, same)}))[0] == []


def test_damaged_files_are_reported_from_read_warnings():
    warnings = [
        ReadWarning(
            kind="truncated-record", path="run/events.1", message="cut", offset=120, run="run"
        ),
        ReadWarning(kind="duplicate-steps", path="run", message="dups", run="run"),
    ]
    data = run_data({"loss": (STEPS, np.ones(N))}, warnings=warnings)
    (finding,), _ = check("damaged-file", data)
    assert finding.evidence["count"] == 1
    assert finding.evidence["problems"][0]["offset"] == 120
    assert "byte 120" in finding.message
    assert check("damaged-file", run_data({"loss": (STEPS, np.ones(N))}))[0] == []


def test_outputs_constant_from_the_start_are_collapsed():
    pred_std = np.full(N, 3e-8)  # e.g. a deep sigmoid stack whose output never varied
    (finding,), _ = check("collapsed-predictions", run_data({"pred_std": (STEPS, pred_std)}))
    assert "constant" in finding.message
    assert finding.evidence["final_std"] < 1e-6
