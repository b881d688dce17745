"""Hostile archives: unsafe names, links and devices, bombs, duplicates, damage.

Nothing is ever extracted, so the checks are: the audit still answers for the good runs, every
problem is reported, caps hold, and nothing appears on disk outside the output directory.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tbreport.audit import ArchiveTooLarge, Limits, audit, write_audit
from tbreport.cli import cli
from tbreport.errors import InputError
from tbreport.reading.sources import normalise_member_name
from tbreport.testing import file_version_event, frame, scalar_event

WALL = 1_700_000_000.0


def event_bytes(*, steps: int = 20, scale: float = 1.0) -> bytes:
    events = [file_version_event(wall_time=WALL)]
    for step in range(steps):
        events.append(
            scalar_event("train/loss", scale / (step + 1), step=step, wall_time=WALL + step)
        )
        events.append(
            scalar_event("val/loss", scale * 1.1 / (step + 1), step=step, wall_time=WALL + step)
        )
    return b"".join(frame(e.SerializeToString()) for e in events)


def add_tar_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if attrs.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
    info.mtime = int(WALL)
    for key, value in attrs.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if info.size else None)


def add_zip_member(
    archive: zipfile.ZipFile, name: str, data: bytes, *, mode: int | None = None
) -> None:
    info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.create_system = 3
        info.external_attr = mode << 16
    archive.writestr(info, data)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _kinds(result) -> list[str]:
    kinds = [w.kind for w in result.warnings]
    kinds += [p["kind"] for _, s in result.runs for p in s.problems]
    return kinds


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("raw", "name", "unsafe"),
    [
        ("runs/a/events.out.tfevents.1", "runs/a/events.out.tfevents.1", False),
        ("./runs/a/events", "runs/a/events", False),
        ("/etc/cron.d/events", "etc/cron.d/events", True),
        ("../../outside/events", "outside/events", True),
        ("runs/../../x/events", "runs/x/events", True),
        ("//double//slash/events", "double/slash/events", True),
        ("..", None, True),
    ],
)
def test_normalise_member_name(raw, name, unsafe):
    normalised, problem = normalise_member_name(raw)
    assert normalised == name
    assert (problem is not None) == unsafe
    if normalised:
        assert ".." not in normalised.split("/")
        assert not normalised.startswith("/")


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_climbing_and_absolute_names_are_only_run_names(kind, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / f"evil.{kind}"
    names = {
        "../../escaped/events.out.tfevents.1.h": "escaped",
        "/abs/run/events.out.tfevents.2.h": "abs/run",
        "good/events.out.tfevents.3.h": "good",
    }
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as handle:
            for name in names:
                add_zip_member(handle, name, event_bytes())
    else:
        with tarfile.open(archive, "w:gz") as handle:
            for name in names:
                add_tar_member(handle, name, event_bytes())
    before = _tree(tmp_path)
    result = audit([archive], jobs=1, cache_dir=work / "cache")
    write_audit(result, work / "out")
    assert sorted(s.run for _, s in result.runs) == sorted(names.values())
    assert _kinds(result).count("unsafe-member-name") == 2
    created = _tree(tmp_path) - before
    assert all(p.startswith(("work/out", "work/cache")) for p in created), created
    assert not (tmp_path / "escaped").exists()
    assert not Path("/abs/run").exists()


# ---------------------------------------------------------------------------------------------
# Links and devices


def test_tar_links_and_devices_are_skipped_with_warnings(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        add_tar_member(handle, "good/events.out.tfevents.1.h", event_bytes())
        add_tar_member(
            handle, "sym/events.out.tfevents.2.h", type=tarfile.SYMTYPE, linkname="/etc/passwd"
        )
        add_tar_member(
            handle,
            "hard/events.out.tfevents.3.h",
            type=tarfile.LNKTYPE,
            linkname="good/events.out.tfevents.1.h",
        )
        add_tar_member(
            handle, "dev/events.out.tfevents.4.h", type=tarfile.CHRTYPE, devmajor=1, devminor=3
        )
        add_tar_member(handle, "fifo/events.out.tfevents.5.h", type=tarfile.FIFOTYPE)
    result = audit([archive], jobs=1, use_cache=False)
    assert [s.run for _, s in result.runs] == ["good"]
    skipped = [w for w in result.warnings if w.kind == "link-or-device-member"]
    assert sorted(w.run for w in skipped) == ["dev", "fifo", "hard", "sym"]


def test_zip_symlink_members_are_skipped(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        add_zip_member(
            handle, "good/events.out.tfevents.1.h", event_bytes(), mode=stat.S_IFREG | 0o644
        )
        add_zip_member(
            handle, "sym/events.out.tfevents.2.h", b"/etc/passwd", mode=stat.S_IFLNK | 0o777
        )
        add_zip_member(handle, "plain/events.out.tfevents.3.h", event_bytes(), mode=0o644)
    result = audit([archive], jobs=1, use_cache=False)
    assert sorted(s.run for _, s in result.runs) == ["good", "plain"]
    assert [w.run for w in result.warnings if w.kind == "link-or-device-member"] == ["sym"]


# ---------------------------------------------------------------------------------------------
# Bombs


def _zeros_tar_gz(path: Path, members: dict[str, int]) -> Path:
    """A tar.gz whose members are runs of zeros: tiny on disk, large once expanded."""
    with (
        gzip.open(path, "wb", compresslevel=1) as raw,
        tarfile.open(fileobj=raw, mode="w") as handle,
    ):
        add_tar_member(handle, "good/events.out.tfevents.1.h", event_bytes())
        for name, size in members.items():
            info = tarfile.TarInfo(name)
            info.size = size
            handle.addfile(info, _Zeros(size))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_tar_member_over_the_cap_is_skipped(tmp_path):
    archive = _zeros_tar_gz(tmp_path / "bomb.tgz", {"big/events.out.tfevents.2.h": 8 << 20})
    assert archive.stat().st_size < 200_000
    result = audit([archive], jobs=1, use_cache=False, limits=Limits(max_member_bytes=1 << 20))
    assert [s.run for _, s in result.runs] == ["good"]
    [warning] = [w for w in result.warnings if w.kind == "member-too-large"]
    assert warning.run == "big"
    # Raising the cap reads it (and finds it is not an event file).
    raised = audit([archive], jobs=1, use_cache=False, limits=Limits(max_member_bytes=16 << 20))
    assert sorted(s.run for _, s in raised.runs) == ["big", "good"]


def test_tar_bomb_stops_at_the_total_cap(tmp_path):
    # The bulk is not even an event file: expanding the stream is what the cap bounds.
    archive = _zeros_tar_gz(tmp_path / "bomb.tgz", {"junk/filler.bin": 40 << 20})
    with pytest.raises(ArchiveTooLarge, match="max-total-bytes"):
        audit([archive], jobs=1, use_cache=False, limits=Limits(max_total_bytes=8 << 20))
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "audit",
            str(archive),
            "-o",
            str(tmp_path / "out"),
            "--no-cache",
            "--max-total-bytes",
            "8MiB",
        ],
    )
    assert result.exit_code == 2
    assert "--max-total-bytes" in result.output
    assert not (tmp_path / "out" / "audit.csv").exists()
    ok = runner.invoke(
        cli,
        [
            "audit",
            str(archive),
            "-o",
            str(tmp_path / "out"),
            "--no-cache",
            "--jobs",
            "1",
            "--max-total-bytes",
            "64MiB",
        ],
    )
    assert ok.exit_code == 0, ok.output


def test_zip_bomb_members_and_total(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        add_zip_member(handle, "good/events.out.tfevents.1.h", event_bytes())
        for i in range(4):
            add_zip_member(handle, f"big{i}/events.out.tfevents.2.h", bytes(6 << 20))
    assert archive.stat().st_size < 200_000
    capped = audit([archive], jobs=1, use_cache=False, limits=Limits(max_member_bytes=1 << 20))
    assert [s.run for _, s in capped.runs] == ["good"]
    assert sum(w.kind == "member-too-large" for w in capped.warnings) == 4
    with pytest.raises(ArchiveTooLarge):
        audit([archive], jobs=1, use_cache=False, limits=Limits(max_total_bytes=16 << 20))


def test_tar_header_asking_for_a_huge_read_is_refused(tmp_path):
    """A pax header claiming a gigabyte of header data must not be read into memory."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 1 << 30
    archive = tmp_path / "pax.tgz"
    with gzip.open(archive, "wb") as handle:
        handle.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        handle.write(bytes(1024))
    with pytest.raises(InputError):
        audit([archive], jobs=1, use_cache=False)


