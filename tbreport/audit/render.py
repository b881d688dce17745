"""``audit.html``: the overview table of every audited run, linking each run's findings.

It uses the report's jinja2 environment (autoescaping, number formats), stylesheet and table
script, with its own template ``templates/audit.html.j2``; no charts, so it stays small for tens
of thousands of runs. Everything is computed here; the template only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tbreport._version import __version__
from tbreport.audit.cache import VOLATILE_FIELDS
from tbreport.report.html import environment

if TYPE_CHECKING:
    from tbreport.audit import AuditResult

#: Hyperparameter columns shown in the overview (the CSV has all of them).
MAX_OVERVIEW_HPARAMS = 10
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _overview_hparams(result: AuditResult) -> tuple[list[str], int]:
    names = result.hparam_names()
    if len(names) <= MAX_OVERVIEW_HPARAMS:
        return names, 0
    varying = [n for n in names if len({repr(s.hparams.get(n)) for _, s in result.runs}) > 1]
    chosen = varying[:MAX_OVERVIEW_HPARAMS]
    return chosen, len(names) - len(chosen)


def build_audit_context(result: AuditResult, *, volatile: Mapping[str, str]) -> dict[str, Any]:
    """Everything ``audit.html.j2`` shows.

    Args:
        result: The audit.
        volatile: The text of each of :data:`~tbreport.audit.cache.VOLATILE_FIELDS` (the
            values, or placeholders for them).
    """
    hparams, hidden = _overview_hparams(result)
    rows = []
    sections = []
    statuses: dict[str, int] = {}
    totals = {"error": 0, "warning": 0, "info": 0}
    for index, (source, summary) in enumerate(result.runs):
        row = summary.row(source=source)
        counts = summary.severity_counts()
        for severity in totals:
            totals[severity] += counts.get(severity, 0)
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        anchor = f"run-{index}" if summary.findings or summary.problems else None
        row["anchor"] = anchor
        row["hparams"] = [summary.hparams.get(name) for name in hparams]
        rows.append(row)
        if anchor:
            findings = sorted(
                summary.findings,
                key=lambda f: (
                    _SEVERITY_ORDER.get(str(f.get("severity")), 3),
                    f.get("step") is None,
                    f.get("step") or 0,
                ),
            )
            sections.append(
                {
                    "anchor": anchor,
                    "source": source,
                    "run": summary.run,
                    "status": row["status"],
                    "run_dirs": summary.run_dirs,
                    "findings": findings,
                    "problems": summary.problems,
                }
            )
    stats = result.stats
    return {
        "title": "tbreport audit",
        "version": __version__,
        **{name: volatile[name] for name in VOLATILE_FIELDS},
        "sources": [spec.display for spec in result.sources],
        "rows": rows,
        "sections": sections,
        "overview_hparams": hparams,
        "overview_hparams_hidden": hidden,
        "status_counts": statuses,
        "finding_counts": totals,
        "global_warnings": result.warnings,
        "stats": stats,
        "multiple_sources": len(result.sources) > 1,
    }


def render_audit_page(result: AuditResult, *, volatile: Mapping[str, str]) -> str:
    """The audit overview as one self-contained HTML document, showing ``volatile`` (see
    :func:`build_audit_context`)."""
    context = build_audit_context(result, volatile=volatile)
    return environment().get_template("audit.html.j2").render(**context)
