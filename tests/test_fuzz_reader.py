"""Fuzzing the record reader with damaged event files (hypothesis, bounded budget).

Properties, for every mutation of a valid event file (truncations, bit flips, zero-filled tails,
absurd length fields, random bytes, valid-framed garbage protos):

- parsing never raises, in bounded time;
- every record that lies wholly before the first damaged byte is returned, unchanged;
- every framed record the reader returns really verifies its checksums;
- damage that cannot be a shorter valid file produces at least one warning;
- through the public API, only `InputError` ever escapes, and other files of the run survive.
"""

from __future__ import annotations

import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_helpers import BASE_WALL, event_file_name, record_spans, scalar_series

import tbreport
from tbreport import testing
from tbreport.errors import InputError
from tbreport.reading.parsing import FileData, parse_event_bytes
from tbreport.reading.records import FOOTER_BYTES, HEADER_BYTES, frame_records, masked_crc32c

# The whole file's budget is well under a minute on two cores.
FUZZ = settings(
    max_examples=300,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _base_events():
    rng = np.random.default_rng(11)
    events = [testing.file_version_event(wall_time=BASE_WALL)]
    for step in range(12):
        wall = BASE_WALL + step
        events.append(testing.scalar_event("loss", 1.0 / (step + 1), step=step, wall_time=wall))
        events.append(testing.scalar_event("lr", 0.1 * 0.9**step, step=step, wall_time=wall))
        events.append(
            testing.tensor_scalar_event(
                "epoch_acc", step / 12, step=step, wall_time=wall, with_metadata=step == 0
            )
        )
        if step % 4 == 0:
            events.append(
                testing.histogram_event("w", rng.normal(size=50), step=step, wall_time=wall)
            )
            events.append(
                testing.tensor_histogram_event(
                    "k", rng.normal(size=50), step=step, wall_time=wall, with_metadata=step == 0
                )
            )
    events.insert(5, testing.text_event("notes", "hello", step=0, wall_time=BASE_WALL))
    events.extend(testing.hparams_events({"lr": 0.1, "opt": "adam"}))
    events.append(testing.session_start_event(step=3, wall_time=BASE_WALL + 20))
    return events


BASE = b"".join(testing.frame(e.SerializeToString()) for e in _base_events())
SPANS = record_spans(BASE)
INTACT = parse_event_bytes(BASE, path="intact")
assert INTACT.warnings == []
assert INTACT.n_records == len(SPANS)


@dataclass
class Mutation:
    name: str
    data: bytes
    must_warn: bool  # damage that cannot pass for a shorter, valid file

    @property
    def first_changed(self) -> int:
        """Bytes before this offset equal the intact file's."""
        n = min(len(self.data), len(BASE))
        a = np.frombuffer(self.data, dtype=np.uint8, count=n)
        b = np.frombuffer(BASE, dtype=np.uint8, count=n)
        differ = np.flatnonzero(a != b)
        return int(differ[0]) if len(differ) else n

    def __repr__(self) -> str:
        return (
            f"Mutation({self.name}, {len(self.data)} bytes, first change at {self.first_changed})"
        )


def _framed(payload: bytes) -> bytes:
    return testing.frame(payload)


positions = st.integers(min_value=0, max_value=len(BASE) - 1)


@st.composite
def mutations(draw) -> Mutation:
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "flip",
                "zeros",
                "absurd",
                "random",
                "overwrite",
                "garbage-proto",
                "splice",
            ]
        )
    )
    if kind == "truncate":
        cut = draw(positions)
        return Mutation(kind, BASE[:cut], False)
    if kind == "flip":
        flips = draw(st.lists(st.tuples(positions, st.integers(0, 7)), min_size=1, max_size=4))
        data = bytearray(BASE)
        for pos, bit in flips:
            data[pos] ^= 1 << bit
        return Mutation(kind, bytes(data), bytes(data) != BASE)  # two flips may cancel out
    if kind == "zeros":
        start = draw(positions)
        length = draw(st.integers(1, 5000))
        data = BASE[:start] + bytes(length) + BASE[start + length :]
        return Mutation(kind, data, data != BASE)  # zeros over zeros change nothing
    if kind == "absurd":
        index = draw(st.integers(0, len(SPANS) - 1))
        length = draw(st.sampled_from([1 << 60, (1 << 64) - 1, 1 << 63, len(BASE), 1 << 32]))
        valid_crc = draw(st.booleans())
        start = SPANS[index][0]
        header = struct.pack("<Q", length)
        crc = masked_crc32c(header) if valid_crc else 0xDEADBEEF
        data = bytearray(BASE)
        data[start : start + HEADER_BYTES] = header + struct.pack("<I", crc)
        return Mutation(kind, bytes(data), True)
    if kind == "random":
        at = draw(positions)
        noise = draw(st.binary(min_size=1, max_size=3000))
        return Mutation(kind, BASE[:at] + noise + BASE[at:], False)
    if kind == "overwrite":
        at = draw(positions)
        noise = draw(st.binary(min_size=1, max_size=200))
        return Mutation(kind, BASE[:at] + noise + BASE[at + len(noise) :], False)
    if kind == "garbage-proto":
        index = draw(st.integers(0, len(SPANS)))
        at = SPANS[index][0] if index < len(SPANS) else len(BASE)
        payload = draw(st.binary(max_size=300))
        return Mutation(kind, BASE[:at] + _framed(payload) + BASE[at:], False)
    # splice: the file's own records, cut at a random point and glued on a random record start
    cut = draw(positions)
    index = draw(st.integers(0, len(SPANS) - 1))
    return Mutation(kind, BASE[:cut] + BASE[SPANS[index][0] :], False)


