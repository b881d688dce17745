"""One input model and one output model for every verb: directories, archives and URLs in;
--runs, case-insensitive --tags, formats, -q, NO_COLOR, output checks before any work."""

from __future__ import annotations

import importlib.util
import json
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from test_report_support import make_demo_logdir

from tbreport.cli import cli

VERBS = ("ls", "export", "check", "report", "audit")


def run(*args, env=None, color=False):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, color=color)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    logdir = make_demo_logdir(root / "runs")
    files = sorted(p for p in logdir.rglob("*") if p.is_file())
    with tarfile.open(root / "runs.tar.gz", "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(logdir)))
    with tarfile.open(root / "runs.tar", "w") as tar:
        for path in files:
            tar.add(path, arcname=f"runs/{path.relative_to(logdir)}")
    with zipfile.ZipFile(root / "runs.zip", "w") as archive:
        for path in files:
            archive.write(path, arcname=str(path.relative_to(logdir)))
    return {
        "dir": logdir,
        "tar.gz": root / "runs.tar.gz",
        "tar": root / "runs.tar",
        "zip": root / "runs.zip",
        "url": logdir.resolve().as_uri(),
        "url-archive": (root / "runs.zip").resolve().as_uri(),
    }


def _points(source) -> dict[str, int]:
    """Logical run -> scalar points, from `ls --format json`."""
    result = run("ls", source, "--format", "json")
    assert result.exit_code == 0, result.output
    points: dict[str, int] = {}
    for entry in json.loads(result.output)["runs"]:
        name = entry["logical_run"].removeprefix("runs/")
        points[name] = points.get(name, 0) + entry["scalars"]
    return points


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip", "url", "url-archive"])
def test_ls_reads_archives_and_urls_like_the_directory(sources, kind):
    assert _points(sources[kind]) == _points(sources["dir"])


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "url"])
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_reads_archives_and_urls(sources, kind, verb, tmp_path):
    out = tmp_path / "out"
    args = {
        "ls": ["ls", sources[kind]],
        "export": ["export", sources[kind], "-o", out],
        "check": ["check", sources[kind], "--fail-on", "never"],
        "report": ["report", sources[kind], "-o", tmp_path / "r.html"],
        "audit": ["audit", sources[kind], "-o", out, "--no-cache", "-j", "1"],
    }[verb]
    result = run(*args)
    assert result.exit_code == 0, result.output
    if verb == "export":
        scalars = pd.read_csv(out / "scalars.csv")
        assert {"lstm_basic", "keras_mlp/train"} <= {r.removeprefix("runs/") for r in scalars.run}
    if verb == "check":
        assert "gru_nan" in result.output
    if verb == "report":
        assert "lstm_overfit" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_url_without_its_fsspec_backend_says_what_to_install():
    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed")
    for verb in ("ls", "check"):
        result = run(verb, "s3://bucket/runs")
        assert result.exit_code == 2
        assert "s3fs" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("verb", VERBS)
def test_runs_selects_runs_in_every_verb(sources, verb, tmp_path):
    out = tmp_path / "out"
    source = sources["tar.gz"] if verb == "audit" else sources["dir"]
    args = {
        "ls": ["ls", source, "--format", "csv"],
        "export": ["export", source, "-o", out],
        "check": ["check", source, "--format", "json", "--fail-on", "never"],
        "report": ["report", source, "--format", "csv", "-o", out],
        "audit": ["audit", source, "-o", out, "--no-cache", "-j", "1"],
    }[verb]
    result = run(*args, "--runs", "^LSTM")
    assert result.exit_code == 0, result.output
    if verb == "ls":
        names = set(pd.read_csv(pd.io.common.StringIO(result.output))["logical_run"])
    elif verb == "check":
        names = {r["run"] for r in json.loads(result.output)["runs"]}
    else:
        table = {"export": "runs.csv", "report": "summary.csv", "audit": "audit.csv"}[verb]
        frame = pd.read_csv(out / table)
        names = set(frame["logical_run"] if "logical_run" in frame else frame["run"])
    assert names == {"lstm_basic", "lstm_overfit"}, names
    nothing = run("ls", sources["dir"], "--runs", "^nothing$")
    assert nothing.exit_code == 2
    assert "no run" in nothing.output


