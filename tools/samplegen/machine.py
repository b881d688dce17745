"""A simulated machine: deterministic wall times, host names, pids and event-file names.

The TensorBoard writers read the clock, host name and pid for event wall times and file names;
``SimulatedMachine`` patches what they see, so two generations write identical bytes. The
pathology zoo (``tools/zoo``) replays its runs through the same machine.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace
from typing import Any

import torch.utils.tensorboard.writer as torch_tb_writer
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.summary.writer import event_file_writer
from torch.utils.tensorboard.summary import hparams as _torch_hparams_summaries


class SimulatedClock:
    """A wall clock that only moves when the training code says so.

    The writers call ``time.time()`` for file names and event wall times. Calls from the main
    thread tick by a few microseconds (as consecutive writes really do); calls from the writers'
    background flush threads read the clock without moving it, so their timing cannot change
    what is written.
    """

    _TICK = 0.000137

    def __init__(self) -> None:
        self.now = 0.0
        self._main_thread = threading.main_thread()

    def time(self) -> float:
        if threading.current_thread() is self._main_thread:
            self.now += self._TICK
        return self.now

    def set(self, seconds: float) -> None:
        self.now = float(seconds)

    def advance(self, seconds: float) -> None:
        self.now += float(seconds)


def hparams_summaries(*args: Any, **kwargs: Any) -> tuple[summary_pb2.Summary, ...]:
    """``torch.utils.tensorboard.summary.hparams`` with a stable byte layout.

    ``SessionStartInfo.hparams`` is a protobuf map whose wire order follows the per-process string
    hash; re-serialising with ``deterministic=True`` keeps the content and sorts the keys.
    """
    summaries = _torch_hparams_summaries(*args, **kwargs)
    for summary in summaries:
        for value in summary.value:
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
            value.metadata.plugin_data.content = data.SerializeToString(deterministic=True)
    return summaries


class SimulatedMachine:
    """Patches the clock, host name, pid and writer counter seen by the TensorBoard writers."""

    def __init__(self) -> None:
        self.clock = SimulatedClock()
        self._host = "localhost"
        self._pid = 1
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> SimulatedMachine:
        time_shim = SimpleNamespace(time=self.clock.time)
        os_shim = SimpleNamespace(path=os.path, getpid=lambda: self._pid)
        socket_shim = SimpleNamespace(gethostname=lambda: self._host)
        for module, name, value in (
            (event_file_writer, "time", time_shim),
            (event_file_writer, "os", os_shim),
            (event_file_writer, "socket", socket_shim),
            (torch_tb_writer, "time", time_shim),
            (torch_tb_writer, "hparams", hparams_summaries),  # used by SummaryWriter.add_hparams
        ):
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)
        self._saved.append((event_file_writer, "_global_uid", event_file_writer._global_uid))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, name, value in reversed(self._saved):
            setattr(module, name, value)
        self._saved.clear()

    def start_process(
        self, *, host: str, pid: int, start: float, first_writer_uid: int = 0
    ) -> None:
        """Begin a new training process: its host, pid, start time and a fresh writer counter."""
        self._host, self._pid = host, pid
        self.clock.set(start)
        event_file_writer._global_uid = event_file_writer.AtomicCounter(first_writer_uid)
