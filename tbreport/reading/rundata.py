"""`RunData`: one run directory's assembled rows, the record every reading step passes on.

Parsing produces it (`assemble.assemble_run`, or the reference engine in `accumulator`), grouping
and hparams read it, `assemble.combine` turns a list of them into a `ReadResult`. It lives alone
so that all of these import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from tbreport.model import ReadWarning
from tbreport.reading.discovery import RunRef

if TYPE_CHECKING:
    from tbreport.reading.parsing import HistogramColumns


class RunFacts(NamedTuple):
    """What the inventory needs of a run, taken where the run is assembled (in a worker when
    reading in parallel): its scalar tag ids (ascending), number of histogram tags, first and
    last step, first and last valid wall time (None for a range without values)."""

    scalar_tag_ids: list[int]
    histogram_tags: int
    first_step: float | None
    last_step: float | None
    first_wall: float | None
    last_wall: float | None


@dataclass
class RunData:
    """One run's assembled rows, before runs are combined into categorical frames."""

    ref: RunRef
    tags: list[str]
    scalar_tag: np.ndarray
    scalar_step: np.ndarray
    scalar_wall: np.ndarray
    scalar_value: np.ndarray
    # ``tag`` holds indices into ``tags``; rows in tag-name order, then in written order.
    histograms: HistogramColumns
    texts: list[tuple[int, int, float, str]]  # (tag id, step, wall time, text), likewise
    hparam_contents: list[tuple[str, bytes]]
    files: int
    bytes: int
    purged: int = 0
    duplicate_steps: int = 0
    warnings: list[ReadWarning] = field(default_factory=list)
    # Set by `tbreport.reading.grouping.take_facts` once the rows are final.
    facts: RunFacts | None = None
    # Each histogram row's ``bucket_limit`` and ``bucket`` as object arrays of views, when built
    # ahead of `assemble.combine` (by the reading process while workers still read).
    bucket_views: tuple[np.ndarray, np.ndarray] | None = None
