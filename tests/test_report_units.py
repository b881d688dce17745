"""Report building blocks: smoothing, thinning, safe CSV, safe outputs, script-safe JSON."""

from __future__ import annotations

import base64
import json
import math
import os
import stat

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbreport.diagnosis.stats import tensorboard_smooth
from tbreport.errors import InputError
from tbreport.outputs import (
    DIR_MARKER,
    atomic_open,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    is_tbreport_file,
)
from tbreport.report.charts import encode_array, figure_json, plotly_text
from tbreport.report.csvsafe import neutralise_cell, neutralise_frame, write_csv
from tbreport.report.smoothing import ema_smooth
from tbreport.report.thinning import drop_flat_interior, minmax_thin, thin_indices

# -- smoothing ---------------------------------------------------------------------------------


def test_ema_matches_hand_computed_debiased_average():
    # last = 0.6*last + 0.4*x ; y = last / (1 - 0.6**n)
    got = ema_smooth([1.0, 2.0, 3.0], weight=0.6)
    expected = [0.4 / 0.4, (0.24 + 0.8) / (1 - 0.36), (0.624 + 1.2) / (1 - 0.216)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_ema_passes_non_finite_through_without_counting_them():
    got = ema_smooth([1.0, float("nan"), 3.0, float("inf")], weight=0.5)
    assert math.isnan(got[1])
    assert math.isinf(got[3])
    # The NaN neither moves the average nor counts: the third point is the second finite one.
    expected_third = (0.5 * 0.5 * 1.0 + 0.5 * 3.0) / (1 - 0.25)
    assert got[0] == pytest.approx(1.0)
    assert got[2] == pytest.approx(expected_third)


def test_ema_returns_constant_series_and_weight_zero_unchanged():
    np.testing.assert_array_equal(ema_smooth([2.5] * 5, weight=0.9), [2.5] * 5)
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    np.testing.assert_array_equal(ema_smooth(values, weight=0.0), values)


def test_ema_rejects_weights_outside_unit_interval():
    with pytest.raises(ValueError, match="smoothing weight"):
        ema_smooth([1.0, 2.0], weight=1.0)
    with pytest.raises(ValueError, match="smoothing weight"):
        ema_smooth([1.0, 2.0], weight=-0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=60),
    st.floats(0.0, 0.99),
)
def test_ema_agrees_with_the_detectors_tensorboard_smooth(values, weight):
    np.testing.assert_allclose(
        ema_smooth(values, weight=weight),
        tensorboard_smooth(values, weight=weight),
        rtol=1e-9,
        atol=1e-9,
        equal_nan=True,
    )


def test_ema_with_counts_equals_smoothing_the_expanded_curve():
    means = np.array([1.0, 5.0, 2.0])
    counts = np.array([3, 2, 4])
    expanded = np.repeat(means, counts)
    full = ema_smooth(expanded, weight=0.7)
    bucketed = ema_smooth(means, weight=0.7, counts=counts)
    np.testing.assert_allclose(bucketed, full[np.cumsum(counts) - 1], rtol=1e-12)


# -- thinning ----------------------------------------------------------------------------------


def test_short_curves_are_not_thinned():
    t = minmax_thin(np.arange(100), np.arange(100.0), max_points=2000)
    assert not t.thinned
    assert t.smooth_steps is None
    assert len(t.steps) == 100


def test_minmax_thinning_keeps_extremes_and_first_nan_and_bounds_size():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50_000)
    y[12_345] = 40.0
    y[33_333] = -40.0
    y[40_000:40_010] = np.nan
    t = minmax_thin(np.arange(y.size), y, max_points=2000)
    assert t.thinned
    assert t.total == 50_000
    assert len(t.steps) <= 3000, len(t.steps)
    assert 12_345 in t.steps
    assert 33_333 in t.steps
    assert 40_000 in t.steps
    assert np.isnan(t.values[list(t.steps).index(40_000)])
    assert np.all(np.diff(t.steps) > 0), "display points must stay in step order"
    # The smoothing input accounts for every finite point exactly once.
    assert int(t.smooth_counts.sum()) == int(np.isfinite(y).sum())
    np.testing.assert_allclose(
        np.nansum(t.smooth_values * t.smooth_counts), np.nansum(y), rtol=1e-9
    )


def test_drop_flat_interior_keeps_ends_of_each_flat_stretch():
    steps = np.arange(10)
    values = np.array([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1])
    x, y = drop_flat_interior(steps, values)
    assert list(x) == [0, 3, 4, 6, 7, 9]
    assert list(y) == [1, 1, 0.5, 0.5, 0.1, 0.1]


def test_thin_indices_keeps_first_and_last():
    idx = thin_indices(1000, max_points=10)
    assert idx[0] == 0
    assert idx[-1] == 999
    assert len(idx) == 10
    assert list(thin_indices(5, max_points=10)) == [0, 1, 2, 3, 4]


# -- CSV safety --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1"])
def test_formula_like_text_is_prefixed(text):
    assert neutralise_cell(text) == "'" + text


