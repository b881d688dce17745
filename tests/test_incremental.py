"""The incremental reader: polls read only new bytes, and end with what tbreport.read gives."""

from __future__ import annotations

import os
import random

import pandas as pd
import pytest
from reader_helpers import event_file_name, scalar_series, tensor_series

import tbreport
from tbreport import testing
from tbreport.reading.incremental import IncrementalReader

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record_bytes(events) -> bytes:
    return b"".join(
        testing.frame(e if isinstance(e, bytes) else e.SerializeToString()) for e in events
    )


def _source_files(root) -> dict[str, bytes]:
    """Relative path -> full content of a logdir mixing the layouts the reader must handle."""
    version = [testing.file_version_event()]
    restart = (
        version
        + scalar_series("loss", range(400))
        + tensor_series("acc", range(200))
        + [testing.session_start_event(step=150)]
        + scalar_series("loss", range(150, 300), value=lambda s: 5.0 + s)
    )
    hist = version + [
        testing.histogram_event("w", [0.1 * i for i in range(50)], step=s, wall_time=1e9 + s)
        for s in range(20)
    ]
    return {
        f"a/{event_file_name(0)}": _record_bytes(restart),
        f"a/{event_file_name(1)}": _record_bytes(version + scalar_series("loss", range(300, 350))),
        f"k/train/{event_file_name(0)}": _record_bytes(
            version + tensor_series("epoch_loss", range(30))
        ),
        f"k/validation/{event_file_name(0)}": _record_bytes(
            version + tensor_series("epoch_loss", range(30))
        ),
        f"h/{event_file_name(0)}": _record_bytes(hist),
    }


def _assert_same(full: tbreport.ReadResult, inc: tbreport.ReadResult) -> None:
    pd.testing.assert_frame_equal(full.scalars, inc.scalars)
    pd.testing.assert_frame_equal(
        full.histograms.drop(columns=["bucket_limit", "bucket"]),
        inc.histograms.drop(columns=["bucket_limit", "bucket"]),
    )
    pd.testing.assert_frame_equal(
        full.runs.drop(columns=["bytes"]), inc.runs.drop(columns=["bytes"])
    )
    assert [(w.kind, w.message) for w in full.warnings] == [
        (w.kind, w.message) for w in inc.warnings
    ]


def test_growing_files_read_in_random_pieces_equal_one_read(tmp_path):
    files = _source_files(tmp_path)
    live = tmp_path / "live"
    reader = IncrementalReader(live, stall_seconds=3600)
    written = dict.fromkeys(files, 0)
    rnd = random.Random(7)
    while any(written[name] < len(data) for name, data in files.items()):
        for name, data in files.items():
            piece = rnd.randint(0, 2500)
            path = live / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                out.write(data[written[name] : written[name] + piece])
            written[name] += piece
        reader.poll()
        # Nothing was ever called damaged while the files grew.
        kinds = {w.kind for w in reader.result().warnings}
        assert kinds <= {"purged-by-restart", "duplicate-steps"}
    _assert_same(tbreport.read(live), reader.result())
    logical = reader.logical_runs()
    assert logical["k"] == ["k/train", "k/validation"]
    # Chunks stay few: each file's appended pieces are merged as they accumulate.
    for run in reader._runs.values():
        for state in run.files.values():
            assert len(state.chunks) <= 16


def test_poll_reads_only_new_bytes(tmp_path):
    path = tmp_path / "run" / event_file_name(0)
    first = _record_bytes([testing.file_version_event(), *scalar_series("loss", range(100))])
    path.parent.mkdir(parents=True)
    path.write_bytes(first)
    reader = IncrementalReader(tmp_path)
    assert reader.poll().bytes_read == len(first)
    unchanged = reader.poll()
    assert unchanged.bytes_read == 0
    assert not unchanged.changed
    assert not unchanged.grew
    more = _record_bytes(scalar_series("loss", range(100, 110)))
    with open(path, "ab") as out:
        out.write(more)
    polled = reader.poll()
    assert polled.bytes_read == len(more)
    assert polled.changed == {"run"}
    assert len(reader.result().scalars) == 110


def test_partial_record_is_in_progress_until_the_file_stalls(tmp_path):
    clock = FakeClock()
    path = tmp_path / "run" / event_file_name(0)
    path.parent.mkdir(parents=True)
    complete = _record_bytes([testing.file_version_event(), *scalar_series("loss", range(10))])
    partial = _record_bytes(scalar_series("loss", [10]))
    path.write_bytes(complete + partial[:7])  # the writer is inside a record header
    reader = IncrementalReader(tmp_path, stall_seconds=30, clock=clock)
    reader.poll()
    assert reader.result().warnings == []
    assert reader.pending_bytes() == 7
    with open(path, "ab") as out:
        out.write(partial[7:20])  # now inside its data
    clock.now += 20
    assert reader.poll().changed == {"run"}
    assert reader.result().warnings == []
    clock.now += 29  # 29 s without growth: still being written
    assert not reader.poll().changed
    assert reader.result().warnings == []
    clock.now += 1  # 30 s: the writer is gone, the partial record is damage now
    assert reader.poll().changed == {"run"}
    (warning,) = reader.result().warnings
    assert warning.kind == "truncated-record"
    assert warning.offset == len(complete)
    with open(path, "ab") as out:  # ...unless it goes on after all
        out.write(partial[20:])
    reader.poll()
    assert reader.result().warnings == []
    assert len(reader.result().scalars) == 11


