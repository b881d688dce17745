"""How results look in a notebook: compact HTML tables with status badges, readable reprs.

``ReadResult._repr_html_``, ``Diagnosis._repr_html_`` and ``Finding._repr_html_`` call these
functions (all three wired in ``tbreport/__init__.py``, so the reading and diagnosis layers and
the shared model import no presentation code); :func:`register_notebook_display` (run on
``import tbreport`` inside IPython) also registers the Diagnosis text form with IPython's
display formatters.

Everything from an event file is escaped.
"""

from __future__ import annotations

import html
import math
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from tbreport.report.summary import worst_finding

if TYPE_CHECKING:
    from tbreport.diagnosis import Diagnosis

#: Rows shown in a notebook table (the DataFrames hold everything).
MAX_ROWS = 40

_COLOURS = {
    "error": "#c4320a",
    "warning": "#b54708",
    "info": "#175cd3",
    "healthy": "#067647",
    "not-assessed": "#8a8f98",
}
_TABLE = 'style="border-collapse:collapse;font-size:12.5px;text-align:left"'
_CELL = 'style="padding:2px 8px;border-bottom:1px solid #e4e7ec;text-align:left;vertical-align:top"'


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def badge(status: str) -> str:
    """A coloured status badge (``error``, ``warning``, ``info``, ``healthy``...)."""
    colour = _COLOURS.get(str(status), "#667085")
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:0 7px;'
        f'font-size:11px;font-weight:600;white-space:nowrap">{_e(status)}</span>'
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _table(header: list[str], rows: list[list[str]], *, total: int) -> str:
    head = "".join(f"<th {_CELL}>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in row) + "</tr>" for row in rows)
    more = ""
    if total > len(rows):
        hidden = _plural(total - len(rows), "more row")
        more = f'<p style="color:#667085;font-size:12px">… {hidden}</p>'
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _warning_counts(warnings: list[Any]) -> str:
    if not warnings:
        return "no warnings"
    counts = Counter(w.kind for w in warnings)
    return (
        f"{_plural(len(warnings), 'warning')} ("
        + ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
        + ")"
    )


def _step_range(first: Any, last: Any) -> str:
    if first is None or pd.isna(first):
        return "–"
    return f"{int(first):,}–{int(last):,}"


def read_result_html(result: Any) -> str:
    """A ReadResult as a compact table: one row per run directory."""
    inventory = result.runs
    title = (
        f"<b>ReadResult</b> <code>{_e(result.logdir)}</code>: "
        f"{_plural(len(inventory), 'run')}, {_plural(len(result.scalars), 'scalar point')}, "
        f"{_plural(len(result.histograms), 'histogram')}, {_e(_warning_counts(result.warnings))}"
    )
    rows = []
    for row in inventory.head(MAX_ROWS).itertuples(index=False):
        logical = getattr(row, "logical_run", row.run)
        rows.append(
            [
                _e(row.run),
                _e(logical) if str(logical) != str(row.run) else "",
                _e(row.files),
                _e(row.scalar_tags),
                f"{int(row.scalars):,}",
                f"{int(row.histograms):,}",
                _step_range(row.first_step, row.last_step),
                _e(row.warnings) if row.warnings else "",
            ]
        )
    header = ["run", "part of", "files", "scalar tags", "scalars", "histograms", "steps", "warn"]
    return f"<div><p>{title}</p>{_table(header, rows, total=len(inventory))}</div>"


def _finding_line(finding: Any) -> str:
    return f"<code>{_e(finding.code)}</code> {_e(finding.name)}: {_e(finding.message)}"


def diagnosis_html(diagnosis: Any) -> str:
    """A Diagnosis as a compact table: one row per logical run, worst first, with its worst
    finding."""
    order = {"error": 0, "warning": 1, "not-assessed": 2, "info": 3, "healthy": 4}
    runs = sorted(diagnosis.runs, key=lambda r: order.get(r.status, 5))
    counts = Counter(str(getattr(f.severity, "value", f.severity)) for f in diagnosis)
    title = (
        f"<b>Diagnosis</b>: {_plural(len(diagnosis.runs), 'run')}, "
        f"{_plural(len(diagnosis), 'finding')} "
        f"({counts['error']} error, {counts['warning']} warning, {counts['info']} info)"
    )
    rows = []
    for run in runs[:MAX_ROWS]:
        worst = worst_finding(list(run.findings))
        what = _finding_line(worst) if worst else _e(run.reason or "")
        more = len(run.findings) - 1
        if more > 0:
            what += f' <span style="color:#667085">(+{more} more)</span>'
        rows.append([_e(run.run), badge(run.status), _e(getattr(run, "kind", "")), what])
    table = _table(["run", "status", "kind", "what is wrong"], rows, total=len(runs))
    return f"<div><p>{title}</p>{table}</div>"


def finding_html(finding: Any) -> str:
    """One finding: severity, detector, run, step (and range), message, the observed value
    against its limit, advice and evidence."""
    severity = str(getattr(finding.severity, "value", finding.severity))
    evidence = "".join(
        f"<tr><td {_CELL}><code>{_e(k)}</code></td><td {_CELL}>{_e(_short(v))}</td></tr>"
        for k, v in dict(finding.evidence or {}).items()
    )
    step = "whole run" if finding.step is None else f"step {finding.step:,}"
    step_range = getattr(finding, "step_range", None)
    if step_range is not None:
        step += f", steps {step_range[0]:,}–{step_range[1]:,}"
    parts = [
        f"<p>{badge(severity)} <code>{_e(finding.code)}</code> <b>{_e(finding.name)}</b> "
        f"in <code>{_e(finding.run)}</code> ({_e(step)})</p>",
        f"<p>{_e(finding.message)}</p>",
    ]
    observed, limit = getattr(finding, "observed", None), getattr(finding, "limit", None)
    if observed is not None:
        against = f" against the limit {_short(limit)}" if limit is not None else ""
        parts.append(f"<p>observed {_e(_short(observed))}{_e(against)}</p>")
    if finding.advice:
        parts.append(f'<p style="color:#475467"><b>What to do:</b> {_e(finding.advice)}</p>')
    if evidence:
        parts.append(
            f"<details><summary>evidence</summary><table {_TABLE}>{evidence}</table></details>"
        )
    return "<div>" + "".join(parts) + "</div>"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def diagnosis_text(diagnosis: Any) -> str:
    """A Diagnosis as plain text: counts, then one line per run with its worst finding."""
    lines = [
        f"Diagnosis: {_plural(len(diagnosis.runs), 'run')}, {_plural(len(diagnosis), 'finding')}"
    ]
    for run in diagnosis.runs[:MAX_ROWS]:
        worst = worst_finding(list(run.findings))
        what = f"{worst.code} {worst.name}: {worst.message}" if worst else run.reason
        lines.append(f"  {run.run}  [{run.status}]  {what}".rstrip())
    if len(diagnosis.runs) > MAX_ROWS:
        lines.append(f"  … {_plural(len(diagnosis.runs) - MAX_ROWS, 'more run')}")
    return "\n".join(lines)


def diagnosis_frame(diagnosis: Diagnosis) -> pd.DataFrame:
    """One row per finding, evidence kept as a dict (``Diagnosis.to_frame()``)."""
    return diagnosis.to_frame()


def register_notebook_display() -> bool:
    """Teach a running IPython how to show a Diagnosis (HTML table, readable text).

    Does nothing outside IPython. Returns whether formatters were registered.
    """
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    try:
        shell = ipython_module.get_ipython()
    except Exception:  # an IPython too old or half-imported: plain reprs still work
        return False
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    module, name = "tbreport.diagnosis.engine", "Diagnosis"
    formatters["text/html"].for_type_by_name(module, name, diagnosis_html)
    formatters["text/plain"].for_type_by_name(
        module, name, lambda obj, printer, cycle: printer.text(diagnosis_text(obj))
    )
    return True