def test_tags_are_case_insensitive_like_tensorboard(sources, tmp_path):
    result = run("export", sources["dir"], "-o", tmp_path / "e", "--tags", "loss|lr")
    assert result.exit_code == 0, result.output
    tags = set(pd.read_csv(tmp_path / "e" / "scalars.csv")["tag"])
    assert {"Loss/train", "Loss/validation", "epoch_loss"} <= tags
    assert "Learning_Rate" not in tags
    assert "Gradient/norm" not in tags
    listed = run("ls", sources["zip"], "--tags", "LEARNING", "--format", "csv")
    assert set(pd.read_csv(pd.io.common.StringIO(listed.output))["tag"]) == {"Learning_Rate"}


def test_ls_formats(sources):
    text = run("ls", sources["dir"]).output
    assert "lstm_basic  [1 file, " in text
    document = json.loads(run("ls", sources["dir"], "--format", "json").output)
    run_names = {r["run"] for r in document["runs"]}
    assert {"lstm_basic", "keras_mlp/train"} <= run_names
    tags = {t["tag"]: t for r in document["runs"] if r["run"] == "lstm_basic" for t in r["tags"]}
    assert tags["Loss/train"]["points"] == 120
    assert tags["Loss/train"]["last_step"] == 119
    table = pd.read_csv(pd.io.common.StringIO(run("ls", sources["dir"], "-f", "csv").output))
    assert list(table.columns) == [
        "run",
        "logical_run",
        "tag",
        "kind",
        "points",
        "first_step",
        "last_step",
    ]
    meaning = run("ls", sources["dir"], "--meaning")
    assert meaning.exit_code == 0
    assert "[supervised]" in meaning.output
    meanings = pd.read_csv(
        pd.io.common.StringIO(run("ls", sources["dir"], "--meaning", "-f", "csv").output)
    )
    assert {"run", "kind", "tag", "roles"} <= set(meanings.columns)
    records = json.loads(run("ls", sources["dir"], "--meaning", "-f", "json").output)
    assert {r["run"] for r in records} == set(meanings["run"])


def test_export_parquet_and_stale_files_are_removed(sources, tmp_path):
    out = tmp_path / "e"
    assert run("export", sources["dir"], "-o", out, "--wide").exit_code == 0
    assert (out / "scalars_wide.csv").is_file()
    assert run("export", sources["dir"], "-o", out).exit_code == 0
    assert not (out / "scalars_wide.csv").exists(), "a stale wide table must not stay"
    result = run("export", sources["dir"], "-o", out, "--format", "parquet")
    assert result.exit_code == 0, result.output
    assert not list(out.glob("*.csv"))
    scalars = pd.read_parquet(out / "scalars.parquet")
    assert len(scalars) == len(pd.read_parquet(out / "scalars.parquet")) > 0
    histograms = pd.read_parquet(out / "histograms.parquet")
    assert len(histograms.iloc[0]["bucket"]) > 0


def test_report_csv_bundle_drops_stale_export_files(sources, tmp_path):
    out = tmp_path / "bundle"
    assert run("export", sources["dir"], "-o", out, "--wide").exit_code == 0
    assert run("report", sources["dir"], "--format", "csv", "-o", out).exit_code == 0
    assert not (out / "scalars_wide.csv").exists()
    assert (out / "summary.csv").is_file()


def test_foreign_files_are_never_removed(sources, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "scalars_wide.csv").write_text("mine")
    (out / "notes.txt").write_text("mine")
    assert run("export", sources["dir"], "-o", out, "--force").exit_code == 0
    assert (out / "scalars_wide.csv").read_text() == "mine"


def test_quiet_prints_nothing(sources, tmp_path):
    for args in (
        ["export", sources["dir"], "-o", tmp_path / "e"],
        ["report", sources["dir"], "-o", tmp_path / "r.html"],
        ["audit", sources["zip"], "-o", tmp_path / "a", "--no-cache", "-j", "1"],
    ):
        result = run(*args, "-q")
        assert result.exit_code == 0, (args, result.output)
        assert result.output == "", (args, result.output)


