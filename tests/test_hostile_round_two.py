"""Hostile input, round two: data lost or invented, reads lost to one bad entry, hangs, output.

One test (or a few) per point; each reproduces the problem it guards against.
"""

from __future__ import annotations

import struct
import time

import numpy as np
from reader_helpers import BASE_WALL, record_spans, scalar_series

from tbreport import writing
from tbreport.parsing import parse_event_bytes
from tbreport.records import FOOTER_BYTES, HEADER_BYTES, frame_records, masked_crc32c


def _file(events) -> bytes:
    head = [writing.file_version_event(wall_time=BASE_WALL - 1)]
    return b"".join(writing.frame(e.SerializeToString()) for e in head + list(events))


# ---------------------------------------------------------------------------------------------
# 1. Bytes deleted inside a large record


def test_chunk_deleted_inside_a_large_record_keeps_every_intact_record_after_it():
    rng = np.random.default_rng(1)
    before = scalar_series("loss", range(0, 1000))
    big = writing.histogram_event("w", rng.normal(size=200_000) * 1e3, step=0, wall_time=BASE_WALL)
    big.summary.value[0].histo.bucket_limit.extend(np.linspace(0, 1, 20_000).tolist())
    after = scalar_series("loss", range(1000, 2100))
    data = _file(before + [big] + after)
    spans = record_spans(data)
    start, end = spans[1 + len(before)]
    assert end - start > 100_000
    cut_at = start + (end - start) // 2
    damaged = data[:cut_at] + data[cut_at + 10_000 :]
    assert len(damaged) > end  # the damaged record's length still fits: it is trusted
    parsed = parse_event_bytes(damaged, path="cut")
    steps = sorted(parsed.scalar_step.tolist())
    assert steps == list(range(2100))  # every intact scalar, before and after the damage
    assert [(w.kind, w.offset) for w in parsed.warnings] == [("checksum-mismatch", start)]


# ---------------------------------------------------------------------------------------------
# 2. Resync in linear time


def _fake_headers_to_the_end(size: int) -> bytes:
    """Back-to-back headers with valid length checksums, each claiming a length to the end."""
    count = size // HEADER_BYTES
    n = count * HEADER_BYTES
    out = bytearray()
    for i in range(count):
        length = max(n - i * HEADER_BYTES - HEADER_BYTES - FOOTER_BYTES, 0)
        head = struct.pack("<Q", length)
        out += head + struct.pack("<I", masked_crc32c(head))
    return bytes(out)


def test_resync_is_linear_on_adversarial_length_fields():
    tail = _file(scalar_series("loss", range(10)))
    frame_records(_fake_headers_to_the_end(1 << 16) + tail, path="warm-up")
    data = _fake_headers_to_the_end(4 << 20) + tail
    started = time.perf_counter()
    framing = frame_records(data, path="adversarial")
    seconds = time.perf_counter() - started
    intact = [start + len(data) - len(tail) for start, _ in record_spans(tail)]
    assert framing.offsets.tolist()[-len(intact) :] == intact  # the intact records at the end
    assert seconds < 2.0, seconds
