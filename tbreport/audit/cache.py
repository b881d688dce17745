"""The audit's incremental cache: archive listings and per-unit run summaries, as Parquet.

Layout (under ``~/.cache/tbreport`` or ``$XDG_CACHE_HOME/tbreport`` unless ``--cache-dir``)::

    audit-v1/<hash of the source's kind and location>/
        listing.parquet         members of an archive, valid for one size + mtime + caps
        units-<stamp>.parquet   unit key -> run summaries (JSON text), appended as the audit goes
    audit-v1/outputs/<key>.bin  audit.csv and audit.html of one audit result, as last written

A unit's key covers every member's name, size and stamp (modification time, data offset or
CRC), the diagnosis configuration and the tbreport code itself, so a changed file, a different
``--select`` or an upgrade re-audits exactly what it affects. A second audit of an unchanged
archive opens neither the archive nor any event file. File names in the cache are hashes and
stamps, never member names. The cache is best effort: anything unreadable is ignored.

The written files are kept by a hash of the result itself (its runs, sources and warnings) plus
the code and the templates, so writing an unchanged result again renders nothing: only the time
of writing and the count of cached units, which a page shows but the hash leaves out, are filled
into placeholders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import html
import json
import os
import pickle
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tbreport._version import __version__
from tbreport.model import ReadWarning
from tbreport.outputs import stamp_text
from tbreport.reading.sources import Limits, MemberRef, RunEntry, SourceListing, SourceSpec
from tbreport.template_files import template_dirs

CACHE_LAYOUT = "audit-v1"
# Part files of one source before they are merged into one.
_MAX_PARTS = 8
# Units buffered before a part file is written (an interrupted audit keeps what it did).
_FLUSH_EVERY = 512
# Written results kept (the most recently used); each is one audit's CSV and HTML.
_KEEP_OUTPUTS = 8
#: What ``audit.html`` shows that changes between two writings of one result.
VOLATILE_FIELDS = ("generated_at", "cached_units")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tbreport``, or ``~/.cache/tbreport``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tbreport"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Changes whenever tbreport's code changes (version, and every module's size and mtime)."""

    digest = hashlib.sha256(__version__.encode())
    _stamp_files(digest, Path(__file__).resolve().parent.parent, "*.py")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def templates_fingerprint() -> str:
    """Changes whenever a template or asset changes (every file's name, size and mtime)."""
    digest = hashlib.sha256()
    for directory in template_dirs():
        _stamp_files(digest, directory, "*")
    return digest.hexdigest()[:16]


def _stamp_files(digest: Any, root: Path, pattern: str) -> None:
    """Feed ``digest`` the relative name, size and mtime of every file under ``root`` matching
    ``pattern``, in name order."""
    for path in sorted(root.rglob(pattern)):
        with contextlib.suppress(OSError):
            st = path.stat()
            digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())