# ---------------------------------------------------------------------------------------------
# Duplicates and damage


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_duplicate_member_names_keep_the_last(kind, tmp_path):
    archive = tmp_path / f"dupes.{kind}"
    first, last = event_bytes(steps=10), event_bytes(steps=30, scale=2.0)
    name = "run/events.out.tfevents.1.h"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as z:
            add_zip_member(z, name, first)
            with pytest.warns(UserWarning, match="Duplicate name"):
                add_zip_member(z, name, last)
    else:
        with tarfile.open(archive, "w") as handle:
            add_tar_member(handle, name, first)
            add_tar_member(handle, name, last)
    result = audit([archive], jobs=1, use_cache=False)
    [(_, summary)] = result.runs
    assert summary.values["last_step"] == 29
    assert summary.values["best_val_loss"] == pytest.approx(2.2 / 30, rel=1e-6)
    assert [p["kind"] for p in summary.problems] == ["duplicate-member"]


def test_truncated_tar_gz_keeps_what_it_can(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=0) as handle:
        for i in range(6):
            add_tar_member(handle, f"run{i}/events.out.tfevents.1.h", event_bytes(steps=200))
    data = buffer.getvalue()
    archive = tmp_path / "cut.tgz"
    archive.write_bytes(data[: int(len(data) * 0.6)])
    result = audit([archive], jobs=1, use_cache=False)
    runs = [s.run for _, s in result.runs]
    assert runs
    assert runs == [f"run{i}" for i in range(len(runs))]
    assert len(runs) < 6
    assert "archive-damaged" in _kinds(result)