def _records_before(offset: int) -> int:
    return sum(1 for _, end in SPANS if end <= offset)


def _scalars_before(data: FileData, k: int) -> list[tuple]:
    keep = data.scalar_seq < k
    return list(
        zip(
            data.scalar_seq[keep].tolist(),
            data.scalar_tag[keep].tolist(),
            data.scalar_step[keep].tolist(),
            data.scalar_wall[keep].tolist(),
            data.scalar_value[keep].tolist(),
            data.scalar_is_tensor[keep].tolist(),
            strict=True,
        )
    )


def _tagged(data: FileData, rows: list[tuple]) -> list[tuple]:
    return [(seq, data.tags[tag], *rest) for seq, tag, *rest in rows]


@FUZZ
@given(mutation=mutations())
def test_parsing_keeps_every_record_before_the_damage(mutation):
    parsed = parse_event_bytes(mutation.data, path="fuzz")
    k = _records_before(mutation.first_changed)
    assert parsed.n_records >= k
    assert _tagged(parsed, _scalars_before(parsed, k)) == _tagged(
        INTACT, _scalars_before(INTACT, k)
    )
    hist_before = [
        (h.seq, parsed.tags[h.tag], h.step, h.num) for h in parsed.histograms if h.seq < k
    ]
    assert hist_before == [
        (h.seq, INTACT.tags[h.tag], h.step, h.num) for h in INTACT.histograms if h.seq < k
    ]
    assert [t for t in parsed.texts if t[0] < k] == [t for t in INTACT.texts if t[0] < k]
    if mutation.must_warn:
        assert parsed.warnings, mutation.name
    for warning in parsed.warnings:
        assert warning.path == "fuzz"
        assert warning.message
        assert warning.offset is None or 0 <= warning.offset <= len(mutation.data)


