"""Histograms decoded in bulk (`parsing._decode_histograms`) equal those decoded one by one with
protobuf, bit for bit, whatever the records hold; and the vectorised statistics equal the
definition (`assemble.histogram_statistics`) row for row."""

from __future__ import annotations

import os
import pickle
import re
import struct

import numpy as np
import pandas as pd
import pytest
from reader_helpers import event_file_name, scalar_series
from tensorboard.compat.proto import summary_pb2

import tbreport
from tbreport import testing
from tbreport.reading import parsing
from tbreport.reading.assemble import histogram_statistics
from tbreport.reading.parsing import (
    HistogramColumns,
    HistogramRow,
    parse_event_bytes,
    parse_event_files,
)
from tbreport.reading.result import HISTOGRAM_COLUMNS

# -- raw protobuf bytes, so that records can hold what no writer API would write -----------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _ld(key: int, payload: bytes) -> bytes:
    return bytes([key]) + _varint(len(payload)) + payload


def _f64(key: int, value: float) -> bytes:
    return bytes([key]) + struct.pack("<d", value)


def _packed(key: int, values) -> bytes:
    return _ld(key, np.asarray(values, dtype="<f8").tobytes())


def _histo(
    lo=-1.0, hi=2.0, num=5.0, total=3.0, sq=7.0, limits=(0.0, 1.0, 2.0), counts=(1.0, 3.0, 1.0)
) -> bytes:
    """A HistogramProto as protobuf writes it (zero doubles and empty arrays left out)."""
    out = b""
    for key, value in ((0x09, lo), (0x11, hi), (0x19, num), (0x21, total), (0x29, sq)):
        if struct.pack("<d", value) != bytes(8):
            out += _f64(key, value)
    if len(limits):
        out += _packed(0x32, limits)
    if len(counts):
        out += _packed(0x3A, counts)
    return out


def _event(
    histo: bytes,
    *,
    tag: bytes = b"w",
    step: int = 3,
    wall: float = 10.5,
    value_extra: bytes = b"",
    summary_extra: bytes = b"",
    event_extra: bytes = b"",
    order: str = "wsv",
) -> bytes:
    value = _ld(0x0A, tag) + _ld(0x2A, histo) + value_extra
    summary = _ld(0x0A, value) + summary_extra
    parts = {
        "w": _f64(0x09, wall) if wall else b"",
        "s": b"\x10" + _varint(step) if step else b"",
        "v": _ld(0x2A, summary),
    }
    return b"".join(parts[c] for c in order) + event_extra


def _file(records: list[bytes]) -> bytes:
    head = testing.frame(testing.file_version_event(wall_time=1.0).SerializeToString())
    return head + b"".join(testing.frame(r) for r in records)


