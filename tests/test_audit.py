"""``tbreport audit``: directories, tar.gz, zip, fsspec URLs, the process pool, Dask, the cache."""

from __future__ import annotations

import math
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tbreport
from tbreport.audit import AUDIT_FILES, audit, plan_units, write_audit
from tbreport.audit.cache import default_cache_dir
from tbreport.cli import cli
from tbreport.diagnosis import diagnose
from tbreport.outputs import DIR_MARKER
from tbreport.reading.sources import MemberRef, RunEntry
from tbreport.testing import (
    file_version_event,
    histogram_event,
    hparams_events,
    scalar_event,
    tensor_scalar_event,
    write_events,
)

WALL = 1_700_000_000.0


def _curves(directory: Path, *, steps: int, train, val, name: str = "1") -> Path:
    events = [file_version_event(wall_time=WALL)]
    for step in range(steps):
        events.append(scalar_event("train/loss", train(step), step=step, wall_time=WALL + step))
        events.append(scalar_event("val/loss", val(step), step=step, wall_time=WALL + step))
        events.append(scalar_event("lr", 0.01, step=step, wall_time=WALL + step))
    return write_events(directory / f"events.out.tfevents.{name}.host", events)


def make_runs(root: Path) -> Path:
    """A LOGDIR with every layout the audit must keep together, and some damage."""
    rng = np.random.default_rng(7)
    _curves(
        root / "exp_ok",
        steps=120,
        train=lambda s: float(np.exp(-s / 40) + 0.01 * rng.random()),
        val=lambda s: float(np.exp(-s / 40) + 0.05),
    )
    write_events(
        root / "exp_ok" / "1700000000.25" / "events.out.tfevents.2.host",
        hparams_events({"lr": 0.01, "optimizer": "adam"}, metrics=["val/loss"], wall_time=WALL),
    )
    _curves(
        root / "exp_overfit",
        steps=120,
        train=lambda s: float(np.exp(-s / 30)),
        val=lambda s: float(np.exp(-s / 30) + 0.05 + max(0, s - 50) * 0.02),
    )
    _curves(
        root / "exp_diverge",
        steps=80,
        train=lambda s: float(np.exp(-s / 30)) if s < 50 else float("nan"),
        val=lambda s: float(np.exp(-s / 30) + 0.05),
    )
    # Keras: one logical run in train/ and validation/, TF2 tensor scalars.
    for split, offset in (("train", 0.0), ("validation", 0.1)):
        events = [file_version_event(wall_time=WALL)]
        for epoch in range(30):
            events.append(
                tensor_scalar_event(
                    "epoch_loss",
                    float(1.0 / (epoch + 1) + offset),
                    step=epoch,
                    wall_time=WALL + 10 * epoch,
                    with_metadata=epoch == 0,
                )
            )
        write_events(root / "keras_run" / split / "events.out.tfevents.3.host", events)
    # add_scalars: the parent writer plus one directory per series.
    parent = [file_version_event(wall_time=WALL)]
    parent += [scalar_event("lr", 0.1, step=s, wall_time=WALL + s) for s in range(40)]
    write_events(root / "sweep" / "trial_3" / "events.out.tfevents.4.host", parent)
    for series, bias in (("train", 0.0), ("validation", 0.2)):
        events = [file_version_event(wall_time=WALL)]
        events += [
            scalar_event("Loss", float(2.0 / (s + 1) + bias), step=s, wall_time=WALL + s)
            for s in range(40)
        ]
        write_events(
            root / "sweep" / "trial_3" / f"Loss_{series}" / "events.out.tfevents.5.host", events
        )
    # Lightning: hparams.yaml next to the event file, with a python tag.
    lightning = root / "lightning" / "version_0"
    _curves(lightning, steps=60, train=lambda s: 1.0 / (s + 1), val=lambda s: 1.2 / (s + 1))
    (lightning / "hparams.yaml").write_text(
        "batch_size: 64\nlayers: !!python/tuple [3, 4]\nmodel:\n  width: 128\n", encoding="utf-8"
    )
    # Histograms.
    events = [file_version_event(wall_time=WALL)]
    for step in range(10):
        events.append(
            histogram_event(
                "weights/dense", rng.normal(0, 1, 500), step=step, wall_time=WALL + step
            )
        )
        events.append(scalar_event("loss", 1.0 / (step + 1), step=step, wall_time=WALL + step))
    write_events(root / "with_hist" / "events.out.tfevents.6.host", events)
    # A damaged file: the last record cut in half.
    damaged = _curves(
        root / "damaged", steps=50, train=lambda s: 1.0 / (s + 1), val=lambda s: 1.1 / (s + 1)
    )
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) - 20])
    return root


