"""Safe output files: never clobber someone else's file, never leave a half-written one.

Every command that writes files goes through this module:

- :func:`check_output_file` / :func:`check_output_dir` refuse to overwrite a file or directory that
  tbreport did not write, unless ``force`` is given (``--force`` on the command line).
- :func:`atomic_write_text` / :func:`atomic_write_bytes` write to a temporary file in the same
  directory and ``os.replace`` it over the target, so an interrupted run leaves either the old file
  or the new one, never a truncated mix.

A file is *ours* when it carries the generator mark :data:`GENERATOR_META_PREFIX` near its start
(HTML reports); a directory is *ours* when it holds the marker file :data:`DIR_MARKER` or nothing
but file names we write.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import IO, Any

from tbreport.errors import InputError

#: What every HTML report carries in its ``<head>``; how a later run recognises its own file.
GENERATOR_META_PREFIX = '<meta name="generator" content="tbreport'

#: Marker file written into every directory bundle tbreport creates.
DIR_MARKER = ".tbreport-output"

# How far into a file to look for the generator mark (it sits in the first lines of <head>).
_SNIFF_BYTES = 4096


# atomic_open's temporary files: ".<final name>.<random>.tmp".
_TEMP_SUFFIX = ".tmp"
_TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp")


def is_stale_temp(name: str) -> bool:
    """Whether ``name`` is a temporary file :func:`atomic_open` creates (left by a killed run)."""
    return _TEMP_PATTERN.fullmatch(name) is not None


def _umask() -> int:
    # os.umask can only be read by setting it; restore it at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_tbreport_file(path: str | PathLike[str]) -> bool:
    """Whether ``path`` is a file that tbreport wrote (it carries the generator mark).

    Args:
        path: An existing file.

    Returns:
        True when the first few kilobytes hold ``<meta name="generator" content="tbreport``.
    """
    try:
        # Non-blocking, and only a regular file is read: opening a FIFO for reading would wait
        # for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, _SNIFF_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    return GENERATOR_META_PREFIX.encode("ascii") in head


def special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_file(
    path: str | PathLike[str],
    *,
    force: bool = False,
    is_ours: Callable[[Path], bool] = is_tbreport_file,
) -> Path:
    """Make sure writing ``path`` cannot destroy something that is not ours.

    Args:
        path: Where the file will be written.
        force: Overwrite an existing file even when it is not ours (``--force``).
        is_ours: Recognises files we may replace without ``force``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` is a directory, or an existing file that is not ours and ``force``
            is not set.
    """
    target = Path(path)
    special = special_kind(target)
    if special is not None:
        # Replacing it would swap a device node or a pipe for a regular file, even with --force.
        raise InputError(
            f"output {str(target)!r} is {special}; tbreport writes only regular files, "
            "give a file name with -o"
        )
    if target.is_dir():
        raise InputError(f"output {str(target)!r} is a directory; give a file name with -o")
    if (target.exists() or target.is_symlink()) and not force and not is_ours(target):
        raise InputError(
            f"output {str(target)!r} exists and was not written by tbreport; "
            "use --force to overwrite it"
        )
    return target


def check_output_dir(
    path: str | PathLike[str], *, known_names: Iterable[str], force: bool = False
) -> Path:
    """Make sure writing a bundle into directory ``path`` cannot destroy something not ours.

    The directory may be absent, empty, marked with :data:`DIR_MARKER`, or hold only
    ``known_names``; anything else needs ``force``.

    Args:
        path: The output directory.
        known_names: The file names the bundle writes.
        force: Write into the directory whatever it holds (``--force``); files we do not write
            are left alone.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` is a file, or a directory with foreign content and ``force`` is
            not set.
    """
    target = Path(path)
    special = special_kind(target)
    if special is not None:
        raise InputError(f"output {str(target)!r} is {special}; give a directory with -o")
    if target.exists() and not target.is_dir():
        raise InputError(f"output {str(target)!r} is a file; give a directory with -o")
    if not target.is_dir() or force:
        return target
    # Temporary files of ours left by a killed run are not foreign content.
    entries = {entry.name for entry in target.iterdir() if not is_stale_temp(entry.name)}
    if not entries or DIR_MARKER in entries:
        return target
    allowed = set(known_names)
    foreign = sorted(entries - allowed)
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise InputError(
            f"output directory {str(target)!r} holds files tbreport did not write ({shown}{more}); "
            "use --force to write into it anyway"
        )
    return target


@contextlib.contextmanager
def atomic_open(
    path: str | PathLike[str], mode: str = "w", **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    The parent directory is created when missing. If the body raises (or the process is
    interrupted), the temporary file is removed and ``path`` is untouched.

    Args:
        path: The final file.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        **open_kwargs: Passed to :func:`open` (e.g. ``encoding``, ``newline``).

    Yields:
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=_TEMP_SUFFIX, dir=target.parent
        )
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        os.chmod(temp_name, 0o666 & ~_umask())
        os.replace(temp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise _write_error(target, exc) from None
        raise


def _write_error(target: Path, exc: OSError) -> InputError:
    """Disk full, read-only file system, no permission: one clear sentence, exit status 2."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return InputError(f"cannot write {str(target)!r}: {reason}")


def atomic_write_text(path: str | PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        path: The final file; its directory is created when missing.
        text: The content.
        encoding: Text encoding.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_open(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        path: The final file; its directory is created when missing.
        data: The content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def mark_output_dir(path: str | PathLike[str], *, generator: str) -> None:
    """Write the :data:`DIR_MARKER` file that makes ``path`` recognisably ours.

    Args:
        path: The bundle directory.
        generator: A line saying what wrote it, e.g. ``"tbreport 0.1.0 report --format csv"``.
    """
    atomic_write_text(Path(path) / DIR_MARKER, generator.rstrip("\n") + "\n")


def remove_stale(directory: Path, *, known: tuple[str, ...], written: list[Path]) -> list[Path]:
    """Remove files tbreport wrote into ``directory`` earlier that this run did not write again
    (an old ``scalars_wide.csv`` must not pass for current data). Only ``known`` names go."""
    keep = {p.name for p in written}
    removed = []
    for name in known:
        path = directory / name
        if name not in keep and path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def stamp_text(when: _dt.datetime | None = None) -> str:
    """The time stamp written into reports: ``2026-12-07 05:40 UTC`` (default: now, local zone)."""
    return (when or _dt.datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
