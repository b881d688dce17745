"""``tbreport.diagnose``: the Python API, its result types and its robustness on real logs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import REALWORLD
from diagnosis_helpers import make_curves, write_run

import tbreport
from tbreport.diagnosis import Diagnosis, RunDiagnosis, SkippedDetector
from tbreport.diagnosis.detectors import find_detector
from tbreport.errors import ConfigError, InputError
from tbreport.model import Finding, Severity


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    write_run(root, "b_overfit", "hf", make_curves("overfitting", seed=1))
    write_run(root, "a_nan", "lightning", make_curves("non-finite-loss", seed=2))
    write_run(root, "c_healthy", "add_scalars", make_curves(None, seed=3))
    return root


def test_diagnose_accepts_a_path_or_a_read_result(logdir):
    from_path = tbreport.diagnose(logdir)
    from_read = tbreport.diagnose(tbreport.read(logdir))
    assert isinstance(from_path, Diagnosis)
    assert isinstance(from_path, list)
    assert [f.to_dict() for f in from_path] == [f.to_dict() for f in from_read]
    assert all(isinstance(f, Finding) for f in from_path)
    assert from_path.read is not None
    assert len(from_path.read.runs) >= 3


def test_findings_are_ordered_by_run_then_severity_then_step(logdir):
    diagnosis = tbreport.diagnose(logdir)
    keys = [
        (f.run, -Severity(f.severity).rank, f.step if f.step is not None else 1 << 62)
        for f in diagnosis
    ]
    assert keys == sorted(keys)
    assert [r.run for r in diagnosis.runs] == ["a_nan", "b_overfit", "c_healthy"]


def test_run_diagnoses_carry_status_skipped_and_roles(logdir):
    runs = {r.run: r for r in tbreport.diagnose(logdir).runs}
    assert isinstance(runs["a_nan"], RunDiagnosis)
    assert runs["a_nan"].status == "error"
    assert runs["b_overfit"].status == "warning"
    assert runs["c_healthy"].status == "healthy"
    assert runs["c_healthy"].findings == ()
    # add_scalars series folded into one logical run, resolved as train/validation loss
    assert runs["c_healthy"].roles["train_loss"] == ("Loss/train",)
    assert runs["c_healthy"].roles["val_loss"] == ("Loss/validation",)
    assert all(
        isinstance(s, SkippedDetector) and s.reason for r in runs.values() for s in r.skipped
    )


def test_to_frame_has_one_row_per_finding(logdir):
    diagnosis = tbreport.diagnose(logdir)
    frame = diagnosis.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(diagnosis)
    assert list(frame.columns[:8]) == [
        "run",
        "code",
        "name",
        "severity",
        "message",
        "step",
        "evidence",
        "advice",
    ]
    assert all(isinstance(e, dict) for e in frame["evidence"])
    text = diagnosis.to_frame(as_text=True)  # for CSV: JSON text, comma-separated tags
    assert all(isinstance(json.loads(e), dict) for e in text["evidence"])
    assert tbreport.diagnose(logdir, config={"select": ["P301"]}).to_frame().empty


def test_to_json_dict_is_the_check_document(logdir):
    doc = tbreport.diagnose(logdir).to_json_dict(logdir="runs")
    assert doc["schema_version"] == 3
    assert doc["logdir"] == "runs"
    assert [r["run"] for r in doc["runs"]] == ["a_nan", "b_overfit", "c_healthy"]
    json.dumps(doc, allow_nan=False)  # strictly valid JSON, NaN evidence included


def test_config_mapping_params_and_severity_override(logdir):
    diagnosis = tbreport.diagnose(
        logdir,
        config={"select": ["overfitting", "L104"], "detectors": {"L104": {"severity": "warning"}}},
    )
    assert {f.name for f in diagnosis} == {"overfitting", "non-finite-loss"}
    assert all(Severity(f.severity) == Severity.WARNING for f in diagnosis)
    quiet = tbreport.diagnose(logdir, config={"detectors": {"overfitting": {"min_rise": 100.0}}})
    assert "overfitting" not in {f.name for f in quiet}
    with pytest.raises(ConfigError, match="severity"):
        tbreport.diagnose(logdir, config={"detectors": {"L104": {"severity": "fatal"}}})


def test_a_failing_detector_is_reported_as_errored_not_fatal(logdir, monkeypatch):
    detector = find_detector("underfitting")

    def boom(self, run, params):
        raise RuntimeError("kaput")

    monkeypatch.setattr(detector, "check", boom)
    diagnosis = tbreport.diagnose(logdir)
    reasons = {s.reason for r in diagnosis.runs for s in r.skipped if s.name == "underfitting"}
    assert reasons == {"errored: RuntimeError: kaput"}
    assert any(f.name == "non-finite-loss" for f in diagnosis), "other detectors still ran"


def test_bad_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        tbreport.diagnose(tmp_path / "missing")


@pytest.mark.skipif(not REALWORLD.is_dir(), reason="real-world conformance logs not available")
def test_real_world_logs_are_diagnosed_sensibly():
    diagnosis = tbreport.diagnose(REALWORLD)
    runs = {r.run: r for r in diagnosis.runs}
    agnews = "AguLeon__LoRA_RoBERTa_AGNews/runs/run{}"
    for i in range(4):  # LR 5e-6: the loss never leaves log(4)
        assert {f.name for f in runs[agnews.format(i)].findings} == {"underfitting"}
    assert runs[agnews.format(4)].status == "healthy", runs[agnews.format(4)].findings
    alarms = {
        r.run: [f.name for f in r.findings]
        for r in diagnosis.runs
        if r.status in {"warning", "error"} and not r.run.startswith("AguLeon")
    }
    assert alarms == {}, "healthy real-world runs must not get warnings or errors"
    lightning = runs["Abdul-AA__Text-Generation-With-LSTM/lightning_logs/version_0"]
    assert lightning.roles["train_loss"] == ("train_loss",)
    assert lightning.roles["val_loss"] == ("val_loss",)
    assert not any(s.name == "overfitting" for s in lightning.skipped), (
        "val on its own step grid is used"
    )


def test_a_symptom_is_not_reported_next_to_its_root_cause(tmp_path):
    # A loss that jumps around without progress "does not learn" because the learning rate is
    # too high: report erratic-loss (lower the LR), not underfitting (raise it).
    curves = make_curves("underfitting", seed=6)
    for role in ("train_loss", "val_loss"):
        steps, flat = getattr(curves, role)
        spiky = flat.copy()
        spiky[[12, 25, 38, 47]] *= 6.0  # far above the trend, several times
        setattr(curves, role, (steps, spiky))
    write_run(tmp_path, "unstable", "autostock", curves)
    (run,) = tbreport.diagnose(tmp_path).runs
    assert [f.name for f in run.findings] == ["erratic-loss"]
    reasons = {s.name: s.reason for s in run.skipped}
    assert reasons["underfitting"] == "explained by erratic-loss (L103), reported instead"
    # Without the cause selected, the symptom is reported.
    alone = tbreport.diagnose(tmp_path, config={"ignore": ["erratic-loss"]})
    assert [f.name for f in alone] == ["underfitting"]


@pytest.fixture(scope="module")
def exploding(tmp_path_factory):
    root = tmp_path_factory.mktemp("exploding")
    write_run(root, "x", "puffin", make_curves("exploding-gradients", seed=1))
    return tbreport.read(root)


def _g201(read, **settings) -> Severity:
    config = {"select": ["G201"], "detectors": {"G201": settings}}
    (finding,) = tbreport.diagnose(read, config=config)
    return finding.severity


def test_severity_override_maps_each_level_of_a_two_level_detector(exploding):
    # G201 raises warning and error; which one depends on the growth (error_factor).
    assert _g201(exploding) == Severity.ERROR
    assert _g201(exploding, error_factor=1e12) == Severity.WARNING
    # A table maps each declared level; a level it leaves out keeps its severity.
    demote = {"warning": "info", "error": "warning"}
    assert _g201(exploding, severity=demote) == Severity.WARNING
    assert _g201(exploding, severity=demote, error_factor=1e12) == Severity.INFO
    assert _g201(exploding, severity={"warning": "info"}) == Severity.ERROR
    assert _g201(exploding, severity={"ERROR": "Info"}) == Severity.INFO


def test_one_severity_for_a_two_level_detector_is_refused_not_flattened(exploding):
    with pytest.raises(ConfigError, match=r"G201 .*raises warning, error.*map each level"):
        _g201(exploding, severity="info")
    with pytest.raises(ConfigError, match="never raises info"):
        _g201(exploding, severity={"info": "error"})
    with pytest.raises(ConfigError, match="must be error, warning or info"):
        _g201(exploding, severity={"error": "fatal"})


def test_one_level_detectors_take_a_level_or_a_table(logdir):
    for severity in ("warning", {"error": "warning"}):
        config = {"select": ["L104"], "detectors": {"non-finite-loss": {"severity": severity}}}
        found = tbreport.diagnose(logdir, config=config)
        assert found
        assert all(f.severity == Severity.WARNING for f in found)


def test_severity_tables_come_from_toml(tmp_path, exploding):
    (tmp_path / "tbreport.toml").write_text(
        'select = ["G201"]\n[detectors.G201]\nseverity = { error = "info" }\n'
    )
    (finding,) = tbreport.diagnose(exploding, config=tmp_path / "tbreport.toml")
    assert finding.severity == Severity.INFO
