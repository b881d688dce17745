"""The reader on every writer convention: PyTorch, TF2, Keras, Lightning, HuggingFace."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from reader_helpers import (
    BASE_WALL,
    assert_same_frames,
    event_file_name,
    scalar_rows,
    scalar_series,
    tensor_series,
    write_run,
)

import tbreport
from tbreport import testing
from tbreport.errors import InputError
from tbreport.reading.result import HISTOGRAM_COLUMNS, SCALAR_COLUMNS, TEXT_COLUMNS


def f32(x: float) -> float:
    """What a float32 ``simple_value`` holds."""
    return float(np.float32(x))


def kinds(result) -> list[str]:
    return [w.kind for w in result.warnings]


# ---------------------------------------------------------------------------------------------
# PyTorch SummaryWriter (real output)


@pytest.fixture(scope="module")
def torch_logdir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("torch")
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, 1.0 + step, size=500) for step in range(4)]
    writer = SummaryWriter(str(root / "exp"))
    for step in range(20):
        writer.add_scalar("Loss/train", 1.0 / (step + 1), step)
        writer.add_scalars("Accuracy", {"train": step / 20, "val": step / 40}, step)
    for step, w in enumerate(weights):
        writer.add_histogram("fc1/weight", torch.from_numpy(w), step)
    writer.add_text("notes", "first run, <b>bold</b> ünïcode", 0)
    writer.add_hparams({"lr": 0.01, "optimizer": "adam", "layers": 3}, {"hparam/best_acc": 0.5})
    writer.add_scalar("new/tensor", 0.25, 7, new_style=True)
    writer.add_scalar("new/double", 0.125, 8, new_style=True, double_precision=True)
    writer.close()
    return root, weights


def test_torch_add_scalar_every_point_with_float32_values(torch_logdir):
    root, _ = torch_logdir
    result = tbreport.read(root)
    loss = result.scalars[
        (result.scalars["run"] == "exp") & (result.scalars["tag"] == "Loss/train")
    ]
    assert loss["step"].tolist() == list(range(20))
    assert loss["value"].tolist() == [f32(1.0 / (s + 1)) for s in range(20)]
    assert loss["wall_time"].is_monotonic_increasing
    assert (loss["wall_time"] > BASE_WALL).all()
    assert result.warnings == []


def test_torch_new_style_tensor_scalars_are_scalars(torch_logdir):
    root, _ = torch_logdir
    scalars = tbreport.read(root).scalars
    new = scalars[scalars["tag"].astype(str).str.startswith("new/")]
    assert dict(zip(new["tag"].astype(str), new["value"], strict=True)) == {
        "new/double": 0.125,
        "new/tensor": 0.25,
    }
    assert sorted(new["step"]) == [7, 8]


def test_torch_add_histogram_statistics(torch_logdir):
    root, weights = torch_logdir
    hist = tbreport.read(root).histograms
    hist = hist[hist["tag"] == "fc1/weight"]
    assert hist["step"].tolist() == [0, 1, 2, 3]
    for (_, row), w in zip(hist.iterrows(), weights, strict=True):
        assert row["num"] == len(w)
        assert row["min"] == pytest.approx(w.min())
        assert row["max"] == pytest.approx(w.max())
        assert row["sum"] == pytest.approx(w.sum())
        assert row["mean"] == pytest.approx(w.mean())
        assert row["std"] == pytest.approx(w.std(), rel=1e-6)
        assert row["bucket"].sum() == len(w)
        assert len(row["bucket"]) == len(row["bucket_limit"])
        assert np.all(np.diff(row["bucket_limit"]) > 0)
        assert row["zero_fraction"] == 0.0


def test_torch_add_text(torch_logdir):
    root, _ = torch_logdir
    text = tbreport.read(root).text
    assert list(text.columns) == TEXT_COLUMNS
    note = text[text["tag"] == "notes/text_summary"]
    assert note["text"].tolist() == ["first run, <b>bold</b> ünïcode"]
    assert note["step"].tolist() == [0]


def test_torch_add_hparams_session_attached_to_parent(torch_logdir):
    root, _ = torch_logdir
    result = tbreport.read(root)
    runs = result.runs.set_index("run")
    session = [
        r for r in runs.index if r.startswith("exp/") and runs.loc[r, "subrun_key"][:1].isdigit()
    ]
    assert len(session) == 1
    assert runs.loc[session[0], "subrun_kind"] == "hparams-session"
    assert runs.loc[session[0], "logical_run"] == "exp"
    row = result.hparams.set_index("run").loc["exp"]
    assert row["lr"] == pytest.approx(0.01)
    assert row["optimizer"] == "adam"
    assert row["layers"] == 3
    records = result.hparam_records
    assert set(records["source_run"]) == {session[0]}
    assert "hparam/best_acc" in set(records.loc[records["kind"] == "metric", "name"])
    metric = result.logical_scalars()
    metric = metric[(metric["run"] == "exp") & (metric["tag"] == "hparam/best_acc")]
    assert metric["value"].tolist() == [0.5]


def test_torch_add_scalars_subdirectories_fold_into_logical_run(torch_logdir):
    root, _ = torch_logdir
    result = tbreport.read(root)
    runs = result.runs.set_index("run")
    for series in ("train", "val"):
        name = f"exp/Accuracy_{series}"
        assert runs.loc[name, "subrun_kind"] == "add-scalars"
        assert runs.loc[name, "subrun_key"] == series
        assert runs.loc[name, "logical_run"] == "exp"
    # In .scalars each series is its own run, with the main tag, as TensorBoard shows it.
    raw = result.scalars
    assert set(raw.loc[raw["run"] == "exp/Accuracy_val", "tag"].astype(str)) == {"Accuracy"}
    logical = result.logical_scalars()
    assert set(logical["run"].astype(str)) == {"exp"}
    val = logical[logical["tag"] == "Accuracy/val"]
    assert val["value"].tolist() == [f32(s / 40) for s in range(20)]
    train = logical[logical["tag"] == "Accuracy/train"]
    assert train["step"].tolist() == list(range(20))
    assert len(logical) == len(raw)


def test_torch_purge_step_restart(tmp_path):
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    first = SummaryWriter(str(tmp_path / "run"), filename_suffix=".a")
    for step in range(30):
        first.add_scalar("loss", float(step), step)
        first.add_histogram("w", np.arange(5.0) + step, step)
    first.close()
    resumed = SummaryWriter(str(tmp_path / "run"), purge_step=20, filename_suffix=".b")
    for step in range(20, 40):
        resumed.add_scalar("loss", 100.0 + step, step)
    resumed.close()
    # torch names files ...<time>.<host>.<pid>.<writer counter><suffix>: once the process's
    # counter passes 9 ("10" < "9"), the resumed file would sort first. Name them as two
    # processes a second apart would, so the resumed file sorts second, as in real resumptions.
    for path in (tmp_path / "run").iterdir():
        second = 1 if path.name.endswith(".a") else 2
        path.rename(path.with_name(f"events.out.tfevents.170000000{second}.host.1.0{path.suffix}"))
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert len(files) == 2
    assert files[0].endswith(".a")  # the resumed file sorts second

    result = tbreport.read(tmp_path)
    loss = result.scalars
    assert loss["step"].tolist() == list(range(40))
    assert loss["value"].tolist() == [float(s) for s in range(20)] + [
        100.0 + s for s in range(20, 40)
    ]
    assert result.histograms["step"].tolist() == list(range(20))  # histograms purged too
    purged = [w for w in result.warnings if w.kind == "purged-by-restart"]
    assert len(purged) == 1
    assert "step 20" in purged[0].message
    assert int(result.runs.loc[0, "purged"]) == 10 + 10


# ---------------------------------------------------------------------------------------------
# TF2 / Keras


def test_tf2_tensor_scalars_with_metadata_on_first_value_only(tmp_path):
    steps = range(300)
    write_run(
        tmp_path / "run",
        tensor_series("epoch_loss", steps)
        + tensor_series("epoch_lr", steps, value=lambda s: 1e-3 * 0.5**s, dtype="float64"),
    )
    result = tbreport.read(tmp_path)
    loss = result.scalars[result.scalars["tag"] == "epoch_loss"]
    assert loss["step"].tolist() == list(steps)
    assert loss["value"].tolist() == [f32(1.0 / (s + 1)) for s in steps]
    assert loss["wall_time"].tolist() == [BASE_WALL + s for s in steps]
    lr = result.scalars[result.scalars["tag"] == "epoch_lr"]
    assert lr["value"].tolist() == [1e-3 * 0.5**s for s in steps]  # float64 kept exactly


def test_tf2_metadata_in_an_earlier_file_than_the_values(tmp_path):
    events = tensor_series("epoch_accuracy", range(50))
    write_run(tmp_path / "run", events[:1], index=0, suffix=".v2")  # metadata + first value
    write_run(tmp_path / "run", events[1:], index=1, suffix=".v2")  # values, no metadata
    result = tbreport.read(tmp_path)
    assert result.scalars["step"].tolist() == list(range(50))
    assert result.runs.loc[0, "files"] == 2


def test_tensors_without_scalars_plugin_are_not_scalars(tmp_path):
    # No metadata anywhere in the run: TensorBoard cannot know these are scalars, nor can we.
    write_run(tmp_path / "run", tensor_series("mystery", range(10), metadata_first=False))
    result = tbreport.read(tmp_path)
    assert result.scalars.empty


def test_tf2_tensor_histograms(tmp_path):
    rng = np.random.default_rng(1)
    data = [rng.normal(step, 1.0, size=1000) for step in range(3)]
    events = [
        testing.tensor_histogram_event(
            "dense/kernel", d, step=s, wall_time=BASE_WALL + s, with_metadata=s == 0
        )
        for s, d in enumerate(data)
    ]
    write_run(tmp_path / "train", events, suffix=".v2")
    hist = tbreport.read(tmp_path).histograms
    assert list(hist.columns) == HISTOGRAM_COLUMNS
    assert hist["step"].tolist() == [0, 1, 2]
    for (_, row), d in zip(hist.iterrows(), data, strict=True):
        counts, edges = np.histogram(d, bins=30)
        assert row["num"] == 1000
        assert row["bucket"].tolist() == counts.astype(float).tolist()
        assert row["bucket_limit"].tolist() == edges[1:].tolist()
        assert row["min"] == edges[0]
        assert row["max"] == edges[-1]
        assert math.isnan(row["sum"])
        assert math.isnan(row["sum_squares"])
        # Estimated from bucket centres: within a bucket width of the truth.
        width = edges[1] - edges[0]
        assert abs(row["mean"] - d.mean()) < width
        assert abs(row["std"] - d.std()) < width


def test_keras_train_validation_split_folds(tmp_path):
    run = tmp_path / "fit" / "20240101-120000"
    write_run(run / "train", tensor_series("epoch_loss", range(5)), suffix=".v2")
    write_run(
        run / "validation",
        tensor_series("epoch_loss", range(5), value=lambda s: 2.0 / (s + 1))
        + tensor_series("evaluation_loss_vs_iterations", [100, 200]),
        suffix=".v2",
    )
    result = tbreport.read(tmp_path)
    runs = result.runs.set_index("run")
    parent = "fit/20240101-120000"
    assert runs.loc[f"{parent}/train", ["logical_run", "subrun_kind", "subrun_key"]].tolist() == [
        parent,
        "keras-split",
        "train",
    ]
    assert runs.loc[f"{parent}/validation", "subrun_key"] == "validation"
    logical = result.logical_scalars()
    assert set(logical["run"].astype(str)) == {parent}
    assert set(logical["tag"].astype(str)) == {
        "train/epoch_loss",
        "validation/epoch_loss",
        "validation/evaluation_loss_vs_iterations",
    }
    val = logical[logical["tag"] == "validation/epoch_loss"]
    assert val["value"].tolist() == [f32(2.0 / (s + 1)) for s in range(5)]


def test_v2_and_profile_empty_files(tmp_path):
    run = tmp_path / "train"
    write_run(run, tensor_series("epoch_loss", range(3)), suffix=".v2")
    placeholder = run / "events.out.tfevents.1700000001.testhost.profile-empty"
    testing.write_events(placeholder, [testing.file_version_event()])
    result = tbreport.read(tmp_path)
    assert len(result.scalars) == 3
    assert result.runs.loc[0, "files"] == 1
    skipped = [w for w in result.warnings if w.kind == "profile-placeholder"]
    assert len(skipped) == 1
    assert skipped[0].path.endswith(".profile-empty")


# ---------------------------------------------------------------------------------------------
# Lightning and HuggingFace hyperparameters

LIGHTNING_YAML = """\
lr: 0.001
betas: !!python/tuple
- 0.9
- 0.999
model:
  hidden_size: 128
  dropout: 0.1