def test_finished_makes_a_partial_record_damage_at_once(tmp_path):
    path = tmp_path / "run" / event_file_name(0)
    path.parent.mkdir(parents=True)
    complete = _record_bytes([testing.file_version_event(), *scalar_series("loss", range(10))])
    path.write_bytes(complete + b"\x05\x00")
    reader = IncrementalReader(tmp_path, stall_seconds=3600)
    reader.poll()
    assert reader.result().warnings == []
    reader.poll(finished=True)
    assert [w.kind for w in reader.result().warnings] == ["truncated-record"]


def test_damage_in_appended_bytes_is_reported_at_its_file_offset(tmp_path):
    path = tmp_path / "run" / event_file_name(0)
    path.parent.mkdir(parents=True)
    head = _record_bytes([testing.file_version_event(), *scalar_series("loss", range(10))])
    path.write_bytes(head)
    reader = IncrementalReader(tmp_path)
    reader.poll()
    bad = bytearray(_record_bytes(scalar_series("loss", [10])))
    bad[-6] ^= 0xFF  # data checksum fails
    with open(path, "ab") as out:
        out.write(bytes(bad) + _record_bytes(scalar_series("loss", [11])))
    reader.poll()
    result = reader.result()
    (warning,) = result.warnings
    assert warning.kind == "checksum-mismatch"
    assert warning.offset == len(head)
    assert result.scalars["step"].tolist() == [*range(10), 11]
    assert [w.offset for w in tbreport.read(tmp_path).warnings] == [len(head)]


def test_truncated_and_rewritten_or_replaced_files_are_read_again(tmp_path):
    path = tmp_path / "run" / event_file_name(0)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        _record_bytes([testing.file_version_event(), *scalar_series("loss", range(50))])
    )
    reader = IncrementalReader(tmp_path)
    reader.poll()
    # Truncated and rewritten in place (same inode, smaller): read from the start.
    with open(path, "r+b") as out:
        out.truncate(0)
        out.write(_record_bytes([testing.file_version_event(), *scalar_series("loss", range(5))]))
    polled = reader.poll()
    assert [w.kind for w in polled.warnings] == ["reread"]
    assert reader.result().scalars["step"].tolist() == list(range(5))
    # Replaced by another file of the same name (another inode), even a larger one.
    other = tmp_path / "other.tmp"
    other.write_bytes(
        _record_bytes([testing.file_version_event(), *scalar_series("loss", range(100, 180))])
    )
    os.replace(other, path)
    polled = reader.poll()
    assert [w.kind for w in polled.warnings] == ["reread"]
    assert reader.result().scalars["step"].tolist() == list(range(100, 180))


def test_new_runs_and_files_are_picked_up_and_removed_runs_dropped(tmp_path):
    reader = IncrementalReader(tmp_path / "runs")
    assert reader.poll().changed == set()  # the logdir does not exist yet: nothing, no error
    testing.write_events(tmp_path / "runs" / "a" / event_file_name(0), scalar_series("x", range(3)))
    assert reader.poll().changed == {"a"}
    testing.write_events(
        tmp_path / "runs" / "a" / event_file_name(1), scalar_series("x", range(3, 6))
    )
    testing.write_events(tmp_path / "runs" / "b" / event_file_name(0), scalar_series("x", range(3)))
    assert reader.poll().changed == {"a", "b"}
    assert len(reader.result().scalars) == 9
    (tmp_path / "runs" / "b" / event_file_name(0)).unlink()
    (tmp_path / "runs" / "b").rmdir()
    polled = reader.poll()
    assert polled.removed == {"b"}
    assert reader.runs == ["a"]


def test_logical_results_hold_only_the_changed_logical_runs(tmp_path):
    for run in ("exp/train", "exp/validation", "other"):
        testing.write_events(
            tmp_path / run / event_file_name(0),
            [testing.file_version_event(), *tensor_series("epoch_loss", range(5))],
        )
    reader = IncrementalReader(tmp_path)
    reader.poll()
    with open(tmp_path / "exp" / "validation" / event_file_name(0), "ab") as out:
        out.write(_record_bytes(tensor_series("epoch_loss", [5], metadata_first=False)))
    changed = reader.poll().changed
    results = reader.logical_results(changed)
    assert list(results) == ["exp"]
    assert sorted(results["exp"].runs["run"]) == ["exp/train", "exp/validation"]
    assert sorted(results["exp"].logical_scalars()["tag"].unique()) == [
        "train/epoch_loss",
        "validation/epoch_loss",
    ]
