"""`ReadResult`, what ``tbreport.read`` returns, and the column contracts of its frames."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tbreport.model import ReadWarning
from tbreport.reading.grouping import fold_into_logical_runs
from tbreport.reading.selection import Selector, select, wide_scalars

SCALAR_COLUMNS = ["run", "tag", "step", "wall_time", "value"]
HISTOGRAM_COLUMNS = [
    "run",
    "tag",
    "step",
    "wall_time",
    "min",
    "max",
    "num",
    "sum",
    "sum_squares",
    "mean",
    "std",
    "zero_fraction",
    "bucket_limit",
    "bucket",
]
TEXT_COLUMNS = ["run", "tag", "step", "wall_time", "text"]


@dataclass
class ReadResult:
    """Everything read from a LOGDIR. See ``docs/architecture.md`` for the column contracts.

    Attributes:
        logdir: The directory (or file) that was read.
        scalars: ``run, tag, step, wall_time, value``; one row per point, nothing downsampled.
        histograms: per run, tag and step: summary statistics and the buckets.
        text: text summaries.
        hparams: one row per logical run, one column per hyperparameter.
        hparam_records: long form of every hparams source.
        runs: inventory, one row per run directory, with logical-run grouping facts.
        warnings: everything the reader could not take at face value.
    """

    logdir: str
    scalars: pd.DataFrame
    histograms: pd.DataFrame
    text: pd.DataFrame
    hparams: pd.DataFrame
    hparam_records: pd.DataFrame
    runs: pd.DataFrame
    warnings: list[ReadWarning]

    def logical_scalars(self) -> pd.DataFrame:
        """Scalars with sub-runs folded into their logical run (see `tbreport.reading.grouping`).

        Computed once and cached (diagnosis and reports both use it); treat it as read-only.
        """
        return self._logical("scalars")

    def logical_histograms(self) -> pd.DataFrame:
        """Histograms with sub-runs folded into their logical run; cached, read-only."""
        return self._logical("histograms")

    def _logical(self, name: str) -> pd.DataFrame:
        cache: dict[str, pd.DataFrame] = self.__dict__.setdefault("_logical_cache", {})
        if name not in cache:
            cache[name] = fold_into_logical_runs(getattr(self, name), self.runs)
        return cache[name]

    def select(self, *, runs: Selector = None, tags: Selector = None) -> ReadResult:
        """Only some runs and tags: regular expressions (case-insensitive) or lists of names.

        See :func:`tbreport.reading.selection.select`.
        """
        return select(self, runs=runs, tags=tags)

    def scalars_wide(self) -> pd.DataFrame:
        """Scalars with one row per run and step and one column per tag (nothing averaged:
        several points at one step go to further rows numbered by ``occurrence``)."""
        return wide_scalars(self.scalars)

    def __repr__(self) -> str:
        return (
            f"ReadResult(logdir={self.logdir!r}, runs={len(self.runs)}, "
            f"scalars={len(self.scalars)}, histograms={len(self.histograms)}, "
            f"warnings={len(self.warnings)})"
        )
