"""Find runs in a LOGDIR as TensorBoard does: a run is a directory that directly holds event files.

Run names are paths relative to LOGDIR with ``/`` separators, ``"."`` for LOGDIR itself. Symlinked
directories are followed (comparison folders made with ``ln -s``); each real directory is read once,
so symlink loops end. ``*.profile-empty`` files and Git LFS pointers are skipped with a warning.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.parsing import looks_like_lfs_pointer


@dataclass(frozen=True)
class EventFileRef:
    """One event file of a run."""

    path: str  # absolute or as given; used to open the file
    display: str  # how warnings name it: relative to LOGDIR's parent view
    size: int

    # Pickled as constructor arguments: workers receive thousands of these, and the default
    # (an empty object, then its attributes set one by one) is four times slower to load.
    def __reduce__(self) -> tuple[type[EventFileRef], tuple[str, str, int]]:
        return EventFileRef, (self.path, self.display, self.size)


@dataclass
class RunRef:
    """A run directory and what it directly holds."""

    name: str
    directory: str
    files: list[EventFileRef] = field(default_factory=list)
    hparams_yaml: str | None = None  # Lightning's hparams.yaml next to the event file

    def __reduce__(
        self,
    ) -> tuple[type[RunRef], tuple[str, str, list[EventFileRef], str | None]]:
        return RunRef, (self.name, self.directory, self.files, self.hparams_yaml)


def printable_name(text: str) -> str:
    """A file or member name as valid Unicode, for run names, displays and outputs.

    Names that are not UTF-8 (a Latin-1 directory on a UTF-8 system) reach Python as lone
    surrogates, which no CSV, DataFrame or terminal accepts; their undecodable bytes are shown
    as ``\\xNN`` instead. Files are still opened by their real name.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def is_event_file_name(name: str) -> bool:
    """TensorBoard's ``IsSummaryEventsFile``: "tfevents" in the name, not a profiler placeholder."""
    return "tfevents" in name and not name.endswith(".profile-empty")


def discover_runs(
    logdir: str | os.PathLike[str], *, on_run: Callable[[RunRef], None] | None = None
) -> tuple[list[RunRef], list[ReadWarning]]:
    """List the runs under ``logdir``, sorted by name.

    Args:
        logdir: A directory, or a single event file (then it is the only file of run ``"."``).
        on_run: Called with each run as soon as it is found (reading can start before the walk
            ends), in walk order.

    Raises:
        InputError: ``logdir`` does not exist or cannot be listed.
    """
    root = Path(logdir)
    warnings: list[ReadWarning] = []
    if not root.exists():
        if root.is_symlink():
            raise InputError(f"{logdir} is a broken symbolic link")
        raise InputError(f"{logdir} does not exist")
    if root.is_file():
        if not is_event_file_name(root.name):
            raise InputError(
                f"{logdir} is a file, not a log directory; pass the directory that holds the runs "
                "(or an event file whose name contains 'tfevents')"
            )
        size = root.stat().st_size
        ref = EventFileRef(path=str(root), display=printable_name(str(root)), size=size)
        run = RunRef(name=".", directory=str(root.parent), files=[ref])
        if on_run is not None:
            on_run(run)
        return [run], warnings
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"cannot read directory {logdir}: permission denied")
    runs: list[RunRef] = []
    seen: set[tuple[int, int]] = set()
    # Depth-first, in name order, with an explicit stack: no recursion limit on deep trees.
    # Relative names are carried down the walk (no os.path.relpath per directory and file).
    # Directories as normalised strings (what ``Path`` would print): no Path object per entry.
    pending: list[tuple[str, str]] = [(str(root), ".")]
    while pending:
        directory, rel = pending.pop()
        found = len(runs)
        subdirs = _visit(root, directory, runs, seen, warnings, rel=rel)
        if on_run is not None and len(runs) > found:
            on_run(runs[-1])
        pending.extend(reversed(subdirs))
    runs.sort(key=lambda r: _run_sort_key(r.name))
    return runs, warnings


def _run_sort_key(name: str) -> tuple[str, ...]:
    return tuple(name.split("/"))


