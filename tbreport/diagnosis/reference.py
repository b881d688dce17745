"""The detectors' documentation, rendered from the registry and nowhere else.

``tbreport rules`` prints it; the README's rules table, its list of problems and of the
detectors that decide a run's health, and ``docs/rules.md`` are generated from it, and a test
fails when they drift. Regenerate them with ``python3 scripts/render_rules.py`` (or
:func:`write_docs`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tbreport.diagnosis.detectors import ALL_DETECTORS, FAMILIES, RETIRED_CODES, Detector
from tbreport.diagnosis.detectors.base import param_minimum
from tbreport.model import PROBLEMS

#: The command that regenerates every generated document (named in the drift tests' messages).
RENDER_COMMAND = "python3 scripts/render_rules.py"


def severities_text(detector: type[Detector]) -> str:
    """Every severity a detector can raise, lowest first: ``"warning, error"``."""
    return ", ".join(s.value for s in detector.severities)


def _kinds_text(detector: type[Detector]) -> str:
    return ", ".join(detector.run_kinds) if detector.run_kinds else "every run"


def detector_reference(detector: type[Detector]) -> dict[str, Any]:
    """A detector's documentation, declarations and parameters as plain data."""
    params = []
    for fld in dataclasses.fields(detector.Params):
        params.append(
            {
                "name": fld.name,
                "type": fld.type if isinstance(fld.type, str) else fld.type.__name__,
                "default": fld.default,
                "minimum": param_minimum(fld),
                "help": fld.metadata.get("help", ""),
            }
        )
    return {
        "code": detector.code,
        "name": detector.name,
        "severity": detector.severity.value,
        "severities": [s.value for s in detector.severities],
        "problem": detector.problem,
        "run_kinds": list(detector.run_kinds),
        "assesses": list(detector.assesses),
        "summary": detector.summary,
        "requires": list(detector.requires),
        "requires_any": list(detector.requires_any),
        "explained_by": list(detector.explained_by),
        "sections": detector.doc_sections(),
        "advice": detector.advice(),
        "params": params,
    }


def _value_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else json.dumps(value)


def _needs(ref: dict[str, Any]) -> list[str]:
    needs = []
    if ref["requires"]:
        needs.append("roles " + ", ".join(ref["requires"]))
    if ref["requires_any"]:
        needs.append("one of the roles " + ", ".join(ref["requires_any"]))
    return needs


def render_rule_text(detector: type[Detector]) -> str:
    """One detector's full documentation for the terminal (``tbreport rules CODE``)."""
    ref = detector_reference(detector)
    lines = [
        f"{ref['code']} {ref['name']} ({severities_text(detector)})",
        f"  {ref['summary']}",
        "",
    ]
    if ref["problem"]:
        lines.append(f"Problem: {ref['problem']}")
    if ref["run_kinds"]:
        lines.append("Judges: " + ", ".join(ref["run_kinds"]) + " runs")
    needs = _needs(ref)
    if needs:
        lines.append("Needs: " + "; ".join(needs))
    if ref["explained_by"]:
        lines.append("Not reported when the run also has: " + ", ".join(ref["explained_by"]))
    if needs or ref["explained_by"]:
        lines.append("")
    for heading, body in ref["sections"].items():
        lines.append(f"{heading}:")
        lines += [f"  {line}" if line else "" for line in body.splitlines()]
        lines.append("")
    if ref["params"]:
        lines.append(
            f"Parameters (override in [tool.tbreport.detectors.{ref['code']}] of pyproject.toml):"
        )
        for p in ref["params"]:
            floor = f", at least {_value_text(p['minimum'])}" if p["minimum"] is not None else ""
            lines.append(f"  {p['name']} = {_value_text(p['default'])}  ({p['type']}{floor})")
            lines.append(f"      {p['help']}")
        lines.append("")
    return "\n".join(lines)


def rules_table(detectors: Sequence[type[Detector]]) -> str:
    """One line per detector: code, name, every severity it can raise and what it detects."""
    code_w = max(len(d.code) for d in detectors)
    name_w = max(len(d.name) for d in detectors)
    severity_w = max(len(severities_text(d)) for d in detectors)
    lines = []
    for d in detectors:
        summary = d.summary.strip().splitlines()[0] if d.summary else ""
        lines.append(
            f"{d.code:<{code_w}}  {d.name:<{name_w}}  {severities_text(d):<{severity_w}}  {summary}"
        )
    return "\n".join(lines)


def rules_markdown(detectors: Sequence[type[Detector]] = ALL_DETECTORS) -> str:
    """The table of detectors (the README's, and the head of ``docs/rules.md``)."""
    lines = [
        "| code | name | severity | problem | judges | what it detects |",
        "|---|---|---|---|---|---|",
    ]
    for d in detectors:
        lines.append(
            f"| {d.code} | {d.name} | {severities_text(d)} | {d.problem or '-'} | "
            f"{_kinds_text(d)} | {d.summary} |"
        )
    return "\n".join(lines)


def problems_markdown() -> str:
    """The vocabulary of training problems, as the README lists it."""
    return ", ".join(f"`{p}`" for p in PROBLEMS)


def key_detectors_markdown(detectors: Sequence[type[Detector]] = ALL_DETECTORS) -> str:
    """The detectors that decide whether a run of each kind is healthy, as the README says it."""
    kinds: dict[str, list[str]] = {}
    for d in detectors:
        for kind in d.assesses:
            kinds.setdefault(kind, []).append(d.name)
    parts = []
    for kind, names in kinds.items():
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        parts.append(f"{listed} for a {kind} run")
    return "; ".join(parts)


