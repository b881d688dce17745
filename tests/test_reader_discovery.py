"""Finding runs: naming, symlinks, loops, odd paths, permissions, files that change while read."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from reader_helpers import BASE_WALL, FILE_NAME, record_spans, scalar_series, write_run

import tbreport
from tbreport import testing
from tbreport.errors import InputError
from tbreport.reading.discovery import discover_runs
from tbreport.reading.reader import read_runs


def test_run_names_are_relative_paths_sorted(tmp_path):
    for name in ("b", "a/x", "a", "a/x/deep", "c d"):
        write_run(tmp_path / name, scalar_series("loss", range(2)))
    write_run(tmp_path, scalar_series("loss", range(2)))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a run")
    result = tbreport.read(tmp_path)
    assert result.runs["run"].tolist() == [".", "a", "a/x", "a/x/deep", "b", "c d"]
    assert list(result.scalars["run"].cat.categories) == result.runs["run"].tolist()


def test_files_of_a_run_are_read_in_name_order(tmp_path):
    run = tmp_path / "run"
    write_run(run, scalar_series("loss", range(10, 20)), index=2)
    write_run(run, scalar_series("loss", range(0, 10)), index=1)
    result = tbreport.read(tmp_path)
    assert result.scalars["step"].tolist() == list(range(20))
    assert result.runs.loc[0, "files"] == 2


def test_symlinked_run_directories_are_followed(tmp_path):
    store = tmp_path / "store"
    write_run(store / "exp1", scalar_series("loss", range(5)))
    write_run(store / "exp2", scalar_series("loss", range(7)))
    compare = tmp_path / "compare"
    compare.mkdir()
    (compare / "baseline").symlink_to(store / "exp1", target_is_directory=True)
    (compare / "candidate").symlink_to(store / "exp2", target_is_directory=True)
    result = tbreport.read(compare)
    assert result.runs["run"].tolist() == ["baseline", "candidate"]
    assert result.runs["scalars"].tolist() == [5, 7]
    assert result.warnings == []


def test_symlinked_event_file_is_read(tmp_path):
    real = write_run(tmp_path / "store", scalar_series("loss", range(4)))
    (tmp_path / "logs" / "run").mkdir(parents=True)
    (tmp_path / "logs" / "run" / FILE_NAME).symlink_to(real)
    result = tbreport.read(tmp_path / "logs")
    assert result.runs["run"].tolist() == ["run"]
    assert len(result.scalars) == 4


def test_the_same_directory_linked_twice_is_read_once(tmp_path):
    write_run(tmp_path / "exp", scalar_series("loss", range(5)))
    (tmp_path / "zz_alias").symlink_to(tmp_path / "exp", target_is_directory=True)
    result = tbreport.read(tmp_path)
    assert result.runs["run"].tolist() == ["exp"]
    (warning,) = result.warnings
    assert warning.kind == "symlink-alias"
    assert warning.path.endswith("zz_alias")


def test_symlink_loop_ends(tmp_path):
    run = tmp_path / "run"
    write_run(run, scalar_series("loss", range(3)))
    (run / "loop").symlink_to(tmp_path, target_is_directory=True)
    (run / "self").symlink_to(run, target_is_directory=True)
    result = tbreport.read(tmp_path)
    assert result.runs["run"].tolist() == ["run"]
    assert len(result.scalars) == 3
    assert {w.kind for w in result.warnings} == {"symlink-alias"}


def test_broken_symlinks_inside_logdir(tmp_path):
    write_run(tmp_path / "run", scalar_series("loss", range(3)))
    (tmp_path / "gone").symlink_to(tmp_path / "does-not-exist", target_is_directory=True)
    (tmp_path / "run" / "events.out.tfevents.1.dangling").symlink_to(tmp_path / "nowhere")
    result = tbreport.read(tmp_path)
    assert len(result.scalars) == 3
    (warning,) = result.warnings
    assert warning.kind == "unreadable"
    assert warning.path.endswith("dangling")


def test_very_deep_directory_tree(tmp_path):
    # Deeper than Python's recursion limit: the walk must not recurse per directory.
    levels = [tmp_path / "d"]
    for _ in range(1199):
        levels.append(levels[-1] / "d")
    try:
        for level in levels:
            level.mkdir()
        write_run(levels[-1], scalar_series("loss", range(2)))
        write_run(tmp_path / "shallow", scalar_series("loss", range(3)))
        result = tbreport.read(tmp_path)
        assert result.runs["run"].tolist() == ["/".join(["d"] * 1200), "shallow"]
        assert len(result.scalars) == 5
    finally:  # shutil.rmtree (pytest's clean-up) recurses per level too: remove bottom-up
        for level in reversed(levels):
            if level.is_dir():
                for child in level.iterdir():
                    if not child.is_dir():
                        child.unlink()
                level.rmdir()


def test_fifo_named_like_an_event_file_is_not_opened(tmp_path):
    write_run(tmp_path / "run", scalar_series("loss", range(3)))
    fifo = tmp_path / "run" / "events.out.tfevents.1700000001.host.pipe"
    os.mkfifo(fifo)  # opening it for reading would block forever
    result = tbreport.read(tmp_path)
    assert len(result.scalars) == 3
    (warning,) = result.warnings
    assert warning.kind == "not-a-file"
    assert warning.path == str(fifo)


def test_logdir_that_does_not_exist(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        tbreport.read(tmp_path / "missing")


def test_logdir_that_is_a_broken_symlink(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    with pytest.raises(InputError, match="broken symbolic link"):
        tbreport.read(tmp_path / "link")


def test_logdir_that_is_a_plain_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="is a file, not a log directory"):
        tbreport.read(path)


def test_logdir_without_event_files(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "readme.md").write_text("nothing here")
    with pytest.raises(InputError, match="no TensorBoard event files"):
        tbreport.read(tmp_path)


def test_logdir_with_only_skipped_files_names_them(tmp_path):
    placeholder = tmp_path / "train" / "events.out.tfevents.1.host.profile-empty"
    testing.write_events(placeholder, [testing.file_version_event()])
    with pytest.raises(InputError, match="profile-empty"):
        tbreport.read(tmp_path)


def test_file_deleted_between_discovery_and_reading(tmp_path):
    write_run(tmp_path / "run", scalar_series("loss", range(3)), index=0)
    gone = write_run(tmp_path / "run", scalar_series("loss", range(3, 6)), index=1)
    runs, _ = discover_runs(tmp_path)
    gone.unlink()
    (run_data,) = read_runs(runs, jobs=1)
    assert list(run_data.scalar_step) == [0, 1, 2]
    assert [w.kind for w in run_data.warnings] == ["unreadable"]


# ---------------------------------------------------------------------------------------------
# Files growing while they are read (a live run)


def test_live_run_with_a_half_written_record(tmp_path):
    path = write_run(tmp_path / "run", scalar_series("loss", range(50)))
    data = path.read_bytes()
    last = record_spans(data)[-1]
    path.write_bytes(data[: last[0] + 20])  # the writer has flushed part of a record
    result = tbreport.read(tmp_path)
    assert result.scalars["step"].tolist() == list(range(49))
    (warning,) = result.warnings
    assert warning.kind == "truncated-record"
    assert "live or interrupted" in warning.message


def test_reading_while_a_writer_appends(tmp_path):
    events = [testing.file_version_event(), *scalar_series("loss", range(3000))]
    records = [testing.frame(e.SerializeToString()) for e in events]
    path = tmp_path / "run" / FILE_NAME
    path.parent.mkdir()
    path.write_bytes(records[0])
    stop = threading.Event()

    def writer() -> None:
        with open(path, "ab", buffering=0) as out:
            for i, record in enumerate(records[1:]):
                # Two writes per record, so readers can see a record cut in half.
                out.write(record[:7])
                out.write(record[7:])
                if i % 100 == 0:
                    time.sleep(0.002)
                if stop.is_set():
                    return

    def read_steps() -> list[int]:
        try:
            result = tbreport.read(tmp_path)
        except InputError as exc:  # a lone file-version record plus half a record
            assert "nothing readable" in str(exc)  # noqa: PT017 - one of two valid outcomes
            return []
        assert {w.kind for w in result.warnings} <= {"truncated-record"}
        return result.scalars["step"].tolist()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    try:
        while thread.is_alive():
            steps = read_steps()
            assert steps == list(range(len(steps)))  # always a prefix, never a gap
            seen.append(len(steps))
    finally:
        stop.set()
        thread.join()
    assert seen == sorted(seen)
    assert read_steps() == list(range(3000))


# ---------------------------------------------------------------------------------------------
# Permissions: as root everything is readable, so the checks run in a forked child that has
# dropped to "nobody" (modules are already imported, the data lives in a world-readable temp dir).

NOBODY = 65534


def _in_child_as_nobody(fn):
    """Run ``fn()`` in a forked child without root privileges.

    Returns ``("ok", value)`` or ``("error", text)``.
    """
    if os.geteuid() != 0:
        try:
            return ("ok", fn())
        except Exception as exc:  # reported to the test
            return ("error", f"{type(exc).__name__}: {exc}")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_end)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                payload = ("ok", fn())
            except Exception as exc:  # reported to the parent
                payload = ("error", f"{type(exc).__name__}: {exc}")
            with os.fdopen(write_end, "wb") as out:
                out.write(pickle.dumps(payload))
        except BaseException:  # never return into pytest from the child
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        data = handle.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        pytest.skip(f"could not run a child without privileges (status {status})")
    return pickle.loads(data)


@pytest.fixture(scope="module")
def warmed_up(tmp_path_factory):
    """Import, as root, everything a read and `tbreport ls` load lazily: the unprivileged child
    cannot open the interpreter's site-packages under /root."""
    logdir = tmp_path_factory.mktemp("warm")
    write_run(logdir / "run", scalar_series("loss", range(2)))
    code, output, _ = _cli_exit(["ls", str(logdir)])
    assert code == 0, output
    assert _cli_exit(["ls", str(logdir / "missing")])[0] == 2
    assert _cli_exit(["ls", "--help"])[0] == 0  # click's text wrapping is imported lazily


