"""The HTML report and the CSV bundle, built from real event files (no browser needed)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from click.testing import CliRunner
from test_report_support import (
    FORMULA_TAG,
    HOSTILE_NESTED_RUN,
    HOSTILE_RUN,
    HOSTILE_TAGS,
    HOSTILE_TEXT,
    make_demo_logdir,
    make_hostile_logdir,
    make_long_logdir,
)

import tbreport
from tbreport.cli import cli
from tbreport.diagnosis import diagnose
from tbreport.report import render_report
from tbreport.report.collect import collect
from tbreport.report.summary import summarize

PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    logdir = make_demo_logdir(tmp_path_factory.mktemp("demo") / "runs")
    result = tbreport.read(logdir)
    return logdir, result, diagnose(result)


@pytest.fixture(scope="module")
def demo_html(demo):
    logdir, result, diagnosis = demo
    return render_report(result, diagnosis, logdir=str(logdir))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    logdir = make_hostile_logdir(tmp_path_factory.mktemp("hostile") / "runs")
    result = tbreport.read(logdir)
    return logdir, result, diagnose(result)


class _Collector(HTMLParser):
    """Every start tag with its attributes, and the text of script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script":
            self._in_script = attributes
            self.scripts.append((attributes, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attributes, text = self.scripts[-1]
            self.scripts[-1] = (attributes, text + data)


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


# -- summary -----------------------------------------------------------------------------------


def test_summary_has_one_row_per_logical_run_with_best_and_final_losses(demo):
    _, result, diagnosis = demo
    summary = summarize(collect(result, diagnosis).runs).set_index("run")
    assert set(summary.index) == {"lstm_basic", "lstm_overfit", "gru_nan", "keras_mlp"}
    scalars = result.logical_scalars()
    val = scalars[(scalars["run"] == "lstm_overfit") & (scalars["tag"] == "Loss/validation")]
    best = val.loc[val["value"].idxmin()]
    assert summary.loc["lstm_overfit", "best_val_loss"] == pytest.approx(best["value"])
    assert summary.loc["lstm_overfit", "best_val_step"] == best["step"]
    assert summary.loc["lstm_overfit", "final_val_loss"] == pytest.approx(val["value"].iloc[-1])
    assert pd.isna(summary.loc["gru_nan", "final_train_loss"]), "a NaN end must stay visible"
    assert summary.loc["keras_mlp", "val_loss_tag"] == "validation/epoch_loss"
    assert summary.loc["lstm_basic", "hparam:hidden"] == 64
    assert summary.loc["lstm_basic", "duration_s"] == pytest.approx(2.0 * 119)
    statuses = {r.run: r.status for r in diagnosis.runs}
    assert summary["status"].to_dict() == statuses


# -- HTML --------------------------------------------------------------------------------------


def test_report_is_marked_and_inlines_plotly_exactly_once(demo_html):
    assert '<meta name="generator" content="tbreport' in demo_html[:1000]
    assert len(PLOTLY_BANNER.findall(demo_html)) == 1
    remote = [
        (tag, attrs)
        for tag, attrs in _parse(demo_html).tags
        if any(re.match(r"\s*(?:https?:)?//", attrs.get(k) or "") for k in ("src", "href"))
    ]
    assert not remote, f"an inline report must not load anything from the network: {remote}"


def test_cdn_report_loads_plotly_from_the_cdn_and_is_small(demo, demo_html):
    logdir, result, diagnosis = demo
    html = render_report(result, diagnosis, logdir=str(logdir), plotly="cdn")
    assert not PLOTLY_BANNER.search(html)
    scripts = [a for a, _ in _parse(html).scripts if a.get("src")]
    assert len(scripts) == 1
    assert scripts[0]["src"].startswith("https://cdn.plot.ly/plotly-")
    assert scripts[0]["integrity"].startswith("sha256-")
    assert len(html) < len(demo_html) / 3


def test_one_section_per_run_and_every_chart_has_valid_json(demo, demo_html):
    _, _result, diagnosis = demo
    parsed = _parse(demo_html)
    sections = [
        a for t, a in parsed.tags if t == "section" and "run" in (a.get("class") or "").split()
    ]
    assert sorted(a["data-run"] for a in sections) == sorted(r.run for r in diagnosis.runs)
    plots = [a["data-chart"] for t, a in parsed.tags if t == "div" and a.get("data-chart")]
    data = {a["id"]: text for a, text in parsed.scripts if a.get("type") == "application/json"}
    assert plots, "every chart div needs exactly its JSON"
    assert set(plots) == set(data), "every chart div needs exactly its JSON"
    for chart_id in plots:
        payload = json.loads(data[chart_id])
        assert payload["figure"]["data"], chart_id
        for entry in payload["smooth"]:
            assert 0 <= entry["target"] < len(payload["figure"]["data"])


def test_findings_table_lists_every_finding_with_a_link_to_its_run(demo, demo_html):
    _, _, diagnosis = demo
    assert len(diagnosis) >= 2, "the demo logdir should produce findings"
    parsed = _parse(demo_html)
    anchors = {
        a["data-run"]: a["id"] for t, a in parsed.tags if t == "section" and a.get("data-run")
    }
    rows = [a for t, a in parsed.tags if t == "tr" and "finding" in (a.get("class") or "")]
    assert sorted(a["data-run"] for a in rows) == sorted(f.run for f in diagnosis)
    for finding in diagnosis:
        assert f'href="#{anchors[finding.run]}"' in demo_html
        assert finding.code in demo_html


def test_loss_chart_marks_best_step_and_findings(demo, demo_html):
    _, _, diagnosis = demo
    overfit = next(f for f in diagnosis if f.run == "lstm_overfit" and f.name == "overfitting")
    parsed = _parse(demo_html)
    section_charts = []
    in_section = False
    for tag, attrs in parsed.tags:
        if tag == "section" and attrs.get("data-run") is not None:
            in_section = attrs["data-run"] == "lstm_overfit"
        if in_section and tag == "div" and attrs.get("data-chart"):
            section_charts.append(attrs["data-chart"])
    data = {
        a["id"]: json.loads(t) for a, t in parsed.scripts if a.get("type") == "application/json"
    }
    loss = data[section_charts[0]]["figure"]["layout"]
    labels = {(a["x"], a["text"]) for a in loss["annotations"] if a.get("xref") == "x"}
    assert any(x == overfit.step and overfit.code in text for x, text in labels), labels
    assert any("best" in text for _, text in labels)


def test_long_curves_are_thinned_for_display_and_say_so(tmp_path):
    logdir = make_long_logdir(tmp_path / "runs", steps=9000)
    result = tbreport.read(logdir)
    html = render_report(result, diagnose(result), max_points=1000)
    assert "showing" in html
    assert "of 18,000 points" in html
    data = [json.loads(t) for a, t in _parse(html).scripts if a.get("type") == "application/json"]
    loss = next(
        d for d in data if any("train_loss" in str(tr.get("name")) for tr in d["figure"]["data"])
    )
    thinned = [e for e in loss["smooth"] if "x" in e]
    assert thinned, "thinned curves carry their own smoothing input"


def test_hostile_names_are_escaped_everywhere(hostile):
    logdir, result, diagnosis = hostile
    html = render_report(result, diagnosis, logdir=str(logdir))
    parsed = _parse(html)
    # No element or attribute came from the data: only our own tags, no event handlers.
    for tag, attrs in parsed.tags:
        assert tag not in ("img", "svg", "b"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    # Our scripts only: plotly config, plotly.js, the report's JS, and the JSON blocks.
    executable = [a for a, _ in parsed.scripts if a.get("type") != "application/json"]
    assert len(executable) == 3, executable
    for attrs, text in parsed.scripts:
        if attrs.get("type") == "application/json":
            json.loads(text)
            assert "<" not in text
            assert "\u2028" not in text
    # The data is still there, as text.
    sections = {a["data-run"] for t, a in parsed.tags if t == "section" and a.get("data-run")}
    assert {HOSTILE_RUN, HOSTILE_NESTED_RUN} <= sections
    assert "&lt;script&gt;window.__pwned=3&lt;/script&gt;" in html
    assert "window.__pwned=7" in html
    assert HOSTILE_TEXT not in html
    assert "<script>window.__pwned" not in html


# -- command line ------------------------------------------------------------------------------


def test_cli_writes_report_and_refuses_to_clobber_foreign_file(demo, tmp_path):
    logdir = str(demo[0])
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["report", logdir, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1_000_000
    assert "wrote" in result.output
    # Rewriting our own report is fine.
    assert runner.invoke(cli, ["report", logdir, "-o", str(out)]).exit_code == 0
    foreign = tmp_path / "index.html"
    foreign.write_text("<html>keep me</html>")
    result = runner.invoke(cli, ["report", logdir, "-o", str(foreign)])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert foreign.read_text() == "<html>keep me</html>"
    result = runner.invoke(
        cli, ["report", logdir, "-o", str(foreign), "--force", "--plotly", "cdn"]
    )
    assert result.exit_code == 0, result.output
    assert "cdn.plot.ly" in foreign.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "report.html"]


def test_cli_reports_a_missing_logdir_as_usage_error(tmp_path):
    result = CliRunner().invoke(
        cli, ["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_csv_bundle_has_summary_findings_and_every_point(demo, tmp_path):
    logdir, result, diagnosis = demo
    out = tmp_path / "bundle"
    res = CliRunner().invoke(cli, ["report", str(logdir), "--format", "csv", "-o", str(out)])
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"summary.csv", "findings.csv", "scalars.csv", "histograms.csv", "hparams.csv"} <= names
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["run"]) == sorted(r.run for r in diagnosis.runs)
    assert len(pd.read_csv(out / "findings.csv")) == len(diagnosis)
    assert len(pd.read_csv(out / "scalars.csv")) == len(result.scalars)
    # A second run into the same directory is fine; a foreign directory is refused.
    assert (
        CliRunner().invoke(cli, ["report", str(logdir), "-f", "csv", "-o", str(out)]).exit_code == 0
    )
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    res = CliRunner().invoke(cli, ["report", str(logdir), "-f", "csv", "-o", str(foreign)])
    assert res.exit_code == 2
    assert "notes.txt" in res.output


def test_csv_bundle_neutralises_formulas_from_event_files(hostile, tmp_path):
    logdir = hostile[0]
    out = tmp_path / "bundle"
    res = CliRunner().invoke(cli, ["report", str(logdir), "--format", "csv", "-o", str(out)])
    assert res.exit_code == 0, res.output
    scalars = pd.read_csv(out / "scalars.csv")
    assert "'" + FORMULA_TAG in set(scalars["tag"])
    assert FORMULA_TAG not in set(scalars["tag"])
    assert pd.api.types.is_float_dtype(scalars["value"])
    for path in out.glob("*.csv"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not line.startswith(("=", "+", "@")), (path.name, line)
    summary = pd.read_csv(out / "summary.csv")
    assert any(str(c).startswith("'hparam:") or c.startswith("hparam:") for c in summary.columns)
    assert HOSTILE_TAGS[0] in set(scalars["tag"])  # harmless for CSV: not a formula