@pytest.fixture
def damaged(tmp_path):
    logdir = make_demo_logdir(tmp_path / "runs")
    for i, path in enumerate(sorted(logdir.rglob("*tfevents*"))[:3]):
        data = path.read_bytes()
        path.write_bytes(data[:-5] if i else data + b"\x00" * 20)
    return logdir


def test_warnings_grouped_by_kind_with_counts_and_all_under_verbose(damaged):
    result = run("ls", damaged)
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.startswith("  - [")]
    header = next(line for line in result.output.splitlines() if "while reading" in line)
    assert "truncated-record" in header
    assert "warnings while reading" in header
    kinds = [line.split("]")[0] for line in lines]
    assert len(kinds) == len(set(kinds)), "one example per kind"
    verbose = run("ls", damaged, "-v")
    total = int(header.split("tbreport: ")[1].split(" ")[0])
    assert len([x for x in verbose.output.splitlines() if x.startswith("  - [")]) == total
    assert run("ls", damaged, "-q").output.count("while reading") == 0


def test_no_color_is_honoured(damaged):
    coloured = run("check", damaged, "--fail-on", "never", color=True)
    assert "\x1b[" in coloured.output
    plain = run("check", damaged, "--fail-on", "never", color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain.output
    assert "while reading" in plain.output


def test_report_to_standard_output(sources):
    result = CliRunner().invoke(cli, ["report", str(sources["dir"]), "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert result.stdout.rstrip().endswith("</html>")
    assert "standard output" in result.stderr
    refused = run("export", sources["dir"], "-o", "-")
    assert refused.exit_code == 2
    assert "standard output" in refused.output


@pytest.mark.parametrize(
    "verb_args",
    [
        ["report", "{src}", "-o", "{out}"],
        ["report", "{src}", "--format", "csv", "-o", "{out}"],
        ["export", "{src}", "-o", "{out}"],
        ["audit", "{src}", "-o", "{out}", "--no-cache"],
    ],
)
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("/sys/kernel/tbreport-out", "system directory"),
        ("{tmp}/missing/parent/out", "does not exist"),
    ],
)
def test_unwritable_output_is_refused_before_any_work(
    sources, tmp_path, monkeypatch, verb_args, output, message
):
    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before the output was checked")

    # Where the verbs call them (module-level imports bind the names there).
    monkeypatch.setattr("tbreport.cli.common.read_source", no_reading)
    monkeypatch.setattr("tbreport.cli.audit.run_audit", no_reading)
    out = output.format(tmp=tmp_path)
    args = [a.format(src=sources["dir"], out=out) for a in verb_args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_read_only_directory_is_refused(tmp_path, sources, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = run("report", sources["dir"], "-o", tmp_path / "r.html")
    assert result.exit_code == 2
    assert "Read-only file system" in result.output


def test_plurals_are_right(tmp_path):
    from tbreport.testing import file_version_event, scalar_event, write_events

    events = [file_version_event(wall_time=1.0), scalar_event("loss", 1.0, step=0, wall_time=1.0)]
    write_events(tmp_path / "runs" / "a" / "events.out.tfevents.1.host", events)
    listing = run("ls", tmp_path / "runs").output
    assert "a  [1 file, 1 scalar, 0 histograms]" in listing
    exported = run("export", tmp_path / "runs", "-o", tmp_path / "e").output
    assert "1 scalar point, 0 histograms, 1 run" in exported
    report = run("report", tmp_path / "runs", "-o", tmp_path / "r.html").output
    assert "; 1 run, 0 errors, 0 warnings, 0 info)" in report


def test_readme_example_keeps_loss_train(sources, tmp_path):
    out = Path(tmp_path / "w")
    result = run("export", sources["dir"], "-o", out, "--wide", "--tags", "loss|lr")
    assert result.exit_code == 0
    assert "Loss/train" in pd.read_csv(out / "scalars_wide.csv").columns