def test_every_line_of_a_cell_is_prefixed():
    # After a CR the rest is a new physical line, whose cell must not start with a formula.
    assert neutralise_cell("\r=1") == "'\r'=1"


@pytest.mark.parametrize("text", ["loss", "1e-3", "", "'=already", " =x"])
def test_plain_text_is_left_alone(text):
    assert neutralise_cell(text) == text


def test_write_csv_neutralises_text_but_keeps_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "run": pd.Categorical(["=cmd|' /C calc'!A0", "ok", "=cmd|' /C calc'!A0"]),
            "tag": pd.array(["@SUM(1)", "-x", "loss"], dtype="string"),
            "value": [-1.5, 2.0, -3.0],
            "step": np.array([-1, 0, 1], dtype=np.int64),
            "hparam": ["+1", 0.25, None],
            '=HYPERLINK("x")': [1, 2, 3],
        }
    )
    path = write_csv(frame, tmp_path / "t.csv")
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@")), line
    back = pd.read_csv(path)
    assert back["value"].tolist() == [-1.5, 2.0, -3.0], "numbers must stay plain numbers"
    assert back["step"].tolist() == [-1, 0, 1]
    assert back["run"].tolist()[0] == "'=cmd|' /C calc'!A0"
    assert back["tag"].tolist() == ["'@SUM(1)", "'-x", "loss"]
    assert back["hparam"].tolist()[:2] == ["'+1", "0.25"]
    assert '\'=HYPERLINK("x")' in back.columns
    # The input frame is not modified.
    assert frame["tag"].tolist()[0] == "@SUM(1)"


def test_neutralise_frame_handles_colliding_categories():
    frame = pd.DataFrame({"run": pd.Categorical(["=a", "'=a"])})
    assert neutralise_frame(frame)["run"].tolist() == ["'=a", "'=a"]


# -- output safety -----------------------------------------------------------------------------


def test_foreign_file_is_not_overwritten_without_force(tmp_path):
    target = tmp_path / "notes.html"
    target.write_text("<html>my notes</html>")
    with pytest.raises(InputError, match="--force"):
        check_output_file(target)
    assert check_output_file(target, force=True) == target
    assert target.read_text() == "<html>my notes</html>"


def test_previous_report_is_recognised_as_ours(tmp_path):
    target = tmp_path / "report.html"
    target.write_text('<!DOCTYPE html><html><head><meta name="generator" content="tbreport 0.1">')
    assert is_tbreport_file(target)
    assert check_output_file(target) == target


def test_directory_is_not_a_report_file(tmp_path):
    with pytest.raises(InputError, match="directory"):
        check_output_file(tmp_path)


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")

    def interrupted_write() -> None:
        with atomic_open(target, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_write()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"], "the temporary file must be removed"


def test_atomic_write_creates_parents_and_normal_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "a" / "b.html", "new")
    assert target.read_text() == "new"
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode & stat.S_IRGRP, f"mode {oct(mode)} should be readable like a normal file"


def test_output_directory_rules(tmp_path):
    known = ("summary.csv", "findings.csv")
    assert check_output_dir(tmp_path / "new", known_names=known) == tmp_path / "new"
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "summary.csv").write_text("x")
    check_output_dir(ours, known_names=known)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match=r"thesis\.tex"):
        check_output_dir(foreign, known_names=known)
    check_output_dir(foreign, known_names=known, force=True)
    (foreign / DIR_MARKER).write_text("tbreport")
    check_output_dir(foreign, known_names=known)
    a_file = tmp_path / "file.csv"
    a_file.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output_dir(a_file, known_names=known)


# -- script-safe JSON and plotly text ------------------------------------------------------------


def test_figure_json_cannot_close_a_script_element():
    payload = {
        "name": "</script><script>alert(1)</script>",
        "t": "a\u2028b\u2029c&d",
        "v": float("nan"),
    }
    text = figure_json(payload)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text, bad
    back = json.loads(text)
    assert back["name"] == payload["name"]
    assert back["t"] == payload["t"]
    assert back["v"] is None, "NaN is not JSON; it must become null"


def test_plotly_text_escapes_markup():
    assert plotly_text('<img src=x onerror="a">&') == '&lt;img src=x onerror="a"&gt;&amp;'


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([0, 5, 65535]), "u2"),
        (np.array([-1, 10**6]), "i4"),
        (np.array([0, 2**40]), "f8"),
        (np.array([0.5, np.nan, np.inf]), "f4"),
        (np.array([1e-300, 1.0]), "f8"),
    ],
)
def test_encode_array_round_trips(values, dtype):
    encoded = encode_array(values)
    assert encoded["dtype"] == dtype
    decoded = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype="<" + dtype)
    expected = np.where(np.isinf(values.astype(float)), np.nan, values.astype(float))
    np.testing.assert_allclose(decoded.astype(float), expected, rtol=1e-6, equal_nan=True)
