"""Reference engine: TensorBoard's own ``EventAccumulator`` with nothing downsampled.

Selectable with ``--engine accumulator`` / ``read(..., engine="accumulator")``. It is slow (a
pure-Python record reader) and inherits TensorBoard's known gaps, which the fast engine fixes:

- a record with a bad checksum in the middle of a file silently hides the rest of that file;
- TF2 tensor values are never purged on a restart (only ``simple_value`` scalars and histograms);
- only the first hparams summary per tag is kept (later ``add_hparams`` calls are invisible).

It exists so tests can prove that the fast engine returns the same points as TensorBoard does.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from tbreport.model import ReadWarning
from tbreport.reading.discovery import RunRef
from tbreport.reading.parsing import (
    _MAX_BROADCAST_VALUES,
    _NUMERIC_DTYPES,
    HistogramColumns,
    HistogramRow,
)
from tbreport.reading.rundata import RunData
from tbreport.safe_regex import Pattern

# Largest tensor handed to TensorBoard's make_ndarray whose values are not all in the record.
_MAX_TENSOR_VALUES = _MAX_BROADCAST_VALUES

_STORE_EVERYTHING = {
    "compressedHistograms": 0,
    "images": 0,
    "audio": 0,
    "scalars": 0,
    "histograms": 0,
    "tensors": 0,
}


def _load(directory: str) -> Any:  # an EventAccumulator (tensorboard is untyped)
    from tensorboard.backend.event_processing import event_accumulator

    # TensorBoard logs every truncated record at WARNING; our reader reports damage itself.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = event_accumulator.EventAccumulator(directory, size_guidance=_STORE_EVERYTHING)
    acc.Reload()
    return acc


def _ndarray(tensor_proto: Any) -> np.ndarray | None:
    """``tensor_util.make_ndarray``, refusing what would allocate far more than the record holds.

    A few bytes can claim 10^12 elements (one value broadcast to the shape); TensorBoard would
    try to build that array. Such tensors, and any the conversion rejects, are skipped (None).
    """
    from tensorboard.util import tensor_util

    dims = [int(d.size) for d in tensor_proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        return None
    size = math.prod(dims)
    if size > _MAX_TENSOR_VALUES:
        itemsize = np.dtype(_NUMERIC_DTYPES.get(tensor_proto.dtype, "<f8")).itemsize
        if len(tensor_proto.tensor_content) != size * itemsize:
            return None
    try:
        array: np.ndarray = tensor_util.make_ndarray(tensor_proto)
        return array
    except (ValueError, TypeError, MemoryError, OverflowError):
        return None


def read_runs_with_accumulator(
    runs: list[RunRef], *, tag_filter: Pattern | None = None
) -> list[RunData]:
    """Read each run directory with ``EventAccumulator`` into the fast engine's `RunData`."""
    out = []
    for run in runs:
        acc = _load(run.directory)
        available = acc.Tags()
        rows = _RunRows(tag_filter)
        rows.add_scalars(acc, available.get("scalars", []))
        rows.add_histograms(acc, available.get("histograms", []))
        rows.add_tensors(acc, available.get("tensors", []))
        hparam_contents = (
            [(tag, content) for tag, content in acc.PluginTagToContent("hparams").items()]
            if "hparams" in acc._plugin_to_tag_to_content
            else []
        )
        out.append(rows.run_data(run, hparam_contents))
    return out


