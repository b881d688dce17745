"""Reinforcement-learning detectors: each fires on the run that has the problem and stays silent
on a healthy look-alike written in Stable-Baselines3's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tbreport
from tbreport import testing

N = 200


def _sb3_run(root: Path, **series: np.ndarray) -> Path:
    """A PPO_1 directory with SB3's tags; ``series`` maps short names to values."""
    tags = {
        "reward": "rollout/ep_rew_mean",
        "entropy": "train/entropy_loss",
        "value": "train/value_loss",
        "policy": "train/policy_gradient_loss",
        "kl": "train/approx_kl",
    }
    events = [testing.file_version_event()]
    for key, values in series.items():
        for i, v in enumerate(values):
            events.append(
                testing.scalar_event(tags[key], float(v), step=2048 * (i + 1), wall_time=1.0 + i)
            )
    directory = root / "PPO_1"
    directory.mkdir(parents=True)
    testing.write_events(directory / "events.out.tfevents.1.host", events)
    return root


def _healthy(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.linspace(0, 1, N)
    return {
        "reward": 100 * (1 - np.exp(-4 * t)) + rng.normal(0, 2, N),
        "entropy": -(1.9 * np.exp(-1.2 * t)) * rng.lognormal(0, 0.02, N),
        "value": 3.0 * np.exp(-2 * t) * rng.lognormal(0, 0.3, N),
        "policy": rng.normal(0, 0.02, N),
    }


def _names(root: Path) -> dict[str, tbreport.Finding]:
    diagnosis = tbreport.diagnose(root)
    assert [r.kind for r in diagnosis.runs] == ["reinforcement-learning"]
    return {f.name: f for f in diagnosis}


def test_healthy_agent_is_silent(tmp_path):
    found = _names(_sb3_run(tmp_path, **_healthy(np.random.default_rng(0))))
    assert not found, [f.message for f in found.values()]


def test_reward_that_learned_then_collapsed_fires(tmp_path):
    series = _healthy(np.random.default_rng(1))
    series["reward"][120:] = 15 + np.random.default_rng(2).normal(0, 2, N - 120)
    found = _names(_sb3_run(tmp_path, **series))
    assert "reward-collapse" in found
    assert found["reward-collapse"].problem == "erratic-loss"
    assert "reward-not-improving" not in found


def test_reward_that_never_improves_fires_underfitting(tmp_path):
    series = _healthy(np.random.default_rng(3))
    series["reward"] = -20 + np.random.default_rng(4).normal(0, 0.5, N)
    found = _names(_sb3_run(tmp_path, **series))
    assert found["reward-not-improving"].problem == "underfitting"
    assert "reward-collapse" not in found


@pytest.mark.parametrize("at", [0.1, 0.4])
def test_entropy_collapsing_early_fires(tmp_path, at):
    series = _healthy(np.random.default_rng(5))
    k = int(at * N)
    series["entropy"][k:] = -0.01 * np.random.default_rng(6).lognormal(0, 0.1, N - k)
    found = _names(_sb3_run(tmp_path, **series))
    assert found["entropy-collapse"].problem == "collapsed-predictions"


def test_entropy_collapsing_only_at_the_end_is_convergence(tmp_path):
    series = _healthy(np.random.default_rng(7))
    series["entropy"][int(0.8 * N) :] = -0.01
    assert "entropy-collapse" not in _names(_sb3_run(tmp_path, **series))


def test_value_loss_spike_fires_and_a_converging_one_does_not(tmp_path):
    series = _healthy(np.random.default_rng(8))
    series["value"][130] = 5_000.0
    found = _names(_sb3_run(tmp_path / "spike", **series))
    assert found["value-loss-blow-up"].problem == "erratic-loss"
    assert found["value-loss-blow-up"].step == 2048 * 131
    # A value loss that starts high and converges toward zero has a tiny median, no spike.
    series = _healthy(np.random.default_rng(9))
    series["value"] = 0.5 * np.exp(-12 * np.linspace(0, 1, N)) + 1e-6
    assert "value-loss-blow-up" not in _names(_sb3_run(tmp_path / "converging", **series))


def test_approx_kl_spike_fires_and_ordinary_kl_noise_does_not(tmp_path):
    rng = np.random.default_rng(10)
    series = _healthy(rng)
    kl = 0.015 * rng.lognormal(0, 0.5, N)
    quiet = _sb3_run(tmp_path / "quiet", **series, kl=kl)
    assert "approx-kl-blow-up" not in _names(quiet)
    kl = kl.copy()
    kl[150] = 2.5
    found = _names(_sb3_run(tmp_path / "spike", **series, kl=kl))
    assert found["approx-kl-blow-up"].problem == "erratic-loss"
    assert found["approx-kl-blow-up"].step == 2048 * 151
