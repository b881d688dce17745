"""Damaged event files: every intact record is kept, every problem is a warning with its offset."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from reader_helpers import BASE_WALL, FILE_NAME, record_spans, scalar_rows

import tbreport
from tbreport import testing
from tbreport.errors import InputError
from tbreport.reading.parsing import parse_event_bytes
from tbreport.reading.records import frame_records, masked_crc32c

TAGS = ("loss", "accuracy", "lr")


def build_events(n: int, *, first_step: int = 0):
    """``n`` scalar events cycling over three tags, after the file-version record."""
    events = [testing.file_version_event(wall_time=BASE_WALL - 1)]
    for i in range(n):
        tag = TAGS[i % 3]
        step = first_step + i // 3
        events.append(testing.scalar_event(tag, i * 0.5, step=step, wall_time=BASE_WALL + i))
    return events


def expected_rows(events, keep_record) -> list[tuple]:
    """Scalar rows the reader must return when records ``i`` with ``keep_record(i)`` survive."""
    rows = []
    for i, event in enumerate(events):
        if i == 0 or not keep_record(i):
            continue
        value = event.summary.value[0]
        rows.append(
            (".", value.tag, event.step, event.wall_time, float(np.float32(value.simple_value)))
        )
    rows.sort(key=lambda r: r[1])  # the reader groups by tag name; stable keeps written order
    return rows


@pytest.fixture
def event_file(tmp_path):
    events = build_events(120)
    path = testing.write_events(tmp_path / "run" / FILE_NAME, events)
    data = path.read_bytes()
    spans = record_spans(data)
    assert len(spans) == len(events)
    return path, data, spans, events


def read_file(path) -> tbreport.ReadResult:
    return tbreport.read(path)


def warnings_of(result, kind):
    return [w for w in result.warnings if w.kind == kind]


def test_intact_file_has_no_warnings(event_file):
    path, _, _, events = event_file
    result = read_file(path)
    assert result.warnings == []
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: True)


@pytest.mark.parametrize("cut_into", ["header", "length-crc", "data", "data-crc"])
def test_truncated_last_record(event_file, cut_into):
    path, data, spans, events = event_file
    start, end = spans[-1]
    cut = {"header": start + 5, "length-crc": start + 10, "data": start + 20, "data-crc": end - 2}
    path.write_bytes(data[: cut[cut_into]])
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i < len(events) - 1)
    (warning,) = warnings_of(result, "truncated-record")
    assert warning.path == str(path)
    assert warning.offset == start
    assert f"@ byte {start}" in str(warning)
    assert len(result.warnings) == 1


def test_every_truncation_keeps_every_complete_record(tmp_path):
    events = build_events(30)
    path = testing.write_events(tmp_path / FILE_NAME, events)
    data = path.read_bytes()
    spans = record_spans(data)
    for cut in range(spans[1][0], len(data)):
        kept = parse_event_bytes(data[:cut], path="cut")
        complete = sum(1 for _, end in spans if end <= cut)
        assert kept.n_records == complete, cut
        if cut not in {end for _, end in spans}:
            assert [w.kind for w in kept.warnings] == ["truncated-record"], cut
            assert kept.warnings[0].offset == spans[complete][0]


def test_bit_flip_in_middle_record_data(event_file):
    path, data, spans, events = event_file
    k = 50
    start, _end = spans[k]
    damaged = bytearray(data)
    damaged[start + 12 + 3] ^= 0x10
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i != k)
    (warning,) = warnings_of(result, "checksum-mismatch")
    assert warning.offset == start
    assert warning.path == str(path)


@pytest.mark.parametrize("bit", [0, 3, 7, 20, 40, 63])
def test_bit_flip_in_length_field_resyncs(event_file, bit):
    path, data, spans, events = event_file
    k = 40
    start, _ = spans[k]
    (length,) = struct.unpack_from("<Q", data, start)
    damaged = bytearray(data)
    damaged[start : start + 8] = struct.pack("<Q", length ^ (1 << bit))
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i != k)
    (warning,) = warnings_of(result, "corrupt-data")
    assert warning.offset == start
    assert f"resumed at byte {spans[k + 1][0]}" in warning.message


def test_bit_flip_in_length_checksum_resyncs(event_file):
    path, data, spans, events = event_file
    k = 77
    damaged = bytearray(data)
    damaged[spans[k][0] + 9] ^= 0x01
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i != k)
    assert [w.offset for w in result.warnings] == [spans[k][0]]


def test_every_single_bit_flip_loses_only_its_record(tmp_path):
    events = build_events(40)  # enough records for the framing to predict lengths in bulk
    path = testing.write_events(tmp_path / FILE_NAME, events)
    data = path.read_bytes()
    spans = record_spans(data)
    intact = parse_event_bytes(data, path="intact")
    expected = list(zip(intact.scalar_seq.tolist(), intact.scalar_value.tolist(), strict=True))
    rng = np.random.default_rng(7)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 1 << int(rng.integers(8))
        parsed = parse_event_bytes(bytes(damaged), path="flipped")
        hit = next(i for i, (s, e) in enumerate(spans) if s <= position < e)
        assert parsed.n_records == len(spans) - 1, position
        assert len(parsed.warnings) == 1, (position, parsed.warnings)
        assert parsed.warnings[0].offset == spans[hit][0]
        # Record indices shift by one after the lost record.
        survivors = [
            (seq if seq < hit else seq + 1, value)
            for seq, value in zip(
                parsed.scalar_seq.tolist(), parsed.scalar_value.tolist(), strict=True
            )
        ]
        assert survivors == [(s, v) for s, v in expected if s != hit], position


def test_zero_filled_tail(event_file):
    path, data, _, events = event_file
    path.write_bytes(data + bytes(4096))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: True)
    (warning,) = result.warnings
    assert warning.kind == "zero-filled-tail"
    assert warning.offset == len(data)


def test_zeros_overwriting_the_last_records(event_file):
    path, data, spans, events = event_file
    zero_from = spans[100][0] + 7
    path.write_bytes(data[:zero_from] + bytes(len(data) - zero_from))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i < 100)
    assert len(result.warnings) == 1
    assert result.warnings[0].offset == spans[100][0]


def test_zero_filled_hole_in_the_middle(event_file):
    path, data, spans, events = event_file
    start, end = spans[30][0], spans[35][1]
    path.write_bytes(data[:start] + bytes(end - start) + data[end:])
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: not 30 <= i <= 35)
    assert [w.offset for w in result.warnings] == [start]


def test_absurd_length_does_not_allocate(event_file):
    path, data, spans, events = event_file
    header = struct.pack("<Q", 1 << 60)
    bogus = header + struct.pack("<I", masked_crc32c(header)) + b"\x00" * 32
    # Once as the tail (a valid header claiming 2**60 bytes), once in the middle of the file.
    path.write_bytes(data + bogus)
    result = read_file(path)
    assert len(result.scalars) == len(events) - 1
    (warning,) = result.warnings
    assert warning.kind == "truncated-record"
    assert warning.offset == len(data)
    middle = spans[60][0]
    path.write_bytes(data[:middle] + bogus + data[middle:])
    result = read_file(path)
    assert len(result.scalars) == len(events) - 1
    assert [w.offset for w in result.warnings] == [middle]


def test_valid_framing_around_garbage_protos(event_file):
    path, data, spans, events = event_file
    garbage = testing.frame(b"\xff\xff\xff\xff not a protobuf at all")
    path.write_bytes(data[: spans[10][0]] + garbage + data[spans[10][0] :])
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: True)
    (warning,) = result.warnings
    assert warning.kind == "undecodable-record"
    assert warning.offset == spans[10][0]


def test_many_bad_records_give_bounded_warnings(event_file):
    path, data, spans, events = event_file
    damaged = bytearray(data)
    for k in range(1, 101):
        damaged[spans[k][0] + 14] ^= 0xFF
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: i > 100)
    assert len(result.warnings) <= 25
    assert "80 more records" in result.warnings[-1].message


def test_damaged_file_version_record(event_file):
    path, data, _, events = event_file
    damaged = bytearray(data)
    damaged[14] ^= 0x01
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert scalar_rows(result.scalars) == expected_rows(events, lambda i: True)
    assert [w.kind for w in result.warnings] == ["checksum-mismatch"]


def test_damaged_file_does_not_hide_other_files_of_the_run(tmp_path):
    run = tmp_path / "run"
    first = testing.write_events(run / "events.out.tfevents.1700000000.h.1.0", build_events(30))
    testing.write_events(
        run / "events.out.tfevents.1700000100.h.1.1", build_events(30, first_step=10)
    )
    first.write_bytes(first.read_bytes()[:-7])
    result = tbreport.read(tmp_path)
    assert len(result.scalars) == 29 + 30
    assert [w.kind for w in result.warnings] == ["truncated-record"]
    assert result.warnings[0].run == "run"


# ---------------------------------------------------------------------------------------------
# Files that are not event files at all


@pytest.fixture
def good_run(tmp_path):
    testing.write_events(tmp_path / "good" / FILE_NAME, build_events(9))
    return tmp_path


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"", "empty-file"),
        (np.random.default_rng(3).bytes(5000), "not-an-event-file"),
        (b'{"note": "tfevents are elsewhere"}\n', "not-an-event-file"),
        (b"\x00" * 300, "not-an-event-file"),
        (b"abc", "not-an-event-file"),
    ],
    ids=["empty", "random", "json", "zeros", "tiny"],
)
def test_bad_file_next_to_a_good_run(good_run, content, kind):
    bad = good_run / "bad" / FILE_NAME
    bad.parent.mkdir()
    bad.write_bytes(content)
    result = tbreport.read(good_run)
    assert len(result.scalars) == 9
    bad_warnings = [w for w in result.warnings if w.path == str(bad)]
    assert [w.kind for w in bad_warnings] == [kind]
    assert bad_warnings[0].run == "bad"


def test_lfs_pointer_is_skipped_with_advice(good_run):
    pointer = good_run / "lfs" / FILE_NAME
    pointer.parent.mkdir()
    pointer.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )
    result = tbreport.read(good_run)
    (warning,) = result.warnings
    assert warning.kind == "lfs-pointer"
    assert "git lfs pull" in warning.message
    assert set(result.runs["run"]) == {"good"}


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"garbage" * 20])
def test_nothing_readable_is_an_input_error(tmp_path, content):
    bad = tmp_path / "run" / FILE_NAME
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(InputError, match="nothing readable"):
        tbreport.read(tmp_path)


def test_frame_records_never_trusts_lengths_beyond_the_buffer():
    header = struct.pack("<Q", (1 << 64) - 1)
    buf = header + struct.pack("<I", masked_crc32c(header)) + b"x" * 100
    framing = frame_records(buf, path="huge")
    assert len(framing.offsets) == 0
    assert [w.kind for w in framing.warnings] == ["truncated-record"]
