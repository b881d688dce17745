"""`tbreport ls` and `tbreport export`, run as a user would (`python -m tbreport`, a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REALWORLD, ROOT
from reader_helpers import record_spans, scalar_series, tensor_series, write_run

from tbreport import testing
from tbreport.reading.discovery import discover_runs


def tbreport_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    env.pop("TBREPORT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "tbreport", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def tensorboard_point_counts(logdir: Path) -> dict[tuple[str, str], int]:
    """Scalar points per (run, tag) as TensorBoard's EventAccumulator loads them, unsampled."""
    from tensorboard.backend.event_processing import event_accumulator

    runs, _ = discover_runs(logdir)
    counts: dict[tuple[str, str], int] = {}
    guidance = {"scalars": 0, "tensors": 0, "histograms": 1, "images": 1, "audio": 1}
    for run in runs:
        acc = event_accumulator.EventAccumulator(run.directory, size_guidance=guidance)
        acc.Reload()
        tags = acc.Tags()
        for tag in tags["scalars"]:
            counts[(run.name, tag)] = len(acc.Scalars(tag))
        for tag in tags["tensors"]:
            if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
                counts[(run.name, tag)] = len(acc.Tensors(tag))
    return counts


def exported_counts(out: Path) -> dict[tuple[str, str], int]:
    frame = pd.read_csv(out / "scalars.csv", keep_default_na=False, dtype={"run": str, "tag": str})
    return {key: int(n) for key, n in frame.groupby(["run", "tag"], sort=False).size().items()}


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"conformance corpus not found at {REALWORLD}")
def test_export_realworld_point_counts_equal_tensorboard(tmp_path):
    out = tmp_path / "out"
    proc = tbreport_cli("export", REALWORLD, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    expected = tensorboard_point_counts(REALWORLD)
    assert sum(expected.values()) > 10_000
    assert exported_counts(out) == expected
    for name in (
        "scalars.csv",
        "histograms.csv",
        "hparams.csv",
        "runs.csv",
        "text.csv",
        "warnings.csv",
        "meanings.csv",
    ):
        assert (out / name).is_file(), name
    assert not (out / "scalars_wide.csv").exists()  # --wide was not asked for
    meanings = pd.read_csv(out / "meanings.csv")
    hf = meanings[meanings["run"] == "AguLeon__LoRA_RoBERTa_AGNews/runs/run0"].set_index("tag")
    assert hf.loc["eval/loss", "roles"] == "val_loss"
    assert hf.loc["train/loss", "split"] == "train"
    assert (meanings["kind"][meanings["run"].str.startswith("janosh")] == "unknown").all()
    warnings = pd.read_csv(out / "warnings.csv")
    truncated = warnings[warnings["kind"] == "truncated-record"]
    assert len(truncated) == 2  # the two cut-off files
    assert truncated["offset"].notna().all()


@pytest.fixture
def logdir(tmp_path):
    root = tmp_path / "runs"
    write_run(
        root / "exp1", scalar_series("loss", range(30)) + scalar_series("acc", range(0, 30, 10))
    )
    write_run(root / "exp1" / "validation", tensor_series("epoch_loss", range(3)), suffix=".v2")
    write_run(root / "exp2", scalar_series("loss", range(12)) + testing.hparams_events({"lr": 0.5}))
    return root


def test_ls_lists_runs_tags_and_counts(logdir):
    proc = tbreport_cli("ls", logdir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("exp1  [1 file, 33 scalars, 0 histograms]")
    loss_line = next(
        line for line in lines if line.strip().startswith("loss") and "steps 0..29" in line
    )
    assert "30 points" in loss_line
    assert any("part of exp1: keras-split validation" in line for line in lines)
    assert any(line.startswith("exp2") for line in lines)
    assert "hparams: 1 column for 1 run" in proc.stdout
    assert proc.stderr == ""


def test_ls_tags_filter_and_reference_engine(logdir):
    proc = tbreport_cli("ls", logdir, "--tags", "^acc$", "--engine", "accumulator")
    assert proc.returncode == 0, proc.stderr
    assert "acc" in proc.stdout
    assert "loss" not in proc.stdout


def test_export_writes_every_point(logdir, tmp_path):
    out = tmp_path / "export"
    proc = tbreport_cli("export", logdir, "-o", out, "--wide", "-j", "2")
    assert proc.returncode == 0, proc.stderr
    assert "48 scalar points" in proc.stdout
    scalars = pd.read_csv(out / "scalars.csv")
    assert list(scalars.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert len(scalars) == 30 + 3 + 3 + 12
    wide = pd.read_csv(out / "scalars_wide.csv")
    assert {"run", "step", "loss", "acc"} <= set(wide.columns)
    hparams = pd.read_csv(out / "hparams.csv")
    assert hparams.to_dict("records") == [{"run": "exp2", "lr": 0.5}]


def test_export_of_damaged_logdir_reports_warnings_with_offsets(logdir, tmp_path):
    path = next((logdir / "exp1").glob("*tfevents*"))
    data = bytearray(path.read_bytes())
    bad = record_spans(bytes(data))[5][0]
    data[bad + 14] ^= 0xFF
    path.write_bytes(bytes(data[:-3]))
    out = tmp_path / "export"
    proc = tbreport_cli("export", logdir, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "warnings while reading" in proc.stderr
    warnings = pd.read_csv(out / "warnings.csv")
    assert set(warnings["kind"]) == {"checksum-mismatch", "truncated-record"}
    assert bad in warnings["offset"].tolist()
    assert set(warnings["path"]) == {str(path)}


def cli_in_process(*args: str):
    """Exit code and output of the command line run in this process (for the quick error paths)."""
    from click.testing import CliRunner

    from tbreport.cli import cli

    outcome = CliRunner().invoke(cli, [str(a) for a in args])
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), outcome.exception
    return outcome.exit_code, outcome.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "no TensorBoard event files"),
    ],
    ids=["missing", "empty"],
)
def test_unusable_logdir_exits_2_with_one_line(tmp_path, make, message):
    code, output = cli_in_process("ls", make(tmp_path))
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) <= 3


