"""Odd but valid data: NaN/Inf, extreme steps, strange tags and run names, very many tags."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reader_helpers import BASE_WALL, FILE_NAME, assert_same_frames, scalar_series, write_run
from tensorboard.compat.proto import summary_pb2

import tbreport
from tbreport import testing
from tbreport.reading import parsing
from tbreport.reading.result import SCALAR_COLUMNS

SPECIAL_VALUES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, -1e-45, 3.5]


def both_engines(logdir):
    return tbreport.read(logdir), tbreport.read(logdir, engine="accumulator")


def test_nan_and_infinite_values_are_kept(tmp_path):
    # Repeated so that both the bulk (templated) decoder and the per-record decoder see them.
    values = SPECIAL_VALUES * 3
    events = [
        testing.scalar_event("simple", v, step=i, wall_time=BASE_WALL + i)
        for i, v in enumerate(values)
    ] + [
        testing.tensor_scalar_event(
            "tensor", v, step=i, wall_time=BASE_WALL + i, with_metadata=i == 0, dtype="float64"
        )
        for i, v in enumerate(values)
    ]
    write_run(tmp_path / "run", events)
    fast, reference = both_engines(tmp_path)
    for tag in ("simple", "tensor"):
        got = fast.scalars.loc[fast.scalars["tag"] == tag, "value"].to_numpy()
        expected = np.array(values, dtype=np.float32 if tag == "simple" else np.float64)
        np.testing.assert_array_equal(got, expected.astype(np.float64))
        assert np.signbit(got[4])  # -0.0 stays negative zero
    assert_same_frames(fast.scalars, reference.scalars, SCALAR_COLUMNS)
    assert fast.warnings == []


@pytest.mark.parametrize(
    "step",
    [-1, -(2**40), 2**31, 2**53 + 1, 2**62, 2**63 - 1, -(2**63)],
    ids=lambda s: f"step{s}",
)
def test_extreme_steps(tmp_path, step):
    # Five points at the same step width exercise the bulk decoder, one more the per-record one.
    events = [
        testing.scalar_event("loss", float(i), step=step, wall_time=BASE_WALL + i) for i in range(5)
    ]
    events.append(testing.scalar_event("other", 1.0, step=step, wall_time=BASE_WALL))
    write_run(tmp_path / "run", events)
    fast, reference = both_engines(tmp_path)
    assert fast.scalars["step"].tolist() == [step] * 6
    assert fast.scalars["step"].dtype == np.int64
    assert_same_frames(fast.scalars, reference.scalars, SCALAR_COLUMNS)
    assert int(fast.runs.loc[0, "first_step"]) == step == int(fast.runs.loc[0, "last_step"])


def test_odd_wall_times(tmp_path):
    walls = [0.0, -5.0, math.nan, math.inf, 1e300, BASE_WALL]
    events = [testing.scalar_event("loss", 1.0, step=i, wall_time=w) for i, w in enumerate(walls)]
    write_run(tmp_path / "run", events)
    fast, reference = both_engines(tmp_path)
    np.testing.assert_array_equal(fast.scalars["wall_time"].to_numpy(), np.array(walls))
    assert_same_frames(fast.scalars, reference.scalars, SCALAR_COLUMNS)
    # Only plausible wall times make the inventory's time range.
    assert fast.runs.loc[0, "first_wall_time"] == BASE_WALL


STRANGE_TAGS = [
    "損失/train",
    "a//b///c",
    "/leading",
    "trailing/",
    "emoji 🚀 loss",
    '=HYPERLINK("http://x")',
    "tab\tnew\nline",
    "<script>alert(1)</script>",
    "x" * 3000,
    " ",
]


def test_strange_tag_names_round_trip(tmp_path):
    events = []
    for tag in STRANGE_TAGS:
        events += scalar_series(tag, range(6))
        events += [testing.histogram_event(tag, [1.0, 2.0], step=0, wall_time=BASE_WALL)]
    write_run(tmp_path / "run", events)
    fast, reference = both_engines(tmp_path)
    assert set(fast.scalars["tag"].astype(str)) == set(STRANGE_TAGS)
    assert fast.scalars.groupby("tag", observed=True).size().tolist() == [6] * len(STRANGE_TAGS)
    assert set(fast.histograms["tag"].astype(str)) == set(STRANGE_TAGS)
    assert_same_frames(fast.scalars, reference.scalars, SCALAR_COLUMNS)
    assert set(fast.logical_scalars()["tag"].astype(str)) == set(STRANGE_TAGS)


def test_strange_run_directory_names(tmp_path):
    names = ["実験/ラン 1", "run with spaces", "-dash", "=1+1", "a.b.c"]
    for name in names:
        write_run(tmp_path / name, scalar_series("loss", range(3)))
    result = tbreport.read(tmp_path)
    assert sorted(result.runs["run"]) == sorted(names)
    assert len(result.scalars) == 3 * len(names)


def test_slash_heavy_add_scalars_main_tag(tmp_path):
    # add_scalars("Loss/a/b", {"train": ..}) writes <run>/Loss_a_b_train holding tag "Loss/a/b".
    for series in ("train", "val"):
        write_run(tmp_path / "exp" / f"Loss_a_b_{series}", scalar_series("Loss/a/b", range(4)))
    logical = tbreport.read(tmp_path).logical_scalars()
    assert set(logical["tag"].astype(str)) == {"Loss/a/b/train", "Loss/a/b/val"}
    assert set(logical["run"].astype(str)) == {"exp"}


def test_empty_run_is_listed_not_an_error(tmp_path):
    write_run(tmp_path / "starting", [])  # only the file-version record: a run that just began
    write_run(tmp_path / "done", scalar_series("loss", range(3)))
    result = tbreport.read(tmp_path)
    runs = result.runs.set_index("run")
    assert runs.loc["starting", "scalars"] == 0
    assert runs.loc["starting", "files"] == 1
    assert result.warnings == []
    only_empty = tmp_path / "starting"
    alone = tbreport.read(only_empty)
    assert alone.scalars.empty
    assert len(alone.runs) == 1


def test_invalid_utf8_tags_are_skipped_records(tmp_path):
    good = [
        testing.scalar_event("abc", float(i), step=i, wall_time=BASE_WALL).SerializeToString()
        for i in range(6)
    ]
    bad = [g.replace(b"abc", b"ab\xff") for g in good]
    interleaved = [record for pair in zip(good, bad, strict=True) for record in pair]
    testing.write_events(tmp_path / "run" / FILE_NAME, interleaved)
    result = tbreport.read(tmp_path)
    assert result.scalars["value"].tolist() == [float(i) for i in range(6)]
    kinds = [w.kind for w in result.warnings]
    assert set(kinds) == {"undecodable-record"}
    # Each of the 6 bad records is accounted for: 5 named one by one, then a summary line.
    assert len(kinds) == 6
    assert result.warnings[-1].message == "1 more records could not be decoded"


def test_text_with_invalid_utf8_is_replaced_not_fatal(tmp_path):
    event = testing.text_event("notes", "placeholder", step=0, wall_time=BASE_WALL)
    event.summary.value[0].tensor.string_val[0] = b"caf\xe9 \xff ok"
    write_run(tmp_path / "run", [event])
    (text,) = tbreport.read(tmp_path).text["text"]
    assert text == "caf\ufffd \ufffd ok"


def test_many_values_in_one_event(tmp_path):
    summary = summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=f"m{i}", simple_value=float(i)) for i in range(50)]
    )
    events = [testing.scalar_event("x", 0.0, step=1, wall_time=BASE_WALL)]
    events[0].summary.CopyFrom(summary)
    write_run(tmp_path / "run", events)
    result = tbreport.read(tmp_path)
    assert len(result.scalars) == 50
    assert (
        dict(zip(result.scalars["tag"].astype(str), result.scalars["value"], strict=True))["m49"]
        == 49.0
    )


def test_degenerate_histograms(tmp_path):
    empty = testing.histogram_event("empty", [], step=0, wall_time=BASE_WALL)
    zeros = testing.histogram_event("zeros", [0.0] * 10, step=0, wall_time=BASE_WALL)
    huge = testing.histogram_event("huge", [-5.0, 0.5, 5.0], step=0, wall_time=BASE_WALL)
    huge.summary.value[0].histo.bucket_limit[-1] = np.finfo(np.float64).max  # TF1's outer edge
    tf2_empty = testing.tensor_histogram_event(
        "tf2_empty", [], step=0, wall_time=BASE_WALL, with_metadata=True
    )
    write_run(tmp_path / "run", [empty, zeros, huge, tf2_empty])
    hist = tbreport.read(tmp_path).histograms.set_index("tag")
    assert math.isnan(hist.loc["empty", "mean"])
    assert hist.loc["empty", "num"] == 0
    assert hist.loc["zeros", "zero_fraction"] == 1.0
    assert hist.loc["zeros", "std"] == 0.0
    assert hist.loc["huge", "num"] == 3
    assert hist.loc["huge", "mean"] == pytest.approx(0.5 / 3)
    assert hist.loc["tf2_empty", "num"] == 0


# ---------------------------------------------------------------------------------------------
# Very many tags


def _many_tags(tmp_path, n_tags: int, steps: int) -> None:
    events = []
    for step in range(steps):
        events += [
            testing.scalar_event(
                f"layer{t % 97}/unit{t:06d}", float(t + step), step=step, wall_time=BASE_WALL + step
            )
            for t in range(n_tags)
        ]
    write_run(tmp_path / "run", events)


def _count_templates(monkeypatch) -> list[int]:
    calls = [0]
    original = parsing._template

    def counting(record):
        calls[0] += 1
        return original(record)

    monkeypatch.setattr(parsing, "_template", counting)
    return calls


def test_many_tags_cost_a_few_templates_not_one_per_tag(tmp_path, monkeypatch):
    _many_tags(tmp_path, 20_000, 3)
    calls = _count_templates(monkeypatch)
    result = tbreport.read(tmp_path, jobs=1)
    assert len(result.scalars) == 60_000
    assert result.scalars["tag"].nunique() == 20_000
    assert calls[0] <= 20  # one per record layout, not one per tag


@pytest.mark.slow
def test_two_hundred_thousand_tags(tmp_path, monkeypatch):
    n_tags = 200_000
    _many_tags(tmp_path, n_tags, 2)
    calls = _count_templates(monkeypatch)
    result = tbreport.read(tmp_path, jobs=1)
    assert calls[0] <= 20
    scalars = result.scalars
    assert len(scalars) == 2 * n_tags
    assert scalars["tag"].nunique() == n_tags
    unit = scalars["tag"].astype(str).str[-6:].astype(int)
    np.testing.assert_array_equal(
        scalars["value"].to_numpy(), (unit + scalars["step"]).to_numpy(dtype=float)
    )
    assert len(result.logical_scalars()) == 2 * n_tags


# ---------------------------------------------------------------------------------------------
# Small records that describe absurd content (a few bytes must never become gigabytes or a crash)


def _tensor_event(tag: str, tensor, plugin: str):
    from tensorboard.compat.proto import event_pb2

    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    value.metadata.plugin_data.plugin_name = plugin
    return event_pb2.Event(step=1, wall_time=BASE_WALL, summary=summary_pb2.Summary(value=[value]))


@pytest.mark.parametrize(
    ("dims", "fill"),
    [
        ([1 << 40, 3], {"double_val": [1.0]}),  # one value broadcast to 3e12 elements
        ([1 << 22, 3], {"double_val": [1.0]}),  # 12 million: still refused
        ([0, 1 << 40, 1 << 40], {}),  # no elements, but dimensions numpy cannot represent
        ([-1, 3], {"double_val": [1.0, 2.0, 3.0]}),  # unknown dimension
        ([2, 3], {"tensor_content": b"12345"}),  # content not a whole number of float64s
    ],
    ids=["terabytes", "megabytes", "zero-by-huge", "negative", "ragged-content"],
)
def test_absurd_tensors_are_skipped(tmp_path, dims, fill):
    from tensorboard.compat.proto import tensor_pb2

    tensor = tensor_pb2.TensorProto(dtype=2, **fill)
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    events = [_tensor_event("bomb", tensor, "histograms"), *scalar_series("loss", range(3))]
    write_run(tmp_path / "run", events)
    result = tbreport.read(tmp_path)
    assert result.histograms.empty
    assert len(result.scalars) == 3


def test_histogram_with_mismatched_bucket_arrays(tmp_path):
    from tensorboard.compat.proto import event_pb2

    histo = summary_pb2.HistogramProto(
        min=0.0,
        max=3.0,
        num=3,
        sum=3.0,
        sum_squares=5.0,
        bucket_limit=[1.0, 2.0, 3.0],
        bucket=[1.0, 2.0],
    )
    event = event_pb2.Event(
        step=1,
        wall_time=BASE_WALL,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="h", histo=histo)]),
    )
    write_run(tmp_path / "run", [event])
    (row,) = tbreport.read(tmp_path).histograms.to_dict("records")
    assert row["num"] == 3
    assert math.isnan(row["mean"])
    assert math.isnan(row["zero_fraction"])


def test_hparams_with_unknown_enum_values(tmp_path):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    contents = {
        "_hparams_/session_end_info": plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(status=99)
        ),
        "_hparams_/experiment": plugin_data_pb2.HParamsPluginData(
            experiment=api_pb2.Experiment(hparam_infos=[api_pb2.HParamInfo(name="lr", type=77)])
        ),
    }
    events = []
    for tag, data in contents.items():
        value = summary_pb2.Summary.Value(tag=tag)
        value.metadata.plugin_data.plugin_name = "hparams"
        value.metadata.plugin_data.content = data.SerializeToString()
        events.append(event_pb2.Event(summary=summary_pb2.Summary(value=[value])))
    write_run(tmp_path / "run", events)
    records = tbreport.read(tmp_path).hparam_records
    values = dict(zip(records["kind"], records["value"], strict=True))
    assert values == {"status": "UNKNOWN_99", "hparam_declared": "UNKNOWN_77"}


def test_deeply_nested_hyperparameters_are_skipped(tmp_path):
    deep_json = '{"a":' * 50_000 + "1" + "}" * 50_000
    run = tmp_path / "run"
    write_run(
        run,
        [
            testing.text_event("args/text_summary", deep_json, step=0, wall_time=BASE_WALL),
            *scalar_series("loss", range(3)),
        ],
    )
    (run / "hparams.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    result = tbreport.read(tmp_path)
    assert result.hparams.empty
    assert len(result.scalars) == 3
    (warning,) = result.warnings
    assert warning.kind == "hparams-yaml"
    assert "RecursionError" in warning.message