def _plain_records(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(count):
        event = testing.histogram_event(
            f"layer{s % 3}/weights", rng.normal(size=40) * 10.0 ** rng.integers(-14, 3), step=s,
            wall_time=100.0 + s,
        )  # fmt: skip
        out.append(event.SerializeToString())
    return out


def _odd_records() -> list[bytes]:
    """Records the bulk decoder must take (odd values) or must leave to protobuf (odd layout)."""
    nan, inf = float("nan"), float("inf")
    unpacked = b"".join(_f64(0x31, x) for x in (1.0, 2.0)) + _packed(0x3A, [1.0, 1.0])
    tensor = testing.tensor_histogram_event(
        "tf2", [0.0, 1.0, 2.0, 2.5], step=4, wall_time=5.0, with_metadata=True
    ).SerializeToString()
    tensor_plain = testing.tensor_histogram_event(
        "tf2", [0.5, 1.0], step=5, wall_time=6.0, with_metadata=False
    ).SerializeToString()
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "histograms"
    return [
        _event(_histo()),
        _event(_histo(), step=0, wall=0.0),  # fields left out by proto3
        _event(_histo(lo=0.0, hi=0.0, num=4.0, total=0.0, sq=0.0, limits=[0.0], counts=[4.0])),
        _event(_histo(limits=(), counts=())),  # no buckets
        _event(b""),  # an empty HistogramProto
        _event(_histo(lo=nan, hi=nan, total=nan, sq=inf, limits=[nan, 1.0], counts=[nan, 2.0])),
        _event(_histo(limits=[1.0, 2.0, 3.0], counts=[1.0, 2.0])),  # lengths differ
        _event(_histo(lo=-1e-12, hi=1e-12, limits=[-1e-12, 0.0, 1e-12], counts=[1, 2, 3])),
        _event(_histo(lo=-1e-12, hi=1e-12, limits=[-1e-12, 0.0, 1e-12], counts=[-0.0, 0.5, 0.25])),
        _event(_histo(lo=-1e-11, hi=5.0, limits=[5.0, -1.0, 1e-11, -3.0], counts=[1, 2, 3, 4])),
        _event(_histo(lo=-1e-11, hi=5.0, limits=[0.0, 0.0, 0.0], counts=[2.0**60, 2.0**60, 1.0])),
        _event(_histo(lo=-1e-11, hi=1e-11, limits=[0.0] * 16, counts=[2.0**53] + [1.0] * 15)),
        _event(_histo(total=inf), step=-5),  # a negative step: a ten-byte varint
        _event(_histo(), step=(1 << 62) + 7, wall=-0.0),
        _event(_histo(), tag="épsilon/ü".encode()),
        _event(_histo(), tag=b""),  # a tag written explicitly empty
        _event(_histo(), tag=b"x" * 300),  # long tags are left to protobuf
        _event(_histo(), tag=b"\xff\xfe"),  # not UTF-8: protobuf rejects the record
        _event(_histo(), order="vsw"),  # fields in another order
        _event(_histo() + b"\x78\x01"),  # an unknown field in the histogram
        _event(_histo(), value_extra=b"\x3a\x01n"),  # node_name
        _event(_histo(), value_extra=_ld(0x4A, metadata.SerializeToString())),  # metadata
        _event(_histo(), summary_extra=_ld(0x0A, _ld(0x0A, b"s") + b"\x15" + bytes(4))),
        _event(_histo(), event_extra=_ld(0x1A, b"brain.Event:2")),
        _event(_histo() + _f64(0x09, 42.0)),  # min twice: the last wins
        _event(_histo() + _packed(0x32, [9.0])),  # packed twice: concatenated
        _event(_f64(0x09, 1.0) + unpacked),  # repeated doubles not packed
        _event(_histo() + b"\x32\x03abc"),  # packed doubles of a length not a multiple of 8
        _event(_histo()[:-3]),  # cut inside the histogram
        _event(_histo(), step=1) + b"\x10\x05",  # step twice
        tensor,
        tensor_plain,
        testing.text_event("notes", "hi", step=1, wall_time=2.0).SerializeToString(),
        *[e.SerializeToString() for e in scalar_series("loss", range(3))],
    ]


def _columns_facts(data: parsing.FileData) -> list:
    """Every histogram field, bit for bit (floats as bytes), with tags as names."""
    h = data.histograms
    tags = data.tags
    rows = []
    for i, row in enumerate(h):
        rows.append(
            (
                row.seq,
                tags[row.tag],
                row.step,
                struct.pack("<7d", row.wall_time, row.min, row.max, row.num, row.sum,
                            row.sum_squares, 0.0),
                row.bucket_limit.tobytes(),
                row.bucket.tobytes(),
                row.from_tensor,
                _bits(h.mean[i]),
                _bits(h.std[i]),
                _bits(h.zero_fraction[i]),
            )
        )  # fmt: skip
    return rows


def _bits(x: float) -> bytes:
    return b"nan" if np.isnan(x) else struct.pack("<d", x)


def _facts(data: parsing.FileData) -> dict:
    return {
        "n": data.n_records,
        "histograms": _columns_facts(data),
        "scalars": sorted(
            zip(
                data.scalar_seq.tolist(),
                [data.tags[t] for t in data.scalar_tag.tolist()],
                data.scalar_step.tolist(),
                strict=True,
            )
        ),
        "texts": [(s, data.tags[t], st, w, x) for s, t, st, w, x in data.texts],
        "metadata": data.metadata,
        "legacy": None
        if data.legacy_events is None
        else [(s, st, h, sorted(data.tags[t] for t in tg)) for s, st, h, tg in data.legacy_events],
        "warnings": [(w.kind, w.offset, w.message) for w in data.warnings],
        "other": data.other_values,
        "tags": sorted(set(data.tags)),
    }


def _slow(monkeypatch, fn, *args, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(parsing, "_decode_histograms", lambda buf, o, n, indices, c, **kw: indices)
        return fn(*args, **kwargs)


@pytest.fixture
def bulk_always(monkeypatch):
    monkeypatch.setattr(parsing, "_FAST_MIN_HISTOGRAMS", 0)


def _decoded_in_bulk(monkeypatch, buf: bytes) -> int:
    """How many histogram records of ``buf`` the bulk decoder took."""
    taken = []
    original = parsing._decode_histograms

    def spy(buf, offsets, lengths, indices, collector, **kwargs):
        left = original(buf, offsets, lengths, indices, collector, **kwargs)
        taken.append(len(indices) - len(left))
        return left

    with monkeypatch.context() as patch:
        patch.setattr(parsing, "_decode_histograms", spy)
        parse_event_bytes(buf, path="f")
    return sum(taken)


@pytest.mark.parametrize("tag_filter", [None, re.compile("layer1|w$|tf2")])
def test_odd_histograms_decode_as_protobuf_does(monkeypatch, bulk_always, tag_filter):
    records = _odd_records()
    for rotate in range(0, len(records), 7):  # each record at several places in the file
        buf = _file(records[rotate:] + records[:rotate] + records)
        bulk = parse_event_bytes(buf, path="f", tag_filter=tag_filter)
        slow = _slow(monkeypatch, parse_event_bytes, buf, path="f", tag_filter=tag_filter)
        assert _facts(bulk) == _facts(slow)


def test_the_bulk_decoder_takes_what_writers_write_and_leaves_the_rest(monkeypatch, bulk_always):
    plain = _plain_records(50, seed=1)
    assert _decoded_in_bulk(monkeypatch, _file(plain)) == 50
    # Of the odd records, those with a layout of their own go to protobuf.
    odd = _odd_records()
    assert 10 < _decoded_in_bulk(monkeypatch, _file(odd)) < 20


@pytest.mark.parametrize("seed", range(4))
def test_plain_histograms_bulk_equal_protobuf(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    records = _plain_records(int(rng.integers(40, 200)), seed)
    odd = _odd_records()
    for k in rng.integers(0, len(records), 10).tolist():  # odd ones spread among them
        records.insert(k, odd[int(rng.integers(len(odd)))])
    buf = _file(records)
    bulk = parse_event_bytes(buf, path="f")
    assert _facts(bulk) == _facts(_slow(monkeypatch, parse_event_bytes, buf, path="f"))


def test_small_files_decoded_together_equal_protobuf(monkeypatch, bulk_always):
    files = []
    for i in range(24):
        records = _plain_records(3 + i % 5, seed=i)
        if i % 4 == 0:
            records += _odd_records()[i % 7 :: 5]
        files.append((_file(records), f"f{i}"))
    together = parse_event_files(files)
    slow = _slow(monkeypatch, parse_event_files, files)
    alone = [parse_event_bytes(buf, path=path) for buf, path in files]
    assert [_facts(d) for d in together] == [_facts(d) for d in slow] == [_facts(d) for d in alone]


@pytest.mark.parametrize("chunk", [300, 5000, 1 << 20])
def test_streamed_histograms_equal_the_file_read_whole(monkeypatch, bulk_always, chunk):
    import io

    buf = _file(_plain_records(120, seed=9) + _odd_records()[:12])
    whole = parse_event_bytes(buf, path="f")
    streamed = parsing.parse_event_stream(io.BytesIO(buf), path="f", chunk_bytes=chunk)
    assert streamed is not None
    assert _facts(streamed) == _facts(whole)


def _frames_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) == HISTOGRAM_COLUMNS
    assert len(a) == len(b)
    for column in a.columns:
        if column in ("bucket_limit", "bucket"):
            for x, y in zip(a[column], b[column], strict=True):
                assert x.dtype == y.dtype == np.float64
                assert x.tobytes() == y.tobytes()
        elif a[column].dtype.kind == "f":
            assert a[column].to_numpy().tobytes() == b[column].to_numpy().tobytes(), column
        else:
            pd.testing.assert_series_equal(a[column], b[column], check_exact=True)


def test_read_frames_equal_protobuf_and_the_accumulator(monkeypatch, bulk_always, tmp_path):
    for r in range(3):
        run = tmp_path / f"run{r}"
        run.mkdir()
        for index in range(2):
            records = _plain_records(30 + 10 * r, seed=10 * r + index) + _odd_records()
            (run / event_file_name(index)).write_bytes(_file(records))
    bulk = tbreport.read(tmp_path, jobs=1)
    assert len(bulk.histograms) > 200
    _frames_identical(bulk.histograms, _slow(monkeypatch, tbreport.read, tmp_path).histograms)
    _frames_identical(bulk.histograms, tbreport.read(tmp_path, jobs=2).histograms)
    pd.testing.assert_frame_equal(bulk.runs, _slow(monkeypatch, tbreport.read, tmp_path).runs)


def test_read_frames_equal_the_accumulator(bulk_always, tmp_path):
    # TensorBoard's own reader stops at a record protobuf rejects: only records it can read.
    odd = [r for r in _odd_records()[:15] if b"\xff" not in r]
    for r in range(2):
        records = _plain_records(40, seed=r) + odd + _plain_records(5, seed=9)
        writing_dir = tmp_path / f"run{r}"
        writing_dir.mkdir()
        (writing_dir / event_file_name(0)).write_bytes(_file(records))
    bulk = tbreport.read(tmp_path, jobs=1)
    assert len(bulk.histograms) > 100
    _frames_identical(bulk.histograms, tbreport.read(tmp_path, engine="accumulator").histograms)


def test_bucket_arrays_are_writable_float64_views():
    buf = _file(_plain_records(40, seed=2))
    data = parse_event_bytes(buf, path="f")
    for row in data.histograms:
        assert row.bucket.dtype == np.float64
        assert row.bucket.flags.writeable
        assert row.bucket_limit.dtype == np.float64
        assert row.bucket_limit.flags.writeable


# -- the columns themselves --------------------------------------------------------------------


def _random_rows(rng: np.random.Generator, n: int) -> list[HistogramRow]:
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-12, -1e-12, 1e-10, -1e-10, 2.0**60]
    # Counts at zero whose sum depends on the order of summation, or that are -0.0.
    zeros = np.zeros(16)
    rows = [
        HistogramRow(0, 0, 0, 1.0, -1e-11, 1e-11, 2.0**60, 0.0, 1.0, zeros, counts, False)
        for counts in (
            np.array([2.0**53] + [1.0] * 15),
            np.array([0.1] * 16),
            np.full(16, -0.0),
            np.array([2.0**52] * 16),
        )
    ]
    for i in range(n):
        size = int(rng.integers(0, 12))
        limits = np.sort(rng.normal(size=size) * 10.0 ** rng.integers(-13, 2))
        counts = rng.integers(0, 5, size).astype(np.float64)
        if rng.random() < 0.2:
            limits = rng.permutation(limits)
        if rng.random() < 0.2 and size:
            counts[rng.integers(size)] = rng.choice([*specials, 0.5, 0.001, -2.0])
        if rng.random() < 0.1 and size:
            limits[rng.integers(size)] = rng.choice(specials)
        if rng.random() < 0.05:
            limits = limits[:-1]
        lo = float(limits.min()) - 1e-3 if len(limits) and rng.random() < 0.8 else 0.0
        hi = float(limits.max()) if len(limits) and rng.random() < 0.8 else 0.0
        num = float(counts.sum()) if rng.random() < 0.9 else float(rng.choice(specials))
        total = float(rng.normal()) if rng.random() < 0.8 else float(rng.choice(specials))
        sq = abs(float(rng.normal())) + 1 if rng.random() < 0.8 else float(rng.choice(specials))
        tensor = bool(rng.random() < 0.3)
        if tensor:
            total = sq = np.nan
        rows.append(
            HistogramRow(i, 0, i, 1.0, lo, hi, num, total, sq, limits, counts, tensor)
        )  # fmt: skip
    return rows


def _reference_statistics(rows: list[HistogramRow]) -> tuple[np.ndarray, ...]:
    """The vectorised statistics as they were computed before the columns existed (kept as the
    reference: every row equal to this, bit for bit)."""
    n = len(rows)
    mean, std, zero = (np.full(n, np.nan) for _ in range(3))
    lo = np.array([h.min for h in rows], np.float64)
    hi = np.array([h.max for h in rows], np.float64)
    num = np.array([h.num for h in rows], np.float64)
    total_sum = np.array([h.sum for h in rows], np.float64)
    sum_sq = np.array([h.sum_squares for h in rows], np.float64)
    tensor = np.array([h.from_tensor for h in rows], bool)
    sizes = np.array([len(h.bucket) for h in rows], np.int64)
    limit_sizes = np.array([len(h.bucket_limit) for h in rows], np.int64)
    valid = (num > 0) & (sizes > 0) & (sizes == limit_sizes)
    zeros = valid & (lo == 0.0) & (hi == 0.0)
    mean[zeros], std[zeros], zero[zeros] = 0.0, 0.0, 1.0
    todo = np.flatnonzero(valid & ~zeros)
    if not len(todo):
        return mean, std, zero
    picked = [rows[i] for i in todo.tolist()]
    limits = np.concatenate([h.bucket_limit for h in picked]).astype(np.float64)
    counts = np.concatenate([h.bucket for h in picked]).astype(np.float64)
    size = sizes[todo]
    first = np.concatenate(([0], np.cumsum(size)[:-1]))
    segment = np.repeat(np.arange(len(todo)), size)
    lefts = np.empty_like(limits)
    lefts[1:] = limits[:-1]
    lefts[first] = np.minimum(lo[todo], limits[first])
    seg_lo, seg_hi, seg_num = lo[todo], hi[todo], num[todo]
    exact = ~tensor[todo] & np.isfinite(total_sum[todo]) & np.isfinite(sum_sq[todo])
    m = total_sum[todo] / seg_num
    var = np.maximum(sum_sq[todo] / seg_num - m * m, 0.0)
    centres = (np.maximum(lefts, seg_lo[segment]) + np.minimum(limits, seg_hi[segment])) / 2.0
    total = np.add.reduceat(counts, first)
    c_mean = np.add.reduceat(centres * counts, first) / total
    c_var = np.add.reduceat((centres - c_mean[segment]) ** 2 * counts, first) / total
    c_mean[total == 0] = np.nan
    c_var[total == 0] = np.nan
    m = np.where(exact, m, c_mean)
    var = np.where(exact, var, c_var)
    at_zero = (lefts >= -1e-10) & (limits <= 1e-10)
    zero_counts = np.add.reduceat(np.where(at_zero, counts, 0.0), first)
    mean[todo] = m
    std[todo] = np.sqrt(var)
    zero[todo] = np.minimum(zero_counts / seg_num, 1.0)
    return mean, std, zero


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(((a.view(np.int64) == b.view(np.int64)) | both_nan).all())


@pytest.mark.parametrize("seed", range(6))
def test_statistics_equal_the_reference_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    rows = _random_rows(rng, 400)
    with np.errstate(all="ignore"):
        expected = _reference_statistics(rows)
    columns = HistogramColumns.from_rows(rows)
    for got, want in zip((columns.mean, columns.std, columns.zero_fraction), expected, strict=True):
        assert _same_bits(got, want)
    # Rows taken in another order, sharing the buckets: the same statistics per row.
    order = rng.permutation(len(rows))
    taken = columns.take(order)
    with np.errstate(all="ignore"):
        again = parsing.histogram_statistics_columns(taken)
    for got, want in zip(again, expected, strict=True):
        assert _same_bits(got, want[order])


@pytest.mark.parametrize("seed", range(3))
def test_statistics_match_the_definition_row_by_row(seed):
    # Sane histograms only: on absurd ones (NaN counts, num) the definition's edge cases differ.
    rows = [
        row
        for row in _random_rows(np.random.default_rng(100 + seed), 300)
        if np.isfinite(row.num)
        and np.isfinite(row.bucket).all()
        and (row.bucket >= 0).all()
        and np.isfinite(row.bucket_limit).all()
        and row.num == row.bucket.sum()
    ]
    assert len(rows) > 100
    columns = HistogramColumns.from_rows(rows)
    for i, row in enumerate(rows):
        with np.errstate(all="ignore"):
            mean, std, zero = histogram_statistics(row)
        got = (columns.mean[i], columns.std[i], columns.zero_fraction[i])
        np.testing.assert_allclose(got, (mean, std, zero), rtol=1e-9, atol=0, equal_nan=True)


def test_columns_take_concat_and_pickle_keep_every_row():
    rng = np.random.default_rng(7)
    a = HistogramColumns.from_rows(_random_rows(rng, 50))
    b = HistogramColumns.from_rows(_random_rows(rng, 30))
    picked = a.take(np.array([40, 3, 3, 17]))
    both = HistogramColumns.concat([picked, b, HistogramColumns.empty()])
    expected = [*[list(a)[i] for i in (40, 3, 3, 17)], *list(b)]
    for got in (both, pickle.loads(pickle.dumps(both)), pickle.loads(pickle.dumps(picked))):
        want = expected if len(got) == len(expected) else expected[:4]
        assert len(got) == len(want)
        for x, y in zip(got, want, strict=True):
            assert (x.seq, x.step, x.from_tensor) == (y.seq, y.step, y.from_tensor)
            assert x.bucket.tobytes() == y.bucket.tobytes()
            assert x.bucket_limit.tobytes() == y.bucket_limit.tobytes()
    # Pickling sends only the buckets the rows use.
    compact = pickle.loads(pickle.dumps(picked))
    assert len(compact.counts) == int(picked.count_size.sum()) < len(a.counts)


def test_columns_permuted_pickle_as_they_are():
    a = HistogramColumns.from_rows(_random_rows(np.random.default_rng(8), 60))
    permuted = a.take(np.random.default_rng(9).permutation(len(a)))
    back = pickle.loads(pickle.dumps(permuted))
    assert len(back.limits) == len(a.limits)
    assert len(back.counts) == len(a.counts)
    for x, y in zip(back, permuted, strict=True):
        assert x.bucket.tobytes() == y.bucket.tobytes()
        assert x.bucket_limit.tobytes() == y.bucket_limit.tobytes()


@pytest.mark.parametrize("arrow", [True, False])
def test_join_doubles_with_and_without_arrow(monkeypatch, arrow):
    import sys

    if not arrow:
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails: the plain join
    rng = np.random.default_rng(11)
    buf = rng.bytes(20_000)
    sizes = rng.integers(0, 40, 100) * 8
    gaps = rng.integers(0, 30, 100)
    first = np.cumsum(gaps + np.concatenate(([0], sizes[:-1])))
    last = first + sizes
    got = parsing._join_doubles(buf, first, last)
    want = np.frombuffer(b"".join(buf[a:b] for a, b in zip(first, last, strict=True)), "<f8")
    assert got.dtype == np.float64
    assert got.flags.writeable
    assert got.tobytes() == want.tobytes()


# -- workers' buckets through a shared-memory file -----------------------------------------------


@pytest.fixture
def histogram_logdir(tmp_path):
    for r in range(4):
        run = tmp_path / f"run{r}"
        run.mkdir()
        records = _plain_records(60, seed=r) + _odd_records()[:12]
        scalars = [
            testing.frame(e.SerializeToString())
            for e in scalar_series(f"loss{r % 2}", range(40 + r), value=lambda s, r=r: r - s / 7)
        ]
        (run / event_file_name(0)).write_bytes(_file(records) + b"".join(scalars))
    return tmp_path


def _spill_files() -> set[str]:
    import glob

    return set(glob.glob("/dev/shm/tbreport-*"))


@pytest.mark.parametrize("how", ["spill", "pickled", "unmappable", "full"])
def test_workers_send_columns_and_buckets_every_way(monkeypatch, histogram_logdir, how):
    import mmap

    from tbreport.reading import pool

    one = tbreport.read(histogram_logdir, jobs=1)
    before = _spill_files()
    if how == "pickled":
        monkeypatch.setattr(pool, "_spill_file", lambda: None)
    elif how == "unmappable":  # the reading process cannot map the file: it reads it

        def refuse(*args, **kwargs):
            raise OSError("no mapping")

        monkeypatch.setattr(mmap, "mmap", refuse)
    elif how == "full":  # workers cannot write it (no space): their arrays are pickled

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pool, "_write_at", full)
    two = tbreport.read(histogram_logdir, jobs=2)
    _frames_identical(one.histograms, two.histograms)
    pd.testing.assert_frame_equal(one.scalars, two.scalars, check_exact=True)
    assert len(two.scalars) == 4 * 40 + 6
    assert _spill_files() == before  # nothing left in shared memory
    cell = two.histograms["bucket"].iloc[0]
    assert cell.flags.writeable
    cell[0] += 1.0  # private to this frame
    again = tbreport.read(histogram_logdir, jobs=2)
    _frames_identical(one.histograms, again.histograms)


