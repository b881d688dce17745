"""Axis ranges, log axes, marker labels and colours that cannot mislead (plain functions)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tbreport.diagnosis.detectors.base import Curve
from tbreport.model import Finding, Mark, Severity
from tbreport.report.charts import set_value_ranges, stagger_labels
from tbreport.report.scales import (
    bulk_range,
    choose_log_axis,
    constant_range,
    run_colors,
    run_dashes,
)
from tbreport.report.summary import best_marker


def _finding(code: str, problem: str | None, **evidence) -> Finding:
    return Finding(
        run="r",
        code=code,
        name="x",
        severity=Severity.WARNING,
        message="m",
        evidence=evidence,
        tags=("val",),
        problem=problem,
    )


def test_constant_series_range_contains_its_value_and_not_zero():
    low, high = constant_range([np.full(50, 3e-4)])
    assert low < 3e-4 < high
    assert low > 0
    assert high < 1e-3
    low, high = constant_range([np.full(5, 3e-4)], log=True)
    assert low < math.log10(3e-4) < high
    assert constant_range([np.array([0.0, 0.0])]) == [-1.0, 1.0]
    assert constant_range([np.array([1.0, 2.0])]) is None
    assert constant_range([np.array([np.nan, 5.0, np.inf, 5.0])]) == [2.5, 7.5]


def test_layout_gets_constant_range_and_toggle_keeps_one_per_axis_type():
    layout = {"yaxis": {"type": "linear"}}
    set_value_ranges(layout, [np.full(10, 3e-4)], toggle=True)
    assert layout["yaxis"]["range"][0] < 3e-4 < layout["yaxis"]["range"][1]
    buttons = layout["updatemenus"][0]["buttons"]
    assert buttons[1]["args"][0]["yaxis.range"][0] < math.log10(3e-4)


def test_one_diverging_run_is_clipped_and_named():
    steps = np.arange(100)
    sane = [1 / (1 + 0.05 * steps) + 0.01 * i for i in range(4)]
    diverged = np.where(steps > 60, 1e30, 1 / (1 + 0.05 * steps))
    result = bulk_range([*sane[:2], diverged, *sane[2:]])
    assert result.clipped == (2,)
    low, high = result.range
    assert low < min(v.min() for v in sane)
    assert max(v.max() for v in sane) < high < 2
    assert result.clipped_max == 1e30


def test_no_clipping_when_runs_agree_or_most_diverge():
    steps = np.arange(50)
    assert bulk_range([1 / (1 + steps * k) for k in (0.1, 0.2, 0.3)]).range is None
    assert bulk_range([np.ones(5), np.full(5, 1e30), np.full(5, 2e30)]).range is None
    assert bulk_range([np.ones(5), np.full(5, 1e30)]).range is None  # two runs: who is wrong?
    spread = [np.full(5, 10.0**k) for k in range(-5, 3)]  # learning rates over decades
    assert bulk_range(spread).range is None
    assert choose_log_axis(spread)


def test_log_axis_when_data_span_decades_unless_the_finding_is_a_rise():
    spanning = [np.logspace(2, -3, 100)]
    assert choose_log_axis(spanning)
    assert not choose_log_axis([np.linspace(1, 0.5, 100)])
    warmup = [np.concatenate([[0.0], np.logspace(-6, -2, 99)])]
    assert choose_log_axis(warmup), "one zero at the start of a warm-up does not forbid log"
    assert not choose_log_axis([np.concatenate([np.zeros(50), np.logspace(-6, -2, 50)])])
    assert not choose_log_axis([np.array([-1.0, 1e-5, 1e3])])
    rise = _finding("L101", "overfitting", best_step=10, best_value=0.001)
    assert not choose_log_axis(spanning, [rise])
    explode = _finding("G201", "exploding-gradients")
    assert choose_log_axis(spanning, [explode])


def test_best_marker_agrees_with_the_finding_that_measured_it():
    curve = Curve(
        tag="val",
        steps=np.arange(10),
        values=np.array([5, 4, 3, 2.0, 2.5, 1.9, 3, 4, 5, 6]),
        wall_times=np.zeros(10),
    )
    assert best_marker(curve).step == 5  # the raw minimum
    smoothed_best = dataclasses.replace(
        _finding("L101", "overfitting"),
        marks=(Mark("point", "val", step=4, value=2.2, label="best"),),
    )
    marker = best_marker(curve, [smoothed_best])
    assert (marker.step, marker.value) == (4, 2.2)
    # Evidence keys say nothing to the chart: only a "best" point mark on the curve's tag does.
    other_tag = dataclasses.replace(
        smoothed_best, marks=(Mark("point", "train", step=4, value=2.2, label="best"),)
    )
    assert best_marker(curve, [other_tag]).step == 5
    assert best_marker(curve, [_finding("L101", "overfitting", best_step=4)]).step == 5


def test_close_marker_labels_are_stacked_not_overlapped():
    layout = {
        "margin": {"t": 34},
        "annotations": [
            {"x": 100, "xref": "x", "text": "best"},
            {"x": 102, "xref": "x", "text": "L101"},
            {"x": 900, "xref": "x", "text": "NaN"},
            {"x": 0.5, "xref": "paper", "text": "note"},
        ],
    }
    stagger_labels(layout, 1000)
    shifts = {a["text"]: a.get("yshift") for a in layout["annotations"]}
    assert shifts["best"] == 0
    assert shifts["L101"] == 13
    assert shifts["NaN"] == 0
    assert shifts["note"] is None
    assert layout["margin"]["t"] > 34


def test_colours_stay_distinct_beyond_ten_runs():
    for count in (3, 10, 11, 40):
        colors = run_colors(count)
        assert len(colors) == count
        assert len(set(colors)) == count
    dashes = run_dashes(25)
    assert dashes[0] == "solid"
    assert dashes[15] != dashes[5]
    assert set(run_dashes(8)) == {"solid"}


def test_loss_chart_stays_linear_when_its_finding_is_a_rise():
    from tbreport.report.charts import ChartBuilder
    from tbreport.report.collect import RunData

    steps = np.arange(200)
    train = np.logspace(0, -8, 200)  # spans eight decades
    val = np.where(steps < 100, 1 - steps / 200, 0.5 * (1 + 0.23 * (steps - 100) / 100))
    walls = 1_700_000_000.0 + steps
    run = RunData(run="r", anchor="run-0")
    run.scalars = {
        "train": Curve("train", steps, train, walls),
        "val": Curve("val", steps, val, walls),
    }
    builder = ChartBuilder()
    plain = builder.scalar_chart(run, ["train", "val"], title="Loss", axis_toggle=True)
    assert plain.figure["layout"]["yaxis"]["type"] == "log"
    rise = _finding("L101", "overfitting", best_step=100, best_value=0.5)
    chart = builder.scalar_chart(
        run, ["train", "val"], title="Loss", axis_toggle=True, findings=[rise]
    )
    assert chart.figure["layout"]["yaxis"]["type"] == "linear"
    assert chart.time is not None
    assert chart.payload()["time"]["base"] == 1_700_000_000.0


def test_marks_are_drawn_on_the_charts_of_their_tags_only():
    from tbreport.report.charts import ChartBuilder

    finding = dataclasses.replace(
        _finding("L101", "overfitting"),
        step=10,
        marks=(
            Mark("point", "val", step=10, value=0.5, label="best"),
            Mark("band", "val", step=10, step_end=40),
            Mark("vline", "val", step=25, label="spike"),
            Mark("hline", "val", value=0.7, label="level"),
            Mark("band", "train", step=0, step_end=5),
        ),
    )

    def draw(**options):
        layout, data = {"shapes": [], "annotations": []}, []
        ChartBuilder.add_marks(layout, findings=[finding], data=data, span=(0, 40), **options)
        rects = sorted((s["x0"], s["x1"]) for s in layout["shapes"] if s["type"] == "rect")
        lines = sorted(s["x0"] for s in layout["shapes"] if s["type"] == "line")
        return rects, lines, data

    rects, lines, traces = draw(tags={"val"})
    # the finding's step and the spike
    assert rects == [(10, 40)]
    assert lines == [10, 25]
    assert [(t["mode"], t["x"], t["y"]) for t in traces] == [
        ("markers", [10], [0.5]),
        ("lines", [0, 40], [0.7, 0.7]),
    ]
    rects, lines, traces = draw(tags={"train"})
    assert rects == [(0, 5)]
    assert lines == [10]
    assert traces == []
    # A chart hosting findings about tags it does not show marks their steps, never values.
    rects, lines, traces = draw(tags=None)
    assert rects == [(0, 5), (10, 40)]
    assert lines == [10, 25]
    assert traces == []
