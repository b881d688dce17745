"""The notebook API: HTML and text reprs, the wide frame, selection, findings as a frame."""

from __future__ import annotations

import types
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from test_report_support import HOSTILE_RUN, make_demo_logdir, make_hostile_logdir

import tbreport
from tbreport.report.notebook import (
    diagnosis_frame,
    diagnosis_html,
    diagnosis_text,
    register_notebook_display,
)
from tbreport.testing import file_version_event, scalar_event, write_events


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    logdir = make_demo_logdir(tmp_path_factory.mktemp("nb") / "runs")
    read = tbreport.read(logdir)
    return read, tbreport.diagnose(read)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    return parser


def test_read_result_renders_a_compact_table(demo):
    read, _ = demo
    page = _parse(read._repr_html_())
    assert page.tags.count("table") == 1
    assert page.tags.count("tr") == len(read.runs) + 1
    text = " ".join(page.text)
    assert "lstm_overfit" in text
    assert "keras_mlp/train" in text
    assert repr(read).startswith("ReadResult(logdir=")


def test_read_result_html_escapes_run_names(tmp_path):
    read = tbreport.read(make_hostile_logdir(tmp_path / "runs"))
    markup = read._repr_html_()
    assert "<img" not in markup
    assert "<script" not in markup
    assert HOSTILE_RUN in " ".join(_parse(markup).text)


def test_diagnosis_and_finding_render_with_status_badges(demo):
    _, diagnosis = demo
    markup = diagnosis_html(diagnosis)
    page = _parse(markup)
    assert page.tags.count("tr") == len(diagnosis.runs) + 1
    text = " ".join(page.text)
    for status in {r.status for r in diagnosis.runs}:
        assert status in text
    first_row = markup.split("<tbody>")[1].split("</tr>")[0]
    assert "error" in first_row, "the worst run comes first"
    finding = diagnosis[0]
    assert finding.message in " ".join(_parse(finding._repr_html_()).text)
    assert repr(finding).startswith(f"Finding({finding.code} {finding.name}, ")
    assert diagnosis_text(diagnosis).splitlines()[0].startswith("Diagnosis: 4 runs, ")


def test_ipython_shows_a_diagnosis_as_html(demo):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    _, diagnosis = demo
    shell = InteractiveShell.instance()
    try:
        assert register_notebook_display()
        data, _ = shell.display_formatter.format(diagnosis)
        assert "<table" in data["text/html"]
        assert data["text/plain"].startswith("Diagnosis: ")
    finally:
        InteractiveShell.clear_instance()


def test_diagnosis_frame_keeps_evidence_as_dicts(demo):
    _, diagnosis = demo
    frame = diagnosis_frame(diagnosis)
    assert len(frame) == len(diagnosis)
    assert all(isinstance(e, dict) for e in frame["evidence"])
    assert frame["evidence"].iloc[0] == dict(diagnosis[0].evidence)
    assert list(frame.columns) == list(diagnosis.to_frame().columns)


def test_wide_frame_holds_exactly_the_long_frame(demo):
    read, _ = demo
    wide = read.scalars_wide()
    assert {"run", "step"} <= set(wide.columns)
    long_again = wide.melt(id_vars=["run", "step"], var_name="tag", value_name="value").dropna(
        subset=["value"]
    )
    key = ["run", "tag", "step"]
    got = long_again.astype({"run": str, "tag": str}).sort_values(key).reset_index(drop=True)
    expected = (
        read.scalars[[*key, "value"]]
        .dropna(subset=["value"])
        .astype({"run": str, "tag": str})
        .sort_values(key)
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got[[*key, "value"]], expected, check_dtype=False)


def test_wide_frame_keeps_duplicate_steps_on_extra_rows(tmp_path):
    events = [file_version_event(wall_time=1.0)]
    events += [scalar_event("loss", v, step=1, wall_time=2.0) for v in (1.0, 2.0)]
    write_events(tmp_path / "runs" / "a" / "events.out.tfevents.1.host", events)
    wide = tbreport.read(tmp_path / "runs").scalars_wide()
    assert list(wide["occurrence"]) == [0, 1]
    assert list(wide["loss"]) == [1.0, 2.0]


def test_select_by_runs_and_case_insensitive_tags(demo):
    read, _ = demo
    chosen = read.select(runs="^keras|lstm_b", tags="LOSS/")
    assert set(chosen.runs["logical_run"].astype(str)) == {"keras_mlp", "lstm_basic"}
    assert set(chosen.scalars["tag"].astype(str)) == {"Loss/train", "Loss/validation"}
    assert set(chosen.hparams["run"].astype(str)) == {"lstm_basic"}
    assert list(chosen.scalars["run"].cat.categories) == ["lstm_basic"]
    assert set(chosen.logical_scalars()["run"].astype(str)) == {"lstm_basic"}
    exact = read.select(runs=["gru_nan"])
    assert set(exact.scalars["run"].astype(str)) == {"gru_nan"}
    assert len(read.scalars) > len(chosen.scalars), "the original is unchanged"
    assert np.isin(["keras_mlp/train"], read.runs["run"].astype(str)).all()
    with pytest.raises(ValueError, match="invalid runs pattern"):
        read.select(runs="([")


def test_top_level_namespace_is_the_api():
    public = {
        name
        for name in dir(tbreport)
        if not name.startswith("_") and not isinstance(getattr(tbreport, name), types.ModuleType)
    }
    assert public == set(tbreport.__all__) - {"__version__", "write_html"}
    assert "write_html" in tbreport.__all__
    from tbreport.report import write_html

    assert tbreport.write_html is write_html
    assert tbreport.write_html.__doc__


def test_write_html_from_the_top_level(demo, tmp_path):
    read, diagnosis = demo
    out = tbreport.write_html(read, diagnosis, tmp_path / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