def test_logdir_that_is_a_file_exits_2(tmp_path):
    path = tmp_path / "train.log"
    path.write_text("epoch 1 loss 0.3\n")
    code, output = cli_in_process("export", path, "-o", tmp_path / "out")
    assert code == 2
    assert "is a file, not a log directory" in output
    assert not (tmp_path / "out" / "scalars.csv").exists()


def test_invalid_tag_pattern_exits_2(logdir):
    code, output = cli_in_process("ls", logdir, "--tags", "([")
    assert code == 2
    assert "invalid tag pattern" in output
    assert "Traceback" not in output


def test_nothing_readable_exits_2_subprocess(tmp_path):
    bad = tmp_path / "run" / "events.out.tfevents.1.host"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00" * 64)
    proc = tbreport_cli("export", tmp_path, "-o", tmp_path / "out")
    assert proc.returncode == 2
    assert "nothing readable" in proc.stderr
    assert "Traceback" not in proc.stderr


def _write_scalars(directory: Path, series: dict[str, list[float]]) -> None:
    events = [testing.file_version_event()]
    for tag, values in series.items():
        events += [
            testing.scalar_event(tag, v, step=i, wall_time=1.0 + i) for i, v in enumerate(values)
        ]
    directory.mkdir(parents=True)
    testing.write_events(directory / "events.out.tfevents.1.host", events)


def test_ls_meaning_shows_kinds_roles_and_escapes_names(tmp_path):
    # A TF2 custom loop (train/ + test/ siblings, v_loss), an SB3 run and a hostile tag.
    falling = [1.0 / (i + 1) for i in range(10)]
    _write_scalars(tmp_path / "tf2" / "train", {"loss": falling, "accuracy": falling})
    _write_scalars(tmp_path / "tf2" / "test", {"v_loss": falling, "v_acc": falling})
    _write_scalars(
        tmp_path / "PPO_1",
        {"rollout/ep_rew_mean": falling, "train/value_loss": falling, "x\x1b[2Jy": falling},
    )
    proc = tbreport_cli("ls", "--meaning", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "tf2  [supervised]" in out
    assert "PPO_1  [reinforcement-learning]" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ")}
    assert "-> train_loss" in lines["train/loss"]
    assert "-> val_loss" in lines["test/v_loss"]  # the test split stands in for validation
    assert "-> reward" in lines["rollout/ep_rew_mean"]
    assert "\x1b" not in out
    assert "x\\x1b[2Jy" in out