def _detector_section(detector: type[Detector]) -> list[str]:
    ref = detector_reference(detector)
    facts = [
        ("Problem", ref["problem"] or "none (a finding about the data, not the training)"),
        ("Severities", severities_text(detector)),
        ("Judges", _kinds_text(detector) + (" runs" if detector.run_kinds else "")),
    ]
    needs = _needs(ref)
    if needs:
        facts.append(("Needs", "; ".join(needs)))
    if ref["explained_by"]:
        facts.append(("Not reported when the run also has", ", ".join(ref["explained_by"])))
    if ref["assesses"]:
        facts.append(("Decides whether a run is healthy", ", ".join(ref["assesses"]) + " runs"))
    lines = [f"### {ref['code']} {ref['name']}", "", ref["summary"], "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in facts]
    lines.append("")
    for heading, body in ref["sections"].items():
        lines += [f"#### {heading}", "", body, ""]
    lines += ["#### Thresholds", ""]
    if ref["params"]:
        lines += [
            "| parameter | default | minimum | meaning |",
            "|---|---|---|---|",
        ]
        for p in ref["params"]:
            floor = _value_text(p["minimum"]) if p["minimum"] is not None else "-"
            help_text = p["help"].replace("|", "\\|")
            lines.append(
                f"| `{p['name']}` ({p['type']}) | `{_value_text(p['default'])}` | {floor} | "
                f"{help_text} |"
            )
        lines += [
            "",
            f"Override them in `[tool.tbreport.detectors.{ref['code']}]` (or "
            f"`[tool.tbreport.detectors.{ref['name']}]`).",
        ]
    else:
        lines.append("None.")
    lines.append("")
    return lines


def rules_sections_markdown(detectors: Sequence[type[Detector]]) -> str:
    """The ``docs/rules.md`` sections of some detectors (``tbreport rules L1 -f markdown``)."""
    lines = [line for detector in detectors for line in _detector_section(detector)]
    return "\n".join(lines).rstrip() + "\n"


def rules_document(
    detectors: Sequence[type[Detector]] = ALL_DETECTORS,
    *,
    retired: dict[str, str] | None = None,
) -> str:
    """``docs/rules.md``: the table, then one section per detector by family, then the retired
    codes (``retired`` defaults to :data:`RETIRED_CODES`)."""
    retired = dict(RETIRED_CODES if retired is None else retired)
    lines = [
        "# Detector rules",
        "",
        f"<!-- Generated from the detector registry by `{RENDER_COMMAND}` (or `tbreport rules "
        "all --format markdown`): edit the detectors, not this file. -->",
        "",
        f"tbreport has {len(detectors)} detectors. Codes are a family letter plus three digits "
        "and never change meaning; `tbreport rules CODE` shows the same documentation in the "
        "terminal. A finding carries the value the detector observed and the numeric limit it "
        "compared it with, the step and step range, the tags and what a chart should draw "
        "(see the README's JSON schema).",
        "",
        rules_markdown(detectors),
        "",
    ]
    for letter, (digit, title) in FAMILIES.items():
        members = [d for d in detectors if d.code.startswith(letter)]
        if not members:
            continue
        lines += [f"## {title.capitalize()} ({letter}{digit}xx)", ""]
        for detector in members:
            lines += _detector_section(detector)
    lines += ["## Retired codes", ""]
    if retired:
        lines += ["| code | why |", "|---|---|"]
        lines += [f"| {code} | {why} |" for code, why in sorted(retired.items())]
        lines += ["", "A retired code stays reserved: no detector will take it again."]
    else:
        lines.append(
            "None: no detector has been retired. A retired code stays reserved, so a "
            "configuration naming it never selects another detector."
        )
    return "\n".join(lines).rstrip() + "\n"


#: README sections between ``<!-- name -->`` and ``<!-- /name -->`` markers -> their text.
README_SECTIONS: dict[str, Callable[[], str]] = {
    "rules-table": lambda: "\n" + rules_markdown(ALL_DETECTORS) + "\n",
    "problems": problems_markdown,
    "key-detectors": key_detectors_markdown,
}


def _replace_between(text: str, name: str, body: str) -> str:
    start_marker, end_marker = f"<!-- {name} -->", f"<!-- /{name} -->"
    start = text.index(start_marker) + len(start_marker)
    end = text.index(end_marker, start)
    return text[:start] + body + text[end:]


def render_docs(root: str | Path) -> dict[Path, str]:
    """Every generated document of the repository at ``root``, path -> what it should hold."""
    root = Path(root)
    readme = (root / "README.md").read_text(encoding="utf-8")
    for name, render in README_SECTIONS.items():
        readme = _replace_between(readme, name, render())
    return {root / "README.md": readme, root / "docs" / "rules.md": rules_document()}


def stale_docs(root: str | Path) -> list[Path]:
    """The generated documents under ``root`` that differ from the registry."""
    stale = []
    for path, text in render_docs(root).items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            stale.append(path)
    return stale


def write_docs(root: str | Path) -> list[Path]:
    """Regenerate the documents that drifted; returns the ones written."""
    written = []
    expected = render_docs(root)
    for path in stale_docs(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[path], encoding="utf-8")
        written.append(path)
    return written
