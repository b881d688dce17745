"""Hostile input, round two: data lost or invented, reads lost to one bad entry, hangs, output.

One test (or a few) per point; each reproduces the problem it guards against.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reader_helpers import BASE_WALL, record_spans, scalar_series
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from tbreport import testing
from tbreport.reading import parsing
from tbreport.reading.parsing import parse_event_bytes
from tbreport.reading.records import FOOTER_BYTES, HEADER_BYTES, frame_records, masked_crc32c


def _file(events) -> bytes:
    head = [testing.file_version_event(wall_time=BASE_WALL - 1)]
    return b"".join(testing.frame(e.SerializeToString()) for e in head + list(events))


# ---------------------------------------------------------------------------------------------
# 1. Bytes deleted inside a large record


def test_chunk_deleted_inside_a_large_record_keeps_every_intact_record_after_it():
    rng = np.random.default_rng(1)
    before = scalar_series("loss", range(0, 1000))
    big = testing.histogram_event("w", rng.normal(size=200_000) * 1e3, step=0, wall_time=BASE_WALL)
    big.summary.value[0].histo.bucket_limit.extend(np.linspace(0, 1, 20_000).tolist())
    after = scalar_series("loss", range(1000, 2100))
    data = _file([*before, big, *after])
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


# ---------------------------------------------------------------------------------------------
# 3. The fast path agrees with the protobuf semantics on every dtype / value field combination


def _tensor_records(tensor, count: int = 6) -> bytes:
    events = []
    for step in range(count):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="t", tensor=tensor)])
        events.append(event_pb2.Event(wall_time=BASE_WALL + step, step=step, summary=summary))
    return b"".join(testing.frame(e.SerializeToString()) for e in events)


def _scalars(data) -> list[tuple]:
    return list(
        zip(
            data.scalar_seq.tolist(),
            data.scalar_step.tolist(),
            data.scalar_value.view(np.int64).tolist(),  # bit patterns: NaN payloads too
            data.scalar_is_tensor.tolist(),
            strict=True,
        )
    )


def _slow_only(buf: bytes, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(parsing, "_template", lambda record: None)
        return parsing.parse_event_bytes(buf, path="slow")


def test_double_tensor_with_its_value_in_float_val_is_not_invented(monkeypatch):
    tensor = tensor_pb2.TensorProto(dtype=2, float_val=[2.0, 2.0])  # 8 bytes, wrong field
    buf = _tensor_records(tensor, count=20)
    fast = parse_event_bytes(buf, path="fast")
    assert _scalars(fast) == _scalars(_slow_only(buf, monkeypatch)) == []


_DTYPES = [0, 1, 2, 3, 9, 19, 7, 4]


@st.composite
def rank0_tensors(draw):
    tensor = tensor_pb2.TensorProto(dtype=draw(st.sampled_from(_DTYPES)))
    fields = draw(
        st.sets(st.sampled_from(["content", "float", "double", "int", "half"]), max_size=2)
    )
    count = st.integers(1, 2)
    if "content" in fields:
        tensor.tensor_content = draw(st.binary(min_size=1, max_size=16))
    if "float" in fields:
        tensor.float_val.extend(draw(st.lists(st.floats(width=32), min_size=1, max_size=2)))
    if "double" in fields:
        tensor.double_val.extend(draw(st.lists(st.floats(), min_size=1, max_size=2)))
    if "int" in fields:
        tensor.int_val.extend([draw(st.integers(-(2**31), 2**31 - 1))] * draw(count))
    if "half" in fields:
        tensor.half_val.extend([draw(st.integers(0, 0xFFFF))] * draw(count))
    if draw(st.integers(0, 4)) == 0:
        tensor.tensor_shape.dim.add(size=draw(st.integers(0, 2)))
    return tensor


@settings(max_examples=300, deadline=None, database=None)
@given(tensor=rank0_tensors())
@example(tensor=tensor_pb2.TensorProto(dtype=2, float_val=[2.0, 2.0]))
@example(tensor=tensor_pb2.TensorProto(dtype=1, double_val=[2.0]))
@example(tensor=tensor_pb2.TensorProto(dtype=1, int_val=[7]))
def test_fast_path_agrees_with_protobuf_on_every_dtype_and_field(tensor):
    buf = _tensor_records(tensor)
    fast = parse_event_bytes(buf, path="fast")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "_template", lambda record: None)
        slow = parsing.parse_event_bytes(buf, path="slow")
    assert _scalars(fast) == _scalars(slow)


# ---------------------------------------------------------------------------------------------
# 4. A truncated .tar.gz keeps the readable start of the member it cuts


def _tar_bytes(members: dict[str, bytes], *, mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(BASE_WALL)
            handle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_truncated_tar_gz_keeps_the_start_of_the_cut_member(tmp_path):
    from tbreport.reading.sources import SourceReader, list_source, resolve_source

    data = _file(scalar_series("loss", range(20_000)))
    assert len(data) < 1 << 20  # inside the first read chunk
    packed = _tar_bytes({"run/events.out.tfevents.1.h": data}, mode="w:gz")
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(packed[: len(packed) // 2])
    spec = resolve_source(str(archive))
    listing = list_source(spec)
    (member,) = listing.runs[0].files
    got, warnings = SourceReader(spec).read(member)
    assert [w.kind for w in warnings] == ["archive-truncated"]
    assert len(got) > len(data) // 3
    assert data.startswith(got)
    parsed = parse_event_bytes(got, path="cut")
    assert len(parsed.scalar_step) > 5_000


# ---------------------------------------------------------------------------------------------
# 6. Backslash member names (Windows zips) are split into runs


def test_backslash_zip_member_names_are_split_into_runs(tmp_path, monkeypatch):
    from tbreport.audit import audit

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = tmp_path / "windows.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for run in ("run1", "run2"):
            handle.writestr(
                f"C:\\Users\\me\\logs\\{run}\\events.out.tfevents.1.h",
                _file(scalar_series("loss", range(5))),
            )
        handle.writestr("logs\\run3\\events.out.tfevents.1.h", _file(scalar_series("x", [1])))
    result = audit([archive], jobs=1, use_cache=False)
    runs = sorted(summary.run for _, summary in result.runs)
    assert runs == ["Users/me/logs/run1", "Users/me/logs/run2", "logs/run3"]


# ---------------------------------------------------------------------------------------------
# Command-line helpers: the worktree's code in a fresh process, with a timeout (hangs are bugs)


def _cli(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": kwargs.pop("cache", "/tmp")}
    return subprocess.run(
        [sys.executable, "-m", "tbreport", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        **kwargs,
    )


def _logdir(tmp_path: Path) -> Path:
    logdir = tmp_path / "logs"
    run = logdir / "run1"
    run.mkdir(parents=True)
    (run / "events.out.tfevents.1.h").write_bytes(_file(scalar_series("loss", range(20))))
    return logdir


# ---------------------------------------------------------------------------------------------
# 12. A FIFO named hparams.yaml does not hang export or audit


def test_fifo_named_hparams_yaml_is_skipped_not_read(tmp_path):
    logdir = _logdir(tmp_path)
    os.mkfifo(logdir / "run1" / "hparams.yaml")
    exported = _cli("export", str(logdir), "-o", str(tmp_path / "out"), timeout=60)
    assert exported.returncode == 0, exported.stderr
    assert "not a regular file" in exported.stderr
    audited = _cli(
        "audit", str(logdir), "-o", str(tmp_path / "audit"), "--no-cache", "-j", "1", timeout=60
    )
    assert audited.returncode in (0, 1), audited.stderr


# ---------------------------------------------------------------------------------------------
# 13 and 17. -o naming a pipe or a device: refused at once, never opened, never replaced


def test_output_naming_a_fifo_is_refused_without_hanging(tmp_path):
    logdir = _logdir(tmp_path)
    fifo = tmp_path / "out.html"
    os.mkfifo(fifo)
    for force in ([], ["--force"]):
        result = _cli("report", str(logdir), "-o", str(fifo), *force, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "pipe" in result.stderr
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # not replaced by a regular file


def test_output_through_a_pipe_is_refused_without_hanging(tmp_path):
    logdir = _logdir(tmp_path)
    # /dev/stdout into a pipe, as in `tbreport report ... -o /dev/stdout | cat`.
    result = _cli("report", str(logdir), "-o", "/dev/stdout", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "pipe" in result.stderr


def test_check_output_refuses_special_files_even_with_force(tmp_path):
    from tbreport.errors import InputError
    from tbreport.outputs import check_output_dir, check_output_file

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for check in (
        check_output_file,
        lambda p, force: check_output_dir(p, known_names=(), force=force),
    ):
        with pytest.raises(InputError, match="pipe"):
            check(fifo, force=True)


# ---------------------------------------------------------------------------------------------
# 18. SIGTERM during export leaves no temporary file; stale temporary files are ignored


def test_sigterm_during_export_removes_the_temporary_file(tmp_path):
    logdir = _logdir(tmp_path)
    out = tmp_path / "out"
    writing_now = tmp_path / "writing-now"
    code = (
        "import os, sys, time\n"
        "def slow(fd):\n"
        f"    open({str(writing_now)!r}, 'w').close()\n"
        "    time.sleep(60)\n"
        "os.fsync = slow\n"
        "from tbreport.cli import main\n"
        f"sys.argv = ['tbreport', 'export', {str(logdir)!r}, '-o', {str(out)!r}]\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not writing_now.exists():
            assert proc.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_stale_temporary_files_of_ours_do_not_block_the_next_export(tmp_path):
    logdir = _logdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".scalars.csv.k2j4h5g6.tmp").write_text("run,tag\nrun1,lo")
    result = _cli("export", str(logdir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "scalars.csv").exists()


# ---------------------------------------------------------------------------------------------
# 15 and 16. No CSV cell, and no physical line of a CSV, starts with a formula

FORMULA_START = ("=", "+", "-", "@")


def _physical_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def test_bare_cr_in_a_cell_is_quoted_and_every_line_neutralised(tmp_path):
    from tbreport.report.csvsafe import write_csv

    hostile = "loss\r=cmd|' /C calc'!A0"
    frame = pd.DataFrame({"tag": [hostile, "a\n@SUM(1)", "ok"], "value": [1.0, 2.0, 3.0]})
    path = write_csv(frame, tmp_path / "x.csv")
    raw = path.read_bytes().decode("utf-8")
    assert '"loss\r' in raw  # the field with a bare CR is quoted
    for line in _physical_lines(raw):
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(FORMULA_START), line
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["tag"].tolist() == ["loss\r'=cmd|' /C calc'!A0", "a\n'@SUM(1)", "ok"]
    assert back["value"].tolist() == ["1.0", "2.0", "3.0"]


def test_check_csv_neutralises_run_names_and_tags(tmp_path):
    run = tmp_path / "logs" / "=run"
    run.mkdir(parents=True)
    nan_late = scalar_series("=loss", range(50), value=lambda s: np.nan if s > 30 else 1 / (s + 1))
    (run / "events.out.tfevents.1.h").write_bytes(_file(nan_late))
    result = _cli("check", str(tmp_path / "logs"), "--format", "csv")
    assert result.returncode == 1, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) > 1
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START), cell


# ---------------------------------------------------------------------------------------------
# 19. Names never reach the terminal raw

OSC52 = "\x1b]52;c;ZXZpbA==\x07"


def test_control_characters_in_names_are_escaped_in_ls_and_check(tmp_path):
    run = tmp_path / "logs" / "run\x1b[2J"
    run.mkdir(parents=True)
    tag = f"loss{OSC52}\nFAKE 0 findings"
    values = scalar_series(tag, range(50), value=lambda s: np.nan if s > 30 else 1 / (s + 1))
    (run / "events.out.tfevents.1.h").write_bytes(_file(values))
    for args in (["ls"], ["check", "--no-color"], ["check", "-v", "--no-color"]):
        result = _cli(*args, str(tmp_path / "logs"))
        assert result.returncode in (0, 1), result.stderr
        for text in (result.stdout, result.stderr):
            assert "\x1b" not in text, args
            assert "\x07" not in text, args
            assert not any(line.startswith("FAKE") for line in text.splitlines()), args
        assert "\\x1b]52" in result.stdout


# ---------------------------------------------------------------------------------------------
# 8. Names that are not UTF-8 are kept (escaped for display); no command fails on them


def test_latin1_names_do_not_break_any_command(tmp_path):
    root = os.fsencode(tmp_path) + b"/logs-\xe0"
    os.makedirs(root + b"/caf\xe9")
    os.makedirs(root + b"/ok")
    data = _file(scalar_series("loss", range(10)))
    for name in (b"/caf\xe9/events.out.tfevents.1.h", b"/ok/events.out.tfevents.1.h\xff"):
        with open(root + name, "wb") as handle:
            handle.write(data)
    with tarfile.open(tmp_path / "runs.tar", "w") as archive:
        info = tarfile.TarInfo(os.fsdecode(b"r\xe9sultat/events.out.tfevents.1.h"))
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    logdir = os.fsdecode(root)
    listing = _cli("ls", logdir)
    assert listing.returncode == 0, listing.stderr
    assert "caf\\xe9" in listing.stdout
    assert "ok" in listing.stdout
    for args in (
        ["export", logdir, "-o", str(tmp_path / "export")],
        ["check", logdir],
        ["report", logdir, "-o", str(tmp_path / "report.html")],
        ["report", logdir, "--format", "csv", "-o", str(tmp_path / "bundle")],
        ["audit", logdir, str(tmp_path / "runs.tar"), "-o", str(tmp_path / "audit"), "--no-cache"],
    ):
        result = _cli(*args)
        assert result.returncode in (0, 1), (args, result.stderr)
    scalars = pd.read_csv(tmp_path / "export" / "scalars.csv")
    assert sorted(set(scalars["run"])) == ["caf\\xe9", "ok"]
    assert "r\\xe9sultat" in (tmp_path / "audit" / "audit.csv").read_text()


# ---------------------------------------------------------------------------------------------
# 11. The accumulator engine refuses tensors that claim far more values than they hold


def test_accumulator_engine_refuses_absurd_tensors(tmp_path):
    tensor = tensor_pb2.TensorProto(dtype=1, float_val=[1.0])
    tensor.tensor_shape.dim.add(size=10**6)
    tensor.tensor_shape.dim.add(size=10**6)
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    value = summary_pb2.Summary.Value(tag="bomb", tensor=tensor, metadata=metadata)
    bomb = event_pb2.Event(step=1, wall_time=BASE_WALL, summary=summary_pb2.Summary(value=[value]))
    run = tmp_path / "logs" / "run"
    run.mkdir(parents=True)
    (run / "events.out.tfevents.1.h").write_bytes(_file([bomb, *scalar_series("loss", range(5))]))
    # In a child with 3 GB of address space: the old code tried to build a 4 TB array.
    code = (
        "import resource, sys, tbreport\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        f"result = tbreport.read({str(tmp_path / 'logs')!r}, engine='accumulator')\n"
        "print(len(result.scalars), sorted(w.kind for w in result.warnings))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "5"
    assert "undecodable-record" in proc.stdout


# ---------------------------------------------------------------------------------------------
# 9. One oversized file is skipped with a warning, not a MemoryError


def test_huge_sparse_file_is_skipped_with_a_warning(tmp_path):
    logdir = _logdir(tmp_path)
    huge = logdir / "run1" / "events.out.tfevents.2.h"
    with open(huge, "wb") as handle:
        handle.truncate(12 << 30)  # sparse: 12 GiB that take no disk space
    env = {"TBREPORT_MAX_FILE_BYTES": str(1 << 30)}
    # In a child with 3 GB of address space, as on a small machine.
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from tbreport.cli import main\n"
        "main()\n"
    )
    audit = [
        "audit",
        str(logdir),
        "-o",
        str(tmp_path / "a"),
        "--no-cache",
        "--max-member-bytes",
        "1GiB",
    ]
    for args in (["ls", str(logdir)], audit):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        shown = proc.stderr if args[0] == "ls" else (tmp_path / "a" / "audit.html").read_text()
        assert "too-large" in shown
    result = _cli("ls", str(logdir))
    assert "20 points" in result.stdout


# ---------------------------------------------------------------------------------------------
# 10. A worker killed by the OS costs a retry, not the read or the audit

KILL_ONCE = "kill-once-marker"


def _killing_parse(ref, tag_filter):
    """Parse, but die like an out-of-memory kill on files named *doomed*, or once on *flaky*."""
    from tbreport.reading.files import parse_file

    _die_for(ref)
    return parse_file(ref, tag_filter)


def _die_for(ref) -> None:
    path = Path(ref.path)
    marker = path.parent / KILL_ONCE
    if "doomed" in path.name or ("flaky" in path.name and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)


def _runs_with(tmp_path: Path, names: list[str]):
    from tbreport.reading.discovery import discover_runs

    logdir = tmp_path / "logs"
    for i, name in enumerate(names):
        run = logdir / f"run{i}"
        run.mkdir(parents=True)
        (run / f"events.out.tfevents.{name}").write_bytes(_file(scalar_series("loss", range(9))))
    return discover_runs(logdir)[0]


def test_worker_killed_once_is_retried(tmp_path):
    from tbreport.reading.reader import read_runs

    runs = _runs_with(tmp_path, ["a", "flaky", "b", "c"])
    data = read_runs(runs, jobs=2, parse=_killing_parse)
    assert [len(rd.scalar_step) for rd in data] == [9, 9, 9, 9]
    assert not [w for rd in data for w in rd.warnings]


def test_file_whose_worker_always_dies_is_reported_unreadable(tmp_path):
    from tbreport.reading.reader import read_runs

    runs = _runs_with(tmp_path, ["a", "doomed", "b", "c"])
    data = read_runs(runs, jobs=2, parse=_killing_parse)
    assert [len(rd.scalar_step) for rd in data] == [9, 0, 9, 9]
    assert [w.kind for w in data[1].warnings] == ["unreadable"]


def test_worker_killed_while_this_process_reads_too(tmp_path, monkeypatch):
    from tbreport.reading import pool
    from tbreport.reading.discovery import discover_runs
    from tbreport.reading.reader import read_runs

    logdir = tmp_path / "logs"
    for i in range(12):
        run = logdir / f"run{i:02d}"
        run.mkdir(parents=True)
        # The flaky run is the largest, so a worker takes it first (this process never reads
        # a file that kills it: here it would kill the test).
        steps = 400 if i == 0 else 9
        name = "flaky" if i == 0 else f"r{i}"
        (run / f"events.out.tfevents.{name}").write_bytes(
            _file(scalar_series("loss", range(steps)))
        )
    runs = discover_runs(logdir)[0]
    monkeypatch.setattr(pool, "SMALLEST_BATCH_BYTES", 1)  # many batches to share
    data = read_runs(runs, jobs=2, parse=_killing_parse)
    assert [len(rd.scalar_step) for rd in data] == [400] + [9] * 11
    assert not [w for rd in data for w in rd.warnings]
    assert (logdir / "run00" / KILL_ONCE).exists()  # its worker did die once


def _killing(parse_files):
    """`files.parse_files`, dying like `_killing_parse` when a batch holds such a file."""

    def parse(refs, tag_filter=None):
        for ref in refs:
            _die_for(ref)
        return parse_files(refs, tag_filter)

    return parse


@pytest.mark.parametrize("doomed", [False, True])
def test_worker_killed_while_the_logdir_is_walked(tmp_path, monkeypatch, doomed):
    import tbreport
    from tbreport.reading import files, pool

    names = [f"r{i}" for i in range(12)]
    # In the first batch a worker is given: this process never reads a file that kills it
    # (here it would kill the test).
    names[0] = "doomed" if doomed else "flaky"
    _runs_with(tmp_path, names)
    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1)  # workers start during the walk
    monkeypatch.setattr(files, "parse_files", _killing(files.parse_files))
    result = tbreport.read(tmp_path / "logs", jobs=2)
    counts = result.scalars.groupby("run", observed=False).size()
    assert counts.drop("run0").tolist() == [9] * 11
    if doomed:  # read once per process, then reported
        assert counts["run0"] == 0
        assert [w.kind for w in result.warnings] == ["unreadable"]
        assert "doomed" in result.warnings[0].path
    else:  # retried once in fresh workers
        assert counts["run0"] == 9
        assert (tmp_path / "logs" / "run0" / KILL_ONCE).exists()  # its worker did die once
        assert not result.warnings


def test_audit_survives_a_worker_killed_by_the_os(tmp_path, monkeypatch):
    from tbreport.audit import audit, executor

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    logdir = tmp_path / "logs"
    for name in ("good1", "doomed", "good2", "good3", "good4"):
        (logdir / name).mkdir(parents=True)
        (logdir / name / "events.out.tfevents.1.h").write_bytes(_file(scalar_series("x", [1])))
    real, real_units = executor.audit_unit, executor.audit_units

    def kill_if_doomed(runs):
        if any(run.name == "doomed" for run in runs):
            os.kill(os.getpid(), signal.SIGKILL)

    def killing(spec, runs, **kwargs):
        kill_if_doomed(runs)
        return real(spec, runs, **kwargs)

    def killing_units(spec, units, **kwargs):
        for _, runs in units:
            kill_if_doomed(runs)
        return real_units(spec, units, **kwargs)

    # Forked workers inherit the patches (units of a batch are audited together or alone).
    monkeypatch.setattr(executor, "audit_unit", killing)
    monkeypatch.setattr(executor, "audit_units", killing_units)
    result = audit([logdir], jobs=2, use_cache=False)
    status = {s.run: s.values.get("status") for _, s in result.runs}
    assert status["doomed"] == "unaudited"
    assert all(status[f"good{i}"] != "unaudited" for i in range(1, 5)), status


# ---------------------------------------------------------------------------------------------
# 20. The machine's problems and bad config files are clear errors (exit 2), not internal errors


@pytest.mark.parametrize(
    "content",
    [b'[tool.tbreport]\nselect = ["L\xe9"]\n', ("a = " + "[" * 5000 + "]" * 5000).encode()],
    ids=["latin1", "nested"],
)
def test_bad_config_file_is_a_clear_error(tmp_path, content):
    logdir = _logdir(tmp_path)
    config = tmp_path / "tbreport.toml"
    config.write_bytes(content)
    result = _cli("check", str(logdir), "--config", str(config))
    assert result.returncode == 2
    assert "internal error" not in result.stderr
    assert str(config) in result.stderr


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ("os.fsync = fail(errno.ENOSPC)", "No space left on device"),
        ("tempfile.mkstemp = fail(errno.EROFS)", "Read-only file system"),
    ],
    ids=["disk-full", "read-only"],
)
def test_disk_full_and_read_only_are_clear_errors(tmp_path, patch, reason):
    logdir = _logdir(tmp_path)
    code = (
        "import errno, os, sys, tempfile\n"
        "def fail(number):\n"
        "    def raiser(*args, **kwargs):\n"
        "        raise OSError(number, os.strerror(number))\n"
        "    return raiser\n"
        f"{patch}\n"
        "from tbreport.cli import main\n"
        "main()\n"
    )
    for args in (["export", str(logdir), "-o", str(tmp_path / "out")], ["report", str(logdir)]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.returncode == 2, proc.stderr
        assert "internal error" not in proc.stderr
        assert reason in proc.stderr


def test_detector_parameter_minimum_is_checked():
    import dataclasses

    from tbreport.diagnosis.detectors.base import Detector
    from tbreport.errors import ConfigError

    class Windowed(Detector):
        """A detector with a window."""

        code = "T999"
        name = "windowed"

        @dataclasses.dataclass(frozen=True)
        class Params:
            window: int = dataclasses.field(default=5, metadata={"minimum": 1})

    assert Windowed.make_params({"window": 3}).window == 3
    for bad in (0, -4):
        with pytest.raises(ConfigError, match="at least 1"):
            Windowed.make_params({"window": bad})


# ---------------------------------------------------------------------------------------------
# 14. Tag patterns run in bounded time: the default roles, and the user's --tags / --role


@pytest.mark.parametrize("n", [30_000, 100_000])
def test_default_role_patterns_are_linear_on_slash_heavy_tags(n):
    from tbreport.diagnosis.roles import RolePatterns

    patterns = RolePatterns.build()
    started = time.perf_counter()
    resolved = patterns.resolve(scalar_tags=["/" * n], histogram_tags=["/" * n])
    assert time.perf_counter() - started < 1.0
    assert resolved == {}


def test_user_patterns_cannot_backtrack_catastrophically(tmp_path):
    from tbreport.diagnosis.roles import RolePatterns
    from tbreport.safe_regex import compile_pattern

    evil = "(x+x+)+y"
    started = time.perf_counter()
    assert compile_pattern(evil).search("x" * 5000) is None
    patterns = RolePatterns.build({"train_loss": evil})
    assert patterns.resolve(scalar_tags=["x" * 5000], histogram_tags=[]) == {}
    assert time.perf_counter() - started < 1.0
    # Through the command line, with a tag that makes Python's re take minutes.
    run = tmp_path / "logs" / "run"
    run.mkdir(parents=True)
    (run / "events.out.tfevents.1.h").write_bytes(_file(scalar_series("x" * 40, range(3))))
    result = _cli("ls", str(tmp_path / "logs"), "--tags", evil, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "x" * 40 not in result.stdout


def test_patterns_re2_cannot_run_still_work_with_a_time_limit():
    from tbreport.safe_regex import compile_pattern

    backreference = compile_pattern(r"(loss)/\1", ignore_case=True)
    assert backreference.fullmatch("LOSS/loss")
    assert compile_pattern(r"(?<=train/)loss").search("train/loss")
    with pytest.raises(re.error):
        compile_pattern("(unclosed")


# ---------------------------------------------------------------------------------------------
# 7. The audit cache is keyed on the content of tar members


def test_audit_cache_notices_a_same_size_damaged_tar(tmp_path, monkeypatch):
    from tbreport.audit import audit

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = _file(scalar_series("loss", range(200)))
    packed = _tar_bytes({"run/events.out.tfevents.1.h": data})
    archive = tmp_path / "runs.tar"
    archive.write_bytes(packed)
    first = audit([archive], jobs=1)
    assert [s.problems for _, s in first.runs] == [[]]
    # Re-downloaded with damage in the middle of the member's data: same size, same headers.
    damaged = bytearray(packed)
    middle = packed.index(data) + len(data) // 2
    damaged[middle : middle + 64] = bytes(64)
    archive.write_bytes(bytes(damaged))
    os.utime(archive, ns=(10**18, 10**18))
    second = audit([archive], jobs=1)
    assert second.stats.cached_units == 0
    assert [p["kind"] for _, s in second.runs for p in s.problems]


# ---------------------------------------------------------------------------------------------
# 5. A flipped bit in a tar header is reported, and the members after it are still listed


def test_bit_flip_in_a_tar_header_resyncs_to_the_next_member(tmp_path):
    from tbreport.reading.sources import list_source, resolve_source

    data = _file(scalar_series("loss", range(30)))
    names = [f"run{i}/events.out.tfevents.1.h" for i in range(4)]
    packed = bytearray(_tar_bytes(dict.fromkeys(names, data)))
    second = packed.index(names[1].encode())
    packed[second + 3] ^= 0x04  # the header checksum no longer matches
    archive = tmp_path / "flipped.tar"
    archive.write_bytes(bytes(packed))
    listing = list_source(resolve_source(str(archive)))
    assert [run.name for run in listing.runs] == ["run0", "run2", "run3"]
    assert [w.kind for w in listing.warnings] == ["archive-damaged"]
    assert listing.warnings[0].offset == second


def test_tag_meanings_take_bounded_time_on_hostile_tags():
    from tbreport.diagnosis.semantics import describe_run

    started = time.perf_counter()
    tags = ["a " * 50_000 + "lr", "train_" * 30_000 + "loss", "val/" * 40_000]
    semantics = describe_run(tags, counts={t: 5 for t in tags})
    assert time.perf_counter() - started < 1.0
    assert all(m.quantity == "unknown" for m in semantics.meanings.values())