def tar_of(root: Path, target: Path, mode: str = "w:gz") -> Path:
    with tarfile.open(target, mode) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=path.relative_to(root).as_posix())
    return target


def zip_of(root: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return target


EXPECTED_RUNS = {
    "damaged",
    "exp_diverge",
    "exp_ok",
    "exp_overfit",
    "keras_run",
    "lightning/version_0",
    "sweep/trial_3",
    "with_hist",
}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    return make_runs(tmp_path_factory.mktemp("audit") / "runs")


@pytest.fixture(scope="module")
def archives(logdir: Path, tmp_path_factory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("archives")
    return {
        "tar.gz": tar_of(logdir, where / "runs.tar.gz"),
        "tar": tar_of(logdir, where / "runs.tar", mode="w"),
        "zip": zip_of(logdir, where / "runs.zip"),
    }


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never touch the user's cache, even when a test forgets cache_dir.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="module")
def directory_frame(logdir: Path, tmp_path_factory) -> pd.DataFrame:
    result = audit([logdir], jobs=1, use_cache=False)
    return result.frame()


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows without the source column, in a comparable form."""
    return frame.drop(columns=["source"]).astype(object).where(frame.notna(), None)


def _assert_same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    a, b = _rows(left), _rows(right)
    assert list(a.columns) == list(b.columns)
    assert list(a["run"]) == list(b["run"])
    for column in a.columns:
        for x, y, run in zip(a[column], b[column], a["run"], strict=True):
            if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
                assert math.isnan(y), (column, run)
            else:
                assert x == y, (column, run, x, y)


# ---------------------------------------------------------------------------------------------
# What an audit finds


def test_directory_audit_has_one_row_per_logical_run(directory_frame):
    frame = directory_frame
    assert set(frame["run"]) == EXPECTED_RUNS
    assert len(frame) == len(EXPECTED_RUNS)
    keras = frame.set_index("run").loc["keras_run"]
    assert keras["run_dirs"] == "keras_run/train; keras_run/validation"
    assert keras["files"] == 2
    sweep = frame.set_index("run").loc["sweep/trial_3"]
    assert set(sweep["run_dirs"].split("; ")) == {
        "sweep/trial_3",
        "sweep/trial_3/Loss_train",
        "sweep/trial_3/Loss_validation",
    }
    ok = frame.set_index("run").loc["exp_ok"]
    assert ok["hparam:lr"] == pytest.approx(0.01)
    assert ok["hparam:optimizer"] == "adam"
    assert ok["session_status"] == "success"
    assert "exp_ok/1700000000.25" in ok["run_dirs"]
    lightning = frame.set_index("run").loc["lightning/version_0"]
    assert lightning["hparam:batch_size"] == 64
    assert lightning["hparam:model/width"] == 128
    assert frame.set_index("run").loc["with_hist", "histogram_tags"] == 1


def test_audit_agrees_with_read_and_diagnose(logdir, directory_frame):
    """Auditing unit by unit gives what reading and diagnosing everything at once gives."""
    read = tbreport.read(logdir, jobs=1)
    diagnosis = diagnose(read)
    frame = directory_frame.set_index("run")
    statuses = {r.run: r.status for r in diagnosis.runs}
    assert set(statuses) == set(frame.index)
    for run, status in statuses.items():
        assert frame.loc[run, "status"] == status, run
    counts = diagnosis.to_frame().groupby(["run", "severity"]).size()
    for (run, severity), n in counts.items():
        column = {"error": "errors", "warning": "warnings", "info": "infos"}[severity]
        assert frame.loc[run, column] == n
    scalars = read.logical_scalars()
    val = scalars[(scalars["run"] == "exp_overfit") & (scalars["tag"] == "val/loss")]
    best = val.loc[val["value"].idxmin()]
    assert frame.loc["exp_overfit", "best_val_loss"] == pytest.approx(best["value"])
    assert frame.loc["exp_overfit", "best_val_step"] == best["step"]
    exp_ok = scalars[scalars["run"] == "exp_ok"]
    assert frame.loc["exp_ok", "steps"] == exp_ok["step"].nunique()
    assert frame.loc["exp_ok", "duration_s"] == pytest.approx(
        exp_ok["wall_time"].max() - exp_ok["wall_time"].min()
    )
    inventory = read.runs.groupby("logical_run")["bytes"].sum()
    for run, size in inventory.items():
        assert frame.loc[run, "bytes"] == size


def test_findings_and_integrity_columns(directory_frame):
    frame = directory_frame.set_index("run")
    assert frame.loc["exp_diverge", "status"] == "error"
    assert frame.loc["exp_diverge", "errors"] >= 1
    assert math.isnan(frame.loc["exp_diverge", "final_train_loss"])  # it ended in NaN
    assert "overfitting" in frame.loc["exp_overfit", "findings"]
    assert frame.loc["damaged", "integrity_problems"] >= 1
    assert frame.loc["damaged", "integrity"]
    assert frame.loc["exp_ok", "integrity_problems"] == 0
    assert frame.loc["exp_ok", "first_wall_time"] == "2023-11-14T22:13:20Z"


# ---------------------------------------------------------------------------------------------
# Every kind of source gives the same rows


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_archives_give_the_directory_rows(kind, archives, directory_frame):
    result = audit([archives[kind]], jobs=1, use_cache=False)
    assert set(result.frame()["source"]) == {str(archives[kind])}
    _assert_same_rows(directory_frame, result.frame())


def test_fsspec_urls_give_the_directory_rows(logdir, archives, directory_frame):
    for url in (logdir.as_uri(), archives["tar.gz"].as_uri()):
        result = audit([url], jobs=1, use_cache=False)
        _assert_same_rows(directory_frame, result.frame())


def test_process_pool_gives_the_same_rows(archives, directory_frame):
    result = audit([archives["tar.gz"]], jobs=2, use_cache=False)
    _assert_same_rows(directory_frame, result.frame())


def test_unknown_fsspec_protocol_is_a_clear_error(tmp_path):
    with pytest.raises(tbreport.errors.InputError, match="protocol"):
        audit(["nosuchprotocol://bucket/runs"], use_cache=False)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_rows(archives, directory_frame):
    distributed = pytest.importorskip("distributed")
    from tbreport.reading import sources

    opened_here = sources.archive_opens
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        for kind in ("tar.gz", "zip"):
            result = audit([archives[kind]], scheduler=cluster.scheduler_address, use_cache=False)
            _assert_same_rows(directory_frame, result.frame())
        with distributed.Client(cluster) as client:
            opens = client.run(
                lambda: __import__("tbreport.reading.sources").reading.sources.archive_opens
            )
    # The workers read the archives themselves; this process only listed them.
    assert sources.archive_opens == opened_here
    assert len(opens) == 2, opens
    assert all(n >= 1 for n in opens.values()), opens
    # --executor dask without a scheduler starts (and stops) a local cluster of its own.
    result = audit([archives["tar"]], executor="dask", jobs=2, use_cache=False)
    _assert_same_rows(directory_frame, result.frame())


# ---------------------------------------------------------------------------------------------
# Units


def _entry(name: str) -> RunEntry:
    return RunEntry(name=name, files=[MemberRef(f"{name}/events.out.tfevents.1", 1, "", name)])


def test_plan_units_keeps_logical_runs_together_and_sweeps_apart():
    runs = [
        _entry(n)
        for n in (
            "a/train",
            "a/validation",
            "b",
            "b/Loss_train",
            "b/1700000000.5",
            "c",
            "d",
        )
    ]
    units = [[r.name for r in unit] for unit in plan_units(runs)]
    assert ["a/train", "a/validation"] in units
    assert ["b", "b/Loss_train", "b/1700000000.5"] in units
    assert ["c"] in units
    assert ["d"] in units
    # A run with a whole sweep of runs beneath it is not one giant unit.
    sweep = [_entry("root")] + [_entry(f"root/run_{i}") for i in range(100)]
    assert max(len(u) for u in plan_units(sweep)) == 1


def test_series_split_across_units_are_merged(tmp_path):
    """add_scalars series whose parent holds no event file are found after reading."""
    root = tmp_path / "runs"
    for series in ("train", "validation"):
        events = [file_version_event(wall_time=WALL)]
        events += [
            scalar_event("Loss", 1.0 / (s + 1), step=s, wall_time=WALL + s) for s in range(20)
        ]
        write_events(root / "exp" / f"Loss_{series}" / "events.out.tfevents.1.host", events)
    result = audit([root], jobs=1, cache_dir=tmp_path / "cache")
    frame = result.frame()
    assert list(frame["run"]) == ["exp"]
    assert frame.loc[0, "run_dirs"] == "exp/Loss_train; exp/Loss_validation"
    again = audit([root], jobs=1, cache_dir=tmp_path / "cache")
    assert again.stats.audited_units == 0
    _assert_same_rows(frame, again.frame())


# ---------------------------------------------------------------------------------------------
# Cache


def test_second_audit_of_an_unchanged_archive_reads_nothing(archives, tmp_path, directory_frame):
    archive = tmp_path / "copy.tar.gz"
    archive.write_bytes(archives["tar.gz"].read_bytes())
    cache = tmp_path / "cache"
    first = audit([archive], jobs=1, cache_dir=cache)
    assert first.stats.cached_units == 0
    assert first.stats.audited_units == first.stats.units
    assert any(cache.rglob("*.parquet"))
    # Same size and modification time, but no longer a readable archive: only a cache that
    # opens nothing can still answer.
    st = archive.stat()
    archive.write_bytes(b"\0" * st.st_size)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = audit([archive], jobs=1, cache_dir=cache)
    assert second.stats.cached_units == second.stats.units
    assert second.stats.audited_units == 0
    _assert_same_rows(directory_frame, second.frame())
    with pytest.raises(tbreport.errors.InputError):
        audit([archive], jobs=1, use_cache=False)


def test_cache_reaudits_only_what_changed(logdir, tmp_path):
    root = tmp_path / "runs"
    make_runs(root)
    cache = tmp_path / "cache"
    first = audit([root], jobs=1, cache_dir=cache)
    # Append a run's worth of points to one event file.
    target = next((root / "exp_ok").glob("events.out.tfevents.*"))
    with open(target, "ab") as handle:
        from tbreport.testing import frame

        handle.write(
            frame(
                scalar_event("val/loss", 0.001, step=500, wall_time=WALL + 500).SerializeToString()
            )
        )
    second = audit([root], jobs=1, cache_dir=cache)
    assert second.stats.audited_units == 1
    assert second.stats.cached_units == first.stats.units - 1
    # The superseded summary is dropped: the cache holds exactly the current units.
    import pyarrow.parquet as pq

    parts = list(cache.rglob("units-*.parquet"))
    assert len(parts) == 1
    assert pq.read_table(parts[0]).num_rows == second.stats.units
    row = second.frame().set_index("run").loc["exp_ok"]
    assert row["best_val_loss"] == pytest.approx(0.001)
    assert row["best_val_step"] == 500
    # A different diagnosis configuration is a different audit.
    from tbreport.diagnosis.config import Config

    third = audit([root], jobs=1, cache_dir=cache, config=Config(select=("L101",)))
    assert third.stats.cached_units == 0


def test_no_cache_writes_no_cache(logdir, tmp_path):
    cache = tmp_path / "cache"
    audit([logdir], jobs=1, cache_dir=cache, use_cache=False)
    assert not cache.exists()


def test_default_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "tbreport"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tbreport"


def test_first_audit_holds_what_its_cached_reaudit_gives(logdir, tmp_path):
    cache = tmp_path / "cache"
    first = audit([logdir], jobs=1, cache_dir=cache)
    second = audit([logdir], jobs=1, cache_dir=cache)
    assert first.stats.audited_units > 0
    assert second.stats.audited_units == 0
    # Value for value, types included (repr: NaN equals NaN).
    assert repr(first.runs) == repr(second.runs)


def _fixed_stamp(monkeypatch):
    import tbreport.audit.cache as audit_cache

    monkeypatch.setattr(audit_cache, "stamp_text", lambda when=None: "STAMP")


def _count_renders(monkeypatch) -> list[int]:
    import tbreport.audit.render as audit_render

    calls: list[int] = []
    real = audit_render.render_audit_page

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(audit_render, "render_audit_page", counted)
    return calls


def test_writing_an_unchanged_result_again_renders_nothing(logdir, tmp_path, monkeypatch):
    from tbreport.audit.cache import volatile_values
    from tbreport.audit.render import render_audit_page
    from tbreport.report.csvsafe import write_csv

    _fixed_stamp(monkeypatch)
    renders = _count_renders(monkeypatch)
    cache = tmp_path / "cache"
    first = audit([logdir], jobs=1, cache_dir=cache)
    write_audit(first, tmp_path / "first")
    assert len(renders) == 1
    again = audit([logdir], jobs=1, cache_dir=cache)
    write_audit(again, tmp_path / "again")
    assert len(renders) == 1  # the kept files were written
    # What was written is what rendering the re-audit gives, with its own count of cached
    # units and time stamp.
    html = (tmp_path / "again" / "audit.html").read_text()
    assert html == render_audit_page(again, volatile=volatile_values(again))
    units = again.stats.units
    assert f"{units} of {units} units from the cache" in html
    assert "0 of" in (tmp_path / "first" / "audit.html").read_text()
    assert "tbreport-" not in html  # no placeholder left
    frame = again.frame()
    for column in ("duration_s", "best_val_loss", "final_train_loss", "final_val_loss"):
        frame[column] = [
            "NaN" if isinstance(v, float) and math.isnan(v) else v for v in frame[column]
        ]
    expected = write_csv(frame, tmp_path / "expected.csv").read_bytes()
    assert (tmp_path / "again" / "audit.csv").read_bytes() == expected


def test_a_changed_result_or_a_damaged_entry_renders_again(logdir, tmp_path, monkeypatch):
    renders = _count_renders(monkeypatch)
    cache = tmp_path / "cache"
    result = audit([logdir], jobs=1, cache_dir=cache)
    write_audit(result, tmp_path / "out")
    assert len(renders) == 1
    # A caller who edits the result gets the edit written, not the kept page.
    result.runs[0][1].run = "renamed-run"
    write_audit(result, tmp_path / "out")
    assert len(renders) == 2
    assert "renamed-run" in (tmp_path / "out" / "audit.html").read_text()
    assert "renamed-run" in (tmp_path / "out" / "audit.csv").read_text()
    # A truncated entry is a miss, and is replaced.
    entries = list((cache / "audit-v1" / "outputs").glob("*.bin"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:100])
    write_audit(result, tmp_path / "out")
    assert len(renders) == 3
    assert "renamed-run" in (tmp_path / "out" / "audit.html").read_text()
    write_audit(result, tmp_path / "out")
    assert len(renders) == 3


def test_kept_audit_files_are_pruned(logdir, tmp_path):
    from tbreport.audit import cache as audit_cache

    cache = tmp_path / "cache"
    result = audit([logdir], jobs=1, cache_dir=cache)
    for i in range(audit_cache._KEEP_OUTPUTS + 3):
        result.runs[0][1].run = f"run-{i}"
        write_audit(result, tmp_path / "out")
    entries = list((cache / "audit-v1" / "outputs").glob("*.bin"))
    assert len(entries) == audit_cache._KEEP_OUTPUTS


def test_without_cache_nothing_is_kept(logdir, tmp_path):
    result = audit([logdir], jobs=1, cache_dir=tmp_path / "cache", use_cache=False)
    assert result.cache_dir is None
    write_audit(result, tmp_path / "out")
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------------------------------------
# Outputs and the command line


def test_write_audit_writes_csv_and_linked_html(logdir, tmp_path):
    result = audit([logdir], jobs=1, use_cache=False)
    out = tmp_path / "out"
    written = write_audit(result, out)
    assert sorted(p.name for p in written) == sorted(AUDIT_FILES)
    assert (out / DIR_MARKER).is_file()
    csv = pd.read_csv(out / "audit.csv")
    assert list(csv["run"]) == list(result.frame()["run"])
    diverge = csv.set_index("run").loc["exp_diverge"]
    assert math.isnan(diverge["final_train_loss"])
    assert (out / "audit.csv").read_text().count("NaN") >= 1
    html = (out / "audit.html").read_text()
    assert '<meta name="generator" content="tbreport' in html
    for index, (_, summary) in enumerate(result.runs):
        if summary.findings:
            assert f'href="#run-{index}"' in html
            assert f'id="run-{index}"' in html
            for finding in summary.findings:
                assert finding["code"] in html


def test_cli_audit(logdir, archives, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["audit", str(logdir), str(archives["zip"]), "-o", str(out), "--jobs", "1"]
    result = runner.invoke(cli, [*args, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "audit.csv")
    assert len(frame) == 2 * len(EXPECTED_RUNS)
    assert set(frame["source"]) == {str(logdir), str(archives["zip"])}
    assert "auditing runs" not in result.output  # no progress bar without a terminal
    assert "audited 16 runs from 2 sources" in result.output
    assert "(0 of 16 units from the cache)" in result.output
    # Again: everything comes from the cache.
    result = runner.invoke(cli, [*args, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "(16 of 16 units from the cache)" in result.output


def test_cli_errors_exit_2(tmp_path, logdir):
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", str(tmp_path / "missing"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = runner.invoke(cli, ["audit", str(logdir), "-o", str(foreign), "--no-cache"])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert (foreign / "notes.txt").read_text() == "mine"
    result = runner.invoke(
        cli, ["audit", str(logdir), "-o", str(tmp_path / "o"), "--max-member-bytes", "lots"]
    )
    assert result.exit_code == 2


def test_parse_size():
    from tbreport.cli.audit import parse_size

    assert parse_size("2GiB") == 2 << 30
    assert parse_size("500MB") == 500_000_000
    assert parse_size("1.5k") == 1500
    assert parse_size("1024") == 1024
    with pytest.raises(ValueError, match="not a size"):
        parse_size("big")


def test_summaries_are_small(archives):
    """The audit keeps summaries, not points: nothing array-like survives a unit."""
    result = audit([archives["zip"]], jobs=1, use_cache=False)
    for _, summary in result.runs:
        for value in (*summary.values.values(), *summary.hparams.values()):
            assert value is None or isinstance(value, (bool, int, float, str)), value
        assert len(repr(summary)) < 20_000


def test_tar_with_directory_entries_and_dot_prefixes(tmp_path):
    """`tar czf x.tgz -C runs .` stores ./-prefixed names and directory entries."""
    root = make_runs(tmp_path / "runs")
    archive = tmp_path / "dotted.tgz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(root, arcname=".")
    with tarfile.open(archive) as handle:
        assert any(name.startswith("./exp_ok/") for name in handle.getnames())
    frame = audit([archive], jobs=1, use_cache=False).frame()
    assert set(frame["run"]) == EXPECTED_RUNS


def test_a_source_without_runs_is_reported(logdir, tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as handle:
        handle.writestr("notes/readme.txt", "no runs here")
    result = audit([logdir, empty], jobs=1, use_cache=False)
    assert {source for source, _ in result.runs} == {str(logdir)}
    assert [(w.kind, w.path) for w in result.warnings] == [("no-runs", str(empty))]
    with pytest.raises(tbreport.errors.InputError, match="no TensorBoard event files"):
        audit([empty], jobs=1, use_cache=False)