class _RunRows:
    """The rows of one run as the accumulator hands them out, tags numbered as they come."""

    def __init__(self, tag_filter: Pattern | None) -> None:
        self.tag_filter = tag_filter
        self.tags: list[str] = []
        self.tag_ids: dict[str, int] = {}
        self.scalar_rows: list[tuple[int, int, float, float]] = []
        self.histograms: list[tuple[int, HistogramRow]] = []
        self.texts: list[tuple[int, int, float, str]] = []
        self.refused = 0

    def tag_id(self, tag: str) -> int:
        if tag not in self.tag_ids:
            self.tag_ids[tag] = len(self.tags)
            self.tags.append(tag)
        return self.tag_ids[tag]

    def keep(self, tag: str) -> bool:
        return self.tag_filter is None or self.tag_filter.search(tag) is not None

    def add_scalars(self, acc: Any, tags: list[str]) -> None:
        for tag in tags:
            if self.keep(tag):
                for e in acc.Scalars(tag):
                    self.scalar_rows.append((self.tag_id(tag), e.step, e.wall_time, e.value))

    def add_histograms(self, acc: Any, tags: list[str]) -> None:
        for tag in tags:
            if not self.keep(tag):
                continue
            for e in acc.Histograms(tag):
                h = e.histogram_value
                self.histograms.append(
                    (
                        self.tag_id(tag),
                        HistogramRow(
                            0,
                            0,
                            e.step,
                            e.wall_time,
                            h.min,
                            h.max,
                            h.num,
                            h.sum,
                            h.sum_squares,
                            np.asarray(h.bucket_limit, dtype=np.float64),
                            np.asarray(h.bucket, dtype=np.float64),
                            False,
                        ),
                    )
                )

    def add_tensors(self, acc: Any, tags: list[str]) -> None:
        """Tensors of the scalars, histograms and text plugins (TF2), as those kinds of rows."""
        for tag in tags:
            if not self.keep(tag):
                continue
            plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
            for e in acc.Tensors(tag):
                if plugin not in ("scalars", "histograms", "text"):
                    continue
                arr = _ndarray(e.tensor_proto)
                if arr is None:
                    self.refused += 1
                    continue
                if plugin == "scalars":
                    if arr.size != 1 or arr.dtype.kind not in "biuf":
                        self.refused += 1
                        continue
                    self.scalar_rows.append(
                        (self.tag_id(tag), e.step, e.wall_time, float(arr.ravel()[0]))
                    )
                elif plugin == "histograms":
                    self._add_tensor_histogram(tag, e, arr)
                elif plugin == "text":
                    strings = arr.ravel()
                    text = "\n".join(
                        s.decode("utf-8", errors="replace") if isinstance(s, bytes) else str(s)
                        for s in strings
                    )
                    self.texts.append((self.tag_id(tag), e.step, e.wall_time, text))

    def _add_tensor_histogram(self, tag: str, e: Any, arr: np.ndarray) -> None:
        """A TF2 ``[k, 3]`` histogram tensor (left edge, right edge, count per bucket)."""
        if arr.ndim != 2 or arr.shape[1] != 3 or arr.dtype.kind not in "biuf":
            return
        arr = arr.astype(np.float64)
        counts = arr[:, 2]
        nonzero = np.flatnonzero(counts)
        lo = float(arr[nonzero[0], 0]) if len(nonzero) else 0.0
        hi = float(arr[nonzero[-1], 1]) if len(nonzero) else 0.0
        self.histograms.append(
            (
                self.tag_id(tag),
                HistogramRow(
                    0,
                    0,
                    e.step,
                    e.wall_time,
                    lo,
                    hi,
                    float(counts.sum()),
                    float("nan"),
                    float("nan"),
                    arr[:, 1].copy(),
                    counts.copy(),
                    True,
                ),
            )
        )

    def run_data(self, run: RunRef, hparam_contents: list[tuple[str, bytes]]) -> RunData:
        warnings = []
        if self.refused:
            warnings.append(
                ReadWarning(
                    kind="undecodable-record",
                    path=run.directory,
                    run=run.name,
                    message=f"{self.refused} tensor values skipped: absurd shapes or not "
                    "convertible",
                )
            )
        tags, scalar_rows = self.tags, self.scalar_rows
        scalar_rows.sort(key=lambda r: tags[r[0]])  # tag-name order; stable keeps written order
        arr_tag = np.array([r[0] for r in scalar_rows], dtype=np.int32)
        return RunData(
            ref=run,
            tags=tags,
            scalar_tag=arr_tag,
            scalar_step=np.array([r[1] for r in scalar_rows], dtype=np.int64),
            scalar_wall=np.array([r[2] for r in scalar_rows], dtype=np.float64),
            scalar_value=np.array([r[3] for r in scalar_rows], dtype=np.float64),
            histograms=HistogramColumns.from_rows(
                [row for _, row in self.histograms], tags=[t for t, _ in self.histograms]
            ),
            texts=self.texts,
            hparam_contents=hparam_contents,
            files=len(run.files),
            bytes=sum(f.size for f in run.files),
            warnings=warnings,
        )