@FUZZ
@given(mutation=mutations())
def test_framing_returns_only_verified_records(mutation):
    buf = mutation.data
    framing = frame_records(buf, path="fuzz")
    ends = framing.offsets + HEADER_BYTES + framing.lengths + FOOTER_BYTES
    assert np.all(np.diff(framing.offsets) > 0)
    assert np.all(framing.offsets[1:] >= ends[:-1])  # no overlap
    for off, length in zip(framing.offsets.tolist(), framing.lengths.tolist(), strict=True):
        header = buf[off : off + 8]
        assert struct.unpack_from("<I", buf, off + 8)[0] == masked_crc32c(header)
        body = buf[off + HEADER_BYTES : off + HEADER_BYTES + length]
        assert len(body) == length
        stored = struct.unpack_from("<I", buf, off + HEADER_BYTES + length)[0]
        assert stored == masked_crc32c(body)
    assert 0 <= framing.bytes_skipped <= len(buf)


@FUZZ
@given(noise=st.binary(max_size=4000))
def test_pure_noise_never_raises(noise):
    parsed = parse_event_bytes(noise, path="noise")
    assert parsed.n_records >= 0
    if noise and parsed.n_records == 0:
        assert [w.kind for w in parsed.warnings] in (
            ["not-an-event-file"],
            ["truncated-record"],
            ["zero-filled-tail"],
        ) or parsed.warnings[0].offset != 0


SECOND_FILE = b"".join(
    testing.frame(e.SerializeToString())
    for e in [testing.file_version_event(), *scalar_series("second/loss", range(100, 110))]
)


@settings(FUZZ, max_examples=80)
@given(mutation=mutations())
def test_public_api_only_raises_input_error(mutation):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / event_file_name(0)).write_bytes(mutation.data)
        (run / event_file_name(1)).write_bytes(SECOND_FILE)
        try:
            result = tbreport.read(tmp, jobs=1)
        except InputError as exc:  # pragma: no cover - the second file is always readable
            raise AssertionError(f"intact second file not read: {exc}") from exc
        second = result.scalars[result.scalars["tag"] == "second/loss"]
        assert second["step"].tolist() == list(range(100, 110))
        result.logical_scalars()
        for warning in result.warnings:
            assert warning.run in (None, "run")


# ---------------------------------------------------------------------------------------------
# Well-framed events with arbitrary content: every field a writer (or an attacker) could set.

PLUGINS = ["scalars", "histograms", "text", "hparams", "images", "", "pr_curves"]
floats = st.floats(allow_nan=True, allow_infinity=True)
float_lists = st.lists(floats, max_size=6)


@st.composite
def tensors(draw):
    from tensorboard.compat.proto import tensor_pb2

    tensor = tensor_pb2.TensorProto(dtype=draw(st.sampled_from([0, 1, 2, 3, 4, 7, 9, 19, 23])))
    for size in draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 1 << 20, 1 << 40]), max_size=3)):
        tensor.tensor_shape.dim.add(size=size)
    content = draw(
        st.sampled_from(["content", "float", "double", "int", "int64", "half", "string"])
    )
    if content == "content":
        tensor.tensor_content = draw(st.binary(max_size=48))
    elif content == "float":
        tensor.float_val.extend(draw(st.lists(st.floats(width=32), max_size=6)))
    elif content == "double":
        tensor.double_val.extend(draw(float_lists))
    elif content == "int":
        tensor.int_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6)))
    elif content == "int64":
        tensor.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6)))
    elif content == "half":
        tensor.half_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6)))
    else:
        tensor.string_val.extend(draw(st.lists(st.binary(max_size=20), max_size=3)))
    return tensor


@st.composite
def hparams_contents(draw) -> bytes:
    from tensorboard.plugins.hparams import plugin_data_pb2

    which = draw(st.sampled_from(["start", "end", "experiment", "junk"]))
    if which == "junk":
        return draw(st.binary(max_size=40))
    data = plugin_data_pb2.HParamsPluginData(version=draw(st.integers(0, 3)))
    if which == "start":
        for name in draw(st.lists(st.text(max_size=8), max_size=3)):
            kind = draw(st.sampled_from(["number", "string", "bool", "list"]))
            value = data.session_start_info.hparams[name]
            if kind == "number":
                value.number_value = draw(floats)
            elif kind == "string":
                value.string_value = draw(st.text(max_size=10))
            elif kind == "bool":
                value.bool_value = draw(st.booleans())
            else:
                value.list_value.values.add().number_value = 1.0
        data.session_start_info.group_name = draw(st.text(max_size=5))
    elif which == "end":
        data.session_end_info.status = draw(st.integers(0, 200))
        data.session_end_info.end_time_secs = draw(floats)
    else:
        info = data.experiment.hparam_infos.add(name=draw(st.text(max_size=5)))
        info.type = draw(st.integers(0, 200))
        data.experiment.metric_infos.add().name.tag = draw(st.text(max_size=5))
    return data.SerializeToString()


