"""The CSV bundle: ``summary.csv``, ``findings.csv`` and the export tables, in one directory.

Every file goes through :func:`tbreport.report.csvsafe.write_csv` (formula-safe, atomic). No
scalar point is dropped: thinning is for charts only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from tbreport.model import Finding
from tbreport.outputs import DIR_MARKER, check_output_dir, mark_output_dir, remove_stale
from tbreport.report.collect import ReportData
from tbreport.report.csvsafe import write_csv
from tbreport.report.export import EXPORT_FILES, write_export
from tbreport.report.summary import summarize

#: The files the report adds to the export tables of ``tbreport export``.
REPORT_FILES = ("summary.csv", "findings.csv")


def bundle_files() -> tuple[str, ...]:
    """Every file a bundle may contain (an existing directory holding only these is ours)."""
    return (*REPORT_FILES, *EXPORT_FILES, DIR_MARKER)


FINDING_COLUMNS = (
    "run",
    "code",
    "name",
    "severity",
    "step",
    "step_start",
    "step_end",
    "observed",
    "limit",
    "message",
    "advice",
    "tags",
    "evidence",
)


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """One row per finding (the observed value, its limit and the step range as columns);
    ``tags`` and ``evidence`` as JSON text."""
    rows = []
    for f in findings:
        rows.append(
            {
                "run": f.run,
                "code": f.code,
                "name": f.name,
                "severity": str(f.severity),
                "step": f.step,
                "step_start": f.step_range[0] if f.step_range else None,
                "step_end": f.step_range[1] if f.step_range else None,
                "observed": f.observed,
                "limit": f.limit,
                "message": f.message,
                "advice": f.advice,
                "tags": json.dumps(list(f.tags), ensure_ascii=False),
                "evidence": json.dumps(dict(f.evidence), ensure_ascii=False, default=str),
            }
        )
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    for column in ("step", "step_start", "step_end"):
        frame[column] = frame[column].astype("Int64")
    for column in ("observed", "limit"):
        frame[column] = frame[column].astype("float64")
    return frame


def write_bundle(
    data: ReportData,
    read: Any,
    directory: str | PathLike[str],
    *,
    force: bool = False,
    findings: pd.DataFrame | None = None,
    generator: str = "tbreport",
) -> list[Path]:
    """Write the CSV bundle into ``directory``.

    Args:
        data: The per-run records (for ``summary.csv``).
        read: The ReadResult (for the export tables).
        directory: Output directory; created when missing.
        force: Write into a directory that holds files tbreport did not write.
        findings: The findings table (``Diagnosis.to_frame(as_text=True)``, as
            ``check --format csv`` prints it); built from ``data.findings`` when None.
        generator: Written into the directory's marker file.

    Returns:
        The files written, ``summary.csv`` and ``findings.csv`` first.

    Raises:
        InputError: ``directory`` is a file, or holds foreign files and ``force`` is not set.
    """
    target = check_output_dir(directory, known_names=bundle_files(), force=force)
    ours = (target / DIR_MARKER).is_file()
    target.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv(summarize(data.runs), target / "summary.csv"),
        write_csv(
            findings if findings is not None else findings_frame(data.findings),
            target / "findings.csv",
        ),
    ]
    # The export tables are exactly those of `tbreport export`, written by the same code.
    written.extend(write_export(read, target, wide=False))
    if ours:  # files of an earlier bundle that this one does not write are stale
        known = tuple(name for name in bundle_files() if name != DIR_MARKER)
        remove_stale(target, known=known, written=written)
    mark_output_dir(target, generator=generator)
    return written
