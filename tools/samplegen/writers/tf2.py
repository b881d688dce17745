"""What ``tf.summary.create_file_writer`` writes, without TensorFlow (protos written directly)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import summary_v2 as histogram_summary_v2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def _scalar_metadata() -> summary_pb2.SummaryMetadata:
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    return scalar_metadata.create_summary_metadata(display_name=None, description=None)


class TF2SummaryWriter:
    """What ``tf.summary.create_file_writer`` produces: ``.v2`` files, tensor-valued summaries,
    plugin metadata only on the first value of each tag in the file."""

    def __init__(self, logdir: Path) -> None:
        self._writer = EventFileWriter(str(logdir), filename_suffix=".v2")
        self._tags_seen: set[str] = set()

    def _write(self, value: summary_pb2.Summary.Value, step: int, wall_time: float) -> None:
        if value.tag in self._tags_seen:
            value.ClearField("metadata")
        self._tags_seen.add(value.tag)
        event = event_pb2.Event(
            wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[value])
        )
        self._writer.add_event(event)

    def scalar(self, tag: str, value: float, step: int, wall_time: float) -> None:
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            float_val=[value],
        )
        self._write(
            summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=_scalar_metadata()),
            step,
            wall_time,
        )

    def histogram(self, tag: str, data: np.ndarray, step: int, wall_time: float) -> None:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN weights give NaN edges, as in TF
            summary = histogram_summary_v2.histogram_pb(tag, data, buckets=30)
        self._write(summary.value[0], step, wall_time)

    def keras_model(self, model_json: str, wall_time: float) -> None:
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name="graph_keras_model", content=b"1"
            )
        )
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[model_json.encode()],
        )
        self._write(
            summary_pb2.Summary.Value(tag="keras", tensor=tensor, metadata=metadata), 0, wall_time
        )

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