@st.composite
def events(draw):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    event = event_pb2.Event(wall_time=draw(floats), step=draw(st.integers(-(2**63), 2**63 - 1)))
    what = draw(st.sampled_from(["summary", "summary", "summary", "version", "session", "graph"]))
    if what == "version":
        event.file_version = draw(
            st.sampled_from(["brain.Event:2", "brain.Event:1", "brain.Event:x"])
        )
    elif what == "session":
        event.session_log.status = draw(st.integers(0, 5))
    elif what == "graph":
        event.graph_def = draw(st.binary(max_size=20))
    else:
        for _ in range(draw(st.integers(0, 3))):
            value = event.summary.value.add(
                tag=draw(st.sampled_from(["loss", "w", "t", "_hparams_/x", "args/text_summary"]))
            )
            kind = draw(st.sampled_from(["simple", "histo", "tensor", "none"]))
            if kind == "simple":
                value.simple_value = draw(st.floats(width=32))
            elif kind == "histo":
                value.histo.CopyFrom(
                    summary_pb2.HistogramProto(
                        min=draw(floats),
                        max=draw(floats),
                        num=draw(floats),
                        sum=draw(floats),
                        sum_squares=draw(floats),
                        bucket_limit=draw(float_lists),
                        bucket=draw(float_lists),
                    )
                )
            elif kind == "tensor":
                value.tensor.CopyFrom(draw(tensors()))
            if draw(st.booleans()):
                plugin = draw(st.sampled_from(PLUGINS))
                value.metadata.plugin_data.plugin_name = plugin
                if plugin == "hparams":
                    value.metadata.plugin_data.content = draw(hparams_contents())
    return event


@settings(FUZZ, max_examples=150)
@given(file_events=st.lists(events(), min_size=1, max_size=12), version_first=st.booleans())
def test_arbitrary_well_framed_events_never_crash(file_events, version_first):
    with tempfile.TemporaryDirectory() as tmp:
        head = [testing.file_version_event()] if version_first else []
        for index, sub in enumerate(("run", "run/1718000000.5")):
            testing.write_events(
                Path(tmp) / sub / event_file_name(index),
                head + file_events + scalar_series("anchor", [0]),
            )
        result = tbreport.read(tmp, jobs=1)
        assert len(result.scalars[result.scalars["tag"] == "anchor"]) >= 1
        result.logical_scalars()
        result.logical_histograms()


# ---------------------------------------------------------------------------------------------
# Damage after which every intact record must still be found: bytes deleted anywhere (inside a
# large record too, whose header still verifies), and headers with valid checksums but lengths
# chosen by an adversary.


def _long_base() -> bytes:
    rng = np.random.default_rng(5)
    events = [testing.file_version_event(wall_time=BASE_WALL)]
    for step in range(60):
        events.append(
            testing.scalar_event("loss", 1.0 / (step + 1), step=step, wall_time=BASE_WALL)
        )
        if step % 20 == 10:
            big = testing.histogram_event("w", rng.normal(size=500), step=step, wall_time=BASE_WALL)
            big.summary.value[0].histo.bucket_limit.extend(rng.random(3000).tolist())
            events.append(big)
    return b"".join(testing.frame(e.SerializeToString()) for e in events)


LONG = _long_base()
LONG_SPANS = record_spans(LONG)


def _fake_header(length: int) -> bytes:
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", masked_crc32c(head))


