"""Units of a batch audited together: the same summaries as unit by unit, failures kept to their
unit, memory bounded by bytes."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from audit_batch_runs import make_batch_runs
from test_audit import tar_of

from tbreport.audit import audit, executor, plan_units
from tbreport.audit import summary as summary_module
from tbreport.audit.summary import _hparams_by_run, _unit_hparams, audit_unit, audit_units
from tbreport.reading.hparams import HparamRecord, single_run_row, wide_table
from tbreport.reading.sources import MemberRef, RunEntry, list_source, resolve_source
from tbreport.testing import file_version_event, scalar_event, write_events


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    return make_batch_runs(tmp_path_factory.mktemp("batch") / "runs")


@pytest.fixture(scope="module")
def archive(logdir: Path, tmp_path_factory) -> Path:
    return tar_of(logdir, tmp_path_factory.mktemp("batch-archive") / "runs.tar.gz")


def _exact(value: Any) -> Any:
    """A summary as comparable text: NaN equals NaN, 3 differs from 3.0."""

    def walk(x: Any) -> Any:
        if isinstance(x, float):
            return ["float", repr(x)]
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        return x

    return json.dumps(walk(value), sort_keys=True)


def _units(path: Path) -> tuple[Any, list[tuple[str, list[RunEntry]]]]:
    spec = resolve_source(str(path))
    units = plan_units(list_source(spec).runs)
    return spec, [(f"unit-{i}", unit) for i, unit in enumerate(units)]


@pytest.mark.parametrize("kind", ["directory", "tar.gz"])
def test_units_read_together_get_what_each_gets_alone(kind, logdir, archive):
    spec, units = _units(logdir if kind == "directory" else archive)
    together = audit_units(spec, units)
    alone = {key: audit_unit(spec, runs) for key, runs in units}
    # Only the units whose logical run spans units are left to be audited alone.
    left_out = {key for key, _ in units} - set(together)
    spanning = {key for key, runs in units if runs[0].name.split("/")[0] in ("orphan", "wide")}
    assert left_out == spanning
    assert len(together) == 18
    for key, summaries in together.items():
        assert _exact([s.to_dict() for s in summaries]) == _exact(
            [s.to_dict() for s in alone[key]]
        ), key
    runs = {s.run: s for summaries in together.values() for s in summaries}
    # What the fixture is for: each of these must survive the combined read unchanged.
    assert runs["alpha"].run_dirs == ["alpha", "alpha/1700000000.25"]
    assert runs["alpha"].values["session_status"] == "success"
    assert runs["alpha"].hparams["batch_size"] == 64.0
    assert runs["keras"].run_dirs == ["keras/train", "keras/validation"]
    assert math.isnan(runs["nan_run"].values["final_train_loss"])
    assert {p["kind"] for p in runs["damaged"].problems} == {"truncated-record"}
    assert runs["garbage"].problems
    assert runs["empty"].problems
    assert runs["lightning/version_2"].problems[0]["kind"] == "hparams-yaml"
    assert runs["hf"].hparams["num_train_epochs"] == 3
    # One unit, two logical runs with hyperparameters: one table, whose lr column is float.
    assert runs["lightning/version_0"].hparams["lr"] == 3.0
    assert isinstance(runs["lightning/version_0"].hparams["lr"], float)
    assert runs["lightning/version_0/finetune"].hparams == {"lr": 0.5}
    # A unit of its own: its int stays an int.
    assert runs["lightning/version_1"].hparams == {"lr": 7, "name": "small"}
    assert isinstance(runs["lightning/version_1"].hparams["lr"], int)


def _summaries(result) -> list[str]:
    return [_exact([source, summary.to_dict()]) for source, summary in result.runs]


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_size_does_not_change_the_audit(jobs, archive, monkeypatch):
    big = audit([archive], jobs=jobs, use_cache=False)
    monkeypatch.setattr(executor, "MAX_BATCH_UNITS", 1)
    small = audit([archive], jobs=jobs, use_cache=False)
    assert _summaries(big) == _summaries(small)
    assert big.frame().equals(small.frame())
    assert small.stats.audited_units == big.stats.audited_units


def test_a_failing_unit_in_a_batch_sinks_only_itself(archive, tmp_path, monkeypatch):
    healthy = audit([archive], jobs=1, use_cache=False)
    real = summary_module._values_row

    def failing(view, run_diagnosis, fact):
        if view is not None and view.run == "nan_run":
            raise ValueError("boom")
        return real(view, run_diagnosis, fact)

    monkeypatch.setattr(summary_module, "_values_row", failing)
    calls = {"together": 0}
    real_units = executor.audit_units

    def counted(*args, **kwargs):
        calls["together"] += 1
        return real_units(*args, **kwargs)

    monkeypatch.setattr(executor, "audit_units", counted)
    cache = tmp_path / "cache"
    broken = audit([archive], jobs=1, cache_dir=cache)
    assert calls["together"] >= 1  # the failing unit was in a batch of several
    by_run = dict(zip([s.run for _, s in broken.runs], _summaries(broken), strict=True))
    for (_, summary), text in zip(healthy.runs, _summaries(healthy), strict=True):
        if summary.run == "nan_run":
            continue
        assert by_run[summary.run] == text, summary.run
    failed = next(s for _, s in broken.runs if s.run == "nan_run")
    assert failed.values["status"] == "unaudited"
    assert [p["kind"] for p in failed.problems] == ["audit-failed"]
    assert "ValueError: boom" in failed.problems[0]["message"]
    # The failed unit is not cached: the next audit reads it, and only it, again.
    monkeypatch.setattr(summary_module, "_values_row", real)
    again = audit([archive], jobs=1, cache_dir=cache)
    assert again.stats.audited_units == 1
    assert _summaries(again) == _summaries(healthy)


def test_worker_killed_in_a_batch_of_units_loses_only_its_unit(tmp_path, monkeypatch):
    logdir = tmp_path / "logs"
    names = [f"good{i:02d}" for i in range(23)] + ["doomed"]
    for name in names:
        events = [file_version_event(wall_time=1.0)]
        events += [scalar_event("loss", 1.0 / (s + 1), step=s, wall_time=1.0 + s) for s in range(5)]
        write_events(logdir / name / "events.out.tfevents.1.h", events)

    def doomed(runs) -> bool:
        return any(run.name == "doomed" for run in runs)

    real_unit, real_units = executor.audit_unit, executor.audit_units

    def killing_unit(spec, runs, **kwargs):
        if doomed(runs):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unit(spec, runs, **kwargs)

    def killing_units(spec, units, **kwargs):
        if any(doomed(runs) for _, runs in units):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_units(spec, units, **kwargs)

    # Forked workers inherit the patches.
    monkeypatch.setattr(executor, "audit_unit", killing_unit)
    monkeypatch.setattr(executor, "audit_units", killing_units)
    result = audit([logdir], jobs=2, use_cache=False)
    status = {s.run: s.values.get("status") for _, s in result.runs}
    assert set(status) == set(names)
    assert status["doomed"] == "unaudited"
    assert all(status[name] != "unaudited" for name in names if name != "doomed"), status


def _unit(name: str, size: int) -> tuple[str, list[RunEntry]]:
    member = MemberRef(f"{name}/events.out.tfevents.1", size, "", name)
    return name, [RunEntry(name=name, files=[member])]


def test_units_are_read_together_only_up_to_the_group_bytes(monkeypatch):
    monkeypatch.setattr(executor, "GROUP_BYTES", 100)
    units = [_unit("a", 40), _unit("b", 40), _unit("c", 40), _unit("big", 500), _unit("d", 10)]
    groups = [[key for key, _ in group] for group in executor._read_groups(units)]
    assert groups == [["a", "b"], ["c"], ["big"], ["d"]]


@pytest.mark.parametrize(
    "value",
    [
        3,
        -(2**63),
        2**63 - 1,
        2**63,
        2**70,
        0.5,
        -0.0,
        math.inf,
        math.nan,
        None,
        True,
        False,
        "adam",
        "",
        "caf\u00e9",
        "\udcff",
    ],
    ids=repr,
)
def test_one_runs_hyperparameters_without_a_table_are_the_tables(value):
    records = [
        HparamRecord("r", "r/1700000000.5", "session_start_info", "hparam", "x", 1.0),
        HparamRecord("r", "r", "hparams.yaml", "hparam", "x", value),  # the plugin's x wins
        HparamRecord("r", "r", "hparams.yaml", "hparam", "y", "kept"),
        HparamRecord("r", "r/1700000000.5", "session_end_info", "status", "status", "S"),
        HparamRecord("r", "r", "hf-args", "hparam", "y", "lost"),
    ]
    _assert_as_the_table(records)
    records[1] = HparamRecord("r", "r", "hparams.yaml", "hparam", "z", value)
    _assert_as_the_table(records)


def _assert_as_the_table(records: list[HparamRecord]) -> None:
    runs = pd.DataFrame({"logical_run": ["r"]})
    try:
        expected = _hparams_by_run(wide_table(records, runs))
    except Exception as exc:  # the unit's own read fails: so must the shortcut
        assert single_run_row(records) is None
        with pytest.raises(type(exc)):
            _unit_hparams(records, ["r"])
        return
    assert _exact(_unit_hparams(records, ["r"])) == _exact(expected)


def test_hyperparameters_of_several_runs_of_a_unit_come_from_its_table():
    records = [
        HparamRecord("a", "a", "hparams.yaml", "hparam", "lr", 3),
        HparamRecord("b", "b", "hparams.yaml", "hparam", "lr", 0.5),
    ]
    assert single_run_row(records) is None
    got = _unit_hparams(records, ["a", "b"])
    assert _exact(got) == _exact(
        _hparams_by_run(wide_table(records, pd.DataFrame({"logical_run": ["a", "b"]})))
    )
    assert got["a"] == {"lr": 3.0}
    assert isinstance(got["a"]["lr"], float)
    # A name that is the table's own "run" column is left to the table too.
    clash = HparamRecord("b", "b", "hparams.yaml", "hparam", "run", "clash")
    assert single_run_row([clash]) is None