def test_a_spilled_batch_holds_no_arrays_and_unpacks_to_the_same_runs(histogram_logdir):
    import tempfile

    from tbreport.reading import pool
    from tbreport.reading.discovery import discover_runs

    runs, _ = discover_runs(histogram_logdir)
    plain_batch = pool._unpack(pool._read_run_batch(runs, None, None), None)
    plain = plain_batch.runs
    with tempfile.TemporaryFile() as spill:
        sent = pool._read_run_batch(runs, None, None, spill.fileno())
        # Only where the batch is goes through the pipe ...
        assert isinstance(sent, pool._InFile)
        assert len(pickle.dumps(sent)) < 200
        # ... and the batch in the file holds where its arrays are, not the arrays.
        packed = pool._load_pickled(sent, spill.fileno())
        arrays = [a for a in packed.columns.values() if isinstance(a, np.ndarray)]
        for entry in packed.histograms:
            assert entry is not None
            arrays += [a for a in (*entry[0].values(), *entry[1:]) if isinstance(a, np.ndarray)]
        assert arrays == []
        assert len(pickle.dumps(packed)) < 20_000
        spilled_batch = pool._unpack(sent, spill.fileno())
    spilled = spilled_batch.runs
    assert (plain_batch.tags, plain_batch.inventory.names) == (
        spilled_batch.tags,
        spilled_batch.inventory.names,
    )
    for name in ("sizes", "scalar_tag", "scalar_step", "scalar_wall", "scalar_value"):
        assert getattr(plain_batch, name).tobytes() == getattr(spilled_batch, name).tobytes()
        assert getattr(plain_batch, name).dtype == getattr(spilled_batch, name).dtype
    plain_batch.give_back_columns()
    spilled_batch.give_back_columns()
    for a, b in zip(plain, spilled, strict=True):
        for name in ("scalar_tag", "scalar_step", "scalar_wall", "scalar_value"):
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
            assert getattr(a, name).dtype == getattr(b, name).dtype
        assert [r.bucket.tobytes() for r in a.histograms] == [
            r.bucket.tobytes() for r in b.histograms
        ]
        assert a.histograms.step.tolist() == b.histograms.step.tolist()
        assert (a.tags, a.facts) == (b.tags, b.facts)


