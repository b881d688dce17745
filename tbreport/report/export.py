"""The tables of ``tbreport export`` (and of the report's CSV bundle), as CSV or Parquet files.

Everything a `ReadResult` holds, plus each tag's meaning; no point is dropped. CSV goes through
:func:`tbreport.report.csvsafe.write_csv` (formula-safe), Parquet is typed; both are written
atomically.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tbreport.diagnosis import describe_meanings
from tbreport.errors import InputError
from tbreport.outputs import atomic_open
from tbreport.reading.result import ReadResult
from tbreport.reading.selection import wide_scalars
from tbreport.report.csvsafe import write_csv

EXPORT_TABLES = (
    "meanings",
    "scalars",
    "scalars_wide",
    "histograms",
    "hparams",
    "runs",
    "text",
    "warnings",
)
#: Every file `tbreport export` may write (CSV or Parquet).
EXPORT_FILES = tuple(f"{name}.{ext}" for ext in ("csv", "parquet") for name in EXPORT_TABLES)
HISTOGRAM_EXPORT_COLUMNS = [
    "run",
    "tag",
    "step",
    "wall_time",
    "min",
    "max",
    "mean",
    "std",
    "num",
    "zero_fraction",
]


def histogram_export(histograms: pd.DataFrame) -> pd.DataFrame:
    """The histogram table for CSV: statistics per run, tag and step (buckets omitted)."""
    return histograms[HISTOGRAM_EXPORT_COLUMNS]


def warnings_frame(result: ReadResult) -> pd.DataFrame:
    return pd.DataFrame(
        [(w.kind, w.run, w.path, w.offset, w.message) for w in result.warnings],
        columns=["kind", "run", "path", "offset", "message"],
    ).astype({"offset": "Int64"})


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as Parquet atomically (typed columns: no formula neutralising needed).

    Raises:
        InputError: pyarrow (or fastparquet) is not installed.
    """
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            # Arrow needs one type per column: hparams mix numbers and text.
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    try:
        with atomic_open(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    except ImportError:
        raise InputError(
            "--format parquet needs pyarrow: pip install pyarrow (or use --format csv)"
        ) from None
    return path


def write_export(
    result: ReadResult, out_dir: Path, *, wide: bool, output_format: str = "csv"
) -> list[Path]:
    """Write every export table into ``out_dir``; return the files written."""
    histograms = histogram_export(result.histograms)
    if output_format == "parquet":
        # Parquet keeps the buckets as lists; CSV would need one cell per array.
        index = result.histograms.index
        histograms = result.histograms.assign(
            bucket_limit=pd.Series(
                [list(map(float, b)) for b in result.histograms["bucket_limit"]],
                index=index,
                dtype=object,
            ),
            bucket=pd.Series(
                [list(map(float, b)) for b in result.histograms["bucket"]],
                index=index,
                dtype=object,
            ),
        )
    tables = [
        ("scalars", result.scalars),
        ("histograms", histograms),
        ("hparams", result.hparams),
        ("runs", result.runs),
        ("text", result.text),
        ("warnings", warnings_frame(result)),
        ("meanings", describe_meanings(result)),
    ]
    if wide:
        tables.append(("scalars_wide", wide_scalars(result.scalars)))
    out_dir.mkdir(parents=True, exist_ok=True)
    if output_format == "parquet":
        return [write_parquet(frame, out_dir / f"{name}.parquet") for name, frame in tables]
    return [write_csv(frame, out_dir / f"{name}.csv") for name, frame in tables]
