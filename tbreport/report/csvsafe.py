"""CSV files that are safe to open in a spreadsheet.

Run names, tags, messages and hyperparameters come from event files and are untrusted. A text cell
such as ``=HYPERLINK(...)`` or ``@SUM(...)`` would be evaluated as a formula by Excel, LibreOffice
or Google Sheets. Every CSV tbreport writes goes through :func:`write_csv`, which prefixes such text
cells (and header names) with a single quote, while numeric columns stay plain numbers.
"""

from __future__ import annotations

import csv
import io
import re
from os import PathLike
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from tbreport.outputs import atomic_open

#: A text cell starting with one of these is read as a formula by common spreadsheets.
#: Tab and carriage return are included as OWASP recommends (they can precede a formula).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# A line break inside a cell followed by a formula character: tools that split on physical lines
# (or that mis-read a bare CR as the end of a row) would see a cell starting there.
_INNER_LINE_FORMULA = re.compile(r"(?<=[\r\n])(?=[=+\-@\t])")


def neutralise_cell(value: Any) -> Any:
    """Prefix a text value with ``'`` when a spreadsheet would read it as a formula.

    Every line of a multi-line value is treated the same way, so no physical line of the CSV
    starts with a formula, whichever way a reader splits it.

    Args:
        value: Any cell value; only strings are changed.

    Returns:
        The value, with ``'`` before a leading ``= + - @``, tab or CR, and before any of
        ``= + - @`` or tab that follows a CR or LF inside it.
    """
    if not isinstance(value, str):
        return value
    if "\r" in value or "\n" in value:
        value = _INNER_LINE_FORMULA.sub("'", value)
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _needs_neutralising(value: Any) -> bool:
    return isinstance(value, str) and (
        value.startswith(FORMULA_PREFIXES) or "\r" in value or "\n" in value
    )


def _is_text_column(series: pd.Series) -> bool:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return True
    return not (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    )


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot act as formulas.

    Numeric, boolean and datetime columns are returned unchanged; in text and mixed (object)
    columns only the string values are touched, so numbers in a mixed hparams column stay numbers.

    Args:
        frame: Any DataFrame.

    Returns:
        A new DataFrame (the input is not modified).
    """
    out = frame.copy(deep=False)
    for column in out.columns:
        series = out[column]
        if not _is_text_column(series):
            continue
        if isinstance(series.dtype, pd.CategoricalDtype):
            # Millions of rows share a few categories: fix the categories, not the rows.
            categories = list(series.cat.categories)
            renamed = [neutralise_cell(c) for c in categories]
            if renamed == categories:
                continue
            if len(set(renamed)) == len(renamed):
                out[column] = series.cat.rename_categories(renamed)
                continue
            series = series.astype(object)
        # pandas-stubs reject na_value=None, which pandas documents and accepts
        values = series.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
        if any(_needs_neutralising(v) for v in values):
            values = np.array([neutralise_cell(v) for v in values], dtype=object)
            out[column] = pd.Series(values, index=out.index, dtype=object)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def _has_line_break(frame: pd.DataFrame) -> bool:
    """Whether a text cell or a header holds CR or LF (after neutralising)."""
    if any("\r" in str(c) or "\n" in str(c) for c in frame.columns):
        return True
    for column in frame.columns:
        series = frame[column]
        if not _is_text_column(series):
            continue
        values = series.cat.categories if isinstance(series.dtype, pd.CategoricalDtype) else series
        if any(isinstance(v, str) and ("\r" in v or "\n" in v) for v in values):
            return True
    return False


def _to_csv(safe: pd.DataFrame, handle: IO[str]) -> None:
    # Python's csv module quotes a field holding LF (the line terminator) but not one holding a
    # bare CR, which spreadsheets take as the end of the row. When any cell holds a line break,
    # every text cell is quoted; otherwise the file stays minimally quoted.
    quoting: Literal[0, 2] = csv.QUOTE_NONNUMERIC if _has_line_break(safe) else csv.QUOTE_MINIMAL
    safe.to_csv(handle, index=False, lineterminator="\n", quoting=quoting)


def csv_text(frame: pd.DataFrame, *, index: bool = False) -> str:
    """``frame`` as formula-safe CSV text (what :func:`write_csv` writes), e.g. for stdout."""
    buffer = io.StringIO()
    _to_csv(neutralise_frame(frame.reset_index() if index else frame), buffer)
    return buffer.getvalue()


def write_csv(frame: pd.DataFrame, path: str | PathLike[str], *, index: bool = False) -> Path:
    """Write ``frame`` as a formula-safe UTF-8 CSV, atomically.

    Text cells and header names that begin with ``=``, ``+``, ``-``, ``@`` (or tab/CR) get a
    leading ``'``, as does every line inside a multi-line cell; cells holding CR or LF are
    quoted. Numbers are written as plain numbers with full precision. The file appears at
    ``path`` only when complete (temporary file + ``os.replace``).

    Args:
        frame: The table.
        path: The CSV file to write; its directory is created when missing.
        index: Also write the DataFrame index as the first column.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    safe = neutralise_frame(frame.reset_index() if index else frame)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        _to_csv(safe, handle)
    return Path(path)