def test_hostile_run_names_are_escaped_in_outputs(tmp_path):
    archive = tmp_path / "names.tar"
    names = ['=HYPERLINK("x")', "<script>alert(1)</script>", "-2+3"]
    with tarfile.open(archive, "w") as handle:
        for name in names:
            add_tar_member(handle, f"{name}/events.out.tfevents.1.h", event_bytes())
    result = audit([archive], jobs=1, use_cache=False)
    write_audit(result, tmp_path / "out")
    html = (tmp_path / "out" / "audit.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    frame = pd.read_csv(tmp_path / "out" / "audit.csv", dtype=str, keep_default_na=False)
    assert sorted(frame["run"]) == sorted(
        ['\'=HYPERLINK("x")', "<script>alert(1)</script>", "'-2+3"]
    )


def test_zip_member_failing_its_crc_is_still_read_record_by_record(tmp_path):
    archive = tmp_path / "crc.zip"
    data = event_bytes(steps=40)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        handle.writestr("run/events.out.tfevents.1.h", data)
    with zipfile.ZipFile(archive) as handle:
        info = handle.infolist()[0]
    raw = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    assert raw[start : start + len(data)] == data
    raw[start + len(data) // 2] ^= 0xFF  # one damaged record in the middle
    archive.write_bytes(bytes(raw))
    result = audit([archive], jobs=1, use_cache=False)
    [(_, summary)] = result.runs
    kinds = {p["kind"] for p in summary.problems}
    assert "archive-checksum" in kinds
    assert kinds - {"archive-checksum"}, kinds  # the event file's own checks name the record
    assert summary.values["last_step"] == 39  # records after the damage are still read
