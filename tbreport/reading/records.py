"""TFRecord framing: find every intact record in an event file, verify checksums, survive damage.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``.
The walk over lengths is sequential (many small files are walked in lockstep, one numpy step per
record position), and the checksums are verified for all records at once: with a table-driven
CRC32C vectorised across records (numpy) for short lengths that many records share, and with one
``google_crc32c`` call per record otherwise, so the cost follows the bytes, not numpy calls per
byte position.

Damage policy (each case yields a `ReadWarning` with the file and byte offset):

- a truncated last record (live or killed writer): every complete record before it is kept;
- a record whose data checksum fails: that record is skipped, reading goes on;
- a header whose length checksum fails (garbage, zero-filled tail, bit flip in the length): the
  length cannot be trusted, so we scan forward for the next offset where a header checksum *and* the
  following data checksum both verify, and go on from there.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from tbreport.model import ReadWarning

HEADER_BYTES = 12  # uint64 length + uint32 length crc
FOOTER_BYTES = 4  # uint32 data crc
# The stored checksum of a zero-filled header; masked_crc32c(8 zero bytes) is not 0, so never valid.
_ZERO_CRC = bytes(4)
_MASK_DELTA = 0xA282EAD8
# Warn about at most this many skipped records per file; the rest are summarised in one line.
_MAX_RECORD_WARNINGS = 20
# Resync scans this many candidate offsets per numpy batch (bounds memory on huge damaged regions).
_RESYNC_CHUNK = 1 << 22


def _crc32c_table() -> np.ndarray:
    poly = 0x82F63B78
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table[i] = crc
    return table


_TABLE = _crc32c_table()


def masked_crc32c_rows(columns: np.ndarray) -> np.ndarray:
    """Masked CRC32C of many equal-length byte strings at once.

    Args:
        columns: uint8 array of shape ``(length, n)``: column ``j`` is the ``j``-th byte string.

    Returns:
        uint32 array of ``n`` masked checksums, as stored in TFRecord framing.
    """
    length, n = columns.shape
    if n >= _DIFFERENCE_MIN_ROWS and length:
        # CRC32C is affine: crc(x) = crc(r) ^ L(x ^ r), with L linear. Against one row r, only
        # the byte positions where some row differs from it contribute, each through a table
        # of what one byte there does to the checksum. Records of one layout differ in a few
        # positions (wall time, step, value), so this is a few table lookups per record rather
        # than a few numpy passes per byte.
        reference = columns[:, 0]
        varying = np.flatnonzero((columns != reference[:, None]).any(axis=1))
        if 2 * len(varying) < length:
            import google_crc32c

            crc = np.full(n, google_crc32c.value(reference.tobytes()), dtype=np.uint32)
            for j in varying.tolist():
                crc ^= _byte_effect(length - 1 - j)[columns[j] ^ reference[j]]
            return _mask(crc)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    table = _TABLE
    for row in columns:
        crc = table[(crc ^ row) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return (((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)).astype(np.uint32)


# Rows from which the checksums of equal-length rows are derived from their differences.
_DIFFERENCE_MIN_ROWS = 32
_BYTE_EFFECTS: dict[int, np.ndarray] = {}


def _byte_effect(after: int) -> np.ndarray:
    """What each byte value does to a CRC32C register when ``after`` bytes follow it (the
    linear part, without the initial value): 256 uint32."""
    table = _BYTE_EFFECTS.get(after)
    if table is None:
        table = _shift(_TABLE.copy(), np.full(256, after, dtype=np.int64))
        _BYTE_EFFECTS[after] = table
    return table


def gather_columns(arr: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Bytes ``arr[starts[i] + j]`` as a ``(length, len(starts))`` matrix.

    Gathered as whole rows (no index array per byte), then transposed; very large gathers one
    byte position at a time, reusing a single index array of ``len(starts)`` (a broadcast
    ``starts + arange(length)`` index would cost eight times the gathered bytes).
    """
    if length and len(arr) >= length and len(starts) * length <= _ROW_GATHER_BYTES:
        # Each record as one fixed-size item of an overlapping view: one gather of whole rows,
        # then one transposing copy (several times faster than a gather per byte position).
        rows = np.ndarray(
            (len(arr) - length + 1,), dtype=np.dtype((np.void, length)), buffer=arr, strides=(1,)
        )
        return np.ascontiguousarray(rows[starts].view(np.uint8).reshape(len(starts), length).T)
    cols = np.empty((length, len(starts)), dtype=np.uint8)
    for j in range(length):
        np.take(arr, starts + j, out=cols[j])
    return cols


