"""``tbreport check`` and ``tbreport rules`` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from diagnosis_helpers import make_curves, write_run

from tbreport.cli import cli
from tbreport.diagnosis.detectors import ALL_DETECTORS


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logdir")
    write_run(root, "exp/healthy", "puffin", make_curves(None, seed=1))
    write_run(root, "exp/nan", "autostock", make_curves("non-finite-loss", seed=2))
    write_run(root, "exp/overfit", "keras", make_curves("overfitting", seed=3))
    return root


@pytest.fixture(scope="module")
def healthy_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("healthy")
    write_run(root, "only", "hf", make_curves(None, seed=4))
    return root


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def test_fail_on_error_exits_1_when_an_error_exists(logdir):
    result = run("check", logdir, "--fail-on", "error")
    assert result.exit_code == 1, result.output
    result = run("check", logdir)  # default fail-on is error
    assert result.exit_code == 1


def test_fail_on_levels(logdir, healthy_logdir):
    assert run("check", logdir, "--fail-on", "never").exit_code == 0
    assert run("check", logdir, "--select", "overfitting", "--fail-on", "error").exit_code == 0
    assert run("check", logdir, "--select", "overfitting", "--fail-on", "warning").exit_code == 1
    assert run("check", healthy_logdir, "--fail-on", "warning").exit_code == 0


def test_usage_and_input_errors_exit_2(logdir, tmp_path):
    assert run("check", tmp_path / "missing").exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("check", empty).exit_code == 2
    bad_select = run("check", logdir, "--select", "Z999")
    assert bad_select.exit_code == 2
    assert "matches no detector" in bad_select.output
    bad_role = run("check", logdir, "--role", "val_loss")
    assert bad_role.exit_code == 2
    assert "NAME=REGEX" in bad_role.output
    assert run("check", logdir, "--fail-on", "sometimes").exit_code == 2
    assert run("check", logdir, "--format", "xml").exit_code == 2


def test_json_matches_the_schema(logdir):
    result = run("check", logdir, "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 3
    assert doc["logdir"] == str(logdir)
    assert [r["run"] for r in doc["runs"]] == ["exp/healthy", "exp/nan", "exp/overfit"]
    for r in doc["runs"]:
        assert set(r) == {"run", "status", "kind", "assessed", "reason", "skipped"}
        assert r["status"] in {"healthy", "not-assessed", "info", "warning", "error"}
        assert r["kind"] == "supervised"
        assert r["assessed"] is True
        assert r["reason"] == ""
        for s in r["skipped"]:
            assert set(s) == {"code", "name", "reason"}
            assert s["reason"]
    statuses = {r["run"]: r["status"] for r in doc["runs"]}
    assert statuses == {"exp/healthy": "healthy", "exp/nan": "error", "exp/overfit": "warning"}
    required = {"run", "code", "name", "severity", "message", "step", "evidence", "advice"}
    required |= {"problem", "strength", "observed", "limit", "step_range", "marks"}
    problems = {f["name"]: f["problem"] for f in doc["findings"]}
    assert problems["non-finite-loss"] == "non-finite-loss"
    assert problems["overfitting"] == "overfitting"
    for f in doc["findings"]:
        assert required <= set(f)
        assert f["run"] in statuses
        assert isinstance(f["evidence"], dict)
        assert f["advice"]
        assert f["observed"] is None or isinstance(f["observed"], float)
        assert f["limit"] is None or isinstance(f["limit"], float)
        assert f["step_range"] is None or f["step_range"][0] <= f["step_range"][1]
        for mark in f["marks"]:
            assert mark["kind"] in {"point", "vline", "band", "hline"}
            assert mark["tag"] in f["tags"]
    overfit = next(f for f in doc["findings"] if f["name"] == "overfitting")
    assert overfit["observed"] >= overfit["limit"] == 0.1
    assert "step_range" not in overfit["evidence"]
    names = {(f["run"], f["name"]) for f in doc["findings"]}
    assert ("exp/nan", "non-finite-loss") in names
    assert ("exp/overfit", "overfitting") in names


def test_csv_has_one_row_per_finding(logdir):
    result = run("check", logdir, "--format", "csv", "--fail-on", "never")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows
    assert set(rows[0]) >= {
        "run",
        "code",
        "name",
        "severity",
        "message",
        "step",
        "evidence",
        "advice",
        "observed",
        "limit",
        "step_start",
        "step_end",
    }
    json_doc = json.loads(run("check", logdir, "-f", "json", "--fail-on", "never").stdout)
    assert len(rows) == len(json_doc["findings"])
    assert all(isinstance(json.loads(r["evidence"]), dict) for r in rows)
    overfit = next(r for r in rows if r["name"] == "overfitting")
    assert float(overfit["observed"]) >= float(overfit["limit"]) == 0.1
    assert int(overfit["step_start"]) == int(overfit["step"]) <= int(overfit["step_end"])


def test_text_groups_by_run_and_ends_with_a_summary(logdir):
    result = run("check", logdir, "--fail-on", "never")
    text = result.output
    assert "\x1b[" not in text, "no colour when stdout is not a terminal"
    assert text.index("exp/nan") < text.index("exp/overfit")
    assert "L104 error" in text
    assert "non-finite-loss" in text
    assert "healthy (1 run):\n  exp/healthy\n" in text
    last = text.strip().splitlines()[-1]
    assert "finding" in last
    assert "of 3 runs" in last
    coloured = run("check", logdir, "--fail-on", "never", "--color").output
    assert "\x1b[" in coloured


def test_verbose_lists_skipped_detectors_and_roles(logdir):
    text = run("check", logdir, "-v", "--fail-on", "never", "--role", "pred_std=absent").output
    assert "skipped P301 collapsed-predictions: no tag matched role pred_std" in text
    assert "roles: train_loss=" in text


def test_select_and_ignore_accept_codes_names_and_prefixes(logdir):
    def names(*args):
        doc = json.loads(run("check", logdir, "-f", "json", "--fail-on", "never", *args).stdout)
        return {f["name"] for f in doc["findings"]}, doc

    assert names("--select", "L104")[0] == {"non-finite-loss"}
    assert names("--select", "overfitting,non-finite-loss")[0] == {"overfitting", "non-finite-loss"}
    found, _ = names("--ignore", "L1")
    assert not {n for n in found if n in {"overfitting", "non-finite-loss"}}
    _only_gradients, doc = names("--select", "G")
    assert all(s["code"].startswith("G") for r in doc["runs"] for s in r["skipped"])


def test_role_option_points_a_role_at_a_custom_tag(tmp_path):
    curves = make_curves("overfitting", seed=8)
    write_run(tmp_path, "custom", "puffin", curves)
    # Without validation loss under its usual name, overfitting is skipped...
    args = [
        "check",
        tmp_path,
        "-f",
        "json",
        "--fail-on",
        "never",
        "--select",
        "overfitting",
        "--role",
        "val_loss=nothing_matches_this",
    ]
    doc = json.loads(run(*args).stdout)
    assert doc["findings"] == []
    assert doc["runs"][0]["skipped"][0]["reason"] == "no tag matched role val_loss"
    # ...and pointing the role at the right tag finds it.
    args[-1] = "val_loss=VAL_LOSS"
    doc = json.loads(run(*args).stdout)
    assert [f["name"] for f in doc["findings"]] == ["overfitting"]


def test_config_file_in_the_working_directory_is_used_and_cli_wins(logdir, tmp_path, monkeypatch):
    (tmp_path / "tbreport.toml").write_text(
        'select = ["overfitting"]\nfail-on = "warning"\n\n'
        "[detectors.overfitting]\nmin_rise = 50.0\n"
    )
    monkeypatch.chdir(tmp_path)
    assert run("check", logdir).exit_code == 0, "min_rise 50 hides the overfitting"
    assert run("check", logdir, "--config", tmp_path / "tbreport.toml").exit_code == 0
    (tmp_path / "tbreport.toml").write_text('select = ["overfitting"]\nfail-on = "warning"\n')
    assert run("check", logdir).exit_code == 1
    assert run("check", logdir, "--fail-on", "error").exit_code == 0
    (tmp_path / "tbreport.toml").write_text("[detectors.overfitting]\nmin_ris = 1\n")
    bad = run("check", logdir)
    assert bad.exit_code == 2
    assert "no parameter 'min_ris'" in bad.output


def test_rules_without_argument_is_a_short_table():
    result = run("rules")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    for detector in ALL_DETECTORS:
        row = next(line for line in lines if line.startswith(detector.code + " "))
        assert detector.name in row
        assert detector.severity.value in row
    assert "What it detects:" not in result.output
    assert len(lines) == len(ALL_DETECTORS) + 1


def test_rules_accept_a_code_prefix_like_select():
    result = run("rules", "L1")
    codes = [d.code for d in ALL_DETECTORS if d.code.startswith("L1")]
    assert result.exit_code == 0
    assert len(codes) > 1
    for code in codes:
        assert f"\n{code} " in "\n" + result.output
    assert "G201" not in result.output


def test_rules_document_every_detector(logdir):
    result = run("rules", "all")
    assert result.exit_code == 0
    for detector in ALL_DETECTORS:
        assert f"{detector.code} {detector.name}" in result.output
    for heading in ("What it detects:", "Why it matters:", "What to do:", "Example:"):
        assert result.output.count(heading) == len(ALL_DETECTORS)


def test_rules_for_one_detector_by_code_or_name():
    by_code = run("rules", "L101").output
    by_name = run("rules", "overfitting").output
    assert by_code == by_name
    assert by_code.startswith("L101 overfitting (warning)")
    assert "min_rise = 0.1" in by_code
    assert "Parameters" in by_code
    doc = json.loads(run("rules", "G201", "--format", "json").output)
    assert doc[0]["code"] == "G201"
    assert {p["name"] for p in doc[0]["params"]} >= {"growth_factor", "error_factor"}
    assert all(p["help"] for p in doc[0]["params"])
    missing = run("rules", "nope")
    assert missing.exit_code == 2
    assert "unknown detector" in missing.output


def test_help_for_both_commands():
    for command in ("check", "rules"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.output
