"""Damaged copies of whole log directories (the sample runs, and a synthetic one covering every
writer layout): `tbreport export` and `tbreport check` exit 0 or 1 without a traceback, and no
record that precedes the damage is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, sample_runs_or_skip
from reader_helpers import (
    BASE_WALL,
    contains_all,
    record_spans,
    scalar_series,
    tensor_series,
    write_run,
)

import tbreport
from tbreport import testing
from tbreport.report.csvsafe import neutralise_cell

DAMAGES = ("truncated", "flipped", "zero-filled", "empty", "lfs-pointer", "random")
LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:0000000000000000000000000000000000000000000000000000000000000000\nsize 4096\n"
)


def build_synthetic_corpus(root: Path) -> Path:
    """Every writer layout the reader knows, small enough to damage and read many times."""
    rng = np.random.default_rng(5)
    exp = root / "pytorch" / "exp1"
    write_run(
        exp,
        scalar_series("Loss/train", range(300))
        + scalar_series("lr", range(0, 300, 10), value=lambda s: 0.1 * 0.99**s)
        + [
            testing.histogram_event(
                "fc/weight", rng.normal(size=200), step=s, wall_time=BASE_WALL + s
            )
            for s in range(0, 300, 30)
        ]
        + [testing.text_event("notes/text_summary", "baseline", step=0, wall_time=BASE_WALL)],
    )
    write_run(exp / "Loss_val", scalar_series("Loss", range(0, 300, 20)))
    write_run(
        exp / "1718000000.25",
        testing.hparams_events({"lr": 0.1}) + scalar_series("hparam/acc", [0]),
    )
    keras = root / "keras" / "fit"
    write_run(
        keras / "train",
        tensor_series("epoch_loss", range(40))
        + [
            testing.tensor_histogram_event(
                "dense/kernel",
                rng.normal(size=100),
                step=s,
                wall_time=BASE_WALL + s,
                with_metadata=s == 0,
            )
            for s in range(10)
        ],
        suffix=".v2",
    )
    write_run(keras / "validation", tensor_series("epoch_loss", range(40)), suffix=".v2")
    resumed = root / "resumed"
    write_run(resumed, scalar_series("loss", range(120)), index=0)
    write_run(
        resumed,
        [testing.session_start_event(step=80), *scalar_series("loss", range(80, 150))],
        index=1,
    )
    lightning = root / "lightning_logs" / "version_0"
    write_run(
        lightning,
        scalar_series("train_loss", range(0, 2000, 10))
        + scalar_series("epoch", range(0, 2000, 100)),
    )
    (lightning / "hparams.yaml").write_text("lr: 0.001\nbetas: !!python/tuple\n- 0.9\n- 0.99\n")
    return root


def event_files(logdir: Path) -> list[Path]:
    return sorted(
        p
        for p in logdir.rglob("*tfevents*")
        if p.is_file() and not p.name.endswith(".profile-empty")
    )


def damage(data: bytes, kind: str, rng: np.random.Generator) -> tuple[bytes, int]:
    """The damaged bytes and the offset where the damage starts."""
    n = len(data)
    at = int(rng.integers(int(n * 0.4), max(int(n * 0.9), int(n * 0.4) + 1)))
    if kind == "truncated":
        return data[:at], at
    if kind == "flipped":
        damaged = bytearray(data)
        for pos in [at, *rng.integers(at, n, size=2).tolist()]:
            damaged[pos] ^= 1 << int(rng.integers(8))
        return bytes(damaged), at
    if kind == "zero-filled":
        return data[:at] + bytes(n - at), at
    if kind == "empty":
        return b"", 0
    if kind == "lfs-pointer":
        return LFS_POINTER, 0
    return rng.bytes(n), 0


def make_damaged_copies(source: Path, work: Path, kind: str) -> tuple[Path, Path]:
    """Two copies of ``source``: one damaged, one where each damaged file holds only the
    complete records before its damage (what must survive)."""
    damaged_root, prefix_root = work / "damaged", work / "prefix"
    shutil.copytree(source, damaged_root, symlinks=True)
    shutil.copytree(source, prefix_root, symlinks=True)
    files = event_files(damaged_root)
    whole_file = kind in ("empty", "lfs-pointer", "random")
    for index, path in enumerate(files):
        if whole_file and index % 2:  # keep every other file intact, so something is readable
            continue
        rng = np.random.default_rng([index, DAMAGES.index(kind)])
        original = path.read_bytes()
        damaged, offset = damage(original, kind, rng)
        path.write_bytes(damaged)
        kept = [end for _, end in record_spans(original) if end <= offset]
        twin = prefix_root / path.relative_to(damaged_root)
        if kept:
            twin.write_bytes(original[: kept[-1]])
        else:
            twin.unlink()
    return damaged_root, prefix_root


def scalar_keys(frame: pd.DataFrame) -> list[tuple]:
    return list(
        zip(
            frame["run"].astype(str),
            frame["tag"].astype(str),
            frame["step"].astype(int),
            frame["wall_time"].astype(float),
            frame["value"].astype(float),
            strict=True,
        )
    )


def histogram_keys(frame: pd.DataFrame) -> list[tuple]:
    return list(
        zip(
            frame["run"].astype(str),
            frame["tag"].astype(str),
            frame["step"].astype(int),
            frame["num"].astype(float),
            strict=True,
        )
    )


def read_exported_scalars(path: Path) -> pd.DataFrame:
    """scalars.csv as written: run/tag text kept verbatim (a tag may be "nan"), NaN values empty."""
    return pd.read_csv(
        path,
        keep_default_na=False,
        na_values={"value": [""], "wall_time": [""]},
        dtype={"run": str, "tag": str},
        # pandas 3 parses floats round-trip by default and deprecates the argument.
        **({} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}),
    )


def tbreport_cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TBREPORT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "tbreport", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )


def has_check_command() -> bool:
    try:
        from tbreport.cli import cli
    except Exception:  # then the check part is skipped
        return False
    return "check" in cli.commands


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return build_synthetic_corpus(tmp_path_factory.mktemp("synthetic"))


def corpus(name: str, synthetic: Path) -> Path:
    if name == "synthetic":
        return synthetic
    return sample_runs_or_skip()


@pytest.mark.parametrize("kind", DAMAGES)
def test_api_keeps_every_record_before_the_damage(synthetic, tmp_path, kind):
    damaged_root, prefix_root = make_damaged_copies(synthetic, tmp_path, kind)
    damaged = tbreport.read(damaged_root)
    must_keep = tbreport.read(prefix_root)
    assert not contains_all(scalar_keys(damaged.scalars), scalar_keys(must_keep.scalars))
    assert not contains_all(
        histogram_keys(damaged.histograms), histogram_keys(must_keep.histograms)
    )
    assert len(must_keep.scalars) > 0
    problems = [
        w for w in damaged.warnings if w.kind not in ("duplicate-steps", "purged-by-restart")
    ]
    assert problems, "damage must be reported"
    for warning in problems:
        assert warning.path.startswith(str(damaged_root))


@pytest.mark.slow
@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("source", ["synthetic", "sample_runs"])
def test_cli_on_damaged_copies(synthetic, tmp_path, source, kind):
    damaged_root, prefix_root = make_damaged_copies(corpus(source, synthetic), tmp_path, kind)
    out = tmp_path / "export"
    proc = tbreport_cli("export", damaged_root, "-o", out)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    exported = read_exported_scalars(out / "scalars.csv")
    must_keep = tbreport.read(prefix_root).scalars.copy()
    for column in ("run", "tag"):
        must_keep[column] = must_keep[column].astype(str).map(neutralise_cell)
    missing = contains_all(scalar_keys(exported), scalar_keys(must_keep))
    assert not missing, f"{len(missing)} points lost, e.g. {missing[:3]}"
    warnings = pd.read_csv(out / "warnings.csv")
    assert len(warnings) > 0
    if has_check_command():
        proc = tbreport_cli("check", damaged_root)
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "internal error" not in proc.stderr