@pytest.fixture
def shared_dir(warmed_up):
    """A temp dir an unprivileged child can traverse (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tbreport-perm-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def _world_readable(root: Path) -> None:
    root.chmod(0o755)
    for sub in root.rglob("*"):
        sub.chmod(0o755 if sub.is_dir() else 0o644)


def _summary(logdir: Path):
    result = tbreport.read(logdir, jobs=1)
    return (
        result.runs["run"].tolist(),
        len(result.scalars),
        [(w.kind, w.path, w.message) for w in result.warnings],
    )


def _cli_exit(args):
    from click.testing import CliRunner

    from tbreport.cli import cli

    outcome = CliRunner().invoke(cli, args)
    return outcome.exit_code, outcome.output, repr(outcome.exception)


def test_unreadable_run_directory_is_skipped_with_a_warning(shared_dir):
    logdir = shared_dir / "logs"
    write_run(logdir / "good", scalar_series("loss", range(4)))
    write_run(logdir / "secret", scalar_series("loss", range(4)))
    _world_readable(shared_dir)
    (logdir / "secret").chmod(0o000)
    status, value = _in_child_as_nobody(lambda: _summary(logdir))
    assert status == "ok", value
    runs, points, warnings = value
    assert runs == ["good"]
    assert points == 4
    assert [(kind, path) for kind, path, _ in warnings] == [("unreadable", str(logdir / "secret"))]
    assert "Permission denied" in warnings[0][2]


def test_unreadable_event_file_is_skipped_with_a_warning(shared_dir):
    logdir = shared_dir / "logs"
    write_run(logdir / "run", scalar_series("loss", range(4)), index=0)
    locked = write_run(logdir / "run", scalar_series("loss", range(4, 8)), index=1)
    _world_readable(shared_dir)
    locked.chmod(0o000)
    status, value = _in_child_as_nobody(lambda: _summary(logdir))
    assert status == "ok", value
    _runs, points, warnings = value
    assert points == 4
    assert [(kind, path) for kind, path, _ in warnings] == [("unreadable", str(locked))]


def test_unreadable_logdir_is_a_clear_error_and_exit_2(shared_dir):
    logdir = shared_dir / "logs"
    write_run(logdir / "run", scalar_series("loss", range(4)))
    _world_readable(shared_dir)
    logdir.chmod(0o000)
    status, value = _in_child_as_nobody(lambda: _summary(logdir))
    assert status == "error"
    assert "InputError" in value
    assert "permission denied" in value
    status, (code, output, exception) = _in_child_as_nobody(lambda: _cli_exit(["ls", str(logdir)]))
    assert code == 2, (output, exception)
    assert "Traceback" not in output
    assert "permission denied" in output or "is not readable" in output  # ours, or click's check


def test_only_unreadable_files_exit_2_partial_exit_0(shared_dir):
    logdir = shared_dir / "logs"
    write_run(logdir / "run", scalar_series("loss", range(4)))
    _world_readable(shared_dir)
    only = next((logdir / "run").iterdir())
    only.chmod(0o000)
    _status, (code, output, _) = _in_child_as_nobody(lambda: _cli_exit(["ls", str(logdir)]))
    assert code == 2
    assert "nothing readable" in output
    assert "Traceback" not in output
    write_run(logdir / "other", scalar_series("acc", range(3)))
    _world_readable(logdir / "other")
    _status, (code, output, _) = _in_child_as_nobody(lambda: _cli_exit(["ls", str(logdir)]))
    assert code == 0, output
    assert "cannot read" in output
    assert "acc" in output


def test_wall_times_are_kept_as_written(tmp_path):
    # Out-of-order wall times (clock changes, several hosts) are data, not damage.
    walls = [BASE_WALL + 5, BASE_WALL + 1, BASE_WALL + 3]
    events = [testing.scalar_event("loss", 1.0, step=s, wall_time=w) for s, w in enumerate(walls)]
    write_run(tmp_path / "run", events)
    result = tbreport.read(tmp_path)
    assert result.scalars["wall_time"].tolist() == walls
    assert result.warnings == []