# Gathers up to this many bytes go row by row (the rows and their transpose exist at once).
_ROW_GATHER_BYTES = 1 << 26


def masked_crc32c(data: bytes) -> int:
    """Masked CRC32C of one byte string (as written by every TensorBoard writer)."""
    import google_crc32c

    crc: int = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class Framing:
    """Where the intact records of one file are.

    Attributes:
        offsets: int64 array, byte offset of each record's header.
        lengths: int64 array, length of each record's data.
        warnings: damage found while framing.
        bytes_skipped: bytes that could not be attributed to an intact record.
    """

    offsets: np.ndarray
    lengths: np.ndarray
    warnings: list[ReadWarning] = field(default_factory=list)
    bytes_skipped: int = 0


def _walk(buf: bytes, start: int, limit: int) -> tuple[array[int], array[int], int]:
    """Follow length fields from ``start`` until the data ends, a length does not fit, or
    ``limit`` records are found.

    Event files are regular: the same few record sizes repeat in a cycle (one per tag). After a
    few records are walked one by one, the next thousands are predicted by repeating the last
    cycle and confirmed in one numpy gather of their length fields; the confirmed prefix is
    exactly what the one-by-one walk would find, since each offset follows from a verified length.
    """
    unpack = struct.Struct("<Q").unpack_from
    n = len(buf)
    arr = np.frombuffer(buf, dtype=np.uint8)
    # array('q') keeps 8 bytes per record where a list would keep a Python int object.
    offsets = array("q")
    lengths = array("q")
    add_offset, add_length = offsets.append, lengths.append
    pos = start
    learn = _LEARN_RECORDS
    last_header = n - HEADER_BYTES
    framing = HEADER_BYTES + FOOTER_BYTES
    while True:
        # ``learn`` records one by one (a tight loop: a histogram file walks every record so) ...
        ended = True
        for _ in range(min(learn, limit - len(offsets))):
            if pos > last_header:
                break
            (length,) = unpack(buf, pos)
            end = pos + length + framing
            if end > n or (not length and buf[pos + 8 : pos + HEADER_BYTES] == _ZERO_CRC):
                break  # an all-zero header never verifies: stop at a zero-filled region
            add_offset(pos)
            add_length(length)
            pos = end
        else:
            ended = False
        if ended or len(offsets) >= limit:
            return offsets, lengths, pos
        # ... then many predicted at once. Predicting costs a few numpy calls: only worth it with
        # many records still to walk, and tried less and less often while it fails (no short
        # cycle: many tags, histograms).
        if n - pos > _SPECULATE_MIN_BYTES:
            advanced = _speculate(arr, pos, lengths, offsets, limit - len(offsets))
            if advanced:
                pos = advanced
                learn = _LEARN_RECORDS
                continue
            learn = min(learn * 2, _MAX_LEARN_RECORDS)


# Records walked one by one before trying to predict the next ones, and how far to predict.
_LEARN_RECORDS = 16
_MAX_LEARN_RECORDS = 1024
_PREDICT_RECORDS = 8192
_MAX_PERIOD = 8
_SPECULATE_MIN_BYTES = 16 << 10
# Records per framing batch: the first after a damaged spot, and the most once the file is intact.
_FIRST_BATCH = 64
_MAX_BATCH = 1 << 18


