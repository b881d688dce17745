"""The fast engine returns what TensorBoard's own EventAccumulator returns, except where
TensorBoard is wrong; each of those differences has a test below that shows both behaviours."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import REALWORLD, ROOT, SAMPLE_RUNS
from reader_helpers import (
    assert_same_frames,
    record_spans,
    sample_run_dirs,
    scalar_rows,
    scalar_series,
    tensor_series,
    write_run,
)

import tbreport
from tbreport import testing
from tbreport.reading.discovery import discover_runs
from tbreport.reading.result import SCALAR_COLUMNS

HISTOGRAM_STATS = [
    "run", "tag", "step", "wall_time", "min", "max", "num", "sum", "sum_squares", "mean", "std",
    "zero_fraction",
]  # fmt: skip


def _run_names(logdir) -> list[str]:
    if not logdir.is_dir():
        return []
    try:
        runs, _ = discover_runs(logdir)
    except Exception:  # collection must not fail; the tests then skip
        return []
    return [run.name for run in runs]


REALWORLD_RUNS = _run_names(REALWORLD)
SAMPLE_RUN_NAMES = _run_names(SAMPLE_RUNS) if sample_run_dirs() else []


def _both_engines(logdir):
    return tbreport.read(logdir), tbreport.read(logdir, engine="accumulator")


@pytest.fixture(scope="module")
def realworld():
    if not REALWORLD_RUNS:
        pytest.skip(f"conformance corpus not found at {REALWORLD}")
    return _both_engines(REALWORLD)


@pytest.fixture(scope="module")
def samples():
    if not SAMPLE_RUN_NAMES:
        pytest.skip("sample_runs/ holds no event files yet (python3 -m tools.samplegen makes them)")
    return _both_engines(SAMPLE_RUNS)


def assert_run_equivalent(fast, reference, run: str) -> None:
    """Scalars and histogram statistics of ``run``: same rows, same order, same values."""

    def of_run(frame):
        return frame[frame["run"] == run]

    fast_scalars, ref_scalars = of_run(fast.scalars), of_run(reference.scalars)
    assert_same_frames(fast_scalars, ref_scalars, SCALAR_COLUMNS)
    fast_hist, ref_hist = of_run(fast.histograms), of_run(reference.histograms)
    assert_same_frames(fast_hist, ref_hist, HISTOGRAM_STATS)
    for column in ("bucket_limit", "bucket"):
        for a, b in zip(fast_hist[column], ref_hist[column], strict=True):
            assert np.array_equal(a, b, equal_nan=True)  # NaN weights give NaN edges
    # Inventory counts agree too (they are what `tbreport ls` prints).
    fast_row = fast.runs.set_index("run").loc[run]
    ref_row = reference.runs.set_index("run").loc[run]
    for column in (
        "scalars",
        "histograms",
        "scalar_tags",
        "histogram_tags",
        "first_step",
        "last_step",
    ):
        assert fast_row[column] == ref_row[column], column


@pytest.mark.parametrize("run", REALWORLD_RUNS or ["(none)"])
def test_realworld_run_matches_tensorboard(realworld, run):
    fast, reference = realworld
    assert_run_equivalent(fast, reference, run)


def test_realworld_has_data_and_same_run_list(realworld):
    fast, reference = realworld
    assert fast.runs["run"].tolist() == reference.runs["run"].tolist() == REALWORLD_RUNS
    assert len(fast.scalars) > 10_000
    assert len(fast.histograms) > 0


def test_realworld_text_and_hparams_match_tensorboard(realworld):
    fast, reference = realworld
    keys = ["run", "tag", "step", "wall_time"]
    a = fast.text.astype({"run": str, "tag": str}).sort_values(keys, kind="stable")
    b = reference.text.astype({"run": str, "tag": str}).sort_values(keys, kind="stable")
    assert a["text"].tolist() == b["text"].tolist()
    assert fast.hparams.equals(reference.hparams)


@pytest.mark.parametrize("run", SAMPLE_RUN_NAMES or ["(none)"])
def test_sample_run_matches_tensorboard(samples, run):
    fast, reference = samples
    assert_run_equivalent(fast, reference, run)


# ---------------------------------------------------------------------------------------------
# Where TensorBoard's loader is wrong (documented in tbreport/accumulator.py and the README)


def test_tensorboard_drops_the_rest_of_a_file_after_a_bad_checksum(tmp_path):
    path = write_run(tmp_path / "run", scalar_series("loss", range(100)))
    data = bytearray(path.read_bytes())
    bad_start, _ = record_spans(bytes(data))[41]  # record 41 holds step 40
    data[bad_start + 15] ^= 0x04
    path.write_bytes(bytes(data))
    fast, reference = _both_engines(tmp_path)
    # TensorBoard: a mid-file DataLossError ends the file, silently.
    assert reference.scalars["step"].tolist() == list(range(40))
    assert reference.warnings == []
    # tbreport: only the damaged record is lost, and it says where.
    assert fast.scalars["step"].tolist() == [s for s in range(100) if s != 40]
    assert [(w.kind, w.offset) for w in fast.warnings] == [("checksum-mismatch", bad_start)]


def test_tensorboard_stops_at_a_damaged_length_field(tmp_path):
    path = write_run(tmp_path / "run", scalar_series("loss", range(100)))
    data = bytearray(path.read_bytes())
    bad_start, _ = record_spans(bytes(data))[61]
    data[bad_start + 1] ^= 0x80
    path.write_bytes(bytes(data))
    fast, reference = _both_engines(tmp_path)
    assert reference.scalars["step"].tolist() == list(range(60))
    assert fast.scalars["step"].tolist() == [s for s in range(100) if s != 60]
    assert [w.kind for w in fast.warnings] == ["corrupt-data"]


def test_tensorboard_does_not_purge_tf2_tensor_scalars_on_restart(tmp_path):
    run = tmp_path / "run"
    write_run(run, tensor_series("epoch_loss", range(100)), index=0)
    restart = [testing.session_start_event(step=60)]
    write_run(
        run,
        restart
        + tensor_series("epoch_loss", range(60, 80), value=lambda s: -s, metadata_first=False),
        index=1,
    )
    fast, reference = _both_engines(tmp_path)
    # TensorBoard's EventAccumulator purges simple_value scalars but never tensors: the old
    # points at steps 60..99 stay, interleaved with the new ones.
    assert reference.scalars["step"].tolist() == list(range(100)) + list(range(60, 80))
    # tbreport applies the restart to TF2 scalars exactly as to simple_value scalars.
    assert fast.scalars["step"].tolist() == list(range(80))
    assert fast.scalars["value"].tolist()[60:] == [float(-s) for s in range(60, 80)]
    assert [w.kind for w in fast.warnings] == ["purged-by-restart"]


def test_simple_value_restart_purge_is_the_same_in_both(tmp_path):
    # The control for the test above: for simple_value scalars both engines agree.
    run = tmp_path / "run"
    write_run(run, scalar_series("loss", range(100)), index=0)
    write_run(
        run, [testing.session_start_event(step=60), *scalar_series("loss", range(60, 80))], index=1
    )
    fast, reference = _both_engines(tmp_path)
    assert scalar_rows(fast.scalars) == scalar_rows(reference.scalars)
    assert fast.scalars["step"].tolist() == list(range(80))


def test_tensorboard_keeps_only_the_first_hparams_per_tag(tmp_path):
    # e.g. Lightning's log_hyperparams called twice, or a resumed run that logs its hparams again.
    events = (
        testing.hparams_events({"lr": 0.1, "batch": 32})
        + scalar_series("loss", range(3))
        + testing.hparams_events({"lr": 0.2, "warmup": 100})
    )
    write_run(tmp_path / "run", events)
    fast, reference = _both_engines(tmp_path)
    assert reference.hparams.to_dict("records") == [{"run": "run", "lr": 0.1, "batch": 32}]
    row = fast.hparams.to_dict("records")[0]
    assert row == {"run": "run", "lr": 0.2, "batch": 32, "warmup": 100}
    records = fast.hparam_records
    starts = records[(records["name"] == "lr") & (records["kind"] == "hparam")]
    assert starts["value"].tolist() == [0.1, 0.2]  # every session_start_info is kept


def test_sample_runs_location_is_the_project_folder():
    # Guards the path the sample-run tests use, so they cannot silently look elsewhere.
    assert (ROOT / "tbreport").is_dir()
    assert (ROOT / "pyproject.toml").is_file()
    if "TBREPORT_SAMPLE_RUNS" not in os.environ:
        assert SAMPLE_RUNS == ROOT / "sample_runs"
