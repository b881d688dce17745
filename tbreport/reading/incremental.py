"""Read a LOGDIR while it is being written: each poll parses only the bytes added since the last.

Per event file the reader remembers the byte offset just past the last complete record, the file's
identity (device and inode) and the parsed records so far, kept as a few *chunks* of
:class:`~tbreport.reading.parsing.FileData`. A poll stats every file; a file that grew has only
its new bytes read and handed to the same parser ``tbreport.read`` uses (`parse_event_bytes`).
The run-wide state (plugin names per tag, ``SessionLog.START`` purges, duplicate steps) is then
applied by the same assembly ``tbreport.read`` uses (`assemble_run`), with the chunks in file
order, so a run read in a thousand polls gives exactly the rows of one ``tbreport.read``.

Why chunks parse correctly on their own: a chunk starts on a record boundary, and the file's first
record (``brain.Event:2``, its version) is put in front of it, so the parser treats it as a modern
file and numbers the records after it.

A partial record at the end of a file is *in progress*, not damage: the offset stays before it and
the next poll parses it again with whatever was added. It becomes damage (the reader's usual
``truncated-record`` warning, hence a D902 finding) only when the file has not grown for
``stall_seconds`` or when the caller says the run is finished. A file that shrinks or is replaced
(another inode) is read again from its start, with a ``reread`` warning.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.assemble import assemble_run, combine
from tbreport.reading.discovery import RunRef, discover_runs
from tbreport.reading.grouping import build_inventory
from tbreport.reading.parsing import FileData, parse_event_bytes
from tbreport.reading.result import ReadResult
from tbreport.reading.rundata import RunData

# Warnings the framing gives for the end of a file that may still be being written.
_TAIL_KINDS = frozenset({"truncated-record", "zero-filled-tail"})
# Chunks of one level merged into one chunk of the next level (re-parsed as one range): keeps the
# number of chunks per file logarithmic while each byte is re-parsed only a few times.
_MERGE_FANOUT = 4
# The first read of a file is never merged again: only what was appended afterwards is.
_BASE_LEVEL = 1 << 30
#: Seconds a file must stay the same size before a partial record at its end counts as damage.
DEFAULT_STALL_SECONDS = 60.0


@dataclass
class _Chunk:
    start: int  # file offset of the first parsed byte (a record boundary)
    end: int  # file offset just past the last complete record
    level: int
    data: FileData


@dataclass
class _FileState:
    path: str
    display: str
    identity: tuple[int, int]
    size: int = 0  # size at the last poll
    consumed: int = 0  # offset just past the last complete record
    prefix: bytes = b""  # the file's first record when it is the file-version record
    chunks: list[_Chunk] = field(default_factory=list)
    tail: ReadWarning | None = None  # the partial (or unreadable) bytes after ``consumed``
    tail_is_damage: bool = False
    last_growth: float = 0.0


@dataclass
class _RunState:
    ref: RunRef
    files: dict[str, _FileState] = field(default_factory=dict)
    logical_run: str | None = None  # set when the run is first assembled


@dataclass(frozen=True)
class PollResult:
    """What one :meth:`IncrementalReader.poll` found.

    Attributes:
        changed: Run directories whose data changed (new records, new or re-read files, a partial
            record that became damage).
        removed: Run directories that disappeared.
        warnings: Warnings raised by this poll only (files re-read, files that cannot be read,
            new files discovery skipped).
        bytes_read: Bytes read from disk by this poll.
        grew: Whether any file grew or appeared.
    """

    changed: frozenset[str]
    removed: frozenset[str]
    warnings: tuple[ReadWarning, ...]
    bytes_read: int
    grew: bool


class _FileOutcome(NamedTuple):
    """What one poll of one file found."""

    changed: bool  # the run must be assembled and diagnosed again
    grew: bool
    bytes_read: int
    warnings: list[ReadWarning]


class IncrementalReader:
    """Follow a LOGDIR that is being written, reading each new byte once.

    Example::

        reader = IncrementalReader("runs/")
        while training:
            changed = reader.poll().changed
            for logical_run, result in reader.logical_results(changed).items():
                ...  # result is a ReadResult of that logical run only
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            logdir: A directory of runs, or a single event file.
            stall_seconds: How long a file must stay the same size before a partial record at its
                end is reported as damage.
            clock: Monotonic time source (tests pass a fake one).
        """
        if stall_seconds < 0:
            raise InputError(f"stall time must be at least 0 seconds (got {stall_seconds})")
        self.logdir = str(logdir)
        self.stall_seconds = float(stall_seconds)
        self._clock = clock
        self._runs: dict[str, _RunState] = {}
        self._seen_discovery: set[tuple[str, str]] = set()
        self._last_growth = clock()
        self.polls = 0

    # -- polling ---------------------------------------------------------------------------------

    def poll(self, *, finished: bool = False) -> PollResult:
        """Look for new bytes, files and runs; parse only what was added.

        Args:
            finished: The writers are done: a partial record at the end of a file is damage now,
                however recently the file grew.

        Returns:
            What changed (see :class:`PollResult`).
        """
        self.polls += 1
        now = self._clock()
        warnings: list[ReadWarning] = []
        try:
            refs, discovery_warnings = discover_runs(self.logdir)
        except InputError as exc:  # the logdir vanished or cannot be listed for now
            refs = []
            discovery_warnings = [
                ReadWarning(kind="unreadable", path=self.logdir, message=str(exc))
            ]
        for warning in discovery_warnings:
            key = (warning.kind, warning.path)
            if key not in self._seen_discovery:  # say it once, not on every poll
                self._seen_discovery.add(key)
                warnings.append(warning)
        changed: set[str] = set()
        bytes_read = 0
        grew = False
        current = {ref.name: ref for ref in refs}
        removed = {name for name in self._runs if name not in current}
        for name in removed:
            del self._runs[name]
        for ref in refs:
            state = self._runs.get(ref.name)
            if state is None:
                state = self._runs[ref.name] = _RunState(ref=ref)
                changed.add(ref.name)
            state.ref = ref
            paths = {f.path for f in ref.files}
            for path in [p for p in state.files if p not in paths]:  # rotated away or deleted
                del state.files[path]
                changed.add(ref.name)
            for file_ref in ref.files:
                outcome = self._poll_file(state, file_ref.path, file_ref.display, now, finished)
                if outcome is None:
                    continue
                file_changed, file_grew, nbytes, file_warnings = outcome
                bytes_read += nbytes
                grew |= file_grew
                warnings.extend(file_warnings)
                if file_changed:
                    changed.add(ref.name)
        if grew or removed:
            self._last_growth = now
        for name in changed:
            self._runs[name].logical_run = None  # its grouping may change with its tags
        return PollResult(
            changed=frozenset(changed),
            removed=frozenset(removed),
            warnings=tuple(warnings),
            bytes_read=bytes_read,
            grew=grew,
        )

    def _poll_file(
        self, run: _RunState, path: str, display: str, now: float, finished: bool
    ) -> _FileOutcome | None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # gone between discovery and now; the next poll drops it
        identity = (st.st_dev, st.st_ino)
        warnings: list[ReadWarning] = []
        state = run.files.get(path)
        changed = False
        if state is None:
            state = run.files[path] = _FileState(path, display, identity, last_growth=now)
            changed = True
        elif state.identity != identity or st.st_size < state.consumed:
            why = "was replaced" if state.identity != identity else "shrank"
            warnings.append(
                ReadWarning(
                    kind="reread",
                    path=display,
                    run=run.ref.name,
                    message=f"file {why} while being watched; read it again from the start",
                )
            )
            state = run.files[path] = _FileState(path, display, identity, last_growth=now)
            changed = True
        grew = st.st_size != state.size
        if grew:
            state.size = st.st_size
            state.last_growth = now
        nbytes = 0
        if grew and st.st_size > state.consumed:
            nbytes, read_warning = self._read_new(state, run.ref.name)
            if read_warning is not None:
                warnings.append(read_warning)
            changed = True
        stalled = finished or now - state.last_growth >= self.stall_seconds
        is_damage = state.tail is not None and stalled
        if is_damage != state.tail_is_damage:
            state.tail_is_damage = is_damage
            changed = True
        return _FileOutcome(changed, grew, nbytes, warnings)

    def _read_new(self, state: _FileState, run: str) -> tuple[int, ReadWarning | None]:
        """Parse the bytes after ``state.consumed``; returns bytes read and a read failure."""
        start = state.consumed
        try:
            with open(state.path, "rb") as handle:
                handle.seek(start)
                new = handle.read(state.size - start)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return 0, ReadWarning(
                kind="unreadable", path=state.display, run=run, message=f"cannot read: {reason}"
            )
        prefix = state.prefix if start > 0 else b""
        data = parse_event_bytes(prefix + new, path=state.display)
        shift = start - len(prefix)
        data.warnings = [
            w if w.offset is None else dataclasses.replace(w, offset=w.offset + shift)
            for w in data.warnings
        ]
        if data.n_records == 0:
            # Nothing complete yet (a file just created, or not an event file at all): wait.
            state.tail = data.warnings[0] if data.warnings else None
            if start > 0:  # the parser calls a lone partial record "not an event file"
                state.tail = ReadWarning(
                    kind="truncated-record",
                    path=state.display,
                    offset=start,
                    message="file ends inside a record; kept every complete record before it",
                )
            return len(new), None
        tails = [
            (w.offset, w) for w in data.warnings if w.kind in _TAIL_KINDS and w.offset is not None
        ]
        end, tail = max(tails, key=lambda pair: pair[0]) if tails else (start + len(new), None)
        data.warnings = [w for w in data.warnings if w is not tail]
        state.tail = tail
        if end <= start:  # only the start of a record so far
            return len(new), None
        if start == 0:
            state.prefix = _version_record(prefix + new, data)
        state.chunks.append(_Chunk(start, end, _BASE_LEVEL if start == 0 else 0, data))
        state.consumed = end
        self._merge_chunks(state)
        return len(new), None

    def _merge_chunks(self, state: _FileState) -> None:
        """Re-parse the last chunks as one when ``_MERGE_FANOUT`` of them share a level."""
        chunks = state.chunks
        while len(chunks) >= _MERGE_FANOUT:
            last = chunks[-_MERGE_FANOUT:]
            level = last[0].level
            if level == _BASE_LEVEL or any(c.level != level for c in last):
                return
            start, end = last[0].start, last[-1].end
            try:
                with open(state.path, "rb") as handle:
                    handle.seek(start)
                    new = handle.read(end - start)
            except OSError:
                return  # keep the chunks as they are; they are still correct
            if len(new) != end - start:
                return
            data = parse_event_bytes(state.prefix + new, path=state.display)
            shift = start - len(state.prefix)
            data.warnings = [
                w if w.offset is None else dataclasses.replace(w, offset=w.offset + shift)
                for w in data.warnings
            ]
            del chunks[-_MERGE_FANOUT:]
            chunks.append(_Chunk(start, end, level + 1, data))

    # -- results ---------------------------------------------------------------------------------

    @property
    def runs(self) -> list[str]:
        """Run directories known after the last poll, sorted by name."""
        return sorted(self._runs, key=lambda name: tuple(name.split("/")))

    def idle_seconds(self) -> float:
        """Seconds since a file last grew or appeared (since creation if none ever did)."""
        return self._clock() - self._last_growth

    def pending_bytes(self) -> int:
        """Bytes after the last complete record of every file (records being written)."""
        return sum(f.size - f.consumed for run in self._runs.values() for f in run.files.values())

    def _assemble(self, name: str) -> RunData:
        state = self._runs[name]
        parts: list[FileData] = []
        for file_state in state.files.values():
            parts.extend(chunk.data for chunk in file_state.chunks)
            if file_state.tail is not None and file_state.tail_is_damage:
                damage = FileData(path=file_state.display)
                damage.warnings.append(file_state.tail)
                parts.append(damage)
        run_data = assemble_run(state.ref, parts)
        run_data.files = len(state.ref.files)  # chunks are not files
        return run_data

    def _logical_run_of(self, name: str, assembled: dict[str, RunData]) -> str:
        state = self._runs[name]
        if state.logical_run is None:
            if name not in assembled:
                assembled[name] = self._assemble(name)
            inventory = build_inventory([assembled[name]], [])
            state.logical_run = str(inventory["logical_run"].iloc[0])
        return state.logical_run

    def logical_runs(self) -> dict[str, list[str]]:
        """Logical run -> its run directories, for every known run."""
        assembled: dict[str, RunData] = {}
        groups: dict[str, list[str]] = {}
        for name in self.runs:
            groups.setdefault(self._logical_run_of(name, assembled), []).append(name)
        return groups

    def logical_results(self, runs: Iterable[str] | None = None) -> dict[str, ReadResult]:
        """A ReadResult per logical run that holds one of ``runs`` (every logical run if None).

        Each result holds only the run directories of its logical run (Keras splits,
        ``add_scalars`` series and hparams sessions are read with their parent), so diagnosing it
        costs what that run costs, not what the logdir costs.
        """
        assembled: dict[str, RunData] = {}
        groups: dict[str, list[str]] = {}
        for name in self.runs:
            groups.setdefault(self._logical_run_of(name, assembled), []).append(name)
        wanted = set(self._runs) if runs is None else {r for r in runs if r in self._runs}
        results: dict[str, ReadResult] = {}
        for logical, members in groups.items():
            if not wanted.intersection(members):
                continue
            parts = [assembled.pop(m) if m in assembled else self._assemble(m) for m in members]
            results[logical] = combine(self.logdir, parts)
        return results

    def result(self) -> ReadResult:
        """Everything read so far as one ReadResult (what ``tbreport.read`` would return)."""
        return combine(self.logdir, [self._assemble(name) for name in self.runs])


def _version_record(buf: bytes, data: FileData) -> bytes:
    """The file's first record when it is the file-version event, else ``b""``."""
    if not any(seq == 0 for seq, _ in data.versions) or len(buf) < 8:
        return b""
    (length,) = struct.unpack_from("<Q", buf, 0)
    return bytes(buf[: 12 + length + 4])


__all__ = ["DEFAULT_STALL_SECONDS", "IncrementalReader", "PollResult"]
