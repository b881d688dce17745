"""Write TensorBoard event files for tests and benchmarks (never used by tbreport at run time).

It writes exactly what the common writers write (PyTorch ``simple_value`` scalars and
``HistogramProto`` histograms, TF2 rank-0 tensor scalars and ``[k, 3]`` tensor histograms with the
plugin metadata on the first value of a tag only), so readers can be tested without TensorFlow.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from tbreport.reading.records import masked_crc32c


def frame(data: bytes) -> bytes:
    """One TFRecord: length, length checksum, data, data checksum."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def file_version_event(*, wall_time: float = 0.0, step: int = 0) -> event_pb2.Event:
    """The first event of every modern event file."""
    return event_pb2.Event(wall_time=wall_time, step=step, file_version="brain.Event:2")


def session_start_event(*, step: int, wall_time: float = 0.0) -> event_pb2.Event:
    """What ``SummaryWriter(purge_step=step)`` writes after a restart."""
    return event_pb2.Event(
        wall_time=wall_time,
        step=step,
        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
    )


def scalar_event(tag: str, value: float, *, step: int, wall_time: float) -> event_pb2.Event:
    """A PyTorch/tensorboardX-style ``simple_value`` scalar."""
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


def _plugin_metadata(plugin: str, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content)
    )


def _tensor_event(
    tag: str,
    tensor: tensor_pb2.TensorProto,
    plugin: str,
    with_metadata: bool,
    *,
    step: int,
    wall_time: float,
) -> event_pb2.Event:
    """An event of one tensor summary; the plugin's metadata only when ``with_metadata``."""
    summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if with_metadata:
        summary_value.metadata.CopyFrom(_plugin_metadata(plugin))
    return event_pb2.Event(
        wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[summary_value])
    )


def tensor_scalar_event(
    tag: str,
    value: float,
    *,
    step: int,
    wall_time: float,
    with_metadata: bool,
    dtype: str = "float32",
) -> event_pb2.Event:
    """A TF2 ``tf.summary.scalar``: a rank-0 tensor; plugin metadata only when ``with_metadata``."""
    if dtype == "float32":
        tensor = tensor_pb2.TensorProto(dtype=1, float_val=[value])
    else:
        tensor = tensor_pb2.TensorProto(dtype=2, double_val=[value])
    tensor.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto())
    return _tensor_event(tag, tensor, "scalars", with_metadata, step=step, wall_time=wall_time)


def histogram_event(
    tag: str, values: Sequence[float] | np.ndarray, *, step: int, wall_time: float
) -> event_pb2.Event:
    """A PyTorch-style ``HistogramProto`` (right bucket edges, trimmed to the data's support)."""
    values = np.asarray(values, dtype=np.float64)
    edges = _torch_default_edges()
    counts, _ = np.histogram(values, bins=edges)
    nonzero = np.flatnonzero(counts)
    if len(nonzero):
        lo, hi = max(int(nonzero[0]) - 1, 0), int(nonzero[-1]) + 1
    else:
        lo, hi = 0, 0
    histo = summary_pb2.HistogramProto(
        min=float(values.min()) if len(values) else 0.0,
        max=float(values.max()) if len(values) else 0.0,
        num=float(len(values)),
        sum=float(values.sum()),
        sum_squares=float((values * values).sum()),
        bucket_limit=[float(x) for x in edges[lo + 1 : hi + 1]],
        bucket=[float(x) for x in counts[lo:hi]],
    )
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=histo)])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


def tensor_histogram_event(
    tag: str,
    values: Sequence[float] | np.ndarray,
    *,
    step: int,
    wall_time: float,
    with_metadata: bool,
    buckets: int = 30,
) -> event_pb2.Event:
    """A TF2 ``tf.summary.histogram``: a ``[k, 3]`` float64 tensor of (left, right, count)."""
    values = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(values, bins=buckets)
    rows = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
    tensor = tensor_pb2.TensorProto(dtype=2, tensor_content=rows.astype("<f8").tobytes())
    tensor.tensor_shape.dim.add(size=rows.shape[0])
    tensor.tensor_shape.dim.add(size=3)
    return _tensor_event(tag, tensor, "histograms", with_metadata, step=step, wall_time=wall_time)


def text_event(
    tag: str, text: str, *, step: int, wall_time: float, with_metadata: bool = True
) -> event_pb2.Event:
    """A text summary as ``add_text`` writes it (string tensor, plugin ``text``)."""
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=[text.encode("utf-8")])
    tensor.tensor_shape.dim.add(size=1)
    return _tensor_event(tag, tensor, "text", with_metadata, step=step, wall_time=wall_time)


def hparams_events(
    hparams: dict[str, float | str | bool],
    *,
    metrics: Iterable[str] = (),
    wall_time: float = 0.0,
) -> list[event_pb2.Event]:
    """The experiment, session_start_info and session_end_info events of ``add_hparams``."""
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name) for name in hparams],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics],
    )
    start = plugin_data_pb2.SessionStartInfo()
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = float(value)
        else:
            start.hparams[name].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    contents = [
        (
            "_hparams_/experiment",
            plugin_data_pb2.HParamsPluginData(version=0, experiment=experiment),
        ),
        (
            "_hparams_/session_start_info",
            plugin_data_pb2.HParamsPluginData(version=0, session_start_info=start),
        ),
        (
            "_hparams_/session_end_info",
            plugin_data_pb2.HParamsPluginData(version=0, session_end_info=end),
        ),
    ]
    events = []
    for tag, data in contents:
        value = summary_pb2.Summary.Value(
            tag=tag, metadata=_plugin_metadata("hparams", data.SerializeToString())
        )
        events.append(
            event_pb2.Event(wall_time=wall_time, summary=summary_pb2.Summary(value=[value]))
        )
    return events


def write_events(path: str | PathLike[str], events: Iterable[event_pb2.Event | bytes]) -> Path:
    """Write events (protos, or already-serialised bytes) as one event file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for event in events:
            data = event if isinstance(event, bytes) else event.SerializeToString()
            out.write(frame(data))
    return path


_DEFAULT_EDGES: np.ndarray | None = None


def _torch_default_edges() -> np.ndarray:
    """PyTorch's default histogram bins: ±1e-12·1.1^k up to 1e20, and 0."""
    global _DEFAULT_EDGES
    if _DEFAULT_EDGES is None:
        positive = []
        v = 1e-12
        while v < 1e20:
            positive.append(v)
            v *= 1.1
        pos = np.array(positive)
        _DEFAULT_EDGES = np.concatenate([-pos[::-1], [0.0], pos])
    return _DEFAULT_EDGES