def settings_fingerprint(config: Any) -> str:
    """What, besides the data, decides a unit's summaries: code and diagnosis configuration."""
    if config is None:
        described: Any = None
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        described = {k: v for k, v in dataclasses.asdict(config).items() if k != "source"}
    else:
        described = config
    text = json.dumps([code_fingerprint(), described], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unit_key(spec: SourceSpec, runs: Sequence[RunEntry], *, settings: str) -> str:
    """The cache key of a unit of run directories."""

    def member(ref: MemberRef | None) -> list[Any] | None:
        return None if ref is None else [ref.name, ref.size, ref.stamp]

    payload = [
        settings,
        spec.kind,
        [[run.name, [member(f) for f in run.files], member(run.hparams_yaml)] for run in runs],
    ]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


class SourceCache:
    """The cached listing and unit summaries of one source."""

    def __init__(self, root: Path, spec: SourceSpec) -> None:
        ident = hashlib.sha256(f"{spec.kind}\0{spec.location}".encode()).hexdigest()[:32]
        self.directory = root / CACHE_LAYOUT / ident
        self.spec = spec
        self._units: dict[str, str] | None = None
        self._parts: list[Path] = []
        self._new: dict[str, str] = {}
        self._used: set[str] = set()

    # -- listing ---------------------------------------------------------------------------

    def _listing_stamp(self, limits: Limits) -> str:
        return f"{self.spec.fingerprint}|{limits.max_member_bytes}|{limits.max_total_bytes}"

    def load_listing(self, limits: Limits) -> SourceListing | None:
        """The cached listing of an unchanged archive, or None."""
        path = self.directory / "listing.parquet"
        if not self.spec.fingerprint or not path.is_file():
            return None
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            meta = table.schema.metadata or {}
            if meta.get(b"stamp", b"").decode() != self._listing_stamp(limits):
                return None
            extra = json.loads(meta[b"extra"].decode())
            columns = table.to_pydict()
        except Exception:  # a damaged cache is a cache miss
            return None
        locator_is_int = self.spec.kind in ("tar", "zip")
        runs: dict[str, RunEntry] = {}
        order: list[str] = []
        for run, name, size, stamp, locator, is_yaml in zip(
            columns["run"],
            columns["name"],
            columns["size"],
            columns["stamp"],
            columns["locator"],
            columns["is_yaml"],
            strict=True,
        ):
            if run not in runs:
                runs[run] = RunEntry(name=run)
                order.append(run)
            ref = MemberRef(name, size, stamp, int(locator) if locator_is_int else locator)
            if is_yaml:
                runs[run].hparams_yaml = ref
            else:
                runs[run].files.append(ref)
        warnings = [ReadWarning(**w) for w in extra["warnings"]]
        entries = [runs[name] for name in order if runs[name].files]
        return SourceListing(self.spec, entries, warnings, extra.get("expanded_bytes", 0))

    def store_listing(self, listing: SourceListing, limits: Limits) -> None:
        """Remember an archive's listing (directories are listed afresh every time)."""
        if not self.spec.fingerprint:
            return
        import pyarrow as pa

        columns: dict[str, list[Any]] = {
            k: [] for k in ("run", "name", "size", "stamp", "locator", "is_yaml")
        }
        for run in listing.runs:
            members = [(f, False) for f in run.files]
            if run.hparams_yaml is not None:
                members.append((run.hparams_yaml, True))
            for ref, is_yaml in members:
                columns["run"].append(run.name)
                columns["name"].append(ref.name)
                columns["size"].append(int(ref.size))
                columns["stamp"].append(ref.stamp)
                columns["locator"].append(str(ref.locator))
                columns["is_yaml"].append(is_yaml)
        extra = {
            "warnings": [dataclasses.asdict(w) for w in listing.warnings],
            "expanded_bytes": listing.expanded_bytes,
        }
        schema = pa.schema(
            [
                ("run", pa.string()),
                ("name", pa.string()),
                ("size", pa.int64()),
                ("stamp", pa.string()),
                ("locator", pa.string()),
                ("is_yaml", pa.bool_()),
            ],
            metadata={"stamp": self._listing_stamp(limits), "extra": json.dumps(extra)},
        )
        self._write(pa.Table.from_pydict(columns, schema=schema), "listing.parquet")

    # -- unit summaries --------------------------------------------------------------------

    def _load_units(self) -> dict[str, str]:
        if self._units is not None:
            return self._units
        units: dict[str, str] = {}
        parts = sorted(self.directory.glob("units-*.parquet")) if self.directory.is_dir() else []
        loaded = []
        for part in parts:
            try:
                import pyarrow.parquet as pq

                columns = pq.read_table(part).to_pydict()
            except Exception:  # damaged or half-deleted: a miss
                continue
            units.update(zip(columns["key"], columns["payload"], strict=True))
            loaded.append(part)
        self._units, self._parts = units, loaded
        return units

    def get(self, key: str) -> list[dict[str, Any]] | None:
        """The summaries cached for a unit key, or None."""
        payload = self._load_units().get(key)
        if payload is None:
            return None
        try:
            value: list[dict[str, Any]] = json.loads(payload)
        except ValueError:
            return None
        self._used.add(key)
        return value

    def put(self, key: str, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Remember a unit's summaries (written in batches; :meth:`flush` at the end).

        Returns:
            The summaries as :meth:`get` will give them back, so that a first audit and its
            cached re-audit hold the very same values.
        """
        self._load_units()
        payload = json.dumps(summaries, default=str)
        self._new[key] = payload
        self._used.add(key)
        if len(self._new) >= _FLUSH_EVERY:
            self.flush(final=False)
        stored: list[dict[str, Any]] = json.loads(payload)
        return stored

    def flush(self, *, final: bool = True) -> None:
        """Write new summaries; at the end of an audit, also merge parts and drop stale units."""
        units = self._load_units()
        stale = final and any(key not in self._used for key in units)
        merge = final and (stale or len(self._parts) + bool(self._new) > _MAX_PARTS)
        if not self._new and not merge:
            return
        import pyarrow as pa

        if merge:
            live = {k: v for k, v in units.items() if k in self._used}
            live.update(self._new)
            rows = live
        else:
            rows = self._new
        table = pa.Table.from_pydict(
            {"key": list(rows), "payload": list(rows.values())},
            schema=pa.schema([("key", pa.string()), ("payload", pa.string())]),
        )
        name = f"units-{time.time_ns():020d}-{os.getpid()}.parquet"
        written = self._write(table, name)
        units.update(self._new)
        self._new = {}
        if not written:
            return
        if merge:
            for part in self._parts:
                with contextlib.suppress(OSError):
                    part.unlink()
            self._parts = [self.directory / name]
            self._units = {k: v for k, v in units.items() if k in self._used}
        else:
            self._parts.append(self.directory / name)

    def _write(self, table: Any, name: str) -> bool:
        import pyarrow.parquet as pq

        target = self.directory / name
        temp = self.directory / f".{name}.{os.getpid()}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, temp, compression="zstd")
            os.replace(temp, target)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            return False
        return True


# -- written files -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditFiles:
    """``audit.csv`` and ``audit.html`` of one result.

    Attributes:
        csv: The CSV file's bytes.
        html: The page, with a placeholder for each of :data:`VOLATILE_FIELDS`.
        placeholders: Field name -> its placeholder: random text that no event file can
            predict, so none can plant one.
    """

    csv: bytes
    html: str
    placeholders: dict[str, str]

    @staticmethod
    def new_placeholders() -> dict[str, str]:
        """Fresh placeholders for :data:`VOLATILE_FIELDS`."""
        return {name: f"tbreport-{secrets.token_hex(16)}" for name in VOLATILE_FIELDS}

    def page(self, values: Mapping[str, str]) -> str:
        """The HTML with ``values`` (HTML-escaped) in place of the placeholders."""
        text = self.html
        for name, placeholder in self.placeholders.items():
            text = text.replace(placeholder, html.escape(values[name]))
        return text


def volatile_values(result: Any) -> dict[str, str]:
    """The :data:`VOLATILE_FIELDS` of ``result`` written now."""
    return {
        "generated_at": stamp_text(),
        "cached_units": str(result.stats.cached_units),
    }


class OutputCache:
    """The audit files last written for one result, kept beside the unit summaries."""

    def __init__(self, root: Path, key: str) -> None:
        self.directory = root / CACHE_LAYOUT / "outputs"
        self.path = self.directory / f"{key}.bin"

    @classmethod
    def of(cls, root: Path, result: Any) -> OutputCache | None:
        """The entry of ``result`` (its runs, sources, warnings and counts, with the code and
        the templates), or None when the result cannot be hashed."""
        try:
            content = pickle.dumps(
                (
                    [spec.display for spec in result.sources],
                    result.runs,
                    result.warnings,
                    result.stats.run_dirs,
                    result.stats.units,
                ),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        except Exception:  # values a caller put in that do not pickle: just no cache
            return None
        digest = hashlib.sha256(content)
        digest.update(f"{code_fingerprint()}|{templates_fingerprint()}".encode())
        return cls(root, digest.hexdigest()[:32])

    def load(self) -> AuditFiles | None:
        """The files kept for this result, or None."""
        try:
            with open(self.path, "rb") as handle:
                header = json.loads(handle.readline())
                csv = handle.read(int(header["csv_bytes"]))
                page = handle.read().decode("utf-8")
            placeholders = {name: str(header["placeholders"][name]) for name in VOLATILE_FIELDS}
            if len(csv) != int(header["csv_bytes"]):
                return None
            os.utime(self.path)  # most recently used: the last to be pruned
        except Exception:  # missing, damaged or half-written: a miss
            return None
        return AuditFiles(csv=csv, html=page, placeholders=placeholders)

    def store(self, files: AuditFiles) -> None:
        """Keep ``files`` (best effort), and prune all but the most recently used entries."""
        header = json.dumps({"csv_bytes": len(files.csv), "placeholders": files.placeholders})
        temp = self.directory / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as handle:
                handle.write(header.encode() + b"\n")
                handle.write(files.csv)
                handle.write(files.html.encode("utf-8"))
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            return
        with contextlib.suppress(OSError):
            entries = sorted(
                self.directory.glob("*.bin"), key=lambda p: p.stat().st_mtime_ns, reverse=True
            )
            for stale in entries[_KEEP_OUTPUTS:]:
                stale.unlink()
