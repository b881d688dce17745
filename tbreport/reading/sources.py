"""Where audited runs come from: directories, tar and zip archives, fsspec URLs.

Nothing is ever extracted. Archives are read in place: the main process lists the members once
(:func:`list_source`), and whoever audits a run (this process, a pool worker, a Dask worker) reads
its members' bytes straight from the archive (:class:`SourceReader`). Member names are untrusted
text: they are normalised (no leading ``/``, no ``..``) and only ever used as run names, never to
build a filesystem path.

Archives are capped: a member larger than :attr:`Limits.max_member_bytes` is skipped with a
warning; an archive that would expand beyond :attr:`Limits.max_total_bytes` stops the audit
(:class:`ArchiveTooLarge`, exit status 2), so a zip or tar bomb cannot exhaust memory or time.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import posixpath
import stat
import tarfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

from tbreport.errors import InputError
from tbreport.model import ReadWarning
from tbreport.reading.discovery import discover_runs, is_event_file_name, printable_name

SourceKind = Literal["dir", "fsdir", "tar", "zip"]

GIB = 1 << 30
#: Default cap on one archive member's decompressed size.
DEFAULT_MAX_MEMBER_BYTES = 2 * GIB
#: Default cap on what one archive may expand to.
DEFAULT_MAX_TOTAL_BYTES = 20 * GIB

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
HPARAMS_YAML = "hparams.yaml"

# tarfile reads only headers (512-byte blocks, long names, pax records) from the listing stream;
# a single read larger than this is a header crafted to exhaust memory.
_MAX_HEADER_READ = 16 << 20
_READ_CHUNK = 1 << 20
# Open archives a worker keeps between tasks (long-lived Dask workers audit many sources).
_MAX_OPEN_HANDLES = 4


#: How many times this process opened an archive to read members (diagnostics and tests: it
#: shows which processes did the reading).
archive_opens = 0


class ArchiveTooLarge(InputError):
    """An archive expands beyond the total cap (``--max-total-bytes``)."""


@dataclass(frozen=True)
class Limits:
    """Caps on what an archive may make us decompress.

    Attributes:
        max_member_bytes: Larger members are skipped with a warning.
        max_total_bytes: An archive expanding beyond this stops the audit (exit status 2).
            For a compressed tar this is the length of the decompressed tar stream; for a plain
            tar or a zip, the sum of the members that are read.
    """

    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES


@dataclass(frozen=True)
class SourceSpec:
    """Everything a worker needs to open a source again (picklable, no open handles).

    Attributes:
        kind: ``dir`` (local directory or event file), ``fsdir`` (fsspec directory URL),
            ``tar`` or ``zip`` (local path or fsspec URL of an archive).
        location: Absolute local path or URL: what workers open.
        display: The source as the user wrote it.
        is_url: ``location`` is an fsspec URL rather than a local path.
        fingerprint: Size and modification stamp of an archive (empty for directories).
    """

    kind: SourceKind
    location: str
    display: str
    is_url: bool = False
    fingerprint: str = ""

    def run_display(self, run: str) -> str:
        """How warnings name a run directory of this source."""
        if run == ".":
            return self.display
        if self.kind == "dir":
            return os.path.join(self.display, run)
        return self.member_display(run)

    def member_display(self, name: str) -> str:
        """How warnings name a member of this source."""
        if self.kind in ("tar", "zip"):
            return f"{self.display}!/{name}"
        if self.kind == "fsdir":
            return f"{self.display.rstrip('/')}/{name}"
        return name


@dataclass(frozen=True)
class MemberRef:
    """One file of a source: an event file or a ``hparams.yaml``.

    Attributes:
        name: Normalised ``/``-separated path inside the source (for directories: the display
            path discovery gives).
        size: Size in bytes (decompressed, for archive members).
        stamp: What changes when the content changes (modification time, offset, CRC).
        locator: How to find the bytes: a local path, a URL path, a tar data offset or a zip
            entry index.
    """

    name: str
    size: int
    stamp: str
    locator: str | int


@dataclass
class RunEntry:
    """A run directory of a source: its event files (in name order) and its ``hparams.yaml``."""

    name: str
    files: list[MemberRef] = field(default_factory=list)
    hparams_yaml: MemberRef | None = None


@dataclass
class SourceListing:
    """What a source holds.

    Attributes:
        spec: The source.
        runs: Run directories sorted by name, as TensorBoard names them.
        warnings: Members that were skipped or renamed, and damage found while listing.
        expanded_bytes: Bytes decompressed while listing (compressed tars).
    """

    spec: SourceSpec
    runs: list[RunEntry]
    warnings: list[ReadWarning] = field(default_factory=list)
    expanded_bytes: int = 0


# ---------------------------------------------------------------------------------------------
# Resolving what the user named


def is_url(path: str) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://``, ``gs://``, ``file://``, ...)."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum()


def archive_kind(name: str) -> SourceKind | None:
    """``tar``/``zip`` when ``name`` ends like an archive, else None."""
    lower = name.lower().rstrip("/")
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    return None


def _fs_and_path(url: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise InputError(f"{url}: reading URLs needs fsspec (pip install fsspec)") from exc
    try:
        found: tuple[Any, str] = url_to_fs(url)  # (file system, path inside it)
        return found
    except (ImportError, ValueError) as exc:
        raise InputError(
            f"{url}: cannot open this URL ({exc}); install the fsspec package for its protocol "
            "(e.g. s3fs, gcsfs, adlfs)"
        ) from None


def _stamp_of(info: dict[str, Any]) -> str:
    """A content stamp from an fsspec ``info`` dict (backends name it differently)."""
    for key in (
        "ETag",
        "etag",
        "md5Hash",
        "generation",
        "mtime",
        "LastModified",
        "updated",
        "last_modified",
        "modified",
        "created",
    ):
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}={value}"
    return ""


def resolve_source(path: str) -> SourceSpec:
    """Decide how to read ``path``: a directory, an archive, or an fsspec URL.

    Args:
        path: A local directory, event file or archive, or an fsspec URL of one.

    Raises:
        InputError: ``path`` does not exist or cannot be opened.
    """
    if is_url(path):
        fs, fs_path = _fs_and_path(path)
        try:
            info = fs.info(fs_path)
        except FileNotFoundError:
            raise InputError(f"{path} does not exist") from None
        except Exception as exc:  # backends raise their own errors (credentials, network...)
            raise InputError(f"cannot open {path}: {type(exc).__name__}: {exc}") from None
        kind = archive_kind(fs_path) if info.get("type") != "directory" else None
        fingerprint = f"{info.get('size')}:{_stamp_of(info)}"
        if kind is not None:
            return SourceSpec(kind, path, path, is_url=True, fingerprint=fingerprint)
        return SourceSpec("fsdir", path, path, is_url=True)
    local = Path(path)
    if not local.exists():
        if local.is_symlink():
            raise InputError(f"{path} is a broken symbolic link")
        raise InputError(f"{path} does not exist")
    absolute = str(local.resolve())
    kind = archive_kind(local.name) if local.is_file() else None
    if kind is None and local.is_file() and not is_event_file_name(local.name):
        kind = _sniff_archive(absolute)
    if kind is not None:
        st = local.stat()
        return SourceSpec(
            kind, absolute, printable_name(path), fingerprint=f"{st.st_size}:{st.st_mtime_ns}"
        )
    return SourceSpec("dir", absolute, printable_name(path))


def _sniff_archive(path: str) -> SourceKind | None:
    """Recognise an archive without the usual suffix by its first bytes."""
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        return "tar" if tarfile.is_tarfile(path) else None
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Member names


def normalise_member_name(raw: str, *, backslashes: bool = False) -> tuple[str | None, str | None]:
    """A member name safe to show and to use as a run name.

    Leading ``/`` (absolute paths), empty and ``.`` components are dropped; ``..`` components
    are dropped too, so a name can never climb out of the archive even if someone later joined
    it to a path (tbreport never does).

    Args:
        raw: The name as stored in the archive.
        backslashes: ``\\`` separates components too, and a leading drive (``C:``) is dropped:
            zips made on Windows (PowerShell's Compress-Archive) store names that way, though
            the zip format wants ``/``.

    Returns:
        ``(name, problem)``: the normalised name (None when nothing is left) and a description of
        what was unsafe about it (None when nothing was).
    """
    problems = []
    if backslashes and "\\" in raw:
        raw = raw.replace("\\", "/")
        if len(raw) >= 2 and raw[1] == ":" and raw[0].isalpha():
            problems.append("starts with a drive letter")
            raw = "/" + raw[2:].lstrip("/")
    if raw.startswith("/"):
        problems.append("is absolute")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        problems.append("climbs with '..'")
        parts = [p for p in parts if p != ".."]
    name = "/".join(parts)
    return (name or None), (" and ".join(problems) or None)


def _run_name(member_name: str) -> str:
    parent = posixpath.dirname(member_name)
    return parent or "."


def _run_sort_key(name: str) -> tuple[str, ...]:
    return tuple(name.split("/"))


# ---------------------------------------------------------------------------------------------
# Listing


class _Collector:
    """Collects the members of an archive or URL tree into run entries."""

    def __init__(self, spec: SourceSpec, limits: Limits | None) -> None:
        self.spec = spec
        self.limits = limits
        self.members: dict[str, tuple[MemberRef, bool]] = {}  # name -> (ref, is_yaml)
        self.warnings: list[ReadWarning] = []
        self.read_bytes = 0

    def warn(self, kind: str, name: str, message: str) -> None:
        self.warnings.append(
            ReadWarning(
                kind=kind, path=self.spec.member_display(name), message=message, run=_run_name(name)
            )
        )

    def wanted(self, raw_name: str) -> str | None:
        """The normalised name when the member is an event file or a hparams.yaml, else None."""
        backslashes = self.spec.kind == "zip"
        separated = raw_name.replace("\\", "/") if backslashes else raw_name
        base = posixpath.basename(separated.rstrip("/"))
        if base != HPARAMS_YAML and "tfevents" not in base:
            return None
        name, problem = normalise_member_name(printable_name(raw_name), backslashes=backslashes)
        if name is None:
            self.warnings.append(
                ReadWarning(
                    kind="unsafe-member-name",
                    path=self.spec.member_display(raw_name),
                    message="member name has nothing left once made safe; skipped",
                )
            )
            return None
        if problem:
            self.warn(
                "unsafe-member-name",
                name,
                f"member name {raw_name!r} {problem}; read as {name!r} (nothing is extracted)",
            )
        if base.endswith(".profile-empty"):
            self.warn(
                "profile-placeholder",
                name,
                "TensorFlow profiler placeholder (*.profile-empty), not an event file; skipped",
            )
            return None
        return name

    def add(self, name: str, ref: MemberRef) -> None:
        limits = self.limits
        if limits is not None and ref.size > limits.max_member_bytes:
            self.warn(
                "member-too-large",
                name,
                f"member expands to {ref.size:,} bytes, more than --max-member-bytes "
                f"({limits.max_member_bytes:,}); skipped",
            )
            return
        if name in self.members:
            self.warn(
                "duplicate-member",
                name,
                "the archive holds this name more than once; the last copy is read",
            )
            self.read_bytes -= self.members[name][0].size
        self.read_bytes += ref.size
        if limits is not None and self.read_bytes > limits.max_total_bytes:
            raise ArchiveTooLarge(
                f"{self.spec.display}: the event files in the archive expand to more than "
                f"--max-total-bytes ({limits.max_total_bytes:,} bytes); raise the cap to audit it"
            )
        self.members[name] = (ref, posixpath.basename(name) == HPARAMS_YAML)

    def runs(self) -> list[RunEntry]:
        by_run: dict[str, RunEntry] = {}
        yamls: dict[str, MemberRef] = {}
        for name in sorted(self.members):
            ref, is_yaml = self.members[name]
            run = _run_name(name)
            if is_yaml:
                yamls[run] = ref
            else:
                by_run.setdefault(run, RunEntry(name=run)).files.append(ref)
        for run, entry in by_run.items():
            entry.hparams_yaml = yamls.get(run)
        return [by_run[name] for name in sorted(by_run, key=_run_sort_key)]


def list_source(spec: SourceSpec, *, limits: Limits | None = None) -> SourceListing:
    """List the runs of a source (reads archive headers, never member contents).

    Args:
        spec: What :func:`resolve_source` returned.
        limits: Caps for archives.

    Raises:
        InputError: The source cannot be read at all.
        ArchiveTooLarge: An archive expands beyond ``limits.max_total_bytes``.
    """
    limits = limits or Limits()
    if spec.kind == "dir":
        return _list_directory(spec, limits)
    if spec.kind == "fsdir":
        return _list_fsspec_tree(spec)
    collector = _Collector(spec, limits)
    expanded = 0
    try:
        with _open_raw(spec) as raw:
            if spec.kind == "zip":
                _list_zip(raw, collector)
            else:
                expanded = _list_tar(raw, collector, limits)
    except ArchiveTooLarge:
        raise
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read {spec.display}: {exc.strerror or exc}") from None
    return SourceListing(spec, collector.runs(), collector.warnings, expanded_bytes=expanded)


def _list_directory(spec: SourceSpec, limits: Limits) -> SourceListing:
    runs, warnings = discover_runs(spec.location)
    warnings = list(warnings)
    entries = []
    for run in runs:
        entry = RunEntry(name=run.name)
        for ref in run.files:
            # Files are read whole: one huge (or sparse) file is skipped, not a MemoryError.
            if ref.size > limits.max_member_bytes:
                warnings.append(
                    ReadWarning(
                        kind="member-too-large",
                        path=ref.display,
                        run=run.name,
                        message=f"{ref.size:,} bytes, more than --max-member-bytes "
                        f"({limits.max_member_bytes:,}); skipped",
                    )
                )
                continue
            entry.files.append(MemberRef(ref.display, ref.size, _file_stamp(ref.path), ref.path))
        if run.hparams_yaml:
            try:
                size = os.stat(run.hparams_yaml).st_size
            except OSError:
                size = -1
            entry.hparams_yaml = MemberRef(
                printable_name(run.hparams_yaml),
                size,
                _file_stamp(run.hparams_yaml),
                run.hparams_yaml,
            )
        entries.append(entry)
    return SourceListing(spec, entries, warnings)


def _file_stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "unreadable"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _list_fsspec_tree(spec: SourceSpec) -> SourceListing:
    fs, root = _fs_and_path(spec.location)
    collector = _Collector(spec, None)
    root = root.rstrip("/")
    try:
        if fs.isfile(root):
            info = fs.info(root)
            base_name = posixpath.basename(root)
            if not is_event_file_name(base_name):
                raise InputError(
                    f"{spec.display} is a file, not a log directory or an archive (.tar, .tar.gz, "
                    ".tgz, .zip)"
                )
            listing = {root: info}
            root = posixpath.dirname(root)
        else:
            listing = fs.find(root, detail=True, withdirs=False)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot list {spec.display}: {type(exc).__name__}: {exc}") from None
    prefix = root + "/" if root else ""
    for path in sorted(listing):
        info = listing[path]
        relative = path[len(prefix) :] if path.startswith(prefix) else path
        name = collector.wanted(relative)
        if name is None:
            continue
        size = int(info.get("size") or 0)
        collector.add(name, MemberRef(name, size, _stamp_of(info) or str(size), path))
    return SourceListing(spec, collector.runs(), collector.warnings)


def _list_zip(raw: IO[bytes], collector: _Collector) -> None:
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{collector.spec.display} is not a readable zip archive: {exc}") from None
    with archive:
        for index, info in enumerate(archive.infolist()):
            if info.is_dir():
                continue
            name = collector.wanted(info.filename)
            if name is None:
                continue
            # Unix zips keep the file type in the high bits; no type bits means a plain file.
            file_type = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
            if file_type and file_type != stat.S_IFREG:
                kind = "symbolic link" if file_type == stat.S_IFLNK else "device or special file"
                collector.warn("link-or-device-member", name, f"member is a {kind}; skipped")
                continue
            if info.flag_bits & 0x1:
                collector.warn("encrypted-member", name, "member is encrypted; skipped")
                continue
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                collector.warn(
                    "unsupported-compression",
                    name,
                    f"zip compression method {info.compress_type} is not read (only stored and "
                    "deflate are, whose expansion can be bounded); skipped",
                )
                continue
            stamp = f"{info.CRC:08x}:{info.header_offset}:{info.date_time}"
            collector.add(name, MemberRef(name, int(info.file_size), stamp, index))


def _list_tar(raw: IO[bytes], collector: _Collector, limits: Limits) -> int:
    stream, compressed = open_decompressed(raw)
    cap = limits.max_total_bytes if compressed else None
    bounded = _BoundedStream(stream, cap, collector.spec.display)
    try:
        archive = tarfile.open(fileobj=bounded, mode="r:")  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise InputError(f"{collector.spec.display} is not a readable tar archive: {exc}") from None
    except (EOFError, OSError) as exc:
        raise InputError(f"{collector.spec.display} is not a readable tar archive: {exc}") from None
    # tarfile takes a header that fails its checksum for the end of the archive and stops
    # without a word; skipping blocks until the next valid header (what ignore_zeros does) finds
    # the members behind it, and a gap between members tells us to warn.
    archive.ignore_zeros = True
    expected = 0  # where the next header should be: right after the previous member
    try:
        while True:
            if cap is not None and archive.offset > cap:
                raise bounded.too_large()
            try:
                info = archive.next()
            except ArchiveTooLarge:
                raise
            except (tarfile.TarError, EOFError, OSError) as exc:
                collector.warnings.append(
                    ReadWarning(
                        kind="archive-damaged",
                        path=collector.spec.display,
                        offset=archive.offset,
                        message=f"archive is damaged or truncated after byte {archive.offset:,} "
                        f"of its tar stream ({exc}); members before it are read",
                    )
                )
                break
            if info is None:
                break
            if info.offset != expected:
                collector.warnings.append(
                    ReadWarning(
                        kind="archive-damaged",
                        path=collector.spec.display,
                        offset=expected,
                        message=f"invalid tar header at byte {expected:,} of the tar stream; "
                        f"skipped {info.offset - expected:,} bytes to the next valid header "
                        "(the member it described is lost)",
                    )
                )
            expected = archive.offset
            # TarFile remembers every member; an index of millions would grow without bound.
            archive.members.clear()  # type: ignore[attr-defined]  # typeshed omits it
            if cap is not None and info.isreg() and info.offset_data + info.size > cap:
                raise bounded.too_large()
            name = collector.wanted(info.name)
            if name is None:
                continue
            if info.issym() or info.islnk():
                collector.warn("link-or-device-member", name, "member is a link; skipped")
                continue
            if info.ischr() or info.isblk() or info.isfifo() or info.isdev():
                collector.warn(
                    "link-or-device-member", name, "member is a device or special file; skipped"
                )
                continue
            if info.issparse():
                collector.warn("sparse-member", name, "sparse tar member; skipped")
                continue
            if not info.isreg():
                continue
            # The stamp covers the content: a same-size damaged re-download must not be taken
            # for the archive the cache saw (offset, size and header mtime would all agree).
            digest = _member_digest(archive, info, limits)
            stamp = f"{info.offset_data}:{int(info.mtime)}:{digest}"
            collector.add(name, MemberRef(name, int(info.size), stamp, int(info.offset_data)))
    finally:
        archive.close()
    return bounded.high_water if compressed else 0


def _member_digest(archive: tarfile.TarFile, info: tarfile.TarInfo, limits: Limits) -> str:
    """A hash of a member's bytes, read from the listing stream (no extra pass for compressed
    tars, whose listing decompresses everything anyway)."""
    if info.size > limits.max_member_bytes:
        return "too-large"  # skipped by the collector; never read
    digest = hashlib.blake2b(digest_size=16)
    handle = archive.extractfile(info)
    if handle is None:
        return "none"
    remaining = info.size
    try:
        while remaining > 0:
            chunk = handle.read(min(_READ_CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    except (EOFError, OSError, tarfile.TarError):
        pass  # the listing notices the damage at the next header
    return digest.hexdigest() + (f"-short{remaining}" if remaining else "")


# ---------------------------------------------------------------------------------------------
# Opening and reading


def _open_raw(spec: SourceSpec) -> IO[bytes]:
    if spec.is_url:
        fs, path = _fs_and_path(spec.location)
        try:
            handle: IO[bytes] = fs.open(path, "rb")
            return handle
        except FileNotFoundError:
            raise InputError(f"{spec.display} does not exist") from None
        except Exception as exc:
            raise InputError(f"cannot open {spec.display}: {type(exc).__name__}: {exc}") from None
    try:
        return open(spec.location, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {spec.display}: {exc.strerror or exc}") from None


def open_decompressed(raw: IO[bytes]) -> tuple[IO[bytes], bool]:
    """The tar stream inside ``raw`` (gzip, bzip2, xz or none, told by the first bytes).

    Returns:
        ``(stream, compressed)``; the stream is seekable (forward seeks decompress).
    """
    head = raw.read(6)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        # A binary file like the others, though typeshed does not declare it an IO[bytes].
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), True
    if head[:3] == b"BZh":
        return bz2.BZ2File(raw, mode="rb"), True
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, mode="rb"), True
    return raw, False


class _BoundedStream(io.RawIOBase):
    """A read-only view of a decompressed stream that refuses to go past the total cap."""

    def __init__(self, inner: IO[bytes], cap: int | None, display: str) -> None:
        super().__init__()
        self.inner = inner
        self.cap = cap
        self.display = display
        self.high_water = 0

    def too_large(self) -> ArchiveTooLarge:
        return ArchiveTooLarge(
            f"{self.display} expands to more than --max-total-bytes ({self.cap:,} bytes); "
            "raise the cap to audit it"
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.inner.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end")
        if self.cap is not None and offset > self.cap:
            raise self.too_large()
        position = self.inner.seek(offset)
        self.high_water = max(self.high_water, position)
        return position

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_HEADER_READ:
            raise InputError(
                f"{self.display}: a tar header asks to read {size} bytes at once; the archive is "
                "malformed or hostile"
            )
        position = self.inner.tell()
        if self.cap is not None and position + size > self.cap:
            raise self.too_large()
        data = self.inner.read(size)
        self.high_water = max(self.high_water, position + len(data))
        return data

    def readinto(self, buffer: Any) -> int:  # pragma: no cover - tarfile uses read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class SourceReader:
    """Reads member bytes of one source; keeps archives open between calls of one thread."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._raw: IO[bytes] | None = None
        self._stream: IO[bytes] | None = None
        self._zip: zipfile.ZipFile | None = None
        self._zip_infos: list[zipfile.ZipInfo] = []

    def close(self) -> None:
        for handle in (self._zip, self._stream, self._raw):
            if handle is not None:
                # Closing must never hide the real result.
                with contextlib.suppress(Exception):
                    handle.close()
        self._raw = self._stream = self._zip = None

    def _ensure_open(self) -> None:
        global archive_opens
        if self._raw is not None:
            return
        raw = _open_raw(self.spec)
        archive_opens += 1
        try:
            if self.spec.kind == "zip":
                self._zip = zipfile.ZipFile(raw)
                self._zip_infos = self._zip.infolist()
            else:
                self._stream, _ = open_decompressed(raw)
        except BaseException:
            raw.close()
            raise
        self._raw = raw

    def read(self, member: MemberRef) -> tuple[bytes, list[ReadWarning]]:
        """The bytes of ``member``, plus warnings when they could not all be read.

        Never raises for damaged data: what could be read is returned with a warning.
        """
        display = self.spec.member_display(member.name)
        try:
            if self.spec.kind == "dir":
                with open(str(member.locator), "rb") as handle:
                    return handle.read(), []
            if self.spec.kind == "fsdir":
                fs, _ = _fs_and_path(self.spec.location)
                return bytes(fs.cat_file(str(member.locator))), []
            self._ensure_open()
            if self.spec.kind == "zip":
                return self._read_zip(member, display)
            return self._read_tar(member, display)
        except InputError as exc:
            return b"", [ReadWarning(kind="unreadable", path=display, message=str(exc))]
        except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, ValueError) as exc:
            self.close()  # a broken handle must not poison the next member
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return b"", [
                ReadWarning(kind="unreadable", path=display, message=f"cannot read: {reason}")
            ]

    def _read_tar(self, member: MemberRef, display: str) -> tuple[bytes, list[ReadWarning]]:
        assert self._stream is not None
        self._stream.seek(int(member.locator))
        return _read_exactly(self._stream, member.size, display)

    def _read_zip(self, member: MemberRef, display: str) -> tuple[bytes, list[ReadWarning]]:
        assert self._zip is not None
        info = self._zip_infos[int(member.locator)]
        try:
            with self._zip.open(info) as handle:
                return _read_exactly(handle, member.size, display)
        except zipfile.BadZipFile as exc:
            if "CRC" not in str(exc):
                raise
        # The event file format has its own per-record checksums, so a member failing the zip
        # CRC is still worth reading: the parser reports exactly which records are damaged.
        with self._zip.open(info) as handle:
            handle._expected_crc = None  # type: ignore[attr-defined]  # ZipExtFile's, private
            data, warnings = _read_exactly(handle, member.size, display)
        warnings.append(
            ReadWarning(
                kind="archive-checksum",
                path=display,
                message="zip member fails its CRC check; read anyway (records are checked one "
                "by one)",
            )
        )
        return data, warnings


