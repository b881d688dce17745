"""The HTML report in a real headless browser (Debian's chromium, driven by playwright).

The network is blocked for every page: only file:, data:, blob: and about: URLs load, and every
other request is recorded so the tests can assert that none was attempted.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_report_support import (
    HOSTILE_NESTED_RUN,
    HOSTILE_RUN,
    HOSTILE_TAGS,
    make_demo_logdir,
    make_hostile_logdir,
    make_sweep_logdir,
)

import tbreport
from tbreport.cli import cli
from tbreport.diagnosis import diagnose
from tbreport.report.smoothing import ema_smooth

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Page:
    """A report opened with the network blocked, collecting errors and blocked requests."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        self.page.on("dialog", lambda dialog: (self.errors.append("dialog"), dialog.dismiss()))
        self.page.route("**/*", self._route)
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def render_all(self) -> None:
        self.page.evaluate("window.tbreport.renderAll()")
        self.wait_until(
            "() => Array.from(document.querySelectorAll('div.plot[data-chart]'))"
            ".every(d => d.dataset.state === 'failed' || d.classList.contains('js-plotly-plot'))"
        )

    def wait_until(self, predicate: str, arg=None) -> None:
        """Wait (polling every animation frame, 10 s at most) until the JavaScript function
        ``predicate`` returns something true in the page."""
        self.page.wait_for_function(predicate, arg=arg, timeout=10_000)

    def settle(self) -> None:
        """Wait until what the page scheduled for its next animation frames has run (the report
        runs its debounced input handlers, and browsers their toggle events, by then)."""
        self.page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-browser")
    logdir = make_demo_logdir(root / "runs")
    out = root / "report.html"
    result = CliRunner().invoke(cli, ["report", str(logdir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    read = tbreport.read(logdir)
    return out, diagnose(read)


def _check_report(browser, path: Path, diagnosis) -> None:
    page = Page(browser, path)
    try:
        sections = page.js(
            "Array.from(document.querySelectorAll('section.run')).map(s => s.dataset.run)"
        )
        assert sorted(sections) == sorted(r.run for r in diagnosis.runs)
        rows = page.js(
            "Array.from(document.querySelectorAll('#findings-table tbody tr')).map(r => "
            "[r.dataset.run, r.cells[3].innerText.split(' ')[0], r.cells[4].innerText])"
        )
        expected = sorted((f.run, f.code, f.message) for f in diagnosis)
        assert sorted(tuple(r) for r in rows) == expected
        page.render_all()
        charts = page.js("document.querySelectorAll('div.plot[data-chart]').length")
        drawn = page.js("document.querySelectorAll('div.plot.js-plotly-plot').length")
        assert charts > 0, (drawn, charts)
        assert drawn == charts, (drawn, charts)
        assert page.js("document.querySelectorAll('div.plot[data-state=failed]').length") == 0
        assert page.errors == [], page.errors
        assert page.blocked == [], f"the inline report tried the network: {page.blocked}"
    finally:
        page.close()


def test_demo_report_works_offline_with_one_section_per_run(browser, demo_report):
    path, diagnosis = demo_report
    _check_report(browser, path, diagnosis)


def test_sample_runs_report_works_offline(browser, sample_runs, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(sample_runs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    diagnosis = diagnose(tbreport.read(sample_runs))
    assert len(diagnosis) > 0, "the sample runs are meant to show problems"
    _check_report(browser, out, diagnosis)


def test_charts_draw_lazily_when_scrolled_into_view(browser, demo_report):
    page = Page(browser, demo_report[0])
    try:
        # The charts in view are drawn as soon as the page reports what is visible ...
        page.wait_until("() => window.tbreport.renderedCount() > 0")
        page.settle()
        total = page.js("document.querySelectorAll('div.plot[data-chart]').length")
        before = page.js("window.tbreport.renderedCount()")
        assert before < total, "charts far below the fold should wait until scrolled to"
        # ... and the others when they are scrolled to.
        page.js("document.querySelector('section.run:last-of-type').scrollIntoView()")
        page.wait_until("(before) => window.tbreport.renderedCount() > before", before)
    finally:
        page.close()


def test_browser_smoothing_matches_python(browser, demo_report):
    rng = np.random.default_rng(3)
    values = rng.normal(size=200).cumsum()
    values[[5, 50]] = np.nan
    values[80] = np.inf
    counts = rng.integers(1, 6, size=200)
    page = Page(browser, demo_report[0])
    try:
        for weight in (0.0, 0.6, 0.95):
            for use_counts in (False, True):
                got = page.js(
                    "([v, n, w]) => Array.from(window.tbreport.smoothSeries("
                    "v.map(x => x === null ? NaN : x), n, w))"
                    ".map(x => isFinite(x) ? x : String(x))",
                    [
                        [
                            None if math.isnan(v) else (1e308 * 10 if math.isinf(v) else v)
                            for v in values.tolist()
                        ],
                        counts.tolist() if use_counts else None,
                        weight,
                    ],
                )
                expected = ema_smooth(values, weight=weight, counts=counts if use_counts else None)
                for g, e in zip(got, expected, strict=True):
                    if math.isfinite(e):
                        assert g == pytest.approx(e, rel=1e-9, abs=1e-12)
                    else:
                        assert str(g) in ("NaN", "Infinity"), (g, e)
        constant = page.js("Array.from(window.tbreport.smoothSeries([2, 2, 2], null, 0.9))")
        assert constant == [2, 2, 2]
    finally:
        page.close()


def test_slider_resmooths_and_filter_hides_runs(browser, demo_report):
    page = Page(browser, demo_report[0])
    try:
        first_run = page.js("document.querySelector('section.run').id")
        page.js(f"document.getElementById('{first_run}').scrollIntoView()")
        selector = f"#{first_run} div.plot[data-state=rendered]"
        page.page.wait_for_selector(selector, state="attached")
        # The smoothed training loss is trace 1 (trace 0 is the raw line).
        read_smoothed = f"Array.from(document.querySelector('{selector}').data[1].y).slice(0, 20)"
        before = page.js(read_smoothed)
        page.js(
            "() => { const s = document.getElementById('smoothing'); s.value = '0';"
            " s.dispatchEvent(new Event('input')); }"
        )
        # The slider's handler shows the weight, then resmooths the charts in view.
        page.wait_until("() => document.getElementById('smoothing-value').textContent === '0.000'")
        after = page.js(read_smoothed)
        raw = page.js(f"Array.from(document.querySelector('{selector}').data[0].y).slice(0, 20)")
        assert after != before
        assert after == pytest.approx(raw, rel=1e-6), "weight 0 must show the raw curve"
        assert page.js("document.getElementById('smoothing-value').textContent") == "0.000"

        page.page.fill("#run-filter", "^lstm_")
        page.wait_until("() => document.getElementById('filter-count').textContent !== ''")
        visible = page.js(
            "Array.from(document.querySelectorAll('section.run'))"
            ".filter(s => s.offsetParent !== null).map(s => s.dataset.run)"
        )
        assert sorted(visible) == ["lstm_basic", "lstm_overfit"]
        rows = page.js(
            "Array.from(document.querySelectorAll('#runs-table tbody tr'))"
            ".filter(r => r.offsetParent !== null).length"
        )
        assert rows == 2
        page.page.fill("#run-filter", "([")
        page.wait_until("() => document.getElementById('run-filter').classList.contains('invalid')")
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_overview_table_sorts_numerically(browser, demo_report):
    page = Page(browser, demo_report[0])
    try:
        page.page.click("#runs-table thead th:nth-child(4)")  # best val loss
        keys = page.js(
            "Array.from(document.querySelectorAll('#runs-table tbody tr'))"
            ".map(r => r.cells[3].dataset.sort)"
        )
        numbers = [float(k) for k in keys if k]
        assert numbers == sorted(numbers)
        assert len(numbers) == 4
        page.page.click("#runs-table thead th:nth-child(4)")
        keys = page.js(
            "Array.from(document.querySelectorAll('#runs-table tbody tr'))"
            ".map(r => r.cells[3].dataset.sort)"
        )
        assert [float(k) for k in keys if k] == sorted(numbers, reverse=True)
    finally:
        page.close()


def test_injected_markup_never_runs(browser, tmp_path):
    logdir = make_hostile_logdir(tmp_path / "runs")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(logdir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = Page(browser, out)
    try:
        page.render_all()
        # Hover every chart so names, hover texts and annotations are drawn too.
        for plot in page.page.query_selector_all("div.plot.js-plotly-plot"):
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            if box:
                page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.js("document.querySelectorAll('details').forEach(d => d.open = true)")
        # Nothing may run: let every handler the hovering and opening queued have its turn.
        page.settle()
        assert page.js("window.__pwned") is None, "injected markup ran"
        assert page.js("document.querySelectorAll('img, b[onmouseover]').length") == 0
        text = page.js("document.body.innerText")
        assert HOSTILE_RUN in text, "names must show as text"
        assert HOSTILE_NESTED_RUN in text, "names must show as text"
        svg_text = page.js(
            "Array.from(document.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')"
        )
        assert HOSTILE_RUN in svg_text, "run names must show literally in the comparison legend"
        assert HOSTILE_NESTED_RUN in svg_text, (
            "run names must show literally in the comparison legend"
        )
        captions = page.js(
            "Array.from(document.querySelectorAll('figcaption')).map(f => f.textContent)"
        )
        assert set(HOSTILE_TAGS) <= set(captions), captions
        assert page.errors == [], (page.errors, page.blocked)
        assert page.blocked == [], (page.errors, page.blocked)
    finally:
        page.close()


def test_cdn_report_offline_says_charts_are_unavailable(browser, tmp_path):
    logdir = make_demo_logdir(tmp_path / "runs")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(logdir), "-o", str(out), "--plotly", "cdn"])
    assert result.exit_code == 0, result.output
    page = Page(browser, out)
    try:
        assert any("cdn.plot.ly" in url for url in page.blocked), page.blocked
        assert page.js("document.getElementById('plotly-missing').hidden") is False
        assert page.js("document.querySelectorAll('#runs-table tbody tr').length") == 4
        assert not [e for e in page.errors if e.startswith("pageerror")], page.errors
    finally:
        page.close()


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep-browser")
    logdir = make_sweep_logdir(root / "runs")
    out = root / "report.html"
    result = CliRunner().invoke(cli, ["report", str(logdir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, diagnose(tbreport.read(logdir))


def _comparison_charts(page: Page) -> dict[str, dict]:
    """Title -> {y range, visible y values per trace name} of every drawn comparison chart."""
    return page.js(
        """() => Object.fromEntries(Array.from(document.querySelectorAll(
             '#comparison figure.chart')).map(f => {
           const div = f.querySelector('div.plot');
           const layout = div._fullLayout;
           const traces = (div.data || []).filter(t => t.type === 'scatter');
           return [f.querySelector('figcaption').textContent.trim(), {
             range: layout && layout.yaxis ? layout.yaxis.range.slice() : null,
             type: layout && layout.yaxis ? layout.yaxis.type : null,
             names: traces.filter(t => t.showlegend !== false).map(t => t.name),
             types: (div.data || []).map(t => t.type),
             traces: traces.map(t => [t.name, Array.from(t.y).filter(v => isFinite(v))]),
           }];
         }))"""
    )


def test_overview_leads_with_findings_in_severity_order(browser, sweep_report):
    path, diagnosis = sweep_report
    page = Page(browser, path)
    try:
        header = page.js(
            "Array.from(document.querySelectorAll('#runs-table thead th')).map(h => h.innerText)"
        )
        assert header[:3] == ["run", "status", "what is wrong"], header
        rows = page.js(
            "Array.from(document.querySelectorAll('#runs-table tbody tr')).map(r => "
            "[r.dataset.run, r.cells[1].innerText.trim(), r.cells[2].innerText.trim()])"
        )
        order = {"error": 0, "warning": 1, "not-assessed": 2, "info": 3, "healthy": 4}
        statuses = [order[status] for _, status, _ in rows]
        assert statuses == sorted(statuses), rows
        worst = {f.run: f for f in diagnosis}
        for run, _, cell in rows:
            if run in worst:
                assert cell.startswith(f"{worst[run].code} {worst[run].name}"), (run, cell)
                assert worst[run].message in cell
        assert rows[0][0] == "sweep/nan"
        assert {rows[1][0], rows[2][0]} == {
            "sweep/overfit",
            "sweep/diverged",
        }
        # The findings list is not a scroll box of its own.
        assert (
            page.js("getComputedStyle(document.querySelector('#findings .table-wrap')).maxHeight")
            == "none"
        )
        page.page.fill("#run-filter", "([")
        page.wait_until("() => document.getElementById('run-filter').classList.contains('invalid')")
        assert "invalid regular expression" in page.js(
            "document.getElementById('filter-count').textContent"
        )
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_constant_series_axis_contains_its_value(browser, sweep_report):
    page = Page(browser, sweep_report[0])
    try:
        page.render_all()
        ranges = page.js(
            """() => Array.from(document.querySelectorAll('figure.chart')).filter(f =>
                 f.querySelector('figcaption').textContent.trim().startsWith('Learning rate'))
               .map(f => f.querySelector('div.plot')._fullLayout.yaxis.range.slice())"""
        )
        assert len(ranges) == 5, ranges  # four runs and the comparison
        for low, high in ranges:
            assert low < 3e-4 < high, (low, high)
            assert low > 0, "the axis must not read as 0 ± 1"
            assert high < 1e-3, "the axis must not read as 0 ± 1"
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_diverging_run_leaves_the_other_runs_visible(browser, sweep_report):
    page = Page(browser, sweep_report[0])
    try:
        page.render_all()
        charts = _comparison_charts(page)
        chart = charts["Validation loss"]
        low, high = chart["range"]
        assert chart["type"] == "linear", chart["range"]
        assert high < 10, chart["range"]
        for name, values in chart["traces"]:
            if "diverged" in name:
                continue
            assert values, name
            assert min(values) >= low, name
            assert max(values) <= high, name
            assert max(values) - min(values) > 0.2 * (high - low), "curve must not be flat"
        assert "diverged (off scale ↑)" in chart["names"]
        notes = page.js(
            "Array.from(document.querySelectorAll('#comparison p.note')).map(p => p.textContent)"
        )
        assert any("diverged goes off scale" in n for n in notes), notes
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_one_comparison_chart_per_shared_metric_and_parallel_coordinates(browser, sweep_report):
    page = Page(browser, sweep_report[0])
    try:
        page.render_all()
        charts = _comparison_charts(page)
        titles = list(charts)
        for expected in (
            "Validation loss",
            "Training loss",
            "Validation metric: Accuracy/validation",
            "Learning rate: Learning_Rate",
        ):
            assert expected in titles, titles
        assert len([t for t in titles if "Accuracy" in t]) == 1
        parallel = [t for t in titles if "parallel coordinates" in t]
        assert len(parallel) == 1, titles
        assert charts[parallel[0]]["types"] == ["parcoords"]
        drawn = page.js(
            "document.querySelectorAll('#comparison .parcoords, #comparison g.parcoords').length"
        )
        assert drawn > 0, "the parallel-coordinates chart must be drawn"
        labels = page.js(
            "Array.from(document.querySelectorAll('#comparison text.axis-title'))"
            ".map(t => t.textContent)"
        )
        assert {"lr (log10)", "batch_size", "model", "best val loss"} <= set(labels), labels
        assert page.errors == [], page.errors
    finally:
        page.close()


def _choose_axis(page: Page, select: str, axis: str) -> None:
    page.js(
        "([sel, axis]) => { const s = document.querySelector(sel); s.value = axis;"
        " s.dispatchEvent(new Event('change')); }",
        [select, axis],
    )


def test_run_charts_switch_between_step_and_wall_time(browser, sweep_report):
    page = Page(browser, sweep_report[0])
    try:
        first = page.js("document.querySelector('section.run').id")
        select = f"#{first} select.x-axis"
        assert page.js(f"document.querySelectorAll('{select}').length") >= 1
        plot = f"document.querySelector('#{first} div.plot')"
        _choose_axis(page, select, "relative")
        page.wait_until(f"() => {plot}._fullLayout.xaxis.title.text !== 'step'")
        title = page.js(f"{plot}._fullLayout.xaxis.title.text")
        assert title == "relative time (hours)"
        xs = page.js(f"Array.from({plot}.data[0].x)")
        # The demo runs log one step every 2 seconds.
        assert xs[1] - xs[0] == pytest.approx(2 / 3600, rel=1e-3)
        _choose_axis(page, select, "wall")
        page.wait_until(f"() => {plot}._fullLayout.xaxis.title.text === 'wall time'")
        assert page.js(f"{plot}._fullLayout.xaxis.type") == "date"
        _choose_axis(page, select, "step")
        page.wait_until(f"() => {plot}._fullLayout.xaxis.title.text === 'step'")
        assert page.js(f"Array.from({plot}.data[0].x).slice(0, 3)") == [0, 1, 2]
        assert page.errors == [], page.errors
    finally:
        page.close()
