"""Files decoded together (``parse_event_files``) give exactly what each gives on its own."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from reader_helpers import scalar_series, tensor_series

from tbreport import testing
from tbreport.reading import parsing, records
from tbreport.reading.parsing import parse_event_bytes, parse_event_files


def _file(events) -> bytes:
    return b"".join(
        e if isinstance(e, bytes) else testing.frame(e.SerializeToString()) for e in events
    )


def _files() -> list[tuple[bytes, str]]:
    version = testing.file_version_event(wall_time=1.0)
    rng = np.random.default_rng(3)
    histograms = [
        testing.histogram_event("w", rng.normal(size=50), step=s, wall_time=2.0 + s)
        for s in range(5)
    ]
    texts = [testing.text_event("notes", "hello", step=1, wall_time=3.0)]
    plain = _file([version, *scalar_series("loss", range(40)), *scalar_series("acc", range(40))])
    damaged = bytearray(_file([version, *scalar_series("loss", range(30))]))
    damaged[200] ^= 0xFF  # a data checksum fails in the middle
    return [
        (plain, "plain"),
        (_file([version, *tensor_series("epoch_loss", range(30))]), "tensors"),
        (b"", "empty"),
        (_file([version, *histograms, *texts, *scalar_series("loss", range(9))]), "mixed"),
        (bytes(damaged), "damaged"),
        (_file(scalar_series("legacy/loss", [5, 6, 7, 3, 4])), "legacy"),  # no file_version
        (_file([version, *scalar_series("épsilon/ü", range(12))]), "unicode"),
        (b"\x00" * 64, "zeros"),
        (
            _file([version, testing.session_start_event(step=3, wall_time=9.0)])
            + _file(scalar_series("loss", range(3, 20))),
            "restart",
        ),
        (plain[: len(plain) - 7], "truncated"),
    ]


def _facts(data: parsing.FileData) -> dict:
    """Everything of a FileData, with tags as names (their numbering may differ)."""
    tags = data.tags
    return {
        "n": data.n_records,
        "scalars": sorted(
            zip(
                data.scalar_seq.tolist(),
                [tags[t] for t in data.scalar_tag.tolist()],
                data.scalar_step.tolist(),
                data.scalar_wall.tolist(),
                data.scalar_value.view(np.int64).tolist(),
                data.scalar_is_tensor.tolist(),
                strict=True,
            )
        ),
        "histograms": [
            (h.seq, tags[h.tag], h.step, h.num, h.bucket.tolist(), h.bucket_limit.tolist())
            for h in data.histograms
        ],
        "texts": [(s, tags[t], st, w, x) for s, t, st, w, x in data.texts],
        "metadata": data.metadata,
        "starts": data.starts,
        "versions": data.versions,
        "legacy": None
        if data.legacy_events is None
        else [(s, st, h, sorted(tags[t] for t in tg)) for s, st, h, tg in data.legacy_events],
        "warnings": [(w.kind, w.offset, w.message) for w in data.warnings],
        "tags": sorted(set(tags)),
    }


@pytest.mark.parametrize("fast_min", [0, 256])
@pytest.mark.parametrize("tag_filter", [None, re.compile("loss")])
def test_files_decoded_together_equal_each_decoded_alone(monkeypatch, fast_min, tag_filter):
    monkeypatch.setattr(parsing, "_FAST_MIN_RECORDS", fast_min)
    files = _files() * 2  # enough small files to be framed together
    together = parse_event_files(files, tag_filter=tag_filter)
    alone = [parse_event_bytes(buf, path=path, tag_filter=tag_filter) for buf, path in files]
    assert [d.path for d in together] == [path for _, path in files]
    for joint, single in zip(together, alone, strict=True):
        assert _facts(joint) == _facts(single), joint.path


def test_many_small_files_together_match_protobuf(monkeypatch):
    files = [
        (
            _file([testing.file_version_event(), *scalar_series(f"t{i % 3}", range(i, i + 20))]),
            str(i),
        )
        for i in range(30)
    ]
    together = parse_event_files(files)
    with monkeypatch.context() as patch:
        patch.setattr(parsing, "_template", lambda record: None)
        slow = [parse_event_bytes(buf, path=path) for buf, path in files]
    assert [_facts(d) for d in together] == [_facts(d) for d in slow]


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_streamed_file_equals_the_file_read_whole(chunk):
    rng = np.random.default_rng(5)
    events = [testing.file_version_event(wall_time=1.0)]
    for s in range(60):
        events += scalar_series("loss", [s]) + tensor_series("acc", [s], metadata_first=s == 0)
        if s % 7 == 0:
            events.append(testing.histogram_event("w", rng.normal(size=300), step=s, wall_time=s))
        if s == 30:
            events.append(testing.session_start_event(step=20, wall_time=40.0))
    events.append(testing.text_event("notes", "x" * 5000, step=3, wall_time=3.0))  # > a chunk
    buf = _file(events)
    whole = parse_event_bytes(buf, path="f")
    streamed = parsing.parse_event_stream(io.BytesIO(buf), path="f", chunk_bytes=chunk)
    assert streamed is not None
    assert _facts(streamed) == _facts(whole)


def test_damaged_or_old_files_are_not_streamed():
    version = testing.file_version_event(wall_time=1.0)
    good = _file([version, *scalar_series("loss", range(200))])
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    cut = good[:-5]
    legacy = _file(scalar_series("loss", range(200)))
    for buf in (bytes(damaged), cut, legacy, b"", b"garbage" * 100):
        assert parsing.parse_event_stream(io.BytesIO(buf), path="f", chunk_bytes=512) is None


def test_files_framed_together_only_when_intact():
    rng = np.random.default_rng(11)
    version = testing.file_version_event(wall_time=1.0)
    files = []
    for i in range(60):
        buf = bytearray(_file([version, *scalar_series("loss", range(int(rng.integers(0, 40))))]))
        damage = i % 6
        if damage == 1 and len(buf) > 40:
            buf[int(rng.integers(0, len(buf)))] ^= 0x10  # a flipped bit anywhere
        elif damage == 2:
            buf = buf[: int(rng.integers(1, len(buf)))]  # cut anywhere
        elif damage == 3:
            buf += bytes(int(rng.integers(1, 40)))  # zero-filled tail
        elif damage == 4:
            buf = buf[:12] + b"\xff" * 4 + buf[16:]  # a header checksum destroyed
        files.append(bytes(buf))
    sizes = np.array([len(b) for b in files], dtype=np.int64)
    ends = np.cumsum(sizes)
    together = records.frame_intact_files(b"".join(files), ends - sizes, ends)
    framed_intact = 0
    for buf, framing in zip(files, together, strict=True):
        alone = records.frame_records(buf, path="f")
        intact = bool(len(alone.offsets)) and not alone.warnings
        # None is always allowed (the file is then framed on its own), a framing only if intact.
        assert framing is None or intact
        if framing is not None:
            framed_intact += 1
            assert framing.offsets.tolist() == alone.offsets.tolist()
            assert framing.lengths.tolist() == alone.lengths.tolist()
    assert framed_intact >= 10  # intact files walked along with enough others


def test_grouping_by_selections_equals_grouping_by_sort(tmp_path, monkeypatch):
    import tbreport
    from tbreport.reading import assemble

    version = testing.file_version_event(wall_time=1.0)
    events = [version]
    for s in range(50):
        for tag in ("b", "a", "c/d"):
            events += scalar_series(tag, [s % 17], value=lambda x, t=tag: len(t) + x)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "events.out.tfevents.1.h").write_bytes(_file(events))
    by_sort = tbreport.read(tmp_path, jobs=1).scalars
    monkeypatch.setattr(assemble, "_MASK_SORT_ROWS", 0)
    by_selection = tbreport.read(tmp_path, jobs=1).scalars
    assert by_sort.equals(by_selection)
    assert list(by_sort["tag"].unique()) == ["a", "b", "c/d"]