@st.composite
def damage_with_survivors(draw) -> tuple[str, bytes, list[int]]:
    """A damaged copy of LONG and the offsets (in the copy) of the records it leaves intact."""
    kind = draw(st.sampled_from(["delete", "delete-in-big", "fake-lengths", "fake-then-delete"]))
    n = len(LONG)
    if kind == "delete-in-big":
        start, end = max(LONG_SPANS, key=lambda span: span[1] - span[0])
        at = draw(st.integers(start + HEADER_BYTES, end - 2))
        size = draw(st.integers(1, 3000))
    else:
        at = draw(st.integers(0, n - 1))
        size = draw(st.integers(1, 3000))
    if kind in ("delete", "delete-in-big"):
        size = min(size, n - at)
        data = LONG[:at] + LONG[at + size :]
        survivors = [s for s, e in LONG_SPANS if e <= at] + [
            s - size for s, e in LONG_SPANS if s >= at + size
        ]
        return kind, data, survivors
    # Fake headers that verify, claiming lengths to the end of the file or anywhere in it.
    count = draw(st.integers(1, 200))
    total = n + count * HEADER_BYTES
    fakes = bytearray()
    for i in range(count):
        room = total - at - (i + 1) * HEADER_BYTES - FOOTER_BYTES
        length = draw(st.sampled_from(["to-end", "anywhere", "past-end"]))
        if length == "to-end":
            claim = room
        elif length == "anywhere":
            claim = draw(st.integers(0, max(room, 0)))
        else:
            claim = room + draw(st.integers(1, 1 << 40))
        fakes += _fake_header(max(claim, 0))
    data = LONG[:at] + bytes(fakes) + LONG[at:]
    shift = len(fakes)
    survivors = [s for s, e in LONG_SPANS if e <= at] + [
        s + shift for s, e in LONG_SPANS if s >= at
    ]
    if kind == "fake-then-delete":
        cut = draw(st.integers(at + shift, len(data) - 1))
        size = min(draw(st.integers(1, 500)), len(data) - cut)
        data = data[:cut] + data[cut + size :]
        survivors = [s for s in survivors if s + 1 <= cut and _span_end(s, shift, at) <= cut] + [
            s - size for s in survivors if s >= cut + size
        ]
    return kind, data, survivors


def _span_end(start: int, shift: int, at: int) -> int:
    original = start - shift if start >= at + shift else start
    return start + dict(LONG_SPANS)[original] - original


@FUZZ
@given(case=damage_with_survivors())
def test_every_intact_record_after_any_damage_is_kept(case):
    kind, data, survivors = case
    framing = frame_records(data, path="fuzz")
    found = set(framing.offsets.tolist())
    missing = [s for s in survivors if s not in found]
    assert not missing, (kind, missing[:5])


@pytest.mark.parametrize("claim", ["to-end", "increasing", "random"])
def test_resync_time_is_linear_in_adversarial_length_fields(claim):
    """Half a million headers whose checksums verify: each claim is checked in constant time."""
    rng = np.random.default_rng(3)
    tail = LONG
    count = (4 << 20) // HEADER_BYTES
    total = count * HEADER_BYTES + len(tail)
    starts = np.arange(count, dtype=np.int64) * HEADER_BYTES
    room = total - starts - HEADER_BYTES - FOOTER_BYTES
    if claim == "to-end":
        lengths = room
    elif claim == "increasing":
        lengths = room - (np.arange(count)[::-1] % 97) * 13
    else:
        lengths = (rng.random(count) * room).astype(np.int64)
    fakes = b"".join(_fake_header(int(length)) for length in lengths)
    data = fakes + tail
    frame_records(data[-(1 << 16) :], path="warm-up")
    started = time.perf_counter()
    framing = frame_records(data, path="adversarial")
    seconds = time.perf_counter() - started
    intact = [s + len(fakes) for s, _ in LONG_SPANS]
    assert set(intact) <= set(framing.offsets.tolist())
    assert seconds < 2.0, f"{seconds:.2f} s for 4 MiB of adversarial headers"