def _speculate(
    arr: np.ndarray, pos: int, lengths: array[int], offsets: array[int], most: int
) -> int:
    """Try to confirm many records at once by repeating the recent cycle of lengths.

    Returns the new position after the confirmed records (appended to ``offsets``/``lengths``),
    or 0 when no cycle predicted at least a few records.
    """
    n = len(arr)
    recent = np.array(lengths[-2 * _MAX_PERIOD :], dtype=np.int64)
    for period in range(1, _MAX_PERIOD + 1):
        if len(recent) < 2 * period or not np.array_equal(
            recent[-period:], recent[-2 * period : -period]
        ):
            continue
        cycle = recent[-period:]
        ahead = min(_PREDICT_RECORDS, most)
        predicted = np.tile(cycle, ahead // period + 1)[:ahead]
        sizes = predicted + (HEADER_BYTES + FOOTER_BYTES)
        starts = pos + np.concatenate(([0], np.cumsum(sizes[:-1])))
        fits = starts + sizes <= n
        if not fits[0]:
            return 0
        count = int(np.argmin(fits)) if not fits.all() else len(fits)
        starts, predicted = starts[:count], predicted[:count]
        found = arr[starts[:, None] + np.arange(8)[None, :]].copy().view("<u8").ravel()
        matches = found == predicted.astype(np.uint64)
        confirmed = int(np.argmin(matches)) if not matches.all() else len(matches)
        if confirmed < min(period, ahead):
            continue
        offsets.frombytes(starts[:confirmed].astype(np.int64).tobytes())
        lengths.frombytes(predicted[:confirmed].astype(np.int64).tobytes())
        return int(starts[confirmed - 1] + predicted[confirmed - 1] + HEADER_BYTES + FOOTER_BYTES)
    return 0


def u32_at(arr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Little-endian uint32 at each (unaligned) byte position: one gather, no copies of ``arr``."""
    if len(arr) < 4:
        return np.zeros(0, dtype=np.uint32)
    view = np.ndarray((len(arr) - 3,), dtype="<u4", buffer=arr, strides=(1,))
    return view[positions].astype(np.uint32)


def u64_at(arr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Little-endian uint64 at each (unaligned) byte position."""
    if len(arr) < 8:
        return np.zeros(0, dtype=np.uint64)
    view = np.ndarray((len(arr) - 7,), dtype="<u8", buffer=arr, strides=(1,))
    return view[positions].astype(np.uint64)


def _vectorise(length: int, count: int) -> bool:
    """Whether the table-driven CRC across ``count`` records beats one C call per record.

    The vectorised CRC costs a few numpy calls per byte position, so it only pays for short
    records that many share a length; a C call per record costs about half a microsecond.
    """
    return 0 < length <= 48 and count >= 64 * length


def _masked_crcs(buf: bytes, arr: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Masked CRC32C of ``buf[s : s + length]`` for every ``s`` of ``starts``."""
    if _vectorise(length, len(starts)):
        return masked_crc32c_rows(gather_columns(arr, starts, length))
    return _crcs_each(buf, starts, np.full(len(starts), length, dtype=np.int64))


def _crcs_each(buf: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Masked CRC32C of each ``buf[start : start + length]``, one C call each."""
    import google_crc32c

    value = google_crc32c.value
    raw = np.fromiter(
        (value(buf[a : a + n]) for a, n in zip(starts.tolist(), lengths.tolist(), strict=True)),
        dtype=np.uint32,
        count=len(starts),
    )
    return _mask(raw)


def _header_ok(buf: bytes, arr: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Check of the length checksums of the headers at ``offsets``."""
    if len(offsets) == 0:
        return np.zeros(0, dtype=bool)
    return _masked_crcs(buf, arr, offsets, 8) == u32_at(arr, offsets + 8)


def _data_ok(buf: bytes, arr: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Data checksums: vectorised for short lengths many records share, else one C call each."""
    n = len(offsets)
    if n == 0:
        return np.zeros(0, dtype=bool)
    starts = offsets + HEADER_BYTES
    stored = u32_at(arr, starts + lengths)
    computed = np.empty(n, dtype=np.uint32)
    done = np.zeros(n, dtype=bool)
    if n >= 64:
        values, inverse, counts = np.unique(lengths, return_inverse=True, return_counts=True)
        for k in np.flatnonzero(
            [_vectorise(int(v), int(c)) for v, c in zip(values, counts, strict=True)]
        ):
            group = np.flatnonzero(inverse.ravel() == k)
            computed[group] = masked_crc32c_rows(gather_columns(arr, starts[group], int(values[k])))
            done[group] = True
    rest = np.flatnonzero(~done)
    if len(rest):
        computed[rest] = _crcs_each(buf, starts[rest], lengths[rest])
    return computed == stored


# ---------------------------------------------------------------------------------------------
# Resync in linear time
#
# A candidate record at ``o`` with length ``L`` verifies when the CRC32C of ``buf[o+12 : o+12+L]``
# equals its stored footer. Checking every candidate directly costs O(L) each, so a run of fake
# headers that all claim a length to the end of the file would make a resync quadratic. Instead the
# CRC of any span is derived from CRCs of prefixes: ``crc(buf[a:b]) == S(b) ^ shift(S(a), b - a)``
# with ``S(i) = crc(buf[:i])`` and ``shift(x, k)`` multiplying by ``x^(8k)`` modulo the CRC
# polynomial (zlib's crc32_combine). Prefix CRCs come from checkpoints every few kilobytes, so each
# candidate costs a few kilobytes of CRC plus a few vectorised table lookups, whatever it claims.

_POLY = 0x82F63B78
_CHECKPOINT = 1 << 12
# Candidates whose data checksum is checked at once; grows geometrically so that a resync landing
# on a good record at once pays for little.
_FIRST_CANDIDATES = 64


def _multmodp(a: int, b: int) -> int:
    """Product of two polynomials modulo the (reflected) CRC32C polynomial."""
    m = 1 << 31
    p = 0
    while m:
        if a & m:
            p ^= b
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _multmodp_rows(a: int, b: np.ndarray) -> np.ndarray:
    """``_multmodp(a, x)`` for every ``x`` of ``b`` (uint32)."""
    p = np.zeros_like(b)
    b = b.copy()
    poly = np.uint32(_POLY)
    one = np.uint32(1)
    m = 1 << 31
    while m:
        if a & m:
            p ^= b
        m >>= 1
        b = np.where(b & one, (b >> one) ^ poly, b >> one)
    return p


_SHIFT_TABLES: dict[int, np.ndarray] = {}


def _shift_table(j: int) -> np.ndarray:
    """Byte-wise tables of multiplication by ``x^(8 * 2^j)``: shape (4, 256), uint32."""
    table = _SHIFT_TABLES.get(j)
    if table is None:
        power = 1 << 30  # x^1 in the reflected representation
        for _ in range(j + 3):  # x^(2^(j+3)) = x^(8 * 2^j)
            power = _multmodp(power, power)
        values = np.arange(256, dtype=np.uint32)
        table = np.stack([_multmodp_rows(power, values << np.uint32(8 * k)) for k in range(4)])
        _SHIFT_TABLES[j] = table
    return table


def _shift(crcs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Multiply each CRC by ``x^(8 * count)``: the CRC of a prefix moved past ``count`` bytes."""
    result = crcs.astype(np.uint32)
    counts = counts.astype(np.uint64)
    j = 0
    while counts.any():
        sel = (counts & np.uint64(1)).astype(bool)
        if sel.any():
            table = _shift_table(j)
            r = result[sel]
            result[sel] = (
                table[0][r & 0xFF]
                ^ table[1][(r >> 8) & 0xFF]
                ^ table[2][(r >> 16) & 0xFF]
                ^ table[3][r >> 24]
            )
        counts = counts >> np.uint64(1)
        j += 1
    return result


class _PrefixCrcs:
    """CRC32C of ``buf[:i]`` for arbitrary ``i``, from checkpoints built lazily."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.checkpoints = [0]  # CRC of buf[: k * _CHECKPOINT]

    def at(self, positions: np.ndarray) -> np.ndarray:
        import google_crc32c

        extend = google_crc32c.extend
        buf = self.buf
        out = np.zeros(len(positions), dtype=np.uint32)
        order = np.argsort(positions, kind="stable")
        prev_pos = -1
        prev_crc = 0
        for idx in order.tolist():
            pos = int(positions[idx])
            block = pos // _CHECKPOINT
            while len(self.checkpoints) <= block:
                k = len(self.checkpoints)
                self.checkpoints.append(
                    extend(self.checkpoints[-1], buf[(k - 1) * _CHECKPOINT : k * _CHECKPOINT])
                )
            base = block * _CHECKPOINT
            if base <= prev_pos <= pos:  # nearer than the checkpoint
                base, crc = prev_pos, prev_crc
            else:
                crc = self.checkpoints[block]
            if pos > base:
                crc = extend(crc, buf[base:pos])
            out[idx] = crc
            prev_pos, prev_crc = pos, crc
        return out


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint32)
    return (((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)).astype(
        np.uint32
    )


def _data_verifies(
    buf: bytes, arr: np.ndarray, prefix: _PrefixCrcs, offsets: np.ndarray
) -> np.ndarray:
    """Whether the records at ``offsets`` (header checksums already verified) verify their data."""
    lengths = u64_at(arr, offsets)
    starts = offsets + HEADER_BYTES
    ends = starts + lengths.astype(np.int64)
    stored = u32_at(arr, ends)
    crcs = prefix.at(np.concatenate([starts, ends]))
    at_start, at_end = crcs[: len(offsets)], crcs[len(offsets) :]
    return _mask(at_end ^ _shift(at_start, lengths)) == stored


def _resync(
    buf: bytes, arr: np.ndarray, start: int, prefix: _PrefixCrcs, end: int | None = None
) -> int | None:
    """First offset in ``[start, end]`` where a complete record with valid checksums begins."""
    n = len(buf)
    last_candidate = max_length_at = n - HEADER_BYTES - FOOTER_BYTES
    if end is not None:
        last_candidate = min(last_candidate, end)
    pos = start
    while pos <= last_candidate:
        stop = min(pos + _RESYNC_CHUNK, last_candidate + 1)
        count = stop - pos
        # Cheap filters before any checksum, on unaligned views (no copies): the length must fit
        # in the file (random bytes almost never do) and an all-zero header never verifies
        # (zero-filled regions).
        length_at = np.ndarray((count,), dtype="<u8", buffer=arr, offset=pos, strides=(1,))
        crc_at = np.ndarray((count,), dtype="<u4", buffer=arr, offset=pos + 8, strides=(1,))
        room = np.arange(max_length_at - pos, max_length_at - stop, -1, dtype=np.int64)
        plausible = (length_at <= room.astype(np.uint64)) & ((length_at != 0) | (crc_at != 0))
        candidates = pos + np.flatnonzero(plausible).astype(np.int64)
        del length_at, crc_at, room, plausible
        good = candidates[_header_ok(buf, arr, candidates)]
        done = 0
        batch = _FIRST_CANDIDATES
        while done < len(good):
            part = good[done : done + batch]
            ok = np.flatnonzero(_data_verifies(buf, arr, prefix, part))
            if len(ok):
                return int(part[ok[0]])
            done += len(part)
            batch *= 4
        pos = stop
    return None


class _Batch(NamedTuple):
    """A batch of records walked by their lengths, and how far their checksums verify."""

    offsets: np.ndarray
    lengths: np.ndarray
    first_bad: int  # the first record whose header checksum fails (len(offsets): none)
    first_data_bad: int  # the first whose data checksum fails, before first_bad
    stop: int  # where the walk stopped


def _verified_batch(buf: bytes, arr: np.ndarray, pos: int, batch: int) -> _Batch:
    offs_list, lens_list, stop = _walk(buf, pos, batch)
    offsets = np.frombuffer(offs_list, dtype=np.int64) if offs_list else np.zeros(0, np.int64)
    lengths = np.frombuffer(lens_list, dtype=np.int64) if lens_list else np.zeros(0, np.int64)
    header_ok = _header_ok(buf, arr, offsets)
    first_bad = int(np.argmin(header_ok)) if not header_ok.all() else len(offsets)
    data_ok = _data_ok(buf, arr, offsets[:first_bad], lengths[:first_bad])
    first_data_bad = int(np.argmin(data_ok)) if not data_ok.all() else first_bad
    return _Batch(offsets, lengths, first_bad, first_data_bad, stop)


def _checksum_warning(
    path: str, bad_at: int, length: int, resume: int | None, expected: int
) -> ReadWarning:
    where = (
        "skipped it and went on"
        if resume is None or resume == expected
        else f"its length is wrong too; resumed at byte {resume}"
    )
    return ReadWarning(
        kind="checksum-mismatch",
        path=path,
        offset=bad_at,
        message=f"record of {length} bytes failed its data checksum; {where}",
    )


def _tail_warning(buf: bytes, arr: np.ndarray, damage_at: int, path: str) -> ReadWarning:
    """What the end of a file from ``damage_at`` on is, where no intact record follows."""
    remaining = len(buf) - damage_at
    header_valid = remaining >= HEADER_BYTES and bool(
        _header_ok(buf, arr, np.asarray([damage_at], dtype=np.int64))[0]
    )
    zeros = not arr[damage_at:].any()
    if header_valid:
        (length,) = struct.unpack_from("<Q", buf, damage_at)
        kind = "truncated-record"
        what = (
            f"file ends inside a record (needs {length + HEADER_BYTES + FOOTER_BYTES} "
            f"bytes, {remaining} present): a live or interrupted writer"
        )
    elif zeros:
        kind, what = "zero-filled-tail", f"last {remaining} bytes are all zeros"
    elif remaining < HEADER_BYTES:
        kind = "truncated-record"
        what = f"file ends inside a record header ({remaining} bytes)"
    else:
        kind, what = "corrupt-data", f"last {remaining} bytes hold no valid record"
    return ReadWarning(
        kind=kind,
        path=path,
        offset=damage_at,
        message=f"{what}; kept every complete record before it",
    )


def _resync_warning(path: str, damage_at: int, resume: int) -> ReadWarning:
    return ReadWarning(
        kind="corrupt-data",
        path=path,
        offset=damage_at,
        message=(
            f"{resume - damage_at} bytes of damaged framing (a length that fails its "
            "checksum or runs past the data); "
            f"skipped them and resumed at byte {resume}"
        ),
    )


def frame_records(buf: bytes, *, path: str) -> Framing:
    """Locate and verify every record in ``buf``.

    Args:
        buf: The whole content of one event file.
        path: How to name the file in warnings.

    Returns:
        The offsets and lengths of records whose both checksums verify, in file order, and the
        warnings for everything that was skipped.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    n = len(buf)
    prefix = _PrefixCrcs(buf)
    all_offsets: list[np.ndarray] = []
    all_lengths: list[np.ndarray] = []
    warnings: list[ReadWarning] = []
    bad_records = 0
    skipped = 0
    pos = 0
    # Records are walked in batches that double while the file is intact and start small again
    # after damage: what a damaged record's length said about the records behind it is thrown
    # away, and re-walking costs at most the size of the batch, so damage never makes it quadratic.
    batch = _FIRST_BATCH
    while pos < n:
        offsets, lengths, first_bad, first_data_bad, stop = _verified_batch(buf, arr, pos, batch)
        all_offsets.append(offsets[:first_data_bad])
        all_lengths.append(lengths[:first_data_bad])
        if first_data_bad == len(offsets) and len(offsets) >= batch:
            pos = stop  # a full, intact batch: go on with a larger one
            batch = min(batch * 2, _MAX_BATCH)
            continue
        batch = _FIRST_BATCH
        if first_data_bad < first_bad:
            # The header verified but the data did not: the length may be wrong too (bytes
            # deleted inside the record), so look for an intact record anywhere up to where the
            # length says the next one is, rather than trusting it. Past that point the usual
            # walk and resync take over, so each byte is searched once.
            bad_at = int(offsets[first_data_bad])
            length = int(lengths[first_data_bad])
            expected = bad_at + HEADER_BYTES + length + FOOTER_BYTES
            resume = _resync(buf, arr, bad_at + 1, prefix, end=expected)
            bad_records += 1
            if bad_records <= _MAX_RECORD_WARNINGS:
                warnings.append(_checksum_warning(path, bad_at, length, resume, expected))
            if resume is None:
                skipped += expected - bad_at
                pos = expected
            else:
                skipped += resume - bad_at
                pos = resume
            continue
        if first_bad < len(offsets):
            damage_at = int(offsets[first_bad])
        elif stop < n:
            damage_at = stop
        else:
            break
        # Either a header checksum failed or the last length does not fit in the file. Look for
        # a later intact record first: a bad length may hide good records behind it.
        remaining = n - damage_at
        resume = _resync(buf, arr, damage_at + 1, prefix)
        if resume is None:
            warnings.append(_tail_warning(buf, arr, damage_at, path))
            skipped += remaining
            break
        warnings.append(_resync_warning(path, damage_at, resume))
        skipped += resume - damage_at
        pos = resume
    if bad_records > _MAX_RECORD_WARNINGS:
        warnings.append(
            ReadWarning(
                kind="checksum-mismatch",
                path=path,
                message=f"{bad_records - _MAX_RECORD_WARNINGS} more records failed their checksum",
            )
        )
    offsets = np.concatenate(all_offsets) if all_offsets else np.zeros(0, dtype=np.int64)
    lengths = np.concatenate(all_lengths) if all_lengths else np.zeros(0, dtype=np.int64)
    return Framing(offsets=offsets, lengths=lengths, warnings=warnings, bytes_skipped=skipped)


_LOCKSTEP_MIN_FILES = 8
# Far above any record that fits in memory, far below what would overflow a position.
_LENGTH_CAP = np.uint64(1 << 48)


def _walk_in_lockstep(
    arr: np.ndarray, pos: np.ndarray, ends: np.ndarray, intact: np.ndarray, *, max_records: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Follow the record lengths of the files from ``pos`` to ``ends`` in ``arr``, all files at
    once: each record's file, offset and length (None if there is none). ``intact`` is cleared
    for a file whose records do not end at its end or that has over ``max_records``."""
    found_file: list[np.ndarray] = []
    found_offset: list[np.ndarray] = []
    found_length: list[np.ndarray] = []
    steps = 0
    # The files still walking, where they are and the last position a header may start at
    # (compacted as files finish).
    files = np.flatnonzero(pos + HEADER_BYTES <= ends)
    here, last_header = pos[files], ends[files] - HEADER_BYTES
    # Every length at once: a strided view that reads 8 bytes from any position.
    length_at = np.ndarray((max(len(arr) - 7, 0),), dtype="<u8", buffer=arr, strides=(1,))
    while len(files):
        # A step costs the same few numpy calls however many files it advances: the last few
        # long files are better framed one by one. A step only follows the lengths; a record
        # that does not fit its file shows when the file ends elsewhere than at its end.
        if steps == max_records or len(files) < _LOCKSTEP_MIN_FILES:
            intact[files] = False
            break
        steps += 1
        length = length_at[here]
        # (count_nonzero: a third of the cost of .all(), paid once per record position)
        if np.count_nonzero(length) < len(length):  # an all-zero header never verifies
            zeros = (length == 0) & (u32_at(arr, here + 8) == 0)
            if zeros.any():
                intact[files[zeros]] = False
                files, here, last_header, length = (
                    a[~zeros] for a in (files, here, last_header, length)
                )
        # Capped, so that a damaged length cannot overflow a position (it still overshoots).
        np.minimum(length, _LENGTH_CAP, out=length)
        length = length.view(np.int64)
        found_file.append(files)
        found_offset.append(here)
        found_length.append(length)
        here = here + length + (HEADER_BYTES + FOOTER_BYTES)
        going = here <= last_header
        if np.count_nonzero(going) < len(going):
            # A file that stops is framed whole only if its last record ends at its end.
            stopped = ~going
            intact[files[stopped & (here != last_header + HEADER_BYTES)]] = False
            files, here, last_header = files[going], here[going], last_header[going]
    if not found_file:
        return None
    return np.concatenate(found_file), np.concatenate(found_offset), np.concatenate(found_length)


def frame_intact_files(
    joined: bytes, starts: np.ndarray, ends: np.ndarray, *, max_records: int = 4096
) -> list[Framing | None]:
    """Frame many small files at once, laid end to end in ``joined`` (file ``i`` spans
    ``starts[i]:ends[i]``); offsets in each `Framing` are relative to its file.

    The files are walked in lockstep, one numpy step per record position, and every record's
    checksums are verified together. Only a file that is intact (every length fits and is not a
    zero-filled header, the last record ends exactly at the end of the file, both checksums of
    every record verify) and has at most ``max_records`` records gets a `Framing`; any other
    gets None, to be framed on its own by `frame_records`, which says what is wrong with it.
    """
    arr = np.frombuffer(joined, dtype=np.uint8)
    count = len(starts)
    pos = starts.astype(np.int64)
    ends = ends.astype(np.int64)
    intact = np.ones(count, dtype=bool)
    intact &= (pos + HEADER_BYTES <= ends) | (pos == ends)  # shorter than a header: not intact
    intact &= ends > starts  # ... nor is an empty file
    found = _walk_in_lockstep(arr, pos, ends, intact, max_records=max_records)
    if found is None:
        return [None] * count
    file_of, offsets, lengths = found
    keep = intact[file_of]
    file_of, offsets, lengths = file_of[keep], offsets[keep], lengths[keep]
    ok = _header_ok(joined, arr, offsets)
    ok[ok] = _data_ok(joined, arr, offsets[ok], lengths[ok])
    intact[file_of[~ok]] = False
    # Records in file order: by file, then by position within it.
    order = np.lexsort((offsets, file_of))
    file_of, offsets, lengths = file_of[order], offsets[order], lengths[order]
    bounds = np.searchsorted(file_of, np.arange(count + 1))
    out: list[Framing | None] = []
    for i in range(count):
        if not intact[i] or bounds[i] == bounds[i + 1]:
            out.append(None)
            continue
        a, b = int(bounds[i]), int(bounds[i + 1])
        out.append(Framing(offsets=offsets[a:b] - int(starts[i]), lengths=lengths[a:b]))
    return out
