"""The report leads with what is wrong: overview order, findings column, hparam columns, advice."""

from __future__ import annotations

import re

import pytest
from test_report_support import make_demo_logdir, make_sweep_logdir

import tbreport
from tbreport.model import Finding, Severity
from tbreport.report import render_report
from tbreport.report.collect import RunData, collect
from tbreport.report.html import advice_groups, breakable, overview_order
from tbreport.report.summary import choose_hparams, summarize, worst_finding


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    logdir = make_sweep_logdir(tmp_path_factory.mktemp("sweep") / "runs")
    read = tbreport.read(logdir)
    diagnosis = tbreport.diagnose(read)
    return read, diagnosis, render_report(read, diagnosis, logdir=str(logdir))


def _finding(run: str, severity: str, strength: float | None, code: str = "L101") -> Finding:
    return Finding(
        run=run,
        code=code,
        name="overfitting",
        severity=Severity(severity),
        message=f"{run} {severity}",
        strength=strength,
        problem="overfitting",
        advice="Stop earlier.",
    )


def test_worst_finding_is_most_severe_then_strongest():
    findings = [
        _finding("a", "warning", 5.0),
        _finding("a", "error", 1.2),
        _finding("a", "error", 3.0),
        _finding("a", "error", None),
    ]
    assert worst_finding(findings) is findings[2]
    assert worst_finding([]) is None


def test_overview_order_is_status_then_strength():
    runs = [
        RunData(run="healthy", anchor="run-0", status="healthy"),
        RunData(
            run="weak",
            anchor="run-1",
            status="warning",
            findings=[_finding("weak", "warning", 1.1)],
        ),
        RunData(
            run="strong",
            anchor="run-2",
            status="warning",
            findings=[_finding("strong", "warning", 9.0)],
        ),
        RunData(
            run="broken",
            anchor="run-3",
            status="error",
            findings=[_finding("broken", "error", None)],
        ),
        RunData(run="unknown", anchor="run-4", status="not-assessed"),
    ]
    assert [runs[i].run for i in overview_order(runs)] == [
        "broken",
        "strong",
        "weak",
        "unknown",
        "healthy",
    ]


def test_hparam_columns_drop_constants_and_paths_and_lead_with_lr_batch_model(sweep):
    read, diagnosis, _ = sweep
    data = collect(read, diagnosis)
    chosen, hidden = choose_hparams(data.runs, limit=12)
    # optimizer and epochs are constants, output_dir is a path; batch_size is missing in one run
    # and still counts as varying only by its present values (8, 16).
    assert chosen == ["lr", "batch_size", "model"]
    assert hidden == 3


def test_missing_value_does_not_make_a_constant_vary():
    runs = [
        RunData(run="a", anchor="run-0", hparams={"dropout": 0.1, "lr": 1e-3}),
        RunData(run="b", anchor="run-1", hparams={"lr": 1e-2}),
        RunData(run="c", anchor="run-2", hparams={"dropout": 0.1, "lr": 1e-2, "run_name": "c"}),
    ]
    assert choose_hparams(runs, limit=12) == (["lr"], 2)


def test_whole_number_hparams_stay_integers(sweep):
    read, diagnosis, html = sweep
    data = collect(read, diagnosis)
    sizes = {r.run: r.hparams.get("batch_size") for r in data.runs}
    assert sizes == {
        "sweep/healthy": 8,
        "sweep/overfit": 16,
        "sweep/nan": 8,
        "sweep/diverged": None,
    }
    assert all(type(v) is int for v in sizes.values() if v is not None)
    assert type(data.by_name()["sweep/healthy"].hparams["epochs"]) is int
    cells = re.findall(r'<td data-sort="([^"]*)" class="hparam">([^<]*)</td>', html)
    assert ("8", "8") in cells
    assert not any(text == "8.0" for _, text in cells)


def test_overview_has_findings_column_in_severity_order(sweep):
    read, diagnosis, html = sweep
    table = html[
        html.index('id="runs-table"') : html.index("</table>", html.index('id="runs-table"'))
    ]
    assert "what is wrong" in table
    order = re.findall(r'<tr data-run="([^"]+)"', table)
    # The error first, the two warnings (overfitting; the loss gone to 1e30) by strength, then
    # the healthy run.
    assert order[0] == "sweep/nan", order
    assert order[-1] == "sweep/healthy", order
    assert set(order[1:3]) == {"sweep/overfit", "sweep/diverged"}, order
    strengths = [by.strength for by in diagnosis if by.run in order[1:3]]
    assert all(s is not None for s in strengths), strengths
    by_run = {f.run: f for f in diagnosis}
    nan = by_run["sweep/nan"]
    assert f"<code>{nan.code} {nan.name}</code>" in table
    assert nan.message.replace("'", "&#39;").replace('"', "&#34;") in table
    summary = summarize(collect(read, diagnosis).runs)
    assert {"finding", "finding_message", "finding_strength"} <= set(summary.columns)


def test_advice_is_said_once_per_problem_with_its_runs(tmp_path):
    findings = [_finding(f"run{i}", "warning", float(i)) for i in range(40)]
    findings.append(
        _finding("x", "error", None, code="L104").__class__(
            run="x",
            code="L104",
            name="non-finite-loss",
            severity=Severity.ERROR,
            message="NaN",
            problem="non-finite-loss",
            advice="Lower the learning rate.",
        )
    )
    groups = advice_groups(findings, {f"run{i}": f"run-{i}" for i in range(40)})
    assert [g.problem for g in groups] == ["non-finite-loss", "overfitting"]
    overfitting = groups[1]
    assert overfitting.advice == ["Stop earlier."]
    assert len(overfitting.runs) == 40
    assert overfitting.runs[0] == ("run0", "run-0")
    assert [g.anchor for g in groups] == ["advice-0", "advice-1"]


def test_report_states_each_advice_once_and_findings_are_not_in_a_scroll_box(tmp_path):
    logdir = make_demo_logdir(tmp_path / "runs")
    read = tbreport.read(logdir)
    diagnosis = tbreport.diagnose(read)
    html = render_report(read, diagnosis)
    for finding in diagnosis:
        if finding.advice:
            escaped = finding.advice.replace("'", "&#39;").replace('"', "&#34;")
            assert html.count(escaped) == 1, finding.advice
    assert (
        '<div class="table-wrap unbounded">\n  <table class="sortable" id="findings-table">' in html
    )
    assert 'id="advice-0"' in html


def test_run_names_wrap_only_between_words():
    seg = '<span class="seg">{}</span>'.format
    assert str(breakable("sweep/lr_0.1-x/seed-1")) == "<wbr>".join(
        [seg("sweep/"), seg("lr_0.1-x/"), seg("seed-1")]
    )
    assert str(breakable("<b>/x")) == seg("&lt;b&gt;/") + "<wbr>" + seg("x")
