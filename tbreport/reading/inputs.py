"""One input model for every command: a directory, an archive, or an fsspec URL -> ReadResult.

Directories and single event files go through :func:`tbreport.read`. Archives (``.tar``,
``.tar.gz``, ``.zip``...) and fsspec URLs (``s3://``, ``gs://``, ``file://``, ``memory://``...)
are read in place, as ``tbreport audit`` reads them (:mod:`tbreport.reading.sources`): nothing is
extracted, member names are only used as run names, and the same size caps apply. Their files
go through the same parser and run assembly as ``tbreport.read``, so every verb sees the same
frames whatever the input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from tbreport.errors import InputError
from tbreport.safe_regex import compile_pattern as safe_compile


def is_remote_or_archive(source: str) -> bool:
    """Whether ``source`` needs the archive / URL reader rather than ``tbreport.read``."""
    from tbreport.reading.sources import archive_kind, is_url

    if is_url(source):
        return True
    return os.path.isfile(source) and archive_kind(os.path.basename(source)) is not None


def compile_pattern(pattern: str | None, *, option: str) -> re.Pattern[str] | None:
    """A case-insensitive regular expression (as TensorBoard's filters), or None.

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
    engine: str = "fast",
) -> Any:
    """Read a directory, event file, archive or fsspec URL into a ``ReadResult``.

    Args:
        source: What the user named.
        tags: Keep only tags matching this regular expression, case-insensitively.
        runs: Keep only runs whose name (run directory or logical run) matches this regular
            expression, case-insensitively.
        jobs: Worker processes for parsing (directories).
        engine: ``fast`` or ``accumulator`` (directories only).

    Raises:
        InputError: The source cannot be read, a pattern is invalid, or no run matches.
    """
    import tbreport
    from tbreport.reading.selection import select

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
        result = tbreport.read(
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
    tag_pattern: re.Pattern[str] | None,
    run_pattern: re.Pattern[str] | None,
) -> Any:
    from tbreport.audit.summary import read_entries
    from tbreport.reading.sources import list_source, resolve_source

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


def _run_matches(pattern: re.Pattern[str], name: str) -> bool:
    parts = name.split("/")
    # The run itself or any parent directory (a logical run holding Keras train/ validation/).
    return any(pattern.search("/".join(parts[:i])) for i in range(len(parts), 0, -1))


def run_names(result: Any) -> Sequence[str]:
    """Every run directory and logical run name of a ReadResult."""
    inventory = result.runs
    names = [str(r) for r in inventory["run"]]
    if "logical_run" in inventory:
        names += [str(r) for r in inventory["logical_run"]]
    return list(dict.fromkeys(names))