name: lstm
"""


def test_lightning_hparams_yaml_with_python_tuple(tmp_path):
    run = tmp_path / "lightning_logs" / "version_0"
    write_run(run, scalar_series("train_loss", range(0, 500, 50)))
    (run / "hparams.yaml").write_text(LIGHTNING_YAML, encoding="utf-8")
    result = tbreport.read(tmp_path)
    row = result.hparams.set_index("run").loc["lightning_logs/version_0"]
    assert row["lr"] == pytest.approx(0.001)
    assert json.loads(row["betas"]) == [0.9, 0.999]
    assert row["model/hidden_size"] == 128
    assert row["model/dropout"] == pytest.approx(0.1)
    assert row["name"] == "lstm"
    sources = set(result.hparam_records["source"])
    assert sources == {"hparams.yaml"}


def test_hparams_yaml_never_constructs_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "version_0"
    write_run(run, scalar_series("loss", range(3)))
    (run / "hparams.yaml").write_text(
        f'evil: !!python/object/apply:os.system ["touch {marker}"]\nlr: 0.5\n', encoding="utf-8"
    )
    result = tbreport.read(tmp_path)
    assert not marker.exists()
    assert result.hparams.set_index("run").loc["version_0", "lr"] == 0.5


def test_broken_hparams_yaml_is_a_warning(tmp_path):
    run = tmp_path / "version_0"
    write_run(run, scalar_series("loss", range(3)))
    (run / "hparams.yaml").write_text("lr: [unclosed\n", encoding="utf-8")
    result = tbreport.read(tmp_path)
    assert "hparams-yaml" in kinds(result)
    assert len(result.scalars) == 3


def test_huggingface_args_text_summary_json(tmp_path):
    args = {"learning_rate": 5e-06, "per_device_train_batch_size": 16, "output_dir": "out"}
    events = [
        testing.text_event(
            "args/text_summary", json.dumps(args, indent=2), step=0, wall_time=BASE_WALL
        ),
        testing.text_event(
            "model_config/text_summary", '{"hidden": 8}', step=0, wall_time=BASE_WALL
        ),
        *scalar_series("train/loss", range(0, 100, 10)),
    ]
    write_run(tmp_path / "runs" / "Jan01_12-00-00_host", events)
    result = tbreport.read(tmp_path)
    row = result.hparams.set_index("run").loc["runs/Jan01_12-00-00_host"]
    assert row["learning_rate"] == pytest.approx(5e-06)
    assert row["per_device_train_batch_size"] == 16
    assert row["output_dir"] == "out"
    assert "hidden" not in result.hparams.columns  # only the args tag is hyperparameters
    assert set(result.hparam_records["source"]) == {"hf-args"}


def test_hparams_sources_merge_later_wins(tmp_path):
    run = tmp_path / "version_0"
    events = [
        testing.text_event(
            "args/text_summary", json.dumps({"lr": 1.0, "only_hf": 1}), step=0, wall_time=BASE_WALL
        ),
        *testing.hparams_events({"lr": 3.0, "only_plugin": "x"}),
    ]
    write_run(run, events)
    (run / "hparams.yaml").write_text("lr: 2.0\nonly_yaml: true\n", encoding="utf-8")
    row = tbreport.read(tmp_path).hparams.set_index("run").loc["version_0"]
    assert row["lr"] == 3.0  # hparams plugin > hparams.yaml > HF args
    assert row["only_hf"] == 1
    assert row["only_yaml"] == True  # noqa: E712 - numpy/py bool
    assert row["only_plugin"] == "x"


def test_run_with_only_hparams(tmp_path):
    write_run(tmp_path / "exp" / "1718000000.123456", testing.hparams_events({"lr": 0.1}))
    result = tbreport.read(tmp_path)
    assert result.scalars.empty
    assert result.histograms.empty
    assert result.hparams.to_dict("records") == [{"run": "exp", "lr": 0.1}]
    assert result.runs.loc[0, "subrun_kind"] == "hparams-session"


# ---------------------------------------------------------------------------------------------
# Volume, restarts, duplicates


def test_more_than_ten_thousand_steps_every_point_present(tmp_path):
    n = 25_000
    write_run(
        tmp_path / "run",
        scalar_series("loss", range(n), value=lambda s: math.sin(s / 100.0))
        + tensor_series("tf2_loss", range(n), value=lambda s: math.cos(s / 100.0)),
    )
    result = tbreport.read(tmp_path)
    for tag, fn in (("loss", math.sin), ("tf2_loss", math.cos)):
        points = result.scalars[result.scalars["tag"] == tag]
        assert len(points) == n
        assert points["step"].tolist() == list(range(n))
        assert points["value"].tolist() == [f32(fn(s / 100.0)) for s in range(n)]
        assert points["wall_time"].tolist() == [BASE_WALL + s for s in range(n)]
    assert result.runs.loc[0, "scalars"] == 2 * n


def test_purge_step_restart_across_two_files(tmp_path):
    run = tmp_path / "run"
    write_run(
        run,
        scalar_series("loss", range(100))
        + [
            testing.histogram_event("w", [float(s)], step=s, wall_time=BASE_WALL + s)
            for s in range(100)
        ],
        index=0,
    )
    restart = [testing.session_start_event(step=60, wall_time=BASE_WALL + 500)]
    write_run(run, restart + scalar_series("loss", range(60, 120), value=lambda s: -s), index=1)
    result = tbreport.read(tmp_path)
    loss = result.scalars
    assert loss["step"].tolist() == list(range(120))
    assert loss["value"].tolist() == [f32(1 / (s + 1)) for s in range(60)] + [
        float(-s) for s in range(60, 120)
    ]
    assert result.histograms["step"].tolist() == list(range(60))
    warning = [w for w in result.warnings if w.kind == "purged-by-restart"]
    assert len(warning) == 1
    assert warning[0].run == "run"
    assert "step 60" in warning[0].message
    assert int(result.runs.loc[0, "purged"]) == 40 + 40


def test_restart_purge_matches_tensorboard(tmp_path):
    run = tmp_path / "run"
    write_run(run, scalar_series("loss", range(100)), index=0)
    write_run(
        run,
        [
            testing.session_start_event(step=60),
            *scalar_series("loss", range(60, 80), value=lambda s: -s),
        ],
        index=1,
    )
    fast = tbreport.read(tmp_path)
    reference = tbreport.read(tmp_path, engine="accumulator")
    assert_same_frames(fast.scalars, reference.scalars, SCALAR_COLUMNS)


def test_duplicate_steps_are_kept_and_warned(tmp_path):
    events = scalar_series("loss", [0, 1, 2, 2, 3, 3, 3])
    events[3] = testing.scalar_event("loss", 9.0, step=2, wall_time=BASE_WALL + 10)
    write_run(tmp_path / "run", events)
    result = tbreport.read(tmp_path)
    assert result.scalars["step"].tolist() == [0, 1, 2, 2, 3, 3, 3]
    assert result.scalars["value"].tolist()[3] == 9.0
    warning = [w for w in result.warnings if w.kind == "duplicate-steps"]
    assert len(warning) == 1
    assert "loss" in warning[0].message
    assert int(result.runs.loc[0, "duplicate_steps"]) == 3


def test_out_of_order_steps_in_modern_files_are_kept(tmp_path):
    # brain.Event:2 files purge only on SessionLog.START; a step going back is kept as written.
    write_run(tmp_path / "run", scalar_series("loss", [0, 1, 2, 3, 1, 2]))
    result = tbreport.read(tmp_path)
    assert result.scalars["step"].tolist() == [0, 1, 2, 3, 1, 2]
    reference = tbreport.read(tmp_path, engine="accumulator")
    assert_same_frames(result.scalars, reference.scalars, SCALAR_COLUMNS)


def test_legacy_file_out_of_order_step_purges_that_tag(tmp_path):
    # No "brain.Event:2" first record: TensorBoard's older rule drops later points of the tags
    # of an event whose step goes back.
    path = tmp_path / "run" / event_file_name(0)
    testing.write_events(
        path,
        scalar_series("a", [0, 1, 2, 3, 4])
        + scalar_series("b", [0, 1, 2])
        + scalar_series("a", [2, 3]),
    )
    result = tbreport.read(tmp_path)
    a = result.scalars[result.scalars["tag"] == "a"]
    assert a["step"].tolist() == [
        0,
        1,
        2,
        3,
    ]  # 2,3,4 of the first pass dropped at step 2; 3 re-added
    reference = tbreport.read(tmp_path, engine="accumulator")
    assert_same_frames(result.scalars, reference.scalars, SCALAR_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Options


@pytest.fixture
def multi_run_logdir(tmp_path):
    for i in range(4):
        run = tmp_path / f"run{i}"
        write_run(
            run,
            scalar_series("train/loss", range(200), value=lambda s, i=i: i + 1 / (s + 1))
            + tensor_series("val/loss", range(0, 200, 10))
            + [
                testing.histogram_event("w", np.arange(10.0) * i, step=s, wall_time=BASE_WALL)
                for s in range(5)
            ]
            + [testing.text_event("notes", f"run {i}", step=0, wall_time=BASE_WALL)],
            index=0,
        )
        write_run(run, scalar_series("train/loss", range(200, 260)), index=1)
    return tmp_path


def test_tags_filter(multi_run_logdir):
    everything = tbreport.read(multi_run_logdir)
    only_train = tbreport.read(multi_run_logdir, tags="^train/")
    assert set(only_train.scalars["tag"].astype(str)) == {"train/loss"}
    expected = everything.scalars[everything.scalars["tag"] == "train/loss"]
    assert scalar_rows(only_train.scalars) == scalar_rows(expected)
    assert only_train.histograms.empty
    assert only_train.text.empty
    several = tbreport.read(multi_run_logdir, tags=["^val/", "^w$"])
    assert set(several.scalars["tag"].astype(str)) == {"val/loss"}
    assert len(several.histograms) == 4 * 5


def test_tags_filter_keeps_hparams(tmp_path):
    write_run(
        tmp_path / "run", scalar_series("loss", range(3)) + testing.hparams_events({"lr": 0.1})
    )
    result = tbreport.read(tmp_path, tags="nothing-matches")
    assert result.scalars.empty
    assert result.hparams.to_dict("records") == [{"run": "run", "lr": 0.1}]


def test_invalid_tags_pattern_is_an_input_error(multi_run_logdir):
    with pytest.raises(InputError, match="invalid tag pattern"):
        tbreport.read(multi_run_logdir, tags="(")


def test_unknown_engine_and_bad_jobs_are_input_errors(multi_run_logdir):
    with pytest.raises(InputError):
        tbreport.read(multi_run_logdir, engine="turbo")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        tbreport.read(multi_run_logdir, jobs=0)


def test_jobs_2_gives_identical_frames(multi_run_logdir):
    one = tbreport.read(multi_run_logdir, jobs=1)
    two = tbreport.read(multi_run_logdir, jobs=2)
    assert_same_frames(one.scalars, two.scalars, SCALAR_COLUMNS)
    assert_same_frames(one.text, two.text, TEXT_COLUMNS)
    stats = [c for c in HISTOGRAM_COLUMNS if c not in ("bucket", "bucket_limit")]
    assert_same_frames(one.histograms, two.histograms, stats)
    for a, b in zip(one.histograms["bucket"], two.histograms["bucket"], strict=True):
        assert np.array_equal(a, b)
    pd.testing.assert_frame_equal(one.runs, two.runs)
    pd.testing.assert_frame_equal(one.hparams, two.hparams)
    assert one.warnings == two.warnings
    assert len(one.scalars) == 4 * (200 + 20 + 60)


def test_frame_dtypes_and_categoricals(multi_run_logdir):
    result = tbreport.read(multi_run_logdir)
    scalars = result.scalars
    assert list(scalars.columns) == SCALAR_COLUMNS
    assert isinstance(scalars["run"].dtype, pd.CategoricalDtype)
    assert isinstance(scalars["tag"].dtype, pd.CategoricalDtype)
    assert scalars["step"].dtype == np.int64
    assert scalars["wall_time"].dtype == np.float64
    assert scalars["value"].dtype == np.float64
    # Grouped by run then tag; within a tag, in written order.
    keys = list(zip(scalars["run"].astype(str), scalars["tag"].astype(str), strict=True))
    assert keys == sorted(keys)
    run0 = scalars[(scalars["run"] == "run0") & (scalars["tag"] == "train/loss")]
    assert run0["step"].tolist() == list(range(260))


def test_single_event_file_as_logdir(tmp_path):
    path = write_run(tmp_path / "run", scalar_series("loss", range(5)))
    result = tbreport.read(path)
    assert result.runs["run"].tolist() == ["."]
    assert len(result.scalars) == 5