def _read_exactly(handle: IO[bytes], size: int, display: str) -> tuple[bytes, list[ReadWarning]]:
    """Read ``size`` bytes in chunks, keeping what was read when the stream breaks off."""
    parts: list[bytes] = []
    remaining = size
    problem: str | None = None
    # read1 returns what one decompression step produced; a buffered read() of a whole chunk
    # would throw away everything it had gathered when the stream breaks off inside the chunk.
    read = getattr(handle, "read1", None) or handle.read
    while remaining > 0:
        try:
            chunk = read(min(_READ_CHUNK, remaining))
        except (EOFError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
                raise
            problem = str(exc) or type(exc).__name__
            break
        if not chunk:
            problem = "the archive ends early"
            break
        parts.append(chunk)
        remaining -= len(chunk)
    data = b"".join(parts)
    if problem is None:
        return data, []
    return data, [
        ReadWarning(
            kind="archive-truncated",
            path=display,
            offset=len(data),
            message=f"member data stops after {len(data):,} of {size:,} bytes ({problem}); "
            "the records before are read",
        )
    ]


_LOCAL = threading.local()


def reader_for(spec: SourceSpec) -> SourceReader:
    """A :class:`SourceReader` for ``spec``, reused by later calls in the same thread.

    Workers are handed runs in archive order, so a reused compressed-archive handle only ever
    seeks forward and each worker decompresses the archive about once.
    """
    handles: OrderedDict[SourceSpec, SourceReader] | None = getattr(_LOCAL, "handles", None)
    if handles is None:
        handles = _LOCAL.handles = OrderedDict()
    reader = handles.get(spec)
    if reader is not None:
        handles.move_to_end(spec)
        return reader
    reader = handles[spec] = SourceReader(spec)
    while len(handles) > _MAX_OPEN_HANDLES:
        _, old = handles.popitem(last=False)
        old.close()
    return reader


def close_readers() -> None:
    """Close every archive this thread keeps open."""
    handles = getattr(_LOCAL, "handles", None)
    if handles:
        for reader in handles.values():
            reader.close()
        handles.clear()
