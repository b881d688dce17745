"""One input model for every verb: a directory, an archive, or an fsspec URL -> ReadResult.

Directories and single event files go through :func:`tbreport.read`. Archives (``.tar``,
``.tar.gz``, ``.zip``...) and fsspec URLs (``s3://``, ``gs://``, ``file://``, ``memory://``...)
are read in place, as ``tbreport audit`` reads them (:mod:`tbreport.reading.sources`): nothing is
extracted, member names are only used as run names, and the same size caps apply. Their files
go through the same parser and run assembly as ``tbreport.read``, so every verb sees the same
frames whatever the input.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, overload

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.assemble import assemble_run, combine_with_records
from tbreport.reading.discovery import EventFileRef, RunRef
from tbreport.reading.hparams import HparamRecord
from tbreport.reading.parsing import FileData, parse_event_bytes
from tbreport.reading.reader import Engine, read
from tbreport.reading.result import ReadResult
from tbreport.reading.selection import select
from tbreport.reading.sources import (
    MemberRef,
    RunEntry,
    SourceReader,
    SourceSpec,
    archive_kind,
    is_url,
    list_source,
    reader_for,
    resolve_source,
)
from tbreport.safe_regex import Pattern
from tbreport.safe_regex import compile_pattern as safe_compile


def is_remote_or_archive(source: str) -> bool:
    """Whether ``source`` needs the archive / URL reader rather than ``tbreport.read``."""
    if is_url(source):
        return True
    return os.path.isfile(source) and archive_kind(os.path.basename(source)) is not None


@overload
def compile_pattern(pattern: str, *, option: str) -> Pattern: ...
@overload
def compile_pattern(pattern: None, *, option: str) -> None: ...
@overload
def compile_pattern(pattern: str | None, *, option: str) -> Pattern | None: ...


def compile_pattern(pattern: str | None, *, option: str) -> Pattern | None:
    """A case-insensitive regular expression (as TensorBoard's filters), or None for None.

    Raises:
        InputError: ``pattern`` is not a valid regular expression.
    """
    if pattern is None:
        return None
    try:
        # Untrusted tags and run names are matched: linear time (RE2) or a time limit.
        return safe_compile(pattern, ignore_case=True)
    except re.error as exc:
        what = option.strip("-").rstrip("s")
        raise InputError(f"invalid {what} pattern {pattern!r} ({option}): {exc}") from None


def read_source(
    source: str,
    *,
    tags: str | None = None,
    runs: str | None = None,
    jobs: int | None = None,
    engine: Engine = "fast",
) -> ReadResult:
    """Read a directory, event file, archive or fsspec URL into a ``ReadResult``.

    Args:
        source: What the user named.
        tags: Keep only tags matching this regular expression, case-insensitively.
        runs: Keep only runs whose name (run directory or logical run) matches this regular
            expression, case-insensitively.
        jobs: Processes reading files of directories, this one included (as for ``read``).
        engine: ``fast`` or ``accumulator`` (directories only).

    Raises:
        InputError: The source cannot be read, a pattern is invalid, or no run matches.
    """
    tag_pattern = compile_pattern(tags, option="--tags")
    run_pattern = compile_pattern(runs, option="--runs")
    if is_remote_or_archive(source):
        if engine != "fast":
            raise InputError(
                f"--engine {engine} reads directories only; {source} is an archive or URL"
            )
        result = _read_archive_or_url(source, tag_pattern=tag_pattern, run_pattern=run_pattern)
    else:
        # The reader takes the pattern as text; (?i) makes it case-insensitive like TensorBoard.
        result = read(
            source, jobs=jobs, tags=None if tags is None else f"(?i){tags}", engine=engine
        )
    if run_pattern is not None:
        result = select(result, runs=run_pattern)
        if result.runs.empty:
            raise InputError(f"no run under {source} matches --runs {runs!r}")
    return result


def _read_archive_or_url(
    source: str,
    *,
    tag_pattern: Pattern | None,
    run_pattern: Pattern | None,
) -> ReadResult:
    spec = resolve_source(source)
    listing = list_source(spec)
    entries = listing.runs
    if run_pattern is not None:
        # Runs are filtered by name before their bytes are read; a sub-run (Keras train/) is
        # kept with its parent when the parent's name matches.
        entries = [e for e in entries if _run_matches(run_pattern, e.name)]
    if not listing.runs:
        detail = f" ({listing.warnings[0]})" if listing.warnings else ""
        raise InputError(f"no TensorBoard event files found in {source}{detail}")
    return read_entries(spec, entries, tag_filter=tag_pattern, discovery_warnings=listing.warnings)


def _run_matches(pattern: Pattern, name: str) -> bool:
    parts = name.split("/")
    # The run itself or any parent directory (a logical run holding Keras train/ validation/).
    return any(pattern.search("/".join(parts[:i])) for i in range(len(parts), 0, -1))


def run_names(result: ReadResult) -> Sequence[str]:
    """Every run directory and logical run name of a ReadResult."""
    inventory = result.runs
    names = [str(r) for r in inventory["run"]]
    if "logical_run" in inventory:
        names += [str(r) for r in inventory["logical_run"]]
    return list(dict.fromkeys(names))


def read_entries(
    spec: SourceSpec,
    runs: Sequence[RunEntry],
    *,
    tag_filter: Any = None,
    discovery_warnings: Sequence[ReadWarning] = (),
) -> ReadResult:
    """Read the run directories ``runs`` of ``spec`` (a directory, an archive or a URL) into a
    ``ReadResult``, straight from the source's bytes.

    Args:
        spec: The source the runs live in.
        runs: Run directories to read (whole logical runs).
        tag_filter: A compiled pattern; only matching tags are kept.
        discovery_warnings: Warnings of the listing, kept with the result.
    """
    return read_entries_with_records(
        spec, runs, tag_filter=tag_filter, discovery_warnings=discovery_warnings
    )[0]


def read_entries_with_records(
    spec: SourceSpec,
    runs: Sequence[RunEntry],
    *,
    tag_filter: Any = None,
    discovery_warnings: Sequence[ReadWarning] = (),
) -> tuple[ReadResult, list[HparamRecord]]:
    """`read_entries`, and the hyperparameter records as read (see `combine_with_records`).

    Args:
        spec: The source the runs live in.
        runs: Run directories to read (whole logical runs).
        tag_filter: A compiled pattern; only matching tags are kept.
        discovery_warnings: Warnings of the listing, kept with the result.
    """
    reader = reader_for(spec)
    run_data = []
    yaml_paths: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for entry in runs:
            parsed: list[FileData] = []
            refs: list[EventFileRef] = []
            for member in entry.files:
                display = spec.member_display(member.name)
                buf, warnings = reader.read(member)
                if buf or not warnings:
                    data = parse_event_bytes(buf, path=display, tag_filter=tag_filter)
                    data.warnings[:0] = warnings
                else:
                    data = FileData(path=display, warnings=list(warnings))
                del buf
                parsed.append(data)
                refs.append(EventFileRef(path=display, display=display, size=member.size))
            yaml_path = None
            if entry.hparams_yaml is not None:
                yaml_path = stack.enter_context(_yaml_file(spec, entry.hparams_yaml, reader))
                if yaml_path is not None:
                    yaml_paths[yaml_path] = spec.member_display(entry.hparams_yaml.name)
            ref = RunRef(
                name=entry.name,
                directory=spec.run_display(entry.name),
                files=refs,
                hparams_yaml=yaml_path,
            )
            run_data.append(assemble_run(ref, parsed))
            del parsed
        result, records = combine_with_records(
            spec.display, run_data, discovery_warnings=list(discovery_warnings)
        )
    del run_data
    if yaml_paths:
        # A yaml read from an archive was handed over as a temporary path: name the member.
        result.warnings = [replace(w, path=yaml_paths.get(w.path, w.path)) for w in result.warnings]
    return result, records


@contextlib.contextmanager
def _yaml_file(spec: SourceSpec, member: MemberRef, reader: SourceReader) -> Iterator[str | None]:
    """A path ``load_hparams_yaml`` can open for a Lightning ``hparams.yaml`` member.

    Local directories are read in place. For archives and URLs the bytes go to an anonymous
    in-memory file (Linux) or, elsewhere, a private temporary file removed at once.
    """
    if spec.kind == "dir":
        yield str(member.locator)
        return
    data, warnings = reader.read(member)
    if warnings and not data:
        yield None
        return
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("hparams.yaml", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    # Closed at once, removed after use (the caller needs the path while the yaml is loaded).
    handle = tempfile.NamedTemporaryFile(prefix="tbreport-", suffix=".yaml", delete=False)  # noqa: SIM115
    try:
        with handle:
            handle.write(data)
        yield handle.name
    finally:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
