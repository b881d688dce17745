"""The self-contained HTML report: jinja2 templates (autoescaped) plus plotly charts.

Templates live in ``templates/`` at the top of the source tree and are shipped in the wheel as
``tbreport/templates``; :func:`environment` finds whichever exists. Templates only lay out what
:func:`build_context` computed: no numbers are computed in a template.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jinja2
import numpy as np
from markupsafe import Markup

from tbreport._version import __version__
from tbreport.diagnosis.metrics import BestPoint
from tbreport.model import Finding, Severity
from tbreport.outputs import stamp_text
from tbreport.report.charts import (
    BEST_COLOR,
    PALETTE,
    ROLE_COLORS,
    SEVERITY_COLORS,
    Chart,
    ChartBuilder,
    comparison_colors,
    stagger_labels,
)
from tbreport.report.collect import ReportData, RunData
from tbreport.report.smoothing import DEFAULT_SMOOTHING
from tbreport.report.summary import (
    HPARAM_PREFIX,
    best_marker,
    choose_hparams,
    finding_rank,
    summarize,
    worst_finding,
)
from tbreport.report.thinning import DEFAULT_MAX_POINTS
from tbreport.template_files import template_dirs

PlotlyMode = Literal["inline", "cdn"]

#: Hyperparameter columns shown in the overview table (the CSV has all of them).
MAX_OVERVIEW_HPARAMS = 12
#: Small charts of scalar tags no role claims, per run (the CSV has all of them).
MAX_OTHER_SCALARS = 24
#: Distribution charts per run and role.
MAX_DISTRIBUTIONS = 24
#: Text summaries shown per run, and characters shown per text.
MAX_TEXTS = 20
MAX_TEXT_CHARS = 4000

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_STATUS_ORDER = {"error": 0, "warning": 1, "not-assessed": 2, "info": 3, "healthy": 4}


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number for people: ``0.01234``, ``1.2e-07``; ``–`` when missing, ``NaN``/``inf`` kept."""
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN" if not _is_missing(value) else "–"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number == int(number) and abs(number) < 1e15:
        return (
            f"{int(number):d}" if isinstance(value, (int, np.integer)) else f"{number:.{digits}g}"
        )
    return f"{number:.{digits}g}"


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return value is pd.NA or value is None
    except ImportError:  # pragma: no cover
        return value is None


def fmt_step(value: Any) -> str:
    """A step with thousands separators; ``–`` when missing."""
    if value is None or _is_missing(value):
        return "–"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "–"


def fmt_duration(seconds: Any) -> str:
    """``12.3 s``, ``4m 05s``, ``2h 03m``, ``3d 04h``; ``–`` when unknown."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s) or s < 0:
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(int(round(s)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {sec:02d}s"


def fmt_hparam(value: Any) -> str:
    """A hyperparameter value as shown in tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return fmt_num(value, 6)
    return "–" if value is None else str(value)


def sort_key(value: Any) -> str:
    """The ``data-sort`` attribute of a table cell: numbers as numbers, the rest as text."""
    if value is None or _is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return ""
        return repr(number) if math.isfinite(number) else ("1e999" if number > 0 else "-1e999")
    return str(value)


def breakable(name: Any) -> Markup:
    """A run name (escaped) that may wrap only after a ``/``, never inside a path component."""
    from markupsafe import escape

    parts = re.split(r"(?<=/)", str(name))
    # Hyphens are break opportunities too: each component is kept on one line.
    return Markup("<wbr>").join(
        Markup('<span class="seg">%s</span>') % escape(part) for part in parts
    )


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The report's jinja2 environment (autoescape on for ``.html``/``.j2`` templates)."""
    dirs = template_dirs()
    if not dirs:
        raise RuntimeError("tbreport templates not found (expected templates/report.html.j2)")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        fmt_num=fmt_num,
        fmt_step=fmt_step,
        fmt_duration=fmt_duration,
        fmt_hparam=fmt_hparam,
        sort_key=sort_key,
        breakable=breakable,
    )
    env.globals["asset"] = _asset
    return env


def _asset(name: str) -> Markup:
    """The text of ``templates/assets/<name>``, for inlining into a <style> or <script>."""
    env = environment()
    if env.loader is None:  # pragma: no cover - environment() always gives it one
        raise RuntimeError("the report environment has no template loader")
    source, _, _ = env.loader.get_source(env, f"assets/{name}")
    closing = "</style" if name.endswith(".css") else "</script"
    if closing in source.lower():
        raise RuntimeError(f"asset {name} contains {closing!r}")
    return Markup(source)