def _visit(
    root: Path,
    directory: str,
    runs: list[RunRef],
    seen: set[tuple[int, int]],
    warnings: list[ReadWarning],
    *,
    rel: str,
) -> list[tuple[str, str]]:
    """Record ``directory`` (``rel`` to the root) as a run if it holds event files; return its
    subdirectories with their relative names."""
    if not _first_visit(root, directory, seen, warnings):
        return []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        warnings.append(_unreadable(directory, root, exc))
        return []
    run_name = "." if rel == "." else printable_name(rel)
    run = RunRef(name=run_name, directory=directory)
    subdirs: list[tuple[str, str]] = []
    root_text = str(root)
    for entry in entries:
        # ``entry.path`` joins the directory as given: "./name" under ".", which Path drops.
        path = entry.path if directory != "." else entry.name
        child = entry.name if rel == "." else f"{rel}/{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir:
            subdirs.append((path, child))
            continue
        if entry.name == "hparams.yaml":
            # A FIFO or device with this name would block (or never end) when read.
            if _is_regular(entry):
                run.hparams_yaml = path
            else:
                warnings.append(
                    ReadWarning(
                        kind="not-a-file",
                        path=_display(path, root),
                        message="hparams.yaml is not a regular file; skipped",
                    )
                )
            continue
        if "tfevents" not in entry.name:
            continue
        display = printable_name(os.path.join(root_text, child))
        ref = _event_file(entry, path, display, root, warnings)
        if ref is not None:
            run.files.append(ref)
    if run.files:
        runs.append(run)
    return subdirs


def _first_visit(
    root: Path, directory: str, seen: set[tuple[int, int]], warnings: list[ReadWarning]
) -> bool:
    """Whether ``directory`` is readable and not read yet (through another symbolic link)."""
    try:
        st = os.stat(directory)
    except OSError as exc:
        warnings.append(_unreadable(directory, root, exc))
        return False
    key = (st.st_dev, st.st_ino)
    if key in seen:
        if os.path.islink(directory):
            warnings.append(
                ReadWarning(
                    kind="symlink-alias",
                    path=_display(directory, root),
                    message="symbolic link to a directory that is already read (or a loop); "
                    "read it once",
                )
            )
        return False
    seen.add(key)
    return True


def _event_file(
    entry: os.DirEntry[str], path: str, display: str, root: Path, warnings: list[ReadWarning]
) -> EventFileRef | None:
    """The event file ``entry``, or None (with a warning) for a profiler placeholder, something
    other than a regular file, or a Git LFS pointer."""
    if entry.name.endswith(".profile-empty"):
        warnings.append(
            ReadWarning(
                kind="profile-placeholder",
                path=display,
                message="TensorFlow profiler placeholder (*.profile-empty), not an event file; "
                "skipped",
            )
        )
        return None
    try:
        file_stat = entry.stat(follow_symlinks=True)
    except OSError as exc:
        warnings.append(_unreadable(path, root, exc))
        return None
    if not stat.S_ISREG(file_stat.st_mode):
        warnings.append(
            ReadWarning(kind="not-a-file", path=display, message="not a regular file; skipped")
        )
        return None
    if _is_lfs_pointer(path, file_stat.st_size):
        warnings.append(
            ReadWarning(
                kind="lfs-pointer",
                path=display,
                message="Git LFS pointer, not the event file itself (run `git lfs pull`); skipped",
            )
        )
        return None
    return EventFileRef(path=path, display=display, size=file_stat.st_size)


def _is_regular(entry: os.DirEntry[str]) -> bool:
    try:
        return stat.S_ISREG(entry.stat(follow_symlinks=True).st_mode)
    except OSError:
        return False


def _is_lfs_pointer(path: str, size: int) -> bool:
    if size > 1024:
        return False
    try:
        with open(path, "rb") as handle:
            return looks_like_lfs_pointer(handle.read(64))
    except OSError:
        return False


def _display(path: str | Path, root: Path) -> str:
    rel = os.path.relpath(path, root)
    return printable_name(str(root / rel) if rel != "." else str(root))


def _unreadable(path: str | Path, root: Path, exc: OSError) -> ReadWarning:
    reason = exc.strerror or type(exc).__name__
    return ReadWarning(
        kind="unreadable", path=_display(path, root), message=f"cannot read: {reason}; skipped"
    )
