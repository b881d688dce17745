"""The detectors' documentation is rendered from the registry: `tbreport rules`, the README's
generated sections and docs/rules.md never drift from the detectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tbreport.cli import cli
from tbreport.diagnosis.detectors import ALL_DETECTORS, find_detector
from tbreport.diagnosis.reference import (
    RENDER_COMMAND,
    render_docs,
    rules_document,
    stale_docs,
    write_docs,
)
from tbreport.model import PROBLEMS

ROOT = Path(__file__).resolve().parents[1]


def _rules(*args: str) -> str:
    result = CliRunner().invoke(cli, ["rules", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_readme_and_docs_rules_md_are_rendered_from_the_registry():
    stale = [str(p.relative_to(ROOT)) for p in stale_docs(ROOT)]
    assert not stale, (
        f"{', '.join(stale)} drifted from the detector registry: run `{RENDER_COMMAND}`"
    )


def test_docs_rules_md_documents_every_detector():
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for detector in ALL_DETECTORS:
        section = text.split(f"### {detector.code} {detector.name}\n", 1)[1].split("\n### ", 1)[0]
        assert detector.summary in section
        assert ", ".join(s.value for s in detector.severities) in section
        for heading in ("What it detects", "Why it matters", "What to do", "Example", "Thresholds"):
            assert f"#### {heading}" in section, (detector.code, heading)
        for fld in detector.param_fields():
            assert f"`{fld.name}`" in section, (detector.code, fld.name)
    assert "## Retired codes" in text


def test_readme_lists_the_problem_vocabulary_and_the_key_detectors():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    problems = readme.split("<!-- problems -->", 1)[1].split("<!-- /problems -->", 1)[0]
    assert problems == ", ".join(f"`{p}`" for p in PROBLEMS)
    keys = readme.split("<!-- key-detectors -->", 1)[1].split("<!-- /key-detectors -->", 1)[0]
    assert [d.name for d in ALL_DETECTORS if d.assesses] == [
        d.name for d in ALL_DETECTORS if d.name in keys
    ]


def test_drift_is_reported_and_repaired(tmp_path):
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rules.md").write_text("# out of date\n")
    readme = (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme.replace("| warning, error |", "| warning |", 1))
    assert sorted(stale_docs(tmp_path)) == [tmp_path / "README.md", tmp_path / "docs" / "rules.md"]
    script = [sys.executable, str(ROOT / "scripts" / "render_rules.py"), "--root", str(tmp_path)]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert check.returncode == 1
    assert "stale: README.md" in check.stdout
    assert subprocess.run(script, capture_output=True).returncode == 0
    assert stale_docs(tmp_path) == []
    assert write_docs(tmp_path) == []
    assert (tmp_path / "README.md").read_text() == readme


def test_rules_prints_every_severity_a_detector_can_raise():
    table = _rules()
    line = next(li for li in table.splitlines() if li.startswith("G201"))
    assert "warning, error" in line
    assert _rules("G201").splitlines()[0] == "G201 exploding-gradients (warning, error)"
    for item in json.loads(_rules("all", "--format", "json")):
        detector = find_detector(item["code"])
        assert item["severities"] == [s.value for s in detector.severities]
        assert item["severity"] in item["severities"]
        assert all("minimum" in p for p in item["params"])
    assert "min_points = 3  (int, at least 1)" in _rules("G201")


def test_rules_markdown_prints_the_table_the_sections_or_the_whole_document():
    expected = render_docs(ROOT)
    readme = expected[ROOT / "README.md"]
    table = readme.split("<!-- rules-table -->", 1)[1].split("<!-- /rules-table -->", 1)[0]
    assert _rules("--format", "markdown").strip() == table.strip()
    assert _rules("all", "--format", "markdown") == rules_document()
    sections = _rules("L1", "--format", "markdown")
    assert "### L101 overfitting" in sections
    assert "### G201" not in sections