@functools.lru_cache(maxsize=1)
def _plotly_js() -> tuple[str, str, str]:
    import plotly
    import plotly.offline

    js = plotly.offline.get_plotlyjs()
    if "</script" in js.lower():  # would end the inline <script>; never seen in plotly.min.js
        js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    version = plotly.offline.get_plotlyjs_version()
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return js, version, f"sha256-{digest}"


def plotly_cdn_url() -> str:
    """The plotly.js CDN address for the plotly.js version bundled with the plotly package."""
    return f"https://cdn.plot.ly/plotly-{_plotly_js()[1]}.min.js"


@dataclass
class ChartGroup:
    """A titled group of charts in a run section (e.g. "Weight distributions")."""

    title: str
    charts: list[Chart]
    grid: bool = False
    remark: str | None = None


@dataclass
class RunView:
    """What the run section template shows."""

    data: RunData
    summary: dict[str, Any]
    groups: list[ChartGroup] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    texts_hidden: int = 0

    @property
    def charts(self) -> list[Chart]:
        return [c for g in self.groups for c in g.charts]


def _more(n: int, word: str) -> str:
    """``1 more tag is``, ``3 more tags are``."""
    return f"1 more {word} is" if n == 1 else f"{n} more {word}s are"


class _Placement:
    """Which findings a chart of the run section has taken (each chart marks the findings about
    its tags); the rest go on the loss chart."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = findings
        self.placed: set[int] = set()

    def take(self, tags: set[str]) -> list[Finding]:
        chosen = []
        for i, finding in enumerate(self.findings):
            if tags.intersection(finding.tags):
                chosen.append(finding)
                self.placed.add(i)
        return chosen

    def leftover(self) -> list[Finding]:
        return [f for i, f in enumerate(self.findings) if i not in self.placed]


def _build_run_view(builder: ChartBuilder, run: RunData, summary: dict[str, Any]) -> RunView:
    view = RunView(data=run, summary=summary)
    placement = _Placement(run.findings)
    used: set[str] = set()
    loss_chart = _loss_chart(builder, run, placement, used)
    groups: list[ChartGroup] = []
    if loss_chart:
        groups.append(ChartGroup("Loss", [loss_chart]))
    groups += _role_groups(builder, run, placement, used)
    groups += _distribution_groups(builder, run, placement)
    other = _other_scalars_group(builder, run, placement, used)
    if other is not None:
        groups.append(other)

    # Findings about tags no chart shows (or about the run as a whole) go on the loss chart.
    leftover = placement.leftover()
    if leftover and loss_chart is not None:
        builder.add_marks(loss_chart.figure["layout"], findings=leftover)
        stagger_labels(loss_chart.figure["layout"], loss_chart.x_span)

    view.groups = groups
    view.texts, view.texts_hidden = _text_rows(run)
    return view


def _loss_chart(
    builder: ChartBuilder, run: RunData, placement: _Placement, used: set[str]
) -> Chart | None:
    """The training and validation losses on one chart, the best validation point marked."""
    train_tags = [t for t in run.roles.get("train_loss", ()) if t in run.scalars]
    val_tags = [t for t in run.roles.get("val_loss", ()) if t in run.scalars]
    loss_tags = list(dict.fromkeys(train_tags + val_tags))
    used.update(loss_tags)
    val_curve = run.first_curve("val_loss")
    best: BestPoint | None = best_marker(val_curve, run.findings)
    if not loss_tags:
        return None
    colors = [
        ROLE_COLORS["train_loss"] if t in train_tags else ROLE_COLORS["val_loss"] for t in loss_tags
    ]
    # Extra tags of one role get other colours so lines stay distinguishable.
    seen_colors: set[str] = set()
    for i, color in enumerate(colors):
        if color in seen_colors:
            colors[i] = PALETTE[(i + 2) % len(PALETTE)]
        seen_colors.add(colors[i])
    loss_findings = placement.take(set(loss_tags))
    return builder.scalar_chart(
        run,
        loss_tags,
        title="Loss",
        ytitle="loss",
        findings=loss_findings,
        best=best,
        colors=colors,
        mark_nonfinite=True,
        axis_toggle=True,
    )


def _role_groups(
    builder: ChartBuilder, run: RunData, placement: _Placement, used: set[str]
) -> list[ChartGroup]:
    """The learning rate, the gradient norm and the predictions, each on a chart of its own."""
    groups: list[ChartGroup] = []
    for role, title in (("learning_rate", "Learning rate"), ("grad_norm", "Gradient norm")):
        tags = [t for t in run.roles.get(role, ()) if t in run.scalars and t not in used]
        if not tags:
            continue
        used.update(tags)
        findings = placement.take(set(tags))
        if role == "learning_rate":
            chart = builder.scalar_chart(
                run, tags, title=title, findings=findings, smooth=False, ytitle="learning rate"
            )
        else:
            chart = builder.scalar_chart(
                run,
                tags,
                title=title,
                findings=findings,
                ylog=True,
                ytitle="norm (log scale)",
                mark_nonfinite=True,
            )
        if chart:
            groups.append(ChartGroup(title, [chart]))

    pred_tags = {t for role in ("pred_mean", "pred_std") for t in run.roles.get(role, ())[:1]}
    if pred_tags & set(run.scalars):
        chart = builder.prediction_chart(run, findings=placement.take(pred_tags))
        if chart:
            used.update(pred_tags)
            groups.append(ChartGroup("Predictions", [chart]))
    return groups


def _distribution_groups(
    builder: ChartBuilder, run: RunData, placement: _Placement
) -> list[ChartGroup]:
    """Weight, gradient and other histograms, a grid of small charts each."""
    groups: list[ChartGroup] = []
    hist_used: set[str] = set()
    sections: tuple[tuple[str | None, str, str], ...] = (
        ("weight_histograms", "Weight distributions", "#1f77b4"),
        ("gradient_histograms", "Gradient distributions", "#e8860c"),
        (None, "Other distributions", "#7f7f7f"),
    )
    for role, title, color in sections:
        if role is None:
            tags = [t for t in run.histograms if t not in hist_used]
        else:
            tags = [t for t in run.roles.get(role, ()) if t in run.histograms]
        hist_used.update(tags)
        charts = []
        for tag in tags[:MAX_DISTRIBUTIONS]:
            chart = builder.distribution_chart(
                run, tag, color=color, findings=placement.take({tag})
            )
            if chart:
                charts.append(chart)
        if charts:
            hidden = len(tags) - len(charts)
            remark = f"{_more(hidden, 'tag')} in the CSV bundle." if hidden > 0 else None
            groups.append(ChartGroup(title, charts, grid=True, remark=remark))
    return groups


def _other_scalars_group(
    builder: ChartBuilder, run: RunData, placement: _Placement, used: set[str]
) -> ChartGroup | None:
    """Scalar tags no other chart showed, a grid of small charts."""
    others = [t for t in run.scalars if t not in used]
    other_charts = []
    for tag in others[:MAX_OTHER_SCALARS]:
        chart = builder.scalar_chart(
            run, [tag], title=tag, findings=placement.take({tag}), small=True
        )
        if chart:
            other_charts.append(chart)
    if not other_charts:
        return None
    hidden = len(others) - len(other_charts)
    remark = f"{_more(hidden, 'scalar tag')} in the CSV bundle." if hidden > 0 else None
    return ChartGroup("Other scalars", other_charts, grid=True, remark=remark)


def _text_rows(run: RunData) -> tuple[list[dict[str, Any]], int]:
    """The first text summaries of the run (cut to a length), and how many more there are."""
    if run.text is None or run.text.empty:
        return [], 0
    texts = []
    for record in run.text.head(MAX_TEXTS).to_dict("records"):
        text = str(record.get("text", ""))
        texts.append(
            {
                "tag": str(record.get("tag", "")),
                "step": record.get("step"),
                "text": text[:MAX_TEXT_CHARS],
                "truncated": len(text) > MAX_TEXT_CHARS,
            }
        )
    return texts, max(0, len(run.text) - MAX_TEXTS)


# Summary columns where NaN is a value to show ("the run ended in NaN"), not a missing value.
_NAN_IS_A_VALUE = frozenset({"best_val_loss", "final_train_loss", "final_val_loss", "duration_s"})


def _template_row(row: Mapping[Hashable, Any]) -> dict[str, Any]:
    """A summary row for templates: missing values are None (a NaN would test as true)."""
    return {
        str(key): value if key in _NAN_IS_A_VALUE or _present(value) else None
        for key, value in row.items()
    }


def _present(value: Any) -> bool:
    if value is None or _is_missing(value):
        return False
    return not (isinstance(value, float) and math.isnan(value))


@dataclass
class AdviceGroup:
    """What to do about one problem, said once, with every run it applies to.

    Attributes:
        anchor: HTML id (``advice-<n>``; never derived from untrusted text).
        problem: The problem (``Finding.problem``, else the detector name).
        severity: The worst severity among its findings.
        codes: Detector codes and names that reported it (``L101 overfitting``).
        runs: ``(run, anchor)`` of each run it applies to, worst first.
        advice: The distinct advice texts.
        count: Number of findings.
    """

    anchor: str
    problem: str
    severity: str
    codes: list[str]
    runs: list[tuple[str, str | None]]
    advice: list[str]
    count: int


def advice_groups(findings: Sequence[Finding], anchors: dict[str, str]) -> list[AdviceGroup]:
    """Findings grouped by problem, worst problem first (severity, then number of runs).

    Args:
        findings: Every finding, worst first.
        anchors: Run name -> anchor of its section.
    """
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.problem or finding.name, []).append(finding)
    groups = []
    for problem, members in grouped.items():
        worst = min(members, key=finding_rank)
        runs = list(dict.fromkeys(f.run for f in members))
        groups.append(
            AdviceGroup(
                anchor="",
                problem=problem,
                severity=Severity(worst.severity).value,
                codes=list(dict.fromkeys(f"{f.code} {f.name}" for f in members)),
                runs=[(run, anchors.get(run)) for run in runs],
                advice=list(dict.fromkeys(f.advice for f in members if f.advice)),
                count=len(members),
            )
        )
    groups.sort(key=lambda g: (_SEVERITY_ORDER.get(g.severity, 3), -len(g.runs), g.problem))
    for i, group in enumerate(groups):
        group.anchor = f"advice-{i}"
    return groups


def overview_order(runs: Sequence[RunData]) -> list[int]:
    """Positions of ``runs`` in overview order: worst status first, then the strongest worst
    finding, then the diagnosis order."""

    def key(i: int) -> tuple[int, tuple[int, float], int]:
        run = runs[i]
        worst = worst_finding(run.findings)
        rank = finding_rank(worst) if worst is not None else (1, math.inf)
        return (_STATUS_ORDER.get(run.status, 5), rank, i)

    return sorted(range(len(runs)), key=key)


#: Roles compared across runs, in this order: (role, title, smoothed, runs needed).
COMPARED_ROLES = (
    ("val_loss", "Validation loss", True, 1),
    ("train_loss", "Training loss", True, 1),
    ("val_metric", "Validation metric", True, 2),
    ("reward", "Reward", True, 2),
    ("learning_rate", "Learning rate", False, 2),
)
#: Comparison charts of shared tags no role claims (the CSV has all of them).
MAX_SHARED_TAG_CHARTS = 16


def comparison_charts(builder: ChartBuilder, runs: Sequence[RunData]) -> tuple[list[Chart], int]:
    """One chart per metric several runs share: the roles first (losses, the main validation
    metric, reward, learning rate), then every other tag at least two runs have.

    Returns:
        The charts and how many shared tags were left out.
    """
    colors = comparison_colors(runs)
    charts: list[Chart] = []
    covered: set[tuple[str, str]] = set()
    for role, label, smooth, needed in COMPARED_ROLES:
        curves = [(run, c) for run in runs if (c := run.first_curve(role)) is not None]
        tags = {c.tag for _, c in curves}
        title = (
            f"{label}: {next(iter(tags))}"
            if role not in ("val_loss", "train_loss") and len(tags) == 1
            else label
        )
        chart = builder.comparison_chart(
            runs, role, title=title, colors=colors, smooth=smooth, min_runs=needed
        )
        if chart:
            charts.append(chart)
            covered.update((run.anchor, c.tag) for run, c in curves)
    shared: dict[str, int] = {}
    for run in runs:
        for tag in run.scalars:
            if (run.anchor, tag) not in covered:
                shared[tag] = shared.get(tag, 0) + 1
    shared_tags = [tag for tag, count in shared.items() if count >= 2]
    shared_tags.sort(key=lambda t: -shared[t])  # stable: first-seen order among equals
    for tag in shared_tags[:MAX_SHARED_TAG_CHARTS]:
        chart = builder.comparison_chart(runs, tag=tag, title=tag, colors=colors, min_runs=2)
        if chart:
            charts.append(chart)
    return charts, max(0, len(shared_tags) - MAX_SHARED_TAG_CHARTS)


def build_context(
    data: ReportData,
    *,
    title: str,
    logdir: str,
    plotly: PlotlyMode = "inline",
    smoothing: float = DEFAULT_SMOOTHING,
    max_points: int = DEFAULT_MAX_POINTS,
    generated_at: _dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything the templates need, computed (templates only lay it out).

    Args:
        data: The per-run records (see :func:`tbreport.report.collect.collect`).
        title: Report title.
        logdir: The LOGDIR as the user gave it (shown in the header).
        plotly: ``inline`` embeds plotly.js; ``cdn`` loads it from the plotly CDN.
        smoothing: Initial smoothing weight of the slider, in ``[0, 1)``.
        max_points: Display thinning threshold per trace.
        generated_at: Time stamp shown in the header (defaults to now).
    """

    builder = ChartBuilder(max_points=max_points)
    summary_frame = summarize(data.runs)
    summary_rows = [_template_row(row) for row in summary_frame.to_dict("records")]
    # The overview and the run sections lead with what is wrong.
    order = overview_order(data.runs)
    summary_rows = [summary_rows[i] for i in order]
    ordered_runs = [data.runs[i] for i in order]
    views = [
        _build_run_view(builder, run, row)
        for run, row in zip(ordered_runs, summary_rows, strict=True)
    ]
    comparison, comparison_hidden = comparison_charts(builder, data.runs)
    hparam_parallel = builder.hparam_parallel_chart(data.runs)
    hparam_charts, hparams_hidden = builder.hparam_charts(data.runs)
    overview_hparams, overview_hidden = choose_hparams(data.runs, limit=MAX_OVERVIEW_HPARAMS)
    anchors = {run.run: run.anchor for run in data.runs}

    findings = _ordered_findings(data.findings, ordered_runs)
    advice = advice_groups(findings, anchors)
    advice_anchor = {group.problem: group.anchor for group in advice}
    all_charts = [c for v in views for c in v.charts] + comparison + hparam_charts
    if hparam_parallel is not None:
        all_charts.append(hparam_parallel)
    return {
        "title": title,
        "logdir": logdir,
        "version": __version__,
        "generated_at": stamp_text(generated_at),
        **_plotly_context(plotly),
        "smoothing": smoothing,
        "max_points": max_points,
        "runs": views,
        "summary": summary_rows,
        "overview_hparams": overview_hparams,
        "overview_hparams_hidden": overview_hidden,
        "hparam_prefix": HPARAM_PREFIX,
        "findings": findings,
        "advice_groups": advice,
        "advice_anchor": advice_anchor,
        "finding_counts": _finding_counts(data.findings),
        "status_counts": _status_counts(data.runs),
        "anchors": anchors,
        "comparison": comparison,
        "comparison_hidden": comparison_hidden,
        "hparam_parallel": hparam_parallel,
        "hparam_charts": hparam_charts,
        "hparam_charts_hidden": hparams_hidden,
        "global_warnings": data.global_warnings,
        "warning_count": len(data.global_warnings) + sum(len(r.warnings) for r in data.runs),
        "charts": all_charts,
        "severity_colors": SEVERITY_COLORS,
        "best_color": BEST_COLOR,
    }


def _ordered_findings(findings: Sequence[Finding], runs: Sequence[RunData]) -> list[Finding]:
    """Worst first, then in the order of the runs' sections."""
    position = {name: i for i, name in enumerate(r.run for r in runs)}
    return sorted(findings, key=lambda f: (finding_rank(f), position.get(f.run, len(position))))


def _plotly_context(plotly: PlotlyMode) -> dict[str, Any]:
    """plotly.js inline, or the CDN address with its version and integrity hash."""
    js, version, integrity = _plotly_js()
    return {
        "plotly_mode": plotly,
        "plotly_js": Markup(js) if plotly == "inline" else None,
        "plotly_version": version,
        "plotly_cdn_url": plotly_cdn_url(),
        "plotly_integrity": integrity,
    }


def _finding_counts(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        counts[Severity(finding.severity).value] += 1
    return counts


def _status_counts(runs: Sequence[RunData]) -> dict[str, int]:
    statuses = {"healthy": 0, "not-assessed": 0, "info": 0, "warning": 0, "error": 0}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    return statuses


def render_html(data: ReportData, **options: Any) -> str:
    """Render the report as one HTML document (see :func:`build_context` for the options)."""
    context = build_context(data, **options)
    return environment().get_template("report.html.j2").render(**context)
