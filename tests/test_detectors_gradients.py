"""Gradient detectors on in-memory scalars and histograms."""

from __future__ import annotations

import numpy as np
from diagnosis_helpers import check, run_data

from tbreport.model import Severity

N = 60
STEPS = np.arange(N)
RNG = np.random.default_rng(7)


def _noisy(level: float, n: int = N, scale: float = 0.2) -> np.ndarray:
    return level * np.exp(RNG.normal(scale=scale, size=n))


def _layers(scales: dict[str, float], steps, *, zero_share: float = 0.0, grow=None, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for tag, scale in scales.items():
        items = []
        for i, step in enumerate(steps):
            values = rng.normal(scale=scale * (grow(i) if grow else 1.0), size=400)
            values[: int(zero_share * values.size)] = 0.0
            items.append((int(step), values))
        out[tag] = items
    return out


# -- exploding -------------------------------------------------------------------------------------


def test_growth_by_orders_of_magnitude_is_an_error():
    norm = 10 ** (5 * STEPS / N) * _noisy(1.0)
    (finding,), _ = check("exploding-gradients", run_data({"grad_norm": (STEPS, norm)}))
    assert finding.severity == Severity.ERROR
    assert finding.evidence["growth"] > finding.evidence["error_factor"]
    assert finding.evidence["source"] == "scalar"
    assert 0 < finding.step < N
    assert "gradient clipping" in finding.advice


def test_moderate_explosion_is_a_warning():
    norm = _noisy(1.0)
    norm[40:44] = 300.0
    (finding,), _ = check("exploding-gradients", run_data({"grad_norm": (STEPS, norm)}))
    assert finding.severity == Severity.WARNING
    assert finding.step == 40


def test_gradients_that_grow_then_turn_nan_are_an_error_at_the_first_bad_step():
    norm = 10 ** (4 * STEPS / N) * _noisy(1.0)
    norm[45:] = np.nan
    (finding,), _ = check("exploding-gradients", run_data({"Gradient/norm": (STEPS, norm)}))
    assert finding.severity == Severity.ERROR
    assert finding.step == 45
    assert finding.evidence["first_nonfinite_step"] == 45


def test_nan_gradients_without_growth_are_left_to_non_finite_loss():
    # A NaN label makes loss and gradients NaN at once: nothing exploded.
    norm = _noisy(1.0)
    norm[45:] = np.nan
    data = run_data({"Gradient/norm": (STEPS, norm)})
    assert check("exploding-gradients", data)[0] == []
    (finding,), _ = check("non-finite-loss", data)
    assert finding.step == 45


def test_noisy_but_stable_gradient_norm_is_silent():
    norm = _noisy(1.0, scale=0.5)  # a factor of ~3 either way
    norm[:3] = [30.0, 12.0, 6.0]  # large first steps are normal
    assert check("exploding-gradients", run_data({"grad_norm": (STEPS, norm)}))[0] == []


def test_exploding_from_gradient_histograms():
    hist = _layers(
        {"gradients/fc1.weight": 1e-2, "gradients/fc2.weight": 1e-2},
        range(0, N, 5),
        grow=lambda i: 10 ** (i / 2),
    )
    (finding,), _ = check("exploding-gradients", run_data(histograms=hist))
    assert finding.evidence["source"] == "histograms"
    assert finding.severity == Severity.ERROR


def test_exploding_is_skipped_without_gradients():
    findings, reason = check("exploding-gradients", run_data({"train_loss": (STEPS, np.ones(N))}))
    assert findings == []
    assert "grad_norm" in reason


# -- vanishing -------------------------------------------------------------------------------------


def test_first_layer_gradients_far_below_last_layer_vanish():
    hist = _layers(
        {
            "gradients/layers.0.weight": 1e-8,
            "gradients/layers.0.bias": 1e-2,
            "gradients/layers.5.weight": 1e-5,
            "gradients/layers.9.weight": 1e-3,
        },
        range(0, N, 10),
    )
    (finding,), _ = check("vanishing-gradients", run_data(histograms=hist))
    ev = finding.evidence
    assert ev["first_layer"] == "gradients/layers.0.weight", "biases are not compared"
    assert ev["last_layer"] == "gradients/layers.9.weight"
    assert ev["layer_ratio"] < ev["min_layer_ratio"]
    assert "residual" in finding.advice


def test_similar_layer_gradients_do_not_vanish():
    hist = _layers({"gradients/a.weight": 1e-3, "gradients/b.weight": 5e-3}, range(0, N, 10))
    assert check("vanishing-gradients", run_data(histograms=hist))[0] == []


def test_all_gradients_near_zero_vanish():
    hist = _layers({"gradients/a.weight": 1e-9, "gradients/b.weight": 1e-9}, range(0, N, 10))
    (finding,), _ = check("vanishing-gradients", run_data(histograms=hist))
    assert finding.evidence["overall_rms"] < 1e-7


def test_scalar_norm_near_zero_or_collapsing_vanishes():
    tiny = _noisy(1e-8)
    assert len(check("vanishing-gradients", run_data({"grad_norm": (STEPS, tiny)}))[0]) == 1
    collapsing = np.where(STEPS < 10, 1.0, 1e-5) * _noisy(1.0)
    (finding,), _ = check("vanishing-gradients", run_data({"grad_norm": (STEPS, collapsing)}))
    assert finding.evidence["decay"] < finding.evidence["min_decay"]
    assert check("vanishing-gradients", run_data({"grad_norm": (STEPS, _noisy(0.5))}))[0] == []


# -- dead neurons ----------------------------------------------------------------------------------


def test_layer_with_mostly_zero_gradients_is_dead():
    hist = _layers({"gradients/fc1.weight": 1e-2, "gradients/fc2.weight": 1e-2}, range(0, N, 10))
    hist.update(_layers({"gradients/fc0.weight": 1e-2}, range(0, N, 10), zero_share=0.85))
    (finding,), _ = check("dead-neurons", run_data(histograms=hist))
    assert set(finding.evidence["zero_fraction"]) == {"fc0.weight"}
    assert finding.evidence["zero_fraction"]["fc0.weight"] >= 0.85
    assert finding.evidence["kind"] == "zero-gradients"


def test_zero_biases_alone_are_not_dead_neurons():
    hist = _layers({"gradients/fc1.bias": 1e-2}, range(0, N, 10), zero_share=1.0)
    hist.update(_layers({"gradients/fc1.weight": 1e-2}, range(0, N, 10)))
    assert check("dead-neurons", run_data(histograms=hist))[0] == []


def test_weights_that_stop_changing_while_others_learn_are_dead():
    steps = list(range(0, N, 10))
    frozen_values = np.random.default_rng(1).normal(size=300)
    # fc1 learns for two logs, then never changes again.
    hist = {
        "weights/fc1.weight": [
            (s, frozen_values * (1.1 if i < 2 else 1.0)) for i, s in enumerate(steps)
        ]
    }
    hist.update(_layers({"weights/fc2.weight": 0.1}, steps, grow=lambda i: 1 + 0.1 * i))
    (finding,), _ = check("dead-neurons", run_data(histograms=hist))
    assert finding.evidence["kind"] == "frozen-weights"
    assert finding.evidence["frozen_layers"] == ["fc1.weight"]


def _frozen_after(frozen_from: int) -> dict:
    """Two weight layers, 60 logs, that learn until log ``frozen_from``, then never change."""
    steps = list(range(0, 600, 10))
    rng = np.random.default_rng(1)
    drift = [rng.normal(size=300) for _ in steps]
    hist = {}
    for name, factor in (("weights/a.weight", 1.0), ("weights/b.weight", 2.0)):
        series, current = [], drift[0] * factor
        for i, s in enumerate(steps):
            if i < frozen_from:
                current = current + 0.01 * drift[i]
            series.append((s, current.copy()))
        hist[name] = series
    return hist


def test_the_whole_network_frozen_is_found():
    # Every weight histogram identical for the last 70% of the logs (a learning rate of 0).
    hist = _frozen_after(18)
    findings = check("dead-neurons", run_data(histograms=hist))[0]
    assert [f.name for f in findings] == ["dead-neurons"]
    assert "the whole network" in findings[0].message


def test_a_network_that_stops_only_at_the_very_end_is_not_frozen():
    # A learning rate decayed to zero over the last few logs: nothing died.
    assert check("dead-neurons", run_data(histograms=_frozen_after(55)))[0] == []


def test_dead_neurons_need_enough_histogram_logs():
    hist = _layers({"gradients/fc1.weight": 1e-2}, [0, 10], zero_share=0.9)
    findings, reason = check("dead-neurons", run_data(histograms=hist))
    assert findings == []
    assert "3 or more" in reason


def test_a_layer_that_never_changed_is_frozen_on_purpose_not_dead():
    # A pretrained backbone kept frozen (or a parameter the model never uses) beside a layer
    # that learns: nothing stopped, so nothing is reported.
    hist = _frozen_after(40)
    hist["weights/backbone.weight"] = [
        (s, hist["weights/a.weight"][0][1]) for s, _ in hist["weights/a.weight"]
    ]
    hist["weights/a.weight"] = _frozen_after(60)["weights/a.weight"]
    hist["weights/b.weight"] = _frozen_after(60)["weights/b.weight"]
    assert check("dead-neurons", run_data(histograms=hist))[0] == []
    # The same layer stopping half-way through while the others learn is reported.
    hist["weights/backbone.weight"] = _frozen_after(30)["weights/a.weight"]
    findings = check("dead-neurons", run_data(histograms=hist))[0]
    assert [f.name for f in findings] == ["dead-neurons"]
    assert "backbone" in findings[0].message