def test_runs_decoded_together_send_their_shared_buckets_once(tmp_path):
    import tempfile

    from tbreport.reading import pool
    from tbreport.reading.discovery import discover_runs

    for r in range(4):
        (tmp_path / f"run{r}").mkdir()
        (tmp_path / f"run{r}" / event_file_name(0)).write_bytes(_file(_plain_records(80, seed=r)))
    runs, _ = discover_runs(tmp_path)
    plain = pool._unpack(pool._read_run_batch(runs, None, None), None).runs
    assert len({id(rd.histograms.limits) for rd in plain}) == 1  # one flat array for all
    buckets = sum(
        8 * (int(rd.histograms.limit_size.sum()) + int(rd.histograms.count_size.sum()))
        for rd in plain
    )
    with tempfile.TemporaryFile() as spill:
        spilled = pool._unpack(
            pool._read_run_batch(runs, None, None, spill.fileno()), spill.fileno()
        ).runs
        # Written once for the batch: four runs' worth, not four times all four.
        assert os.fstat(spill.fileno()).st_size < 1.2 * buckets + 50_000
    for a, b in zip(plain, spilled, strict=True):
        assert [r.bucket.tobytes() for r in a.histograms] == [
            r.bucket.tobytes() for r in b.histograms
        ]
        assert [r.bucket_limit.tobytes() for r in a.histograms] == [
            r.bucket_limit.tobytes() for r in b.histograms
        ]


