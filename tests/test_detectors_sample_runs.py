"""Every labelled sample run gets exactly the problems its label lists, in every layout.

``sample_runs/labels.json`` (rendered from ``tools/samplegen/catalogue.py``) names the problems each
logical run really has, as detector names, and which are debatable (``allowed``). Findings must
match the label exactly, allowed ones aside; runs labelled healthy must get no warning or error
from any detector.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_RUNS

import tbreport
from tbreport.cli import cli
from tbreport.model import Severity

LABELS_FILE = SAMPLE_RUNS / "labels.json"
LABELS = json.loads(LABELS_FILE.read_text())["runs"] if LABELS_FILE.is_file() else {}
PROBLEM_NAMES = sorted({p for entry in LABELS.values() for p in entry["problems"]})


def _problem(name: str) -> str:
    """A label's detector or problem name as the problem findings carry."""
    from tbreport.diagnosis.detectors import find_detector

    return find_detector(name).problem or name


needs_samples = pytest.mark.skipif(not LABELS, reason="sample_runs/ has not been generated")


@pytest.fixture(scope="module")
def diagnosed():
    diagnosis = tbreport.diagnose(SAMPLE_RUNS)
    return {run.run: run for run in diagnosis.runs}


@needs_samples
def test_every_labelled_run_is_a_logical_run(diagnosed):
    missing = sorted(set(LABELS) - set(diagnosed))
    assert not missing, f"labelled runs not found as logical runs: {missing}"


@needs_samples
@pytest.mark.parametrize("run", sorted(LABELS))
def test_findings_match_the_label(diagnosed, run):
    # Compared as problems of the seed vocabulary (a label may name a detector: weight-collapse
    # is dead-neurons); findings without a problem (duplicate steps, damaged files) by name.
    expected = {_problem(n) for n in LABELS[run]["problems"]}
    result = diagnosed[run]
    # Every finding counts, info-level ones included: a run gets exactly what its label lists.
    allowed = {_problem(n) for n in LABELS[run].get("allowed", ())}
    found = {f.problem or f.name for f in result.findings} - allowed
    skipped = {s.name: s.reason for s in result.skipped if _problem(s.name) in expected}
    assert found == expected, (
        f"{run} ({LABELS[run]['layout']}): missing {sorted(expected - found)} "
        f"(skipped: {skipped}), unexpected {sorted(found - expected)}: "
        + "; ".join(f"{f.name}: {f.message}" for f in result.findings)
    )
    if not expected:
        alarms = [
            f"{f.name}: {f.message}"
            for f in result.findings
            if Severity(f.severity).rank >= Severity.WARNING.rank
        ]
        assert not alarms, f"healthy run {run} got warnings or errors: {alarms}"


@needs_samples
def test_every_layout_has_labelled_problems_and_healthy_runs():
    layouts = {entry["layout"] for entry in LABELS.values()}
    for layout in layouts:
        entries = [e for e in LABELS.values() if e["layout"] == layout]
        assert any(not e["problems"] for e in entries), f"{layout}: no healthy run"
        assert any(e["problems"] for e in entries), f"{layout}: no problem run"


@needs_samples
def test_check_sample_runs_fails_on_error_and_emits_the_json_schema():
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(SAMPLE_RUNS), "--fail-on", "error"])
    assert result.exit_code == 1, result.output
    result = runner.invoke(
        cli, ["check", str(SAMPLE_RUNS), "--format", "json", "--fail-on", "never"]
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 3
    assert doc["logdir"] == str(SAMPLE_RUNS)
    assert set(LABELS) <= {r["run"] for r in doc["runs"]}
    for finding in doc["findings"]:
        assert {"run", "code", "name", "severity", "message", "step", "evidence", "advice"} <= set(
            finding
        )
