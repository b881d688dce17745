"""The robust statistics the detectors decide with."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbreport.diagnosis import stats


def test_tensorboard_smoothing_matches_the_debiased_ema():
    values = [1.0, 2.0, 3.0, float("nan"), 4.0]
    smoothed = stats.tensorboard_smooth(values, weight=0.6)
    # By hand: last = 0.4, 0.4*0.6+0.8 = 1.04, 1.04*0.6+1.2 = 1.824, (NaN skipped), 1.824*0.6+1.6
    expected = [
        0.4 / 0.4,
        1.04 / (1 - 0.6**2),
        1.824 / (1 - 0.6**3),
        math.nan,
        2.6944 / (1 - 0.6**4),
    ]
    np.testing.assert_allclose(smoothed, expected, rtol=1e-12)
    assert np.isnan(smoothed[3])
    np.testing.assert_array_equal(stats.tensorboard_smooth([5.0, 5.0, 5.0]), [5.0, 5.0, 5.0])
    assert stats.tensorboard_smooth([], weight=0.6).size == 0


def test_rolling_median_ignores_single_outliers_and_handles_edges():
    values = np.ones(21)
    values[10] = 1000.0
    np.testing.assert_array_equal(stats.rolling_median(values, window=5), np.ones(21))
    # At the edges only the existing part of the window counts: index 0 sees 1, 2, 3.
    np.testing.assert_array_equal(
        stats.rolling_median([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], window=5),
        [2.0, 2.5, 3.0, 4.0, 4.5, 5.0],
    )


def test_robust_z_flags_the_outlier_only():
    rng = np.random.default_rng(1)
    sample = rng.normal(size=200)
    sample[50] = 25.0
    z = stats.robust_z(sample)
    assert abs(z[50]) > 3.5
    assert np.sum(np.abs(z) > 3.5) <= 3
    # Zero MAD: the mean absolute deviation stands in, and a constant sample scores zero.
    z_flat = stats.robust_z([1.0, 1.0, 1.0, 1.0, 9.0])
    assert z_flat[-1] > 3.5
    assert np.all(z_flat[:4] == 0)


def test_mann_kendall_known_values():
    test = stats.mann_kendall([1, 2, 3, 4, 5], hamed_rao=False)
    # S = 10, var = 5*4*15/18, z = (S-1)/sqrt(var)
    assert test.s == 10
    assert test.tau == 1.0
    assert test.z == pytest.approx(9 / math.sqrt(50 / 3))
    assert test.increasing()
    assert test.p_decreasing > 0.5
    assert stats.mann_kendall([5, 4, 3, 2, 1]).p_decreasing < 0.05
    assert stats.mann_kendall([1, 2]).p_increasing == 1.0  # too short to say anything


def test_hamed_rao_discounts_autocorrelated_noise():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=200))
    plain = stats.mann_kendall(walk, hamed_rao=False)
    corrected = stats.mann_kendall(walk, hamed_rao=True)
    assert abs(corrected.z) < abs(plain.z)
    trend = np.linspace(0, 5, 200) + rng.normal(scale=0.3, size=200)
    assert stats.mann_kendall(trend).increasing(alpha=0.01)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=40))
def test_mann_kendall_p_values_are_probabilities(values):
    test = stats.mann_kendall(values)
    assert 0.0 <= test.p_increasing <= 1.0
    assert test.p_increasing + test.p_decreasing == pytest.approx(1.0)
    assert -1.0 <= test.tau <= 1.0


def test_sens_slope_is_robust_to_an_outlier():
    x = np.arange(20, dtype=float) * 2.0
    x[5] = 1e6
    assert stats.sens_slope(x) == pytest.approx(2.0)
    assert stats.sens_slope([3.0, 1.0], [0.0, 4.0]) == pytest.approx(-0.5)
    assert stats.sens_slope([1.0]) == 0.0


def test_block_medians_shrink_long_series_only():
    steps = np.arange(10_000)
    values = np.sin(steps / 500.0)
    s, v = stats.block_medians(steps, values, max_points=100)
    assert s.size == v.size == 100
    assert s[0] < s[-1]
    _short_s, short_v = stats.block_medians([1, 2, 3], [4.0, 5.0, 6.0], max_points=100)
    np.testing.assert_array_equal(short_v, [4.0, 5.0, 6.0])


def test_sign_change_ratio_separates_monotone_from_noise():
    assert stats.sign_change_ratio(np.arange(50.0)) == 0.0
    rng = np.random.default_rng(3)
    assert 0.55 < stats.sign_change_ratio(rng.normal(size=2000)) < 0.75
    assert stats.sign_change_ratio([1.0, -1.0] * 20) == 1.0


def test_mann_kendall_matches_pymannkendall():
    # Reference values from pymannkendall 1.4 (hamed_rao_modification_test / original_test) on
    # the same series; computed with that library, not with this one.
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=200))
    corrected = stats.mann_kendall(walk)
    assert corrected.s == 5386
    assert corrected.z == pytest.approx(1.346659619156662, rel=1e-9)
    assert 2 * corrected.p_increasing == pytest.approx(0.17808988323296848, rel=1e-9)
    assert corrected.slope == pytest.approx(0.03818683550316296, rel=1e-9)
    assert stats.mann_kendall(walk, hamed_rao=False).z == pytest.approx(5.6905325589104665)
    tied = np.round(rng.normal(size=60), 1) + np.linspace(0, 1, 60)  # ties in the ranks
    test = stats.mann_kendall(tied)
    assert test.s == 374
    assert test.z == pytest.approx(2.3789671594544366, rel=1e-9)
    assert test.slope == pytest.approx(0.02154746121044899, rel=1e-9)


@pytest.mark.parametrize("nans", [True, False])
@pytest.mark.parametrize("accelerated", [True, False])
def test_rolling_median_matches_pandas_on_every_path(monkeypatch, accelerated, nans):
    """The sorted-window path (short curves, with and without NaNs), bottleneck's and pandas'
    give the same medians: shrinking edge windows, NaNs skipped, a window of only NaNs NaN."""
    import pandas as pd

    if not accelerated:
        monkeypatch.setattr(stats, "move_median", None)
    rng = np.random.default_rng(5)
    for n, window in [(1, 3), (2, 5), (7, 3), (8, 4), (40, 9), (300, 31), (3000, 301),
                      (20_000, 2001), (50, 200)]:  # fmt: skip
        y = rng.normal(size=n)
        if nans:
            y[rng.random(n) < 0.1] = np.nan
            y[: min(5, n)] = np.nan  # a window of only NaNs at the start
        half = window // 2
        expected = pd.Series(y).rolling(2 * half + 1, center=True, min_periods=1).median()
        got = stats.rolling_median(y, window=window)
        np.testing.assert_allclose(got, expected.to_numpy(), rtol=0, atol=1e-12)


def test_group_medians_match_pandas_for_single_and_shared_groups():
    import pandas as pd

    from tbreport.diagnosis.detectors.base import group_medians

    rng = np.random.default_rng(6)
    for n, spread in [(0, 1), (1, 1), (30, 1000), (30, 5), (500, 40)]:
        groups = np.sort(rng.integers(0, spread, size=n))
        values = rng.normal(size=n)
        targets, medians = group_medians(groups, values)
        expected = pd.Series(values).groupby(groups).median()
        np.testing.assert_array_equal(targets, expected.index.to_numpy())
        np.testing.assert_allclose(medians, expected.to_numpy(), rtol=0, atol=1e-15)