@pytest.mark.parametrize("layout", ["uniform", "stretches", "ragged", "gaps", "empty-rows"])
def test_bucket_views_are_the_slices_they_stand_for(layout):
    from tbreport.reading.parsing import _views

    rng = np.random.default_rng(len(layout))
    n = 400
    if layout == "uniform":
        sizes = np.full(n, 30)
    elif layout == "stretches":
        sizes = np.repeat(rng.integers(1, 40, size=8), n // 8)
    elif layout == "empty-rows":
        sizes = np.where(rng.random(n) < 0.5, 0, 7)
    else:
        sizes = rng.integers(0, 40, size=n)
    gaps = rng.integers(0, 3, size=n) if layout == "gaps" else np.zeros(n, np.int64)
    starts = np.cumsum(np.concatenate(([0], (sizes + gaps)[:-1])))
    values = rng.random(int(starts[-1] + sizes[-1] + 5))
    views = _views(values, starts, sizes)
    assert len(views) == n
    for view, a, k in zip(views, starts.tolist(), sizes.tolist(), strict=True):
        assert view.shape == (k,)
        np.testing.assert_array_equal(view, values[a : a + k])
        if k:
            assert np.shares_memory(view, values)  # a view, not a copy
    # Writing through a view changes the flat array (as slices do).
    first = next(v for v in views if len(v))
    first[0] = -1.0
    assert values[starts[int(np.flatnonzero(sizes)[0])]] == -1.0
    # A strided array (never made by the reader) still gives views, not copies.
    strided = values[::2]
    for view, a in zip(_views(strided, np.array([0, 3, 6]), np.full(3, 3)), [0, 3, 6], strict=True):
        np.testing.assert_array_equal(view, strided[a : a + 3])
        assert np.shares_memory(view, values)
