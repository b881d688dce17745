"""Event files into parsed columns (`parsing.FileData`): read whole, in batches of small files
decoded together, or streamed in chunks when large; and the runs of parsed files assembled.

Whoever reads (this process, or a worker of `tbreport.reading.pool`) goes through here, so a file
that cannot be read, is too large or runs out of memory becomes a warning in the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

from tbreport.model import ReadWarning
from tbreport.reading.assemble import assemble_runs
from tbreport.reading.discovery import EventFileRef, RunRef
from tbreport.reading.grouping import take_facts
from tbreport.reading.parsing import FileData, parse_event_files, parse_event_stream
from tbreport.reading.rundata import RunData
from tbreport.safe_regex import Pattern


#: Event files larger than this are skipped with a warning: a damaged file is read whole into
#: memory, and no training run writes one this large (a sparse file or a disk image in LOGDIR).
#: ``TBREPORT_MAX_FILE_BYTES`` overrides it.
def _max_file_bytes() -> int:
    try:
        return int(os.environ.get("TBREPORT_MAX_FILE_BYTES", 4 << 30))
    except ValueError:
        return 4 << 30


MAX_FILE_BYTES = _max_file_bytes()


def parse_file(ref: EventFileRef, tag_filter: Pattern | None) -> FileData:
    return parse_files([ref], tag_filter)[0]


def parse_files(refs: list[EventFileRef], tag_filter: Pattern | None) -> list[FileData]:
    """Read and parse ``refs``; the records of all of them are decoded together."""
    out: list[FileData | None] = []
    contents: list[tuple[bytes, str]] = []
    slots: list[int] = []
    for ref in refs:
        streamed = _parse_streaming(ref, tag_filter) if ref.size > STREAM_BYTES else None
        if streamed is not None:
            out.append(streamed)
            continue
        read = _read_file(ref)
        if isinstance(read, FileData):
            out.append(read)
        else:
            slots.append(len(out))
            out.append(None)
            contents.append((read, ref.display))
    try:
        parsed = parse_event_files(contents, tag_filter=tag_filter)
    except MemoryError:
        if len(contents) == 1:
            parsed = [_memory_warning(refs[slots[0]])]
        else:  # one at a time, so that only the file too large for memory is lost
            del contents
            return [parse_file(ref, tag_filter) for ref in refs]
    for slot, data in zip(slots, parsed, strict=True):
        out[slot] = data
    return cast("list[FileData]", out)  # the None slots are filled above


# Files larger than this are parsed in chunks of this size (memory stays near the parsed columns,
# not the file plus its columns).
STREAM_BYTES = 16 << 20


def _parse_streaming(ref: EventFileRef, tag_filter: Pattern | None) -> FileData | None:
    """A large file parsed chunk by chunk; None when it must be read whole (damage, an old
    file format, too large, unreadable: the whole-file path reports it)."""
    if ref.size > MAX_FILE_BYTES:
        return None
    try:
        with open(ref.path, "rb") as handle:
            return parse_event_stream(
                handle,
                path=ref.display,
                tag_filter=tag_filter,
                chunk_bytes=STREAM_BYTES,
                size_hint=ref.size,
            )
    except (OSError, MemoryError):
        return None


def _memory_warning(ref: EventFileRef) -> FileData:
    data = FileData(path=ref.display)
    data.warnings.append(
        ReadWarning(
            kind="unreadable",
            path=ref.display,
            message=f"not enough memory to read this {ref.size:,}-byte file; skipped",
        )
    )
    return data


def _read_file(ref: EventFileRef) -> bytes | FileData:
    """The bytes of one file, or a `FileData` holding the warning that says why not."""
    if ref.size > MAX_FILE_BYTES:
        data = FileData(path=ref.display)
        data.warnings.append(too_large_warning(ref.display, ref.size))
        return data
    try:
        with open(ref.path, "rb") as handle:
            buf = handle.read()
        if len(buf) > MAX_FILE_BYTES:  # grew since it was listed
            data = FileData(path=ref.display)
            data.warnings.append(too_large_warning(ref.display, len(buf)))
            return data
        return buf
    except MemoryError:
        return _memory_warning(ref)
    except OSError as exc:
        data = FileData(path=ref.display)
        reason = exc.strerror or type(exc).__name__
        data.warnings.append(
            ReadWarning(kind="unreadable", path=ref.display, message=f"cannot read: {reason}")
        )
        return data


def too_large_warning(path: str, size: int) -> ReadWarning:
    """The warning for an event file over :data:`MAX_FILE_BYTES`."""
    return ReadWarning(
        kind="file-too-large",
        path=path,
        message=(
            f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} read whole into memory "
            "(TBREPORT_MAX_FILE_BYTES); skipped"
        ),
    )


def assembled_runs(runs: list[RunRef], files: list[list[FileData]]) -> list[RunData]:
    """The runs assembled, with the facts the inventory needs (taken by whoever assembles)."""
    out = assemble_runs(runs, files)
    take_facts(out)
    return out


# A batch of files parsed together holds at most this many bytes (bounds the joined buffer) ...
BATCH_BYTES = 4 << 20
# ... and at most this many files.
BATCH_FILES = 4096


def batches(
    sizes: list[int], limit: int | Callable[[int], int], counts: list[int] | None = None
) -> list[list[int]]:
    """Consecutive indices grouped into batches of at most ``limit`` bytes (a larger item alone)
    and ``BATCH_FILES`` files (``counts``: files per item, default one).

    ``limit`` may be a function of the bytes not yet in a batch, asked again for each batch.
    """
    remaining = sum(sizes)

    def target() -> int:
        return limit(remaining) if callable(limit) else limit

    batches: list[list[int]] = []
    current: list[int] = []
    size = files = 0
    most = target()
    for i, item in enumerate(sizes):
        n = counts[i] if counts is not None else 1
        if current and (size + item > most or files + n > BATCH_FILES):
            batches.append(current)
            remaining -= size
            current, size, files = [], 0, 0
            most = target()
        current.append(i)
        size += item
        files += n
    if current:
        batches.append(current)
    return batches


def parse_batch(
    refs: list[EventFileRef],
    tag_filter: Pattern | None,
    parse: Callable[[EventFileRef, Pattern | None], FileData] | None,
) -> list[FileData]:
    if parse is not None:
        return [parse(ref, tag_filter) for ref in refs]
    return parse_files(refs, tag_filter)
