"""What every verb shares: output checks before any work, colour, reading with warnings."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import click

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.outputs import special_kind
from tbreport.reading.inputs import read_source
from tbreport.reading.reader import Engine
from tbreport.reading.result import ReadResult
from tbreport.textsafe import term_safe

#: What ``-o`` takes to mean standard output.
STDOUT = "-"

SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan", "healthy": "green"}

# Kernel and device trees: creating a file there is never what the user meant.
_SYSTEM_TREES = ("/sys", "/proc", "/dev")


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """``1 run``, ``2 runs``, ``1 more tag``."""
    return f"{n:,} {word if n == 1 else (plural_word or word + 's')}"


def use_colour(requested: bool | None = None) -> bool:
    """Colour on a terminal unless NO_COLOR is set (https://no-color.org); ``requested``
    (``--color/--no-color``) wins."""
    if requested is not None:
        return requested
    return not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def probe_output(path: str, *, directory: bool, stdout_ok: bool = False) -> None:
    """Refuse, before any reading, an output that cannot be written.

    The parent directory must exist and accept a new file (a temporary probe is created and
    removed at once), so a read-only file system, ``/sys`` or a missing parent fails in a
    second with one clear sentence instead of after the whole read.

    Args:
        path: What ``-o`` named.
        directory: The output is a directory (created when missing) rather than a file.
        stdout_ok: ``-`` (standard output) is allowed for this format.

    Raises:
        InputError: The output cannot be written (exit status 2).
    """
    if path == STDOUT:
        if stdout_ok:
            return
        raise InputError("-o - (standard output) is not possible here: this output is a directory")
    target = Path(path)
    special = special_kind(target)
    if special is not None:
        # Opened for writing, a pipe or device would block or be destroyed: say what it is.
        raise InputError(f"cannot write {path}: it is {special}, not a regular file")
    resolved = target.resolve()
    for tree in _SYSTEM_TREES:
        if resolved == Path(tree) or Path(tree) in resolved.parents:
            raise InputError(f"cannot write {path}: {tree} is a system directory, not for output")
    where = target if directory and target.is_dir() else target.parent
    where = where if str(where) else Path(".")
    if not where.exists():
        raise InputError(f"cannot write {path}: directory {str(where)!r} does not exist")
    if not where.is_dir():
        raise InputError(f"cannot write {path}: {str(where)!r} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tbreport-probe-", dir=where)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write {path}: {reason} ({where})") from None
    os.close(fd)
    os.unlink(probe)


def report_warnings(
    warnings: list[ReadWarning],
    *,
    verbose: bool = False,
    quiet: bool = False,
    what: str = "while reading",
) -> None:
    """Warnings grouped by kind with counts (one example each); all of them with ``verbose``."""
    if not warnings or quiet:
        return
    counts = Counter(w.kind for w in warnings)
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    click.secho(
        f"tbreport: {plural(len(warnings), 'warning')} {what}: {summary}", fg="yellow", err=True
    )
    if verbose:
        for warning in warnings:
            click.echo(f"  - [{term_safe(warning.kind)}] {term_safe(warning)}", err=True)
        return
    seen: set[str] = set()
    for warning in warnings:
        if warning.kind not in seen:
            seen.add(warning.kind)
            more = counts[warning.kind] - 1
            extra = f" (and {more} more)" if more else ""
            click.echo(f"  - [{term_safe(warning.kind)}] {term_safe(warning)}{extra}", err=True)
    if len(warnings) > len(seen):
        click.echo(
            "  (-v lists every one; `tbreport export` writes them all to warnings.csv)", err=True
        )


def read_logdir(
    logdir: str,
    *,
    tags: str | None,
    jobs: int | None,
    engine: Engine,
    runs: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> ReadResult:
    """Read a directory, archive or URL with the shared options; warnings go to stderr,
    grouped by kind."""
    result = read_source(logdir, tags=tags, runs=runs, jobs=jobs, engine=engine)
    report_warnings(result.warnings, verbose=verbose, quiet=quiet)
    return result
