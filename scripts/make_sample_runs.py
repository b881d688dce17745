#!/usr/bin/env python
"""Regenerate the labelled sample TensorBoard runs in ``sample_runs/``.

Every run comes from a real (tiny) PyTorch training job on synthetic data, logged the way one of
five real writers lays out its files:

* ``autostock/``: the AutoStock Trader ``BaseModel`` loop (``Loss/train``, ``Gradient/norm``, ...).
* ``puffin/``: the puffin ``TrainingLogger`` (``train_loss``, ``pred_std``, ``add_hparams``).
* ``hf/``: the HuggingFace ``Trainer`` with its ``TensorBoardCallback``.
* ``lightning/``: PyTorch Lightning's ``TensorBoardLogger`` (emulated, Lightning is not needed).
* ``keras/``: the Keras 3 ``TensorBoard`` callback on TF2 (protos written directly, TF is not
  needed).

The labels in ``labels.json`` say which training problems each run really shows. The script is
deterministic: wall times, host names, process ids and file names come from a simulated clock and
machine, and every run is seeded, so two invocations on the same machine write identical bytes.

Usage::

    pip install -e .[samples]        # or: pip install torch
    python scripts/make_sample_runs.py [--out sample_runs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # pragma: no cover - torch is an optional extra
    sys.exit("make_sample_runs.py needs PyTorch: pip install torch (or pip install -e .[samples])")

import torch.utils.tensorboard.writer as torch_tb_writer
import yaml
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import summary_v2 as histogram_summary_v2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.summary.writer import event_file_writer
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as _torch_hparams_summaries

SCHEMA_VERSION = 1
PROBLEMS = (
    "overfitting",
    "underfitting",
    "erratic-loss",
    "non-finite-loss",
    "exploding-gradients",
    "vanishing-gradients",
    "dead-neurons",
    "collapsed-predictions",
    "weight-collapse",
)
LAYOUT_DIRS = ("autostock", "puffin", "hf", "lightning", "keras")


# --------------------------------------------------------------------------------------------
# Simulated machine: deterministic wall times, host names, pids and event file names
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    kind: str  # "regression" or "classification"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def _as_tensors(x_tr, y_tr, x_va, y_va, kind: str) -> Dataset:
    def conv(a, target):
        a = np.asarray(a)
        if (kind == "classification" and target) or np.issubdtype(a.dtype, np.integer):
            return torch.from_numpy(a.astype(np.int64))  # class labels and token ids
        return torch.from_numpy(a.astype(np.float32))

    return Dataset(conv(x_tr, False), conv(y_tr, True), conv(x_va, False), conv(y_va, True), kind)


def factor_returns(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    n_features: int = 16,
    noise: float = 0.3,
    target_mean: float = 0.0,
    misaligned: bool = False,
    scale: float = 1.0,
) -> Dataset:
    """Tabular "factor -> next-period return" regression with a non-linear signal.

    ``misaligned=True`` shuffles the targets against the features (a broken join), so the features
    carry no information about the target at all. ``scale`` multiplies the target (0.01 gives
    raw daily-return units).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.standard_normal((n, n_features))
    w1, w2 = rng.standard_normal((2, n_features)) / math.sqrt(n_features)
    signal = 1.2 * np.tanh(1.5 * x @ w1) + 0.8 * np.sin(2.0 * x @ w2) + 0.5 * x[:, 0] * x[:, 1]
    signal = (signal - signal.mean()) / signal.std()
    y = target_mean + signal + noise * rng.standard_normal(n)
    if misaligned:
        y = rng.permutation(y)
    y = scale * y[:, None]
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def nonlinear_surface(
    *, seed: int, n_train: int, n_val: int, n_features: int = 8, noise: float = 0.1
) -> Dataset:
    """A smooth target with no linear component at all (a linear model cannot beat the mean)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.uniform(-2.0, 2.0, size=(n, n_features))
    y = (
        np.cos(1.7 * x[:, 0]) * np.cos(1.3 * x[:, 1])
        + 0.6 * (x[:, 2] ** 2 - 4.0 / 3.0)
        + 0.5 * np.cos(2.0 * x[:, 3])
    )
    y = (y - y.mean()) / y.std() + noise * rng.standard_normal(n)
    y = y[:, None]
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def price_windows(
    *, seed: int, n_train: int, n_val: int, window: int = 20, noise: float = 0.1, flat: bool = False
) -> Dataset:
    """Windows of a synthetic, seasonal "price" series; the target is the next value.

    Each sample is ``window`` steps of (level, one-step change). ``flat=True`` flattens the window
    for MLP models.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    length = window + 1
    periods = np.array([7.0, 17.0, 41.0])
    amps = rng.uniform(0.4, 1.0, size=(n, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(n, 3))
    start = rng.uniform(0, 200, size=(n, 1))
    t = start + np.arange(length)[None, :]
    level = np.zeros((n, length))
    for k, period in enumerate(periods):
        level += amps[:, k : k + 1] * np.sin(2 * np.pi * t / period + phases[:, k : k + 1])
    level += noise * rng.standard_normal((n, length))
    level /= level[:, :window].std()
    change = np.diff(level[:, :window], axis=1, prepend=level[:, :1])
    x = np.stack([level[:, :window], change], axis=-1)
    y = level[:, window:]
    if flat:
        x = x.reshape(n, -1)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def gaussian_classes(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    n_features: int = 10,
    n_classes: int = 4,
    spread: float = 1.0,
    label_noise: float = 0.0,
) -> Dataset:
    """Mixture-of-Gaussians classification, two clusters per class (not linearly separable)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    centres = rng.standard_normal((n_classes * 2, n_features)) * 1.6
    cluster = rng.integers(0, n_classes * 2, size=n)
    x = centres[cluster] + spread * rng.standard_normal((n, n_features))
    y = cluster % n_classes
    flip = rng.random(n) < label_noise
    y = np.where(flip, rng.integers(0, n_classes, size=n), y)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classification")


def bar_images(
    *, seed: int, n_train: int, n_val: int, size: int = 12, noise: float = 0.6
) -> Dataset:
    """Noisy 1-channel images holding a horizontal, vertical or diagonal bar (3 classes)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    y = rng.integers(0, 3, size=n)
    imgs = noise * rng.standard_normal((n, 1, size, size))
    pos = rng.integers(2, size - 2, size=n)
    for i in range(n):
        p = pos[i]
        if y[i] == 0:
            imgs[i, 0, p, 1:-1] += 1.5
        elif y[i] == 1:
            imgs[i, 0, 1:-1, p] += 1.5
        else:
            idx = np.arange(1, size - 1)
            imgs[i, 0, idx, (idx + p) % size] += 1.5
    return _as_tensors(imgs[:n_train], y[:n_train], imgs[n_train:], y[n_train:], "classification")


def token_sequences(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    seq_len: int = 16,
    vocab: int = 24,
    label_noise: float = 0.05,
    regression: bool = False,
) -> Dataset:
    """Token sequences labelled 1 when token 5 occurs more often than token 6 ("sentiment").

    ``regression=True`` returns the noisy sentiment score itself (scaled to unit variance).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.integers(3, vocab, size=(n, seq_len))
    # Plant a few of the two marker tokens so the classes are balanced but not trivial.
    for i in range(n):
        k_pos, k_neg = rng.integers(0, 4, size=2)
        slots = rng.choice(seq_len, size=k_pos + k_neg, replace=False)
        x[i, slots[:k_pos]] = 5
        x[i, slots[k_pos:]] = 6
    score = (x == 5).sum(1) - (x == 6).sum(1) + 0.5 * rng.standard_normal(n)
    if regression:
        y = (score / score.std())[:, None]
        return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")
    y = (score > 0).astype(np.int64)
    flip = rng.random(n) < label_noise
    y = np.where(flip, 1 - y, y)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classification")


# --------------------------------------------------------------------------------------------
# Models (parameter names are what the writers put into histogram tags)
# --------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class FeedforwardNet(nn.Module):
    """MLP as ``self.network = nn.Sequential(Linear, act, [Dropout], ..., Linear)``."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        output_dim: int = 1,
        *,
        dropout: float = 0.0,
        activation: str = "relu",
        attr: str = "network",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = input_dim
        for width in hidden_dims:
            layers += [nn.Linear(prev, width), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = width
        layers.append(nn.Linear(prev, output_dim))
        self.attr = attr
        setattr(self, attr, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.attr)(x)

    def linears(self) -> list[nn.Linear]:
        return [m for m in getattr(self, self.attr) if isinstance(m, nn.Linear)]


class LSTMForecaster(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class ResidualGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 2) -> None:
        super().__init__()
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_proj(x)
        out, _ = self.gru(h)
        return self.fc(out[:, -1] + h[:, -1])


class GRUForecaster(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class Conv1dNet(nn.Module):
    """Temporal CNN over (batch, time, features) windows."""

    def __init__(self, in_channels: int, channels: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, channels, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=5, padding=2)
        self.fc = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x.transpose(1, 2)))
        h = F.relu(self.conv2(h))
        return self.fc(h.mean(dim=2))


class ShapeCNN(nn.Module):
    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.relu(self.conv2(h))
        return self.fc(h.mean(dim=(2, 3)))


@dataclass
class TinyEncoderConfig:
    """A BERT-like config; serialised into the HF ``model_config`` text."""

    vocab_size: int = 24
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 16
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    use_layer_norm: bool = True
    num_labels: int = 2

    def to_json_string(self) -> str:
        config = {
            "_name_or_path": "tiny-encoder",
            "architectures": ["TinyEncoderForSequenceClassification"],
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "classifier_dropout": None,
            "hidden_act": "gelu",
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "hidden_size": self.hidden_size,
            "id2label": {str(i): f"LABEL_{i}" for i in range(self.num_labels)},
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "label2id": {f"LABEL_{i}": i for i in range(self.num_labels)},
            "layer_norm_eps": self.layer_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "tiny-encoder",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "problem_type": "regression" if self.num_labels == 1 else "single_label_classification",
            "torch_dtype": "float32",
            "transformers_version": "4.46.3",
            "use_layer_norm": self.use_layer_norm,
            "vocab_size": self.vocab_size,
        }
        return json.dumps(config, indent=2, sort_keys=True) + "\n"


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: TinyEncoderConfig) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(
            cfg.hidden_size,
            cfg.num_attention_heads,
            dropout=cfg.attention_probs_dropout_prob,
            batch_first=True,
        )
        norm = (
            (lambda: nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps))
            if cfg.use_layer_norm
            else nn.Identity
        )
        self.attention_norm = norm()
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = norm()
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        attn, _ = self.attention(h, h, h, need_weights=False)
        h = self.attention_norm(h + self.dropout(attn))
        ffn = self.output(F.gelu(self.intermediate(h)))
        return self.output_norm(h + self.dropout(ffn))


class TinyEncoderForSequenceClassification(nn.Module):
    def __init__(self, cfg: TinyEncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.layers = nn.ModuleList(_EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        for module in self.modules():  # BERT-style init
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=cfg.initializer_range)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        for layer in self.layers:
            nn.init.normal_(layer.attention.in_proj_weight, std=cfg.initializer_range)
            nn.init.normal_(layer.attention.out_proj.weight, std=cfg.initializer_range)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1])
        h = self.word_embeddings(ids) + self.position_embeddings(pos)[None]
        for layer in self.layers:
            h = layer(h)
        return self.classifier(h.mean(dim=1))


# --------------------------------------------------------------------------------------------
# A small, deterministic training loop with hooks for the different loggers
# --------------------------------------------------------------------------------------------


def total_grad_norm(params: list[torch.Tensor]) -> float:
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    )


@dataclass
class StepInfo:
    epoch: int
    step_in_epoch: int
    steps_per_epoch: int
    global_step: int  # optimizer steps done, counting this one
    loss: float
    grad_norm: float
    lr: float


@dataclass
class EpochInfo:
    epoch: int
    train_loss: float  # mean of the epoch's batch losses
    val_loss: float
    grad_norm: float  # mean of the epoch's total gradient norms (before clipping)
    lr: float
    global_step: int


@dataclass
class Trainer:
    """Minibatch training with per-step and per-epoch hooks.

    Attributes:
        lr_at_step: Optional schedule, ``lr = lr_at_step(global_step)`` set before each step.
        epoch_scheduler: Optional ``f(optimizer, val_loss)`` called after each epoch.
        stop_after_nonfinite: Stop once this many consecutive epochs had a non-finite train loss
            (the runs keep logging the NaN/inf values for a few epochs, as real loops do).
    """

    model: nn.Module
    data: Dataset
    optimizer: torch.optim.Optimizer
    epochs: int
    batch_size: int
    seed: int
    clip_norm: float | None = None
    lr_at_step: Callable[[int], float] | None = None
    epoch_scheduler: Callable[[torch.optim.Optimizer, float], None] | None = None
    stop_after_nonfinite: int = 5
    eval_batch_size: int = 512
    global_step: int = 0
    history: list[EpochInfo] = field(default_factory=list)

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.data.kind == "classification":
            return F.cross_entropy(out, target)
        return F.mse_loss(out, target)

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        total, count = 0.0, 0
        x, y = self.data.x_val, self.data.y_val
        for i in range(0, x.shape[0], self.eval_batch_size):
            xb, yb = x[i : i + self.eval_batch_size], y[i : i + self.eval_batch_size]
            total += float(self.loss(self.model(xb), yb)) * xb.shape[0]
            count += xb.shape[0]
        self.model.train()
        return total / count

    def fit(
        self,
        *,
        on_step: Callable[[StepInfo], None] | None = None,
        on_epoch: Callable[[EpochInfo], None] | None = None,
    ) -> list[EpochInfo]:
        gen = torch.Generator().manual_seed(self.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        n = self.data.n_train
        steps_per_epoch = math.ceil(n / self.batch_size)
        nonfinite_epochs = 0
        self.model.train()
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            losses, norms = [], []
            for b in range(steps_per_epoch):
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                if self.lr_at_step is not None:
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.lr_at_step(self.global_step)
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.loss(self.model(self.data.x_train[idx]), self.data.y_train[idx])
                loss.backward()
                norm = total_grad_norm(params)
                if self.clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
                self.optimizer.step()
                self.global_step += 1
                losses.append(loss.item())
                norms.append(norm)
                if on_step is not None:
                    on_step(
                        StepInfo(
                            epoch,
                            b,
                            steps_per_epoch,
                            self.global_step,
                            loss.item(),
                            norm,
                            float(self.optimizer.param_groups[0]["lr"]),
                        )
                    )
            train_loss = float(np.mean(losses))
            info = EpochInfo(
                epoch,
                train_loss,
                self.evaluate(),
                float(np.mean(norms)),
                float(self.optimizer.param_groups[0]["lr"]),
                self.global_step,
            )
            self.history.append(info)
            if on_epoch is not None:
                on_epoch(info)
            if self.epoch_scheduler is not None:
                self.epoch_scheduler(self.optimizer, info.val_loss)
            nonfinite_epochs = 0 if math.isfinite(train_loss) else nonfinite_epochs + 1
            if nonfinite_epochs >= self.stop_after_nonfinite:
                break
        return self.history


def plateau_scheduler(optimizer: torch.optim.Optimizer, *, factor: float, patience: int):
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=factor, patience=patience)
    return lambda _opt, val_loss: sched.step(val_loss)


def seeded(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def finite_tensor(t: torch.Tensor | None) -> bool:
    return t is not None and bool(torch.isfinite(t).all())


# --------------------------------------------------------------------------------------------
# Run registry
# --------------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """One logical run: where it goes, how it is made, and what it really shows."""

    path: str  # logical run path relative to the output directory
    layout: str
    problems: list[str]
    description: str  # one sentence for labels.json
    recipe: str  # model, optimiser, LR, data (README)
    shows: str  # what the curves show (README)
    build: Callable[[SimulatedMachine, Path], None]
    process: str = ""  # runs sharing a process key are trained one after another in one process
    expected: str = ""  # expected findings (README); defaults to the problems
    # Debatable problems: a finding for one is neither required nor a false alarm (the scoring
    # rule of the real-run corpus).
    allowed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.process:
            self.process = self.path
        unknown = set(self.problems) - set(PROBLEMS)
        if unknown:
            raise ValueError(f"{self.path}: unknown problem names {sorted(unknown)}")


RUNS: list[RunSpec] = []


def register(**kwargs: Any) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        RUNS.append(RunSpec(build=fn, **kwargs))
        return fn

    return deco


# --------------------------------------------------------------------------------------------
# Layout 1: AutoStock Trader BaseModel.fit (torch SummaryWriter, step = epoch)
# --------------------------------------------------------------------------------------------


def autostock_fit(
    machine: SimulatedMachine,
    logdir: Path,
    trainer: Trainer,
    *,
    hist_params: list[str],
    seconds_per_epoch: float,
) -> list[EpochInfo]:
    writer = SummaryWriter(log_dir=str(logdir))
    named = dict(trainer.model.named_parameters())
    best_val = math.inf

    def on_epoch(info: EpochInfo) -> None:
        nonlocal best_val
        machine.clock.advance(seconds_per_epoch)
        writer.add_scalar("Loss/train", info.train_loss, info.epoch)
        writer.add_scalar("Loss/validation", info.val_loss, info.epoch)
        writer.add_scalar("Learning_Rate", info.lr, info.epoch)
        writer.add_scalar("Gradient/norm", info.grad_norm, info.epoch)
        if info.val_loss < best_val:  # a new best model is saved
            best_val = info.val_loss
            writer.add_scalar("Best_Val_Loss", best_val, info.epoch)
        if info.epoch % 10 == 0:
            for name in hist_params:
                param = named[name]
                # add_histogram raises on all-NaN input, so the loop skips broken tensors.
                if finite_tensor(param.data):
                    writer.add_histogram(f"Weights/{name}", param.data, info.epoch)
                if finite_tensor(param.grad):
                    writer.add_histogram(f"Gradients/{name}", param.grad, info.epoch)

    history = trainer.fit(on_epoch=on_epoch)
    writer.close()
    return history


# --------------------------------------------------------------------------------------------
# Layout 2: puffin TrainingLogger (torch SummaryWriter, add_hparams at the end)
# --------------------------------------------------------------------------------------------


def puffin_fit(
    machine: SimulatedMachine,
    logdir: Path,
    trainer: Trainer,
    *,
    hparams: dict[str, Any],
    hist_params: list[str],
    seconds_per_epoch: float,
    pred_every: int = 1,
    sample_size: int = 256,
) -> list[EpochInfo]:
    writer = SummaryWriter(log_dir=str(logdir), flush_secs=120)
    named = dict(trainer.model.named_parameters())
    sample_batch = trainer.data.x_val[:sample_size]

    def on_epoch(info: EpochInfo) -> None:
        machine.clock.advance(seconds_per_epoch)
        # logger.log_scalars(epoch, train_loss=..., val_loss=...); logger.log_learning_rate(...)
        writer.add_scalar("train_loss", info.train_loss, info.epoch)
        writer.add_scalar("val_loss", info.val_loss, info.epoch)
        for i, group in enumerate(trainer.optimizer.param_groups):
            writer.add_scalar(f"learning_rate/group_{i}", group["lr"], info.epoch)
        if info.epoch % pred_every == 0:
            trainer.model.eval()
            with torch.no_grad():
                preds = trainer.model(sample_batch)
            trainer.model.train()
            writer.add_scalar("pred_mean", preds.mean().item(), info.epoch)
            writer.add_scalar("pred_std", preds.std().item(), info.epoch)
        if info.epoch % 10 == 0:
            for name in hist_params:  # logger.log_weights / logger.log_gradients
                param = named[name]
                if finite_tensor(param.data):
                    writer.add_histogram(f"weights/{name}", param.data, info.epoch)
            for name in hist_params:
                param = named[name]
                if finite_tensor(param.grad):
                    writer.add_histogram(f"gradients/{name}", param.grad, info.epoch)

    history = trainer.fit(on_epoch=on_epoch)
    val = np.array([h.val_loss for h in history])
    finite_val = val[np.isfinite(val)]
    metrics = {
        "hparam/best_val_loss": float(finite_val.min()) if finite_val.size else float("nan"),
        "hparam/final_val_loss": float(val[-1]),
    }
    machine.clock.advance(0.4)
    writer.add_hparams(hparams, metrics)  # default run_name: str(time.time())
    writer.flush()
    writer.close()
    return history


# --------------------------------------------------------------------------------------------
# Layout 3: HuggingFace Trainer + TensorBoardCallback
# --------------------------------------------------------------------------------------------


def hf_training_args(name: str, **overrides: Any) -> dict[str, Any]:
    """A TrainingArguments.to_dict()-like mapping (field order as in transformers 4.46)."""
    args: dict[str, Any] = {
        "output_dir": f"hf/{name}",
        "overwrite_output_dir": False,
        "do_train": False,
        "do_eval": True,
        "do_predict": False,
        "eval_strategy": "steps",
        "prediction_loss_only": False,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "per_gpu_train_batch_size": None,
        "per_gpu_eval_batch_size": None,
        "gradient_accumulation_steps": 1,
        "eval_accumulation_steps": None,
        "eval_delay": 0,
        "torch_empty_cache_steps": None,
        "learning_rate": 5e-05,
        "weight_decay": 0.0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-08,
        "max_grad_norm": 1.0,
        "num_train_epochs": 3.0,
        "max_steps": -1,
        "lr_scheduler_type": "linear",
        "lr_scheduler_kwargs": {},
        "warmup_ratio": 0.0,
        "warmup_steps": 0,
        "log_level": "passive",
        "log_level_replica": "warning",
        "log_on_each_node": True,
        "logging_dir": f"hf/{name}/runs/Nov21_10-00-00_host",
        "logging_strategy": "steps",
        "logging_first_step": False,
        "logging_steps": 10,
        "logging_nan_inf_filter": True,
        "save_strategy": "no",
        "save_steps": 500,
        "save_total_limit": None,
        "save_safetensors": True,
        "save_on_each_node": False,
        "save_only_model": False,
        "no_cuda": False,
        "use_cpu": True,
        "seed": 42,
        "data_seed": None,
        "jit_mode_eval": False,
        "bf16": False,
        "fp16": False,
        "fp16_opt_level": "O1",
        "half_precision_backend": "auto",
        "local_rank": 0,
        "tpu_num_cores": None,
        "debug": [],
        "dataloader_drop_last": False,
        "eval_steps": 20,
        "dataloader_num_workers": 0,
        "dataloader_prefetch_factor": None,
        "past_index": -1,
        "run_name": f"hf/{name}",
        "disable_tqdm": False,
        "remove_unused_columns": True,
        "label_names": None,
        "load_best_model_at_end": False,
        "metric_for_best_model": None,
        "greater_is_better": None,
        "ignore_data_skip": False,
        "optim": "adamw_torch",
        "optim_args": None,
        "adafactor": False,
        "group_by_length": False,
        "report_to": ["tensorboard"],
        "dataloader_pin_memory": True,
        "skip_memory_metrics": True,
        "push_to_hub": False,
        "hub_token": "<HUB_TOKEN>",
        "gradient_checkpointing": False,
        "include_inputs_for_metrics": False,
        "eval_do_concat_batches": True,
        "torch_compile": False,
        "include_tokens_per_second": False,
        "include_num_input_tokens_seen": False,
    }
    for key, value in overrides.items():
        if key not in args:
            raise KeyError(f"not a TrainingArguments field here: {key}")
        args[key] = value
    return args


def hf_train(
    machine: SimulatedMachine,
    logdir: Path,
    *,
    model: TinyEncoderForSequenceClassification,
    data: Dataset,
    args: dict[str, Any],
    seconds_per_step: float,
) -> list[dict[str, float]]:
    """Train like ``Trainer.train()`` and log like ``TensorBoardCallback``; returns the logs."""
    torch.manual_seed(args["seed"])
    batch = args["per_device_train_batch_size"]
    steps_per_epoch = math.ceil(data.n_train / batch)
    epochs = int(args["num_train_epochs"])
    total_steps = steps_per_epoch * epochs
    base_lr, warmup = args["learning_rate"], args["warmup_steps"]

    def lr_at(step: int) -> float:  # get_{linear,constant}_schedule_with_warmup
        if step < warmup:
            return base_lr * step / max(1, warmup)
        if args["lr_scheduler_type"] == "constant":
            return base_lr
        return base_lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    decay, no_decay = [], []
    for pname, param in model.named_parameters():
        (no_decay if pname.endswith("bias") or "norm" in pname else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if args["optim"] == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=base_lr)
    else:
        optimizer = torch.optim.AdamW(
            groups,
            lr=base_lr,
            betas=(args["adam_beta1"], args["adam_beta2"]),
            eps=args["adam_epsilon"],
        )
    trainer = Trainer(
        model,
        data,
        optimizer,
        epochs=epochs,
        batch_size=batch,
        seed=args["seed"],
        clip_norm=args["max_grad_norm"] or None,
        lr_at_step=lr_at,
        stop_after_nonfinite=10**9,
        eval_batch_size=args["per_device_eval_batch_size"],
    )

    writer = SummaryWriter(log_dir=str(logdir))
    writer.add_text("args", json.dumps(args, indent=2))  # args.to_json_string()
    writer.add_text("model_config", model.config.to_json_string())
    logs_written: list[dict[str, float]] = []

    def log(logs: dict[str, float], step: int) -> None:  # Trainer.log -> TensorBoardCallback.on_log
        logs_written.append({**logs, "step": step})
        for key, value in logs.items():
            # rewrite_logs: eval_* -> eval/*, everything else -> train/*
            tag = "eval/" + key[len("eval_") :] if key.startswith("eval_") else "train/" + key
            writer.add_scalar(tag, value, step)
        writer.flush()

    n_params = sum(p.numel() for p in model.parameters())
    window = {"sum": 0.0, "last_logged": 0}
    total_loss = 0.0
    start = machine.clock.now

    @torch.no_grad()
    def evaluate(epoch_float: float, step: int) -> None:
        model.eval()
        logits = torch.cat([model(data.x_val[i : i + 64]) for i in range(0, len(data.x_val), 64)])
        model.train()
        metrics: dict[str, float] = {}
        if data.kind == "classification":
            metrics["eval_loss"] = float(F.cross_entropy(logits, data.y_val))
            metrics["eval_accuracy"] = float((logits.argmax(1) == data.y_val).float().mean())
        else:
            metrics["eval_loss"] = float(F.mse_loss(logits, data.y_val))
        eval_steps = math.ceil(len(data.x_val) / args["per_device_eval_batch_size"])
        runtime = round(0.0213 * eval_steps + 0.0087, 4)
        machine.clock.advance(runtime)
        log(
            {
                **metrics,
                "eval_runtime": runtime,
                "eval_samples_per_second": round(len(data.x_val) / runtime, 3),
                "eval_steps_per_second": round(eval_steps / runtime, 3),
                "epoch": epoch_float,
            },
            step,
        )

    def on_step(info: StepInfo) -> None:
        nonlocal total_loss
        machine.clock.advance(seconds_per_step)
        steps_before = info.global_step - 1
        if args["logging_nan_inf_filter"] and not math.isfinite(info.loss):
            # Trainer replaces a NaN/inf step loss by the running average of the window, so
            # once the model is NaN every logged train loss becomes 0.0.
            window["sum"] += window["sum"] / (1 + steps_before - window["last_logged"])
        else:
            window["sum"] += info.loss
        epoch_float = info.epoch + (info.step_in_epoch + 1) / info.steps_per_epoch
        step = info.global_step
        if step % args["logging_steps"] == 0:
            loss = window["sum"] / (step - window["last_logged"])
            total_loss += window["sum"]
            window.update(sum=0.0, last_logged=step)
            log(
                {
                    "loss": round(loss, 4),
                    "grad_norm": info.grad_norm,
                    "learning_rate": lr_at(step),
                    "epoch": epoch_float,
                },
                step,
            )
        if step % args["eval_steps"] == 0:
            evaluate(epoch_float, step)

    trainer.fit(on_step=on_step)
    runtime = round(machine.clock.now - start, 4)
    step = trainer.global_step
    total_loss += window["sum"]
    log(
        {
            "train_runtime": runtime,
            "train_samples_per_second": round(data.n_train * epochs / runtime, 3),
            "train_steps_per_second": round(step / runtime, 3),
            "total_flos": float(6 * n_params * data.x_train.numel() * epochs),
            "train_loss": total_loss / step,
            "epoch": float(epochs),
        },
        step,
    )
    writer.close()
    return logs_written


# --------------------------------------------------------------------------------------------
# Layout 4: PyTorch Lightning TensorBoardLogger (emulated with torch's SummaryWriter)
# --------------------------------------------------------------------------------------------


def lightning_fit(
    machine: SimulatedMachine,
    version_dir: Path,
    trainer: Trainer,
    *,
    hparams: dict[str, Any],
    log_every_n_steps: int,
    seconds_per_step: float,
    log_grad_norm: bool = True,
    lr_monitor: bool = True,
) -> list[EpochInfo]:
    writer = SummaryWriter(log_dir=str(version_dir))
    # TensorBoardLogger.log_hyperparams(params): hp_metric = -1 at step 0, then the hparams
    # summaries go into the same file writer (no timestamped sub-directory).
    metrics = {"hp_metric": -1}
    for key, value in metrics.items():
        writer.add_scalar(key, value, 0)
    # _sanitize_params: anything that is not a number/str/bool is logged as its str()
    sanitized = {
        k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()
    }
    exp, ssi, sei = hparams_summaries(sanitized, metrics)
    file_writer = writer._get_file_writer()
    file_writer.add_summary(exp)
    file_writer.add_summary(ssi)
    file_writer.add_summary(sei)
    opt_name = type(trainer.optimizer).__name__

    def on_step(info: StepInfo) -> None:
        machine.clock.advance(seconds_per_step)
        if info.global_step % log_every_n_steps == 0:
            step = info.global_step - 1  # _batches_that_stepped when the logs are flushed
            if lr_monitor:  # LearningRateMonitor(logging_interval="step")
                writer.add_scalar(f"lr-{opt_name}", info.lr, step)
            writer.add_scalar("train_loss", info.loss, step)
            if log_grad_norm:
                writer.add_scalar("grad_norm", info.grad_norm, step)
            writer.add_scalar("epoch", info.epoch, step)

    def on_epoch(info: EpochInfo) -> None:
        machine.clock.advance(seconds_per_step * 3)
        writer.add_scalar("val_loss", info.val_loss, info.global_step - 1)
        writer.add_scalar("epoch", info.epoch, info.global_step - 1)

    history = trainer.fit(on_step=on_step, on_epoch=on_epoch)
    writer.close()
    # TensorBoardLogger.save(): hparams.yaml next to the event file, one yaml.dump per key.
    with open(version_dir / "hparams.yaml", "w", newline="") as fp:
        for key, value in hparams.items():
            yaml.dump({key: value}, fp)
    return history


# --------------------------------------------------------------------------------------------
# Layout 5: Keras 3 TensorBoard callback on TF2 (protos written directly)
# --------------------------------------------------------------------------------------------


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


def keras_model_json(
    model: FeedforwardNet, input_dim: int, activation: str, loss: str, optimizer: dict[str, Any]
) -> str:
    layers: list[dict[str, Any]] = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {
                "batch_shape": [None, input_dim],
                "dtype": "float32",
                "sparse": False,
                "name": "input_layer",
            },
            "registered_name": None,
        }
    ]
    linears = model.linears()
    for i, lin in enumerate(linears):
        last = i == len(linears) - 1
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {
                    "name": "dense" if i == 0 else f"dense_{i}",
                    "trainable": True,
                    "dtype": {
                        "module": "keras",
                        "class_name": "DTypePolicy",
                        "config": {"name": "float32"},
                        "registered_name": None,
                    },
                    "units": lin.out_features,
                    "activation": "linear" if last else activation,
                    "use_bias": True,
                    "kernel_initializer": {
                        "module": "keras.initializers",
                        "class_name": "GlorotUniform",
                        "config": {"seed": None},
                        "registered_name": None,
                    },
                    "bias_initializer": {
                        "module": "keras.initializers",
                        "class_name": "Zeros",
                        "config": {},
                        "registered_name": None,
                    },
                    "kernel_regularizer": None,
                    "bias_regularizer": None,
                    "kernel_constraint": None,
                    "bias_constraint": None,
                },
                "registered_name": None,
                "build_config": {"input_shape": [None, lin.in_features]},
            }
        )
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            "layers": layers,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, input_dim]},
        "compile_config": {
            "optimizer": optimizer,
            "loss": loss,
            "loss_weights": None,
            "metrics": None,
            "weighted_metrics": None,
            "run_eagerly": False,
            "steps_per_execution": 1,
            "jit_compile": False,
        },
    }
    return json.dumps(config)


def keras_fit(
    machine: SimulatedMachine,
    log_dir: Path,
    trainer: Trainer,
    *,
    model_json: str,
    seconds_per_epoch: float,
) -> list[EpochInfo]:
    """``model.fit(..., callbacks=[TensorBoard(log_dir, histogram_freq=1, profile_batch=2)])``."""
    model = trainer.model
    assert isinstance(model, FeedforwardNet)
    train_writer = TF2SummaryWriter(log_dir / "train")
    train_writer.keras_model(model_json, machine.clock.time())
    # The profiler traced batch 2 of the first epoch: it leaves an (ignored) marker file and the
    # profile under plugins/profile/<date>/.
    profile_time = machine.clock.now + 0.85
    stamp = _utc_stamp(profile_time)
    host = event_file_writer.socket.gethostname()
    marker = log_dir / "train" / f"events.out.tfevents.{int(profile_time)}.{host}.profile-empty"
    marker_event = event_pb2.Event(wall_time=profile_time, file_version="brain.Event:2")
    _write_single_record(marker, marker_event.SerializeToString())
    profile_dir = log_dir / "train" / "plugins" / "profile" / stamp
    profile_dir.mkdir(parents=True, exist_ok=True)
    (profile_dir / f"{host}.profile-empty").write_bytes(b"")
    val_writer: TF2SummaryWriter | None = None
    weights: list[tuple[str, torch.Tensor]] = []
    for i, lin in enumerate(model.linears()):
        layer = "dense" if i == 0 else f"dense_{i}"
        weights += [(f"{layer}/kernel", lin.weight), (f"{layer}/bias", lin.bias)]

    def on_epoch(info: EpochInfo) -> None:
        nonlocal val_writer
        machine.clock.advance(seconds_per_epoch)
        if val_writer is None:  # created lazily by the first validation
            val_writer = TF2SummaryWriter(log_dir / "validation")
        # on_test_end during fit: evaluation_<metric>_vs_iterations at step = optimizer.iterations
        val_writer.scalar(
            "evaluation_loss_vs_iterations", info.val_loss, info.global_step, machine.clock.time()
        )
        # on_epoch_end: epoch_* scalars at step = epoch, then weight histograms (histogram_freq=1)
        train_writer.scalar("epoch_loss", info.train_loss, info.epoch, machine.clock.time())
        train_writer.scalar("epoch_learning_rate", info.lr, info.epoch, machine.clock.time())
        val_writer.scalar("epoch_loss", info.val_loss, info.epoch, machine.clock.time())
        for tag, tensor in weights:
            values = tensor.detach().numpy()
            train_writer.histogram(
                f"{tag}/histogram",
                values.T if values.ndim == 2 else values,
                info.epoch,
                machine.clock.time(),
            )

    history = trainer.fit(on_epoch=on_epoch)
    train_writer.close()
    if val_writer is not None:
        val_writer.close()
    return history


def _utc_stamp(seconds: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y_%m_%d_%H_%M_%S")


def _write_single_record(path: Path, data: bytes) -> None:
    from tensorboard.summary.writer.record_writer import RecordWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        RecordWriter(fh).write(data)


# --------------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------------

# Simulated processes: host name, pid, start time (UTC seconds) and the first writer id.
PROCESSES: dict[str, dict[str, Any]] = {
    # train_models.py --tensorboard trains all AutoStock models one after another in one process;
    # its log directory name is the local start time 2025-01-10 14:30:22 (UTC machine).
    "autostock": {"host": "trader-ws", "pid": 48213, "start": 1736519422.61},
}


def _process_for(spec: RunSpec) -> dict[str, Any]:
    if spec.process in PROCESSES:
        return PROCESSES[spec.process]
    index = [r.process for r in RUNS].index(spec.process)
    layout = spec.layout
    base = {
        "puffin": ("quant-mbp.local", 1732200000.0),
        "hf": ("host", 1732183203.2),
        "lightning": ("gpu-node-01", 1731590000.0),
        "keras": ("host", 1736519421.5),
    }[layout]
    host, start = base
    if layout != "hf":
        start += 1800.0 * sum(1 for r in RUNS[:index] if r.layout == layout)
    return {
        "host": host,
        "pid": 20000 + 997 * index,
        "start": start,
        "first_writer_uid": 1666 if layout == "keras" else 0,
    }


def _autostock_dir(out: Path, model_name: str) -> Path:
    return out / "autostock" / "20250110_143022" / model_name


def _linear_init(
    model: nn.Module,
    *,
    std_gain: float | None = None,
    bias: float | None = None,
    layers: slice | None = None,
) -> None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for lin in linears[layers] if layers is not None else linears:
        if std_gain is not None:
            nn.init.normal_(lin.weight, std=std_gain / math.sqrt(lin.in_features))
        if bias is not None:
            nn.init.constant_(lin.bias, bias)


# ---------------------------------------- autostock -----------------------------------------


def _autostock_run(
    machine: SimulatedMachine,
    out: Path,
    model_name: str,
    trainer: Trainer,
    hist_params: list[str],
    seconds_per_epoch: float,
) -> None:
    autostock_fit(
        machine,
        _autostock_dir(out, model_name),
        trainer,
        hist_params=hist_params,
        seconds_per_epoch=seconds_per_epoch,
    )


def _cosine(base_lr: float, total_steps: int) -> Callable[[int], float]:
    return lambda step: (
        base_lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )


@register(
    path="autostock/20250110_143022/lstm_basic",
    layout="autostock",
    process="autostock",
    problems=[],
    description="Healthy LSTM forecaster: both losses fall and flatten together, stable gradient "
    "norm.",
    recipe="LSTM(2->32) + fc; Adam lr 1e-3 with ReduceLROnPlateau(0.5, patience 5); clip 1.0; "
    "batch 32; 65 epochs; 800/200 windows of a noisy seasonal series",
    shows="train and validation loss fall fast, then flatten with a small gap; the LR halves once "
    "(epoch 38)",
)
def _autostock_lstm_basic(machine: SimulatedMachine, out: Path) -> None:
    seeded(101)
    data = price_windows(seed=101, n_train=800, n_val=200, noise=0.1)
    model = LSTMForecaster(2, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=65,
        batch_size=32,
        seed=101,
        clip_norm=1.0,
        epoch_scheduler=plateau_scheduler(opt, factor=0.5, patience=5),
    )
    _autostock_run(machine, out, "lstm_basic", trainer, ["lstm.weight_ih_l0", "fc.weight"], 2.31)


@register(
    path="autostock/20250110_143022/gru_residual",
    layout="autostock",
    process="autostock",
    problems=[],
    description="Healthy residual GRU with a cosine LR schedule: smooth convergence, validation "
    "tracks training.",
    recipe="Linear(2->24) + 2-layer GRU(24) with a residual skip + fc; Adam lr 2e-3, cosine decay "
    "per step; clip 1.0; batch 64; 50 epochs; 700/200 windows",
    shows="both losses fall and flatten together; gradient norm settles; LR decays to ~0",
)
def _autostock_gru_residual(machine: SimulatedMachine, out: Path) -> None:
    seeded(102)
    data = price_windows(seed=102, n_train=700, n_val=200, noise=0.12)
    model = ResidualGRU(2, 24)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    epochs, batch = 50, 64
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=epochs,
        batch_size=batch,
        seed=102,
        clip_norm=1.0,
        lr_at_step=_cosine(2e-3, epochs * math.ceil(700 / batch)),
    )
    _autostock_run(machine, out, "gru_residual", trainer, ["gru.weight_ih_l0", "fc.weight"], 3.02)


@register(
    path="autostock/20250110_143022/mlp_wide",
    layout="autostock",
    process="autostock",
    problems=["overfitting"],
    description="Oversized MLP on 60 very noisy windows: validation loss bottoms out after a few "
    "epochs, then climbs while training loss goes to ~0.",
    recipe="MLP 40->256->256->1 (ReLU), no dropout or weight decay; Adam lr 3e-4; clip 1.0; "
    "batch 10; 60 epochs; only 60 training windows with noise std 1.0, 400 validation windows",
    shows="validation minimum around epoch 4, then a clear rise (~+25%) and a plateau; train loss "
    "falls by orders of magnitude",
)
def _autostock_mlp_wide(machine: SimulatedMachine, out: Path) -> None:
    seeded(103)
    data = price_windows(seed=103, n_train=60, n_val=400, noise=1.0, flat=True)
    model = FeedforwardNet(40, [256, 256], attr="net")
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=10, seed=103, clip_norm=1.0)
    _autostock_run(machine, out, "mlp_wide", trainer, ["net.0.weight", "net.4.weight"], 0.41)


@register(
    path="autostock/20250110_143022/lstm_small_lr",
    layout="autostock",
    process="autostock",
    problems=["underfitting"],
    description="LSTM with the learning rate set 1000x too low: both losses barely move.",
    recipe="LSTM(2->32) + fc; Adam lr 1e-6 (meant 1e-3); clip 1.0; batch 32; 60 epochs; "
    "800/200 windows",
    shows="train and validation loss stay within ~1% of their starting value for the whole run",
)
def _autostock_lstm_small_lr(machine: SimulatedMachine, out: Path) -> None:
    seeded(104)
    data = price_windows(seed=104, n_train=800, n_val=200, noise=0.1)
    model = LSTMForecaster(2, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=32, seed=104, clip_norm=1.0)
    _autostock_run(machine, out, "lstm_small_lr", trainer, ["lstm.weight_ih_l0", "fc.weight"], 2.29)


@register(
    path="autostock/20250110_143022/gru_sgd_fast",
    layout="autostock",
    process="autostock",
    problems=["erratic-loss"],
    description="GRU trained with SGD at a too high LR and batch size 4: the loss jumps around and "
    "spikes far above its trend, but clipping keeps it finite.",
    recipe="GRU(2->32) + fc; SGD lr 0.3 momentum 0.9; clip 1.0; batch 4; 60 epochs; 200/200 "
    "windows",
    shows="train loss wobbles between ~0.14 and ~0.77; validation loss spikes to 3-6x its "
    "neighbours (0.63, 0.74, 1.7 against ~0.2-0.3); no NaN",
)
def _autostock_gru_sgd_fast(machine: SimulatedMachine, out: Path) -> None:
    seeded(105)
    data = price_windows(seed=105, n_train=200, n_val=200, noise=0.1)
    model = GRUForecaster(2, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=4, seed=105, clip_norm=1.0)
    _autostock_run(machine, out, "gru_sgd_fast", trainer, ["gru.weight_ih_l0", "fc.weight"], 4.4)


@register(
    path="autostock/20250110_143022/lstm_step_lr",
    layout="autostock",
    process="autostock",
    problems=["non-finite-loss"],
    description="LSTM whose MultiStepLR used gamma=10 instead of 0.1: at epoch 25 the LR jumps to "
    "3.0 and the loss turns NaN within that epoch.",
    recipe="LSTM(2->32) + fc; SGD lr 0.3 momentum 0.9, MultiStepLR(milestones=[25], gamma=10); no "
    "clipping; batch 32; stops after 5 NaN epochs; 800/200 windows",
    shows="healthy-looking losses for 25 epochs, then NaN loss and NaN gradient norm from epoch "
    "25 on",
)
def _autostock_lstm_step_lr(machine: SimulatedMachine, out: Path) -> None:
    seeded(106)
    data = price_windows(seed=106, n_train=800, n_val=200, noise=0.1)
    model = LSTMForecaster(2, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[25], gamma=10.0)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=32,
        seed=106,
        clip_norm=None,
        epoch_scheduler=lambda _opt, _val: sched.step(),
    )
    _autostock_run(machine, out, "lstm_step_lr", trainer, ["lstm.weight_ih_l0", "fc.weight"], 2.3)


@register(
    path="autostock/20250110_143022/gru_exp_lr",
    layout="autostock",
    process="autostock",
    problems=["exploding-gradients"],
    # The loss diverges to 1e4-1e5 with a wobbling validation loss: erratic too, debatably.
    allowed=["erratic-loss"],
    description="GRU whose ExponentialLR used gamma=1.1 instead of 0.9: once the LR passes ~1 the "
    "gradient norm grows by more than three orders of magnitude; clipping at 10 keeps "
    "everything finite while the loss diverges.",
    recipe="GRU(2->32) + fc; SGD lr 0.05 momentum 0.9, ExponentialLR(gamma=1.1); clip 10; batch "
    "32; "
    "60 epochs; 800/200 windows",
    shows="Gradient/norm ~0.3 for 25 epochs, then climbs to >1e3; losses rise to ~1e4-1e5, all "
    "finite",
)
def _autostock_gru_exp_lr(machine: SimulatedMachine, out: Path) -> None:
    seeded(107)
    data = price_windows(seed=107, n_train=800, n_val=200, noise=0.1)
    model = GRUForecaster(2, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=1.1)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=32,
        seed=107,
        clip_norm=10.0,
        epoch_scheduler=lambda _opt, _val: sched.step(),
    )
    _autostock_run(machine, out, "gru_exp_lr", trainer, ["fc.weight", "fc.bias"], 2.0)


@register(
    path="autostock/20250110_143022/mlp_deep_sigmoid",
    layout="autostock",
    process="autostock",
    problems=["vanishing-gradients", "underfitting"],
    description="Ten stacked sigmoid layers with a small init, trained with SGD: first-layer "
    "gradients are ~1e-8, six to seven orders of magnitude below the output layer, so "
    "the network never learns beyond the mean (both losses stay flat).",
    recipe="MLP 40->10x32->1 (sigmoid), init N(0, 0.2^2), zero biases; SGD lr 0.05 momentum 0.9; "
    "clip 1.0; batch 32; 60 epochs; 800/200 windows",
    shows="Gradients/net.0.weight rms 1.5e-7 -> 6e-9 vs 3e-3..0.14 for net.20.weight; losses flat "
    "near 1.05; Gradient/norm (dominated by the output layer) ~0.3",
)
def _autostock_mlp_deep_sigmoid(machine: SimulatedMachine, out: Path) -> None:
    seeded(108)
    data = price_windows(seed=108, n_train=800, n_val=200, noise=0.1, flat=True)
    model = FeedforwardNet(40, [32] * 10, activation="sigmoid", attr="net")
    for lin in model.linears():
        nn.init.normal_(lin.weight, std=0.2)
        nn.init.zeros_(lin.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=32, seed=108, clip_norm=1.0)
    _autostock_run(
        machine, out, "mlp_deep_sigmoid", trainer, ["net.0.weight", "net.20.weight"], 0.8
    )


@register(
    path="autostock/20250110_143022/mlp_relu_bias",
    layout="autostock",
    process="autostock",
    problems=["dead-neurons"],
    description="ReLU MLP whose first-layer biases were initialised to -1.5: ~90% of the units "
    "never "
    "activate, so their gradients are exactly zero and their weights never change; the "
    "few live units still fit the data.",
    recipe="MLP 40->128->128->1 (ReLU), first hidden layer bias init -1.5; Adam lr 1e-3; clip 1.0; "
    "batch 32; 60 epochs; 800/200 windows",
    shows="~90% exactly-zero entries in Gradients/net.0.weight and net.2.weight at every snapshot; "
    "losses still fall",
)
def _autostock_mlp_relu_bias(machine: SimulatedMachine, out: Path) -> None:
    seeded(109)
    data = price_windows(seed=109, n_train=800, n_val=200, noise=0.1, flat=True)
    model = FeedforwardNet(40, [128, 128], attr="net")
    _linear_init(model, bias=-1.5, layers=slice(0, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=32, seed=109, clip_norm=1.0)
    _autostock_run(machine, out, "mlp_relu_bias", trainer, ["net.0.weight", "net.2.weight"], 0.5)


# ------------------------------------------ puffin ------------------------------------------


def _puffin_dir(out: Path, experiment: str) -> Path:
    return out / "puffin" / experiment


def _weights_only_decay(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups with weight decay on weights only (biases are not decayed)."""
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _puffin_run(
    machine: SimulatedMachine,
    out: Path,
    experiment: str,
    trainer: Trainer,
    *,
    hparams: dict[str, Any],
    hist_params: list[str],
    seconds_per_epoch: float,
    pred_every: int = 1,
) -> None:
    puffin_fit(
        machine,
        _puffin_dir(out, experiment),
        trainer,
        hparams=hparams,
        hist_params=hist_params,
        seconds_per_epoch=seconds_per_epoch,
        pred_every=pred_every,
    )


@register(
    path="puffin/ffn_return_prediction",
    layout="puffin",
    problems=[],
    description="Healthy feedforward return model: losses fall and flatten together, prediction "
    "spread stays near the target spread.",
    recipe="FeedforwardNet(16, [64, 32], dropout 0.1); Adam lr 1e-3; batch 64; 60 epochs; "
    "3000/1000 samples of a non-linear factor->return target (noise 0.5)",
    shows="train 1.16 -> ~0.28, val 0.89 -> ~0.33; pred_std 0.37 -> ~0.96; gradient histograms "
    "steady",
)
def _puffin_ffn_healthy(machine: SimulatedMachine, out: Path) -> None:
    seeded(201)
    data = factor_returns(seed=201, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [64, 32], dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=64, seed=201)
    _puffin_run(
        machine,
        out,
        "ffn_return_prediction",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "dropout": 0.1,
            "lr": 0.001,
            "batch_size": 64,
            "optimizer": "Adam",
            "epochs": 60,
        },
        hist_params=["network.0.weight", "network.6.weight"],
        seconds_per_epoch=1.1,
    )


@register(
    path="puffin/cnn1d_return_prediction",
    layout="puffin",
    problems=[],
    description="Healthy temporal CNN on price windows; prediction statistics logged every 10 "
    "epochs.",
    recipe="Conv1d(2->16, k5) -> Conv1d(16->16, k5) -> mean pool -> fc; Adam lr 1e-3; batch 64; "
    "50 epochs; 1200/300 windows of a noisy seasonal series",
    shows="both losses fall fast and flatten with a small gap; pred_mean/pred_std every 10 epochs",
)
def _puffin_cnn1d(machine: SimulatedMachine, out: Path) -> None:
    seeded(202)
    data = price_windows(seed=202, n_train=1200, n_val=300, noise=0.1)
    model = Conv1dNet(2, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, data, opt, epochs=50, batch_size=64, seed=202)
    _puffin_run(
        machine,
        out,
        "cnn1d_return_prediction",
        trainer,
        hparams={
            "channels": 16,
            "kernel_size": 5,
            "lr": 0.001,
            "batch_size": 64,
            "optimizer": "Adam",
            "epochs": 50,
        },
        hist_params=["conv1.weight", "fc.weight"],
        seconds_per_epoch=1.6,
        pred_every=10,
    )


@register(
    path="puffin/lstm_return_prediction",
    layout="puffin",
    problems=[],
    description="Healthy small LSTM on price windows with a step LR decay.",
    recipe="LSTM(2->16) + fc; Adam lr 3e-3, StepLR(step 20, gamma 0.3); clip 1.0; batch 64; 45 "
    "epochs; 800/200 windows",
    shows="losses fall and flatten together; LR steps down twice; pred_std stable",
)
def _puffin_lstm(machine: SimulatedMachine, out: Path) -> None:
    seeded(203)
    data = price_windows(seed=203, n_train=800, n_val=200, noise=0.15)
    model = LSTMForecaster(2, 16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.3)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=45,
        batch_size=64,
        seed=203,
        clip_norm=1.0,
        epoch_scheduler=lambda _opt, _val: sched.step(),
    )
    _puffin_run(
        machine,
        out,
        "lstm_return_prediction",
        trainer,
        hparams={
            "hidden_size": 16,
            "num_layers": 1,
            "lr": 0.003,
            "batch_size": 64,
            "optimizer": "Adam",
            "scheduler": "StepLR(20, 0.3)",
            "epochs": 45,
        },
        hist_params=["lstm.weight_ih_l0", "fc.weight"],
        seconds_per_epoch=1.4,
    )


@register(
    path="puffin/ffn_small_sample",
    layout="puffin",
    problems=["overfitting"],
    description="Wide feedforward net trained on only 80 noisy samples without regularisation: "
    "validation loss is lowest around epoch 11 and then rises steadily.",
    recipe="FeedforwardNet(16, [256, 256]), no dropout/weight decay; Adam lr 3e-4; batch 16; 60 "
    "epochs; 80 training samples (noise 1.0), 1000 validation samples",
    shows="val 1.95 -> 1.75 (epoch 11) -> 2.05; train -> ~0.02; pred_std grows past the target's",
)
def _puffin_small_sample(machine: SimulatedMachine, out: Path) -> None:
    seeded(204)
    data = factor_returns(seed=204, n_train=80, n_val=1000, noise=1.0, target_mean=0.3)
    model = FeedforwardNet(16, [256, 256])
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=16, seed=204)
    _puffin_run(
        machine,
        out,
        "ffn_small_sample",
        trainer,
        hparams={
            "hidden_dims": "[256, 256]",
            "dropout": 0.0,
            "lr": 0.0003,
            "batch_size": 16,
            "n_train": 80,
            "optimizer": "Adam",
            "epochs": 60,
        },
        hist_params=["network.0.weight", "network.4.weight"],
        seconds_per_epoch=0.2,
        pred_every=10,
    )


@register(
    path="puffin/ffn_dropout0.3_lr1e-06",
    layout="puffin",
    problems=["underfitting"],
    description="Hyper-parameter search member with lr=1e-6: nothing is learned, both losses stay "
    "near their initial value.",
    recipe="FeedforwardNet(16, [64, 32], dropout 0.3); Adam lr 1e-6; batch 64; 60 epochs; "
    "3000/1000 samples",
    shows="train 1.60 -> 1.54, val 1.48 -> 1.44 over 60 epochs; pred_mean still far from the "
    "target "
    "mean",
)
def _puffin_lr_too_low(machine: SimulatedMachine, out: Path) -> None:
    seeded(205)
    data = factor_returns(seed=205, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [64, 32], dropout=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=64, seed=205)
    _puffin_run(
        machine,
        out,
        "ffn_dropout0.3_lr1e-06",
        trainer,
        hparams={"dropout": 0.3, "learning_rate": 1e-06, "hidden_dims": "[64, 32]"},
        hist_params=["network.0.weight", "network.6.weight"],
        seconds_per_epoch=1.0,
    )


@register(
    path="puffin/ffn_tanh_sgd_lr0.12",
    layout="puffin",
    problems=["erratic-loss"],
    description="Tanh network trained with SGD at a too high LR and batch 8: for 45 epochs the "
    "loss "
    "jumps around with validation spikes of 3-5x, until a StepLR decay calms it down.",
    recipe="FeedforwardNet(16, [64, 32], tanh); SGD lr 0.12 momentum 0.9, StepLR(step 45, gamma "
    "0.1); clip 1.0; batch 8; 60 epochs; 1500/1000 samples",
    shows="train 0.9-1.9 and validation 0.6-4.0 without a trend until epoch 45, then both settle",
)
def _puffin_erratic(machine: SimulatedMachine, out: Path) -> None:
    seeded(206)
    data = factor_returns(seed=206, n_train=1500, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [64, 32], activation="tanh")
    opt = torch.optim.SGD(model.parameters(), lr=0.12, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=45, gamma=0.1)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=8,
        seed=1,
        clip_norm=1.0,
        epoch_scheduler=lambda _opt, _val: sched.step(),
    )
    _puffin_run(
        machine,
        out,
        "ffn_tanh_sgd_lr0.12",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "activation": "tanh",
            "lr": 0.12,
            "momentum": 0.9,
            "batch_size": 8,
            "optimizer": "SGD",
            "epochs": 60,
        },
        hist_params=["network.0.weight", "network.4.weight"],
        seconds_per_epoch=2.9,
    )


@register(
    path="puffin/ffn_resume_lr_bug",
    layout="puffin",
    problems=["non-finite-loss"],
    description="Training resumed at epoch 30 with lr 2.0 instead of 0.02: the loss is NaN from "
    "that epoch on (logged for five epochs, then the run stops).",
    recipe="FeedforwardNet(16, [64, 32], tanh); SGD momentum 0.9, lr 0.02 for 30 epochs then 2.0; "
    "no clipping; batch 64; 3000/1000 samples",
    shows="normal convergence to ~0.25/0.38, then NaN train/val loss, NaN pred stats",
)
def _puffin_nan(machine: SimulatedMachine, out: Path) -> None:
    seeded(207)
    data = factor_returns(seed=207, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [64, 32], activation="tanh")
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    steps_per_epoch = math.ceil(3000 / 64)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=64,
        seed=207,
        lr_at_step=lambda step: 0.02 if step < 30 * steps_per_epoch else 2.0,
    )
    _puffin_run(
        machine,
        out,
        "ffn_resume_lr_bug",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "activation": "tanh",
            "lr": 0.02,
            "resume_lr": 2.0,
            "optimizer": "SGD",
            "batch_size": 64,
        },
        hist_params=["network.0.weight", "network.4.weight"],
        seconds_per_epoch=1.0,
    )


@register(
    path="puffin/ffn_tanh_warmup",
    layout="puffin",
    problems=["exploding-gradients", "non-finite-loss"],
    description="Linear LR warm-up to 0.3 without gradient clipping: once the LR passes ~0.15 the "
    "loss diverges by ~30 orders of magnitude in 12 epochs and the output-layer gradients "
    "grow from ~0.1-0.6 to ~3e6 by the epoch-30 snapshot, ending in inf/NaN.",
    recipe="FeedforwardNet(16, [64, 32], tanh); SGD momentum 0.9, LR warm-up 0.005 -> 0.3 over 40 "
    "epochs; no clipping; batch 64; stops after 5 non-finite epochs; 3000/1000 samples",
    shows="train loss 0.36 (epoch 14) -> 2.4 (23) -> 1.5e5 (24) -> 9e29 (34), inf at 35, NaN "
    "after; gradients/network.4.* rms 0.07/0.6 (epoch 20) -> 2e6/4e6 (epoch 30)",
)
def _puffin_exploding(machine: SimulatedMachine, out: Path) -> None:
    seeded(207)
    data = factor_returns(seed=207, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [64, 32], activation="tanh")
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    warmup = 40 * math.ceil(3000 / 64)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=64,
        seed=207,
        lr_at_step=lambda step: 0.005 + (0.3 - 0.005) * min(1.0, step / warmup),
    )
    _puffin_run(
        machine,
        out,
        "ffn_tanh_warmup",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "activation": "tanh",
            "max_lr": 0.3,
            "warmup_epochs": 40,
            "optimizer": "SGD",
            "batch_size": 64,
        },
        hist_params=["network.4.weight", "network.4.bias"],
        seconds_per_epoch=1.0,
    )


@register(
    path="puffin/ffn_deep_sigmoid",
    layout="puffin",
    problems=["vanishing-gradients", "underfitting", "collapsed-predictions"],
    description="Ten sigmoid layers with a small init, trained with SGD: first-layer gradients "
    "are 1e-8..1e-9 (six to seven orders below the output layer), the loss never moves "
    "and the predictions are constant from the start.",
    recipe="FeedforwardNet(16, [32]*10, sigmoid), init N(0, 0.2^2), zero biases; SGD lr 0.05 "
    "momentum 0.9; clip 1.0; batch 64; 60 epochs; 3000/1000 samples",
    shows="gradients/network.0.weight rms 4e-8 -> 9e-10 vs 5e-3..0.16 for network.20.weight; "
    "losses flat at ~1.22 (train) and 1.32-1.44 (val); pred_std ~1e-8 while pred_mean wanders "
    "around the target mean",
)
def _puffin_vanishing(machine: SimulatedMachine, out: Path) -> None:
    seeded(209)
    data = factor_returns(seed=209, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [32] * 10, activation="sigmoid")
    for lin in model.linears():
        nn.init.normal_(lin.weight, std=0.2)
        nn.init.zeros_(lin.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=64, seed=209, clip_norm=1.0)
    _puffin_run(
        machine,
        out,
        "ffn_deep_sigmoid",
        trainer,
        hparams={
            "hidden_dims": "[32]*10",
            "activation": "sigmoid",
            "init_std": 0.2,
            "lr": 0.05,
            "optimizer": "SGD",
            "batch_size": 64,
        },
        hist_params=["network.0.weight", "network.20.weight"],
        seconds_per_epoch=1.3,
    )


@register(
    path="puffin/ffn_warmup_spike",
    layout="puffin",
    problems=["dead-neurons"],
    description="A mis-set warm-up ran the first epoch at lr 0.05 instead of 1e-3: ~95% of the "
    "second hidden layer's ReLUs died and never recover; the rest of the network keeps "
    "learning slowly.",
    recipe="FeedforwardNet(16, [128, 64], dropout 0.2); Adam, lr 0.05 for epoch 0 then 1e-3; "
    "batch 64; 60 epochs; 3000/1000 samples",
    shows="gradients/network.3.weight ~90% exactly zero at every snapshot; losses still fall "
    "(slower than the healthy run)",
)
def _puffin_dead(machine: SimulatedMachine, out: Path) -> None:
    seeded(210)
    data = factor_returns(seed=210, n_train=3000, n_val=1000, noise=0.5, target_mean=0.3)
    model = FeedforwardNet(16, [128, 64], dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps_per_epoch = math.ceil(3000 / 64)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=60,
        batch_size=64,
        seed=210,
        lr_at_step=lambda step: 0.05 if step < steps_per_epoch else 1e-3,
    )
    _puffin_run(
        machine,
        out,
        "ffn_warmup_spike",
        trainer,
        hparams={
            "hidden_dims": "[128, 64]",
            "dropout": 0.2,
            "lr": 0.001,
            "warmup_lr": 0.05,
            "optimizer": "Adam",
            "batch_size": 64,
        },
        hist_params=["network.0.weight", "network.3.weight"],
        seconds_per_epoch=1.2,
    )


@register(
    path="puffin/ffn_wd1.0",
    layout="puffin",
    problems=["collapsed-predictions", "underfitting", "vanishing-gradients", "weight-collapse"],
    description="Weight decay 1.0 on all weight matrices: the weights shrink towards zero "
    "(first-layer weight RMS 0.097 -> 7e-9), "
    "pred_std "
    "falls from 0.08 to ~1e-7 within 12 epochs and pred_mean settles on the target mean; "
    "the loss stays at the target variance, and with the downstream weights near zero "
    "the first-layer gradients shrink to ~1e-8 (1e-6 of the output layer's).",
    recipe="FeedforwardNet(16, [64, 32], dropout 0.1); SGD lr 1e-3 momentum 0.9, weight_decay 1.0 "
    "on weights (not biases); batch 64; 60 epochs; 3000/1000 samples, target mean 1.0",
    shows="pred_std 0.08 -> 1e-2 -> 6e-4 -> ~1e-7; pred_mean -> ~0.99; loss 1.48 -> 1.22 then "
    "flat; "
    "gradients/network.0.weight rms 1e-2 -> ~1e-8",
)
def _puffin_collapse_wd(machine: SimulatedMachine, out: Path) -> None:
    seeded(211)
    data = factor_returns(seed=211, n_train=3000, n_val=1000, noise=0.5, target_mean=1.0)
    model = FeedforwardNet(16, [64, 32], dropout=0.1)
    opt = torch.optim.SGD(_weights_only_decay(model, 1.0), lr=1e-3, momentum=0.9)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=64, seed=211)
    _puffin_run(
        machine,
        out,
        "ffn_wd1.0",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "dropout": 0.1,
            "lr": 0.001,
            "weight_decay": 1.0,
            "optimizer": "SGD",
            "batch_size": 64,
        },
        hist_params=["network.0.weight", "network.6.weight"],
        seconds_per_epoch=1.0,
    )


@register(
    path="puffin/ffn_misaligned_features",
    layout="puffin",
    problems=["collapsed-predictions"],
    description="Features joined to the wrong dates, so they carry no information about the raw "
    "daily returns: the model gives up and predicts the mean return (pred_std falls "
    "30x to ~4e-4, 4% of the return spread, while the loss sits at the return variance).",
    recipe="FeedforwardNet(16, [64, 32], tanh, dropout 0.1); Adam lr 1e-3, weight_decay 1e-4; "
    "batch "
    "256; 60 epochs; 8000/2000 samples, targets shuffled against features, raw return "
    "units (std ~0.011)",
    shows="pred_std 0.012 -> 4e-4; pred_mean within +-1e-3 of the mean return (4e-4); loss 3.9e-3 "
    "-> 1.2e-4, flat; gradients shrink but stay ~1e-5",
)
def _puffin_collapse_misaligned(machine: SimulatedMachine, out: Path) -> None:
    seeded(212)
    data = factor_returns(
        seed=212, n_train=8000, n_val=2000, noise=0.5, target_mean=0.05, misaligned=True, scale=0.01
    )
    model = FeedforwardNet(16, [64, 32], dropout=0.1, activation="tanh")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    trainer = Trainer(model, data, opt, epochs=60, batch_size=256, seed=212)
    _puffin_run(
        machine,
        out,
        "ffn_misaligned_features",
        trainer,
        hparams={
            "hidden_dims": "[64, 32]",
            "activation": "tanh",
            "dropout": 0.1,
            "lr": 0.001,
            "weight_decay": 0.0001,
            "optimizer": "Adam",
            "batch_size": 256,
        },
        hist_params=["network.0.weight", "network.6.weight"],
        seconds_per_epoch=0.9,
    )


# -------------------------------------------- hf --------------------------------------------

_HF_LOGDIR = "runs/Nov21_10-00-00_host"


def _hf_run(
    machine: SimulatedMachine,
    out: Path,
    name: str,
    *,
    data: Dataset,
    config: TinyEncoderConfig,
    seconds_per_step: float,
    **args: Any,
) -> None:
    training_args = hf_training_args(name, **args)
    torch.manual_seed(training_args["seed"])
    model = TinyEncoderForSequenceClassification(config)
    hf_train(
        machine,
        out / "hf" / name / _HF_LOGDIR,
        model=model,
        data=data,
        args=training_args,
        seconds_per_step=seconds_per_step,
    )


@register(
    path=f"hf/tiny-encoder-sst2/{_HF_LOGDIR}",
    layout="hf",
    problems=[],
    description="Healthy tiny-encoder fine-tune: train and eval loss fall and flatten together, "
    "grad_norm stays around 1.",
    recipe="2-layer post-LN encoder (hidden 32, init std 0.1); AdamW lr 3e-4, linear decay, 32 "
    "warm-up steps, weight decay 0.01, clip 1.0; batch 32; 8 epochs (256 steps); 1024/256 "
    "token sequences, 5% label noise",
    shows="train/loss 0.72 -> ~0.40, eval/loss 0.68 -> ~0.44 (accuracy ~0.8); grad_norm 0.35-3.3 "
    "without a trend",
)
def _hf_healthy(machine: SimulatedMachine, out: Path) -> None:
    data = token_sequences(seed=301, n_train=1024, n_val=256, label_noise=0.05)
    _hf_run(
        machine,
        out,
        "tiny-encoder-sst2",
        data=data,
        config=TinyEncoderConfig(initializer_range=0.1),
        seconds_per_step=0.061,
        learning_rate=3e-4,
        num_train_epochs=8.0,
        per_device_train_batch_size=32,
        logging_steps=8,
        eval_steps=32,
        warmup_steps=32,
        weight_decay=0.01,
    )


@register(
    path=f"hf/tiny-encoder-sst2-64ex/{_HF_LOGDIR}",
    layout="hf",
    problems=["overfitting"],
    description="Tiny encoder trained for 40 epochs on 64 examples with 20% label noise and no "
    "dropout: eval loss bottoms out after ~30 steps and then more than doubles while the "
    "train loss falls to ~0.08.",
    recipe="2-layer post-LN encoder, dropout 0; AdamW lr 1e-3, linear decay, clip 1.0; batch 8; 40 "
    "epochs (320 steps); 64 training / 256 eval sequences, 20% label noise",
    shows="eval/loss 0.69 -> 0.68 (step 32) -> ~1.5; train/loss -> ~0.08; eval accuracy stuck ~0.6",
)
def _hf_overfit(machine: SimulatedMachine, out: Path) -> None:
    data = token_sequences(seed=301, n_train=64, n_val=256, label_noise=0.2)
    cfg = TinyEncoderConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    _hf_run(
        machine,
        out,
        "tiny-encoder-sst2-64ex",
        data=data,
        config=cfg,
        seconds_per_step=0.02,
        learning_rate=1e-3,
        num_train_epochs=40.0,
        per_device_train_batch_size=8,
        logging_steps=8,
        eval_steps=16,
    )


@register(
    path=f"hf/tiny-encoder-lr1.2e-2/{_HF_LOGDIR}",
    layout="hf",
    problems=["erratic-loss"],
    description="Learning rate 1.2e-2 with batch size 8: the logged train loss jumps around its "
    "trend, eval loss spikes to ~2x its neighbours twice, and grad_norm has 10-30x "
    "spikes; the run recovers as the LR decays.",
    recipe="2-layer post-LN encoder; AdamW lr 1.2e-2, linear decay, clip 1.0; batch 8; 4 epochs "
    "(256 steps); 512/256 sequences",
    shows="train/loss zig-zags 0.26-1.27 around a ~0.45 trend; eval/loss 0.35 -> 0.99 (step 112) "
    "-> 0.38; grad_norm spikes to 12 and 28; no NaN",
)
def _hf_erratic(machine: SimulatedMachine, out: Path) -> None:
    data = token_sequences(seed=301, n_train=512, n_val=256, label_noise=0.05)
    _hf_run(
        machine,
        out,
        "tiny-encoder-lr1.2e-2",
        data=data,
        config=TinyEncoderConfig(),
        seconds_per_step=0.019,
        learning_rate=1.2e-2,
        num_train_epochs=4.0,
        per_device_train_batch_size=8,
        logging_steps=4,
        eval_steps=16,
    )


@register(
    path=f"hf/tiny-encoder-sgd-warmup/{_HF_LOGDIR}",
    layout="hf",
    problems=["exploding-gradients", "non-finite-loss"],
    description="Plain SGD with a warm-up to lr 5.0 and gradient clipping disabled: once the LR "
    "passes ~1 the logged grad_norm climbs from ~1 to ~1e7 within 20 steps, then the "
    "weights turn NaN (train/loss then reads 0.0 because of logging_nan_inf_filter).",
    recipe="2-layer post-LN encoder; optim sgd, lr 5.0 with 200 linear warm-up steps; "
    "max_grad_norm "
    "0 (no clipping); batch 16; 8 epochs (256 steps); 512/256 sequences",
    shows="train/grad_norm 0.3 -> 13 -> 87 -> 7e3 -> 3e7 -> NaN; eval/loss NaN from step 64; "
    "train/loss 0.0 after the NaN",
)
def _hf_exploding(machine: SimulatedMachine, out: Path) -> None:
    data = token_sequences(seed=301, n_train=512, n_val=256, label_noise=0.05)
    _hf_run(
        machine,
        out,
        "tiny-encoder-sgd-warmup",
        data=data,
        config=TinyEncoderConfig(),
        seconds_per_step=0.021,
        optim="sgd",
        learning_rate=5.0,
        warmup_steps=200,
        max_grad_norm=0.0,
        num_train_epochs=8.0,
        per_device_train_batch_size=16,
        logging_steps=4,
        eval_steps=16,
    )


@register(
    path=f"hf/tiny-encoder-stsb-regression/{_HF_LOGDIR}",
    layout="hf",
    problems=["non-finite-loss"],
    description="Regression fine-tune where one training example has a missing (NaN) score: the "
    "step that sees it turns every weight into NaN; eval/loss and grad_norm are NaN "
    "from then on while the filtered train/loss reads 0.0.",
    recipe="2-layer post-LN encoder with a 1-output regression head; AdamW lr 3e-4, clip 1.0; "
    "batch "
    "16; 3 epochs (384 steps); 2048/256 sequences with a sentiment score target, one NaN "
    "label that is drawn at step 110",
    shows="normal convergence for 109 steps, then grad_norm NaN, eval/loss NaN and train/loss 0.0 "
    "to the end",
)
def _hf_nan_label(machine: SimulatedMachine, out: Path) -> None:
    data = token_sequences(seed=302, n_train=2048, n_val=256, regression=True)
    seed, batch = 42, 16
    order = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(seed))
    data.y_train[order[109 * batch + 5]] = float("nan")  # an unparsed "N/A" score in the CSV
    _hf_run(
        machine,
        out,
        "tiny-encoder-stsb-regression",
        data=data,
        config=TinyEncoderConfig(initializer_range=0.1, num_labels=1),
        seconds_per_step=0.024,
        learning_rate=3e-4,
        num_train_epochs=3.0,
        per_device_train_batch_size=batch,
        logging_steps=8,
        eval_steps=32,
        seed=seed,
    )


# ----------------------------------------- lightning ----------------------------------------


def _lightning_dir(out: Path, name: str) -> Path:
    return out / "lightning" / name / "lightning_logs" / "version_0"


@register(
    path="lightning/mlp_classifier/lightning_logs/version_0",
    layout="lightning",
    problems=[],
    description="Healthy MLP classifier with a cosine LR schedule: val loss falls and flattens "
    "just "
    "below the (dropout-inflated) train loss.",
    recipe="MLP 10->32->32->4 (ReLU, dropout 0.1); Adam lr 2e-3, cosine decay per step; batch 64; "
    "40 epochs (3760 steps, log_every_n_steps=50); 6000/1000 samples of a 4-class Gaussian "
    "mixture",
    shows="val_loss 0.34 -> 0.24 and flat; step train_loss ~0.25 with batch noise; grad_norm ~0.6",
)
def _lightning_healthy(machine: SimulatedMachine, out: Path) -> None:
    seeded(401)
    data = gaussian_classes(seed=401, n_train=6000, n_val=1000, spread=1.5)
    model = FeedforwardNet(10, [32, 32], 4, dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=40,
        batch_size=64,
        seed=401,
        lr_at_step=_cosine(2e-3, 40 * math.ceil(6000 / 64)),
    )
    lightning_fit(
        machine,
        _lightning_dir(out, "mlp_classifier"),
        trainer,
        hparams={
            "hidden_dims": [32, 32],
            "dropout": 0.1,
            "lr": 0.002,
            "batch_size": 64,
            "scheduler": "cosine",
            "max_epochs": 40,
        },
        log_every_n_steps=50,
        seconds_per_step=0.004,
    )


@register(
    path="lightning/cnn_bars/lightning_logs/version_0",
    layout="lightning",
    problems=[],
    description="Healthy small CNN on noisy bar images: both losses fall steadily and end close "
    "together.",
    recipe="Conv2d(1->8) -> maxpool -> Conv2d(8->16) -> global mean -> fc(3); Adam lr 2e-3; batch "
    "32; 40 epochs (1520 steps, log_every_n_steps=20); 1200/300 12x12 images",
    shows="val_loss 1.06 -> ~0.06; train_loss follows; no grad_norm tag in this run",
)
def _lightning_cnn(machine: SimulatedMachine, out: Path) -> None:
    seeded(402)
    data = bar_images(seed=402, n_train=1200, n_val=300)
    model = ShapeCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    trainer = Trainer(model, data, opt, epochs=40, batch_size=32, seed=402)
    lightning_fit(
        machine,
        _lightning_dir(out, "cnn_bars"),
        trainer,
        hparams={"channels": [8, 16], "lr": 0.002, "batch_size": 32, "max_epochs": 40},
        log_every_n_steps=20,
        seconds_per_step=0.009,
        log_grad_norm=False,
    )


@register(
    path="lightning/mlp_small_data/lightning_logs/version_0",
    layout="lightning",
    problems=["overfitting"],
    description="Wide MLP on 100 samples with 30% label noise: val loss is lowest at epoch ~3 and "
    "then triples while the train loss goes to ~0.",
    recipe="MLP 10->256->256->4 (ReLU), no regularisation; Adam lr 1e-3; batch 16; 100 epochs (700 "
    "steps, log_every_n_steps=10); 100 training / 500 validation samples",
    shows="val_loss 1.13 -> 0.92 (epoch 3) -> 2.8; train_loss -> ~0.003",
)
def _lightning_overfit(machine: SimulatedMachine, out: Path) -> None:
    seeded(403)
    data = gaussian_classes(seed=403, n_train=100, n_val=500, label_noise=0.3)
    model = FeedforwardNet(10, [256, 256], 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, data, opt, epochs=100, batch_size=16, seed=403)
    lightning_fit(
        machine,
        _lightning_dir(out, "mlp_small_data"),
        trainer,
        hparams={
            "hidden_dims": [256, 256],
            "lr": 0.001,
            "batch_size": 16,
            "n_train": 100,
            "max_epochs": 100,
        },
        log_every_n_steps=10,
        seconds_per_step=0.005,
    )


@register(
    path="lightning/mlp_lr1e-6/lightning_logs/version_0",
    layout="lightning",
    problems=["underfitting"],
    description="MLP classifier with lr 1e-6: train and val loss stay at the chance level (~ln 4) "
    "for all 40 epochs.",
    recipe="MLP 10->64->64->4 (ReLU); Adam lr 1e-6; batch 32; 40 epochs (2520 steps, "
    "log_every_n_steps=50); 2000/500 samples",
    shows="val_loss 1.39 -> 1.34 over 40 epochs (<4%); train_loss flat with batch noise",
)
def _lightning_underfit(machine: SimulatedMachine, out: Path) -> None:
    seeded(405)
    data = gaussian_classes(seed=405, n_train=2000, n_val=500)
    model = FeedforwardNet(10, [64, 64], 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    trainer = Trainer(model, data, opt, epochs=40, batch_size=32, seed=405)
    lightning_fit(
        machine,
        _lightning_dir(out, "mlp_lr1e-6"),
        trainer,
        hparams={"hidden_dims": [64, 64], "lr": 1e-06, "batch_size": 32, "max_epochs": 40},
        log_every_n_steps=50,
        seconds_per_step=0.004,
    )


@register(
    path="lightning/mlp_adam_lr0.06/lightning_logs/version_0",
    layout="lightning",
    problems=["erratic-loss"],
    description="Adam at lr 0.06: the model keeps getting knocked out of good solutions, val loss "
    "spikes from ~0.1 to 1-2.7 several times and step losses jump by 10x.",
    recipe="MLP 10->64->64->4 (ReLU); Adam lr 0.06; batch 16; 40 epochs (2000 steps, "
    "log_every_n_steps=10); 800/400 samples",
    shows="val_loss spikes to 1.9 (epoch 3), 1.2 (epoch 8) and 2.7 (epoch 32) between stretches at "
    "~0.1-0.3 and stays jumpy (0.5-1.3) to the end; step losses range 0-5; no NaN",
)
def _lightning_erratic(machine: SimulatedMachine, out: Path) -> None:
    seeded(404)
    data = gaussian_classes(seed=404, n_train=800, n_val=400)
    model = FeedforwardNet(10, [64, 64], 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.06)
    trainer = Trainer(model, data, opt, epochs=40, batch_size=16, seed=1)
    lightning_fit(
        machine,
        _lightning_dir(out, "mlp_adam_lr0.06"),
        trainer,
        hparams={"hidden_dims": [64, 64], "lr": 0.06, "batch_size": 16, "max_epochs": 40},
        log_every_n_steps=10,
        seconds_per_step=0.004,
    )


# ------------------------------------------- keras ------------------------------------------


def _keras_run(
    machine: SimulatedMachine,
    out: Path,
    name: str,
    trainer: Trainer,
    *,
    activation: str,
    optimizer: dict[str, Any],
    seconds_per_epoch: float,
) -> None:
    model = trainer.model
    assert isinstance(model, FeedforwardNet)
    model_json = keras_model_json(
        model, model.linears()[0].in_features, activation, "mean_squared_error", optimizer
    )
    keras_fit(
        machine,
        out / "keras" / name,
        trainer,
        model_json=model_json,
        seconds_per_epoch=seconds_per_epoch,
    )


def _keras_optimizer(name: str, lr: float) -> dict[str, Any]:
    return {
        "module": "keras.optimizers",
        "class_name": name,
        "config": {"name": name.lower(), "learning_rate": lr},
        "registered_name": None,
    }


@register(
    path="keras/dense_regression",
    layout="keras",
    problems=[],
    description="Healthy Keras-style regression MLP: epoch_loss in train/ and validation/ fall and "
    "flatten together.",
    recipe="Dense(64, relu) -> Dense(1); Adam lr 1e-3; MSE; batch 32; 40 epochs; 2000/500 samples "
    "of the non-linear factor target (8 features)",
    shows="train/epoch_loss and validation/epoch_loss fall together and flatten; weights drift "
    "smoothly",
)
def _keras_healthy(machine: SimulatedMachine, out: Path) -> None:
    seeded(501)
    data = factor_returns(seed=501, n_train=2000, n_val=500, n_features=8, noise=0.4)
    model = FeedforwardNet(8, [64], 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(
        model, data, opt, epochs=40, batch_size=32, seed=501, stop_after_nonfinite=10**9
    )
    _keras_run(
        machine,
        out,
        "dense_regression",
        trainer,
        activation="relu",
        optimizer=_keras_optimizer("Adam", 0.001),
        seconds_per_epoch=0.9,
    )


@register(
    path="keras/dense_tanh_surface",
    layout="keras",
    problems=[],
    description="Healthy tanh MLP fitting a smooth surface; different seed, width and activation "
    "from dense_regression.",
    recipe="Dense(32, tanh) -> Dense(1); Adam lr 3e-3; MSE; batch 64; 40 epochs; 3000/600 samples "
    "of a smooth non-linear surface (8 features)",
    shows="both epoch_loss curves fall from ~1 to ~0.04 and flatten together",
)
def _keras_healthy2(machine: SimulatedMachine, out: Path) -> None:
    seeded(502)
    data = nonlinear_surface(seed=502, n_train=3000, n_val=600)
    model = FeedforwardNet(8, [32], 1, activation="tanh")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(
        model, data, opt, epochs=40, batch_size=64, seed=502, stop_after_nonfinite=10**9
    )
    _keras_run(
        machine,
        out,
        "dense_tanh_surface",
        trainer,
        activation="tanh",
        optimizer=_keras_optimizer("Adam", 0.003),
        seconds_per_epoch=0.7,
    )


@register(
    path="keras/dense_wide_small_data",
    layout="keras",
    problems=["overfitting"],
    description="Dense(512) on 60 noisy samples: validation epoch_loss bottoms out early, then "
    "rises "
    "steadily while the training loss keeps falling.",
    recipe="Dense(512, relu) -> Dense(1); Adam lr 1e-3; MSE; batch 8; 45 epochs; 60 training "
    "samples (noise 1.0), 500 validation samples",
    shows="validation/epoch_loss minimum within the first ~10 epochs, then a clear rise; "
    "train/epoch_loss keeps falling",
)
def _keras_overfit(machine: SimulatedMachine, out: Path) -> None:
    seeded(503)
    data = factor_returns(seed=503, n_train=60, n_val=500, n_features=8, noise=1.0)
    model = FeedforwardNet(8, [512], 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(
        model, data, opt, epochs=45, batch_size=8, seed=503, stop_after_nonfinite=10**9
    )
    _keras_run(
        machine,
        out,
        "dense_wide_small_data",
        trainer,
        activation="relu",
        optimizer=_keras_optimizer("Adam", 0.001),
        seconds_per_epoch=0.2,
    )


@register(
    path="keras/linear_on_nonlinear",
    layout="keras",
    problems=["underfitting"],
    description="A single Dense(1) layer (linear regression) on a target with no linear component: "
    "both losses stay at the target variance.",
    recipe="Dense(1) only; Adam lr 1e-2; MSE; batch 32; 40 epochs; 2000/500 samples of a smooth "
    "surface with zero linear part (8 features)",
    shows="train/validation epoch_loss ~1.0 from the first epoch to the last",
)
def _keras_underfit(machine: SimulatedMachine, out: Path) -> None:
    seeded(504)
    data = nonlinear_surface(seed=504, n_train=2000, n_val=500)
    model = FeedforwardNet(8, [], 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Trainer(
        model, data, opt, epochs=40, batch_size=32, seed=504, stop_after_nonfinite=10**9
    )
    _keras_run(
        machine,
        out,
        "linear_on_nonlinear",
        trainer,
        activation="linear",
        optimizer=_keras_optimizer("Adam", 0.01),
        seconds_per_epoch=0.4,
    )


@register(
    path="keras/dense_sgd_lr_schedule",
    layout="keras",
    problems=["non-finite-loss"],
    description="LearningRateScheduler multiplies the LR by 1.25 every epoch (meant 0.8): the loss "
    "improves, drifts up once the LR passes ~0.1, and is NaN from epoch 21 to the end.",
    recipe="Dense(64, relu) -> Dense(1); SGD lr 0.01 x 1.25^epoch; MSE; batch 32; 40 epochs; "
    "2000/500 samples (8 features)",
    shows="epoch_loss 0.98 -> 0.46 (epoch 9) -> 2.2 (epoch 20), then NaN in train/ and "
    "validation/ for the last 19 epochs; "
    "epoch_learning_rate grows to ~60; weight histograms NaN at the end",
)
def _keras_nan(machine: SimulatedMachine, out: Path) -> None:
    seeded(505)
    data = factor_returns(seed=505, n_train=2000, n_val=500, n_features=8, noise=0.5)
    model = FeedforwardNet(8, [64], 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.25**epoch)
    trainer = Trainer(
        model,
        data,
        opt,
        epochs=40,
        batch_size=32,
        seed=505,
        stop_after_nonfinite=10**9,
        epoch_scheduler=lambda _opt, _val: sched.step(),
    )
    _keras_run(
        machine,
        out,
        "dense_sgd_lr_schedule",
        trainer,
        activation="relu",
        optimizer=_keras_optimizer("SGD", 0.01),
        seconds_per_epoch=0.5,
    )


# -------------------------------------------------------------------------------------------
# Main
# -------------------------------------------------------------------------------------------


def write_labels(out: Path, runs: list[RunSpec]) -> None:
    labels = {
        "schema_version": SCHEMA_VERSION,
        "runs": {
            r.path: {
                "layout": r.layout,
                "problems": list(r.problems),
                **({"allowed": list(r.allowed)} if r.allowed else {}),
                "description": r.description,
            }
            for r in runs
        },
    }
    (out / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")


_LAYOUT_NOTES = {
    "autostock": "AutoStock Trader `BaseModel.fit`: `Loss/train`, `Loss/validation`, "
    "`Learning_Rate`, "
    "`Gradient/norm` (total norm before clipping, mean over the epoch), `Best_Val_Loss` "
    "(only when it improves), `Weights/<param>` and `Gradients/<param>` histograms every "
    "10 epochs; step = epoch; all nine models trained by one process under one "
    "timestamp directory.",
    "puffin": "puffin `TrainingLogger`: `train_loss`, `val_loss`, `learning_rate/group_0`, "
    "`pred_mean`/"
    "`pred_std` (on a fixed validation batch), `weights/<param>` and `gradients/<param>` "
    "every 10 epochs; `add_hparams` once at the end writes a `<time.time()>` "
    "sub-directory holding the hparams and the `hparam/*` metric scalars.",
    "hf": "HuggingFace `Trainer` + `TensorBoardCallback`: `train/loss` (4 decimals, with "
    "`logging_nan_inf_filter`), `train/grad_norm` (before clipping), `train/learning_rate`, "
    "`train/epoch`, `eval/*` at `eval_steps`, end-of-training `train/train_*` and "
    "`train/total_flos`; `args/text_summary` and `model_config/text_summary` at step 0.",
    "lightning": "PyTorch Lightning `TensorBoardLogger`: `hp_metric` = -1 and the hparams "
    "summaries "
    "in the same event file, `train_loss` every `log_every_n_steps` (step = batches "
    "stepped - 1), `val_loss` per epoch, `epoch` alongside both, `lr-<Optimizer>` from "
    "`LearningRateMonitor`, a user-logged `grad_norm`; `hparams.yaml` next to the file.",
    "keras": "Keras 3 `TensorBoard(histogram_freq=1)` on TF2: `.v2` files in `train/` and "
    "`validation/`, rank-0 float tensors with `scalars` metadata on the first value only, "
    "`epoch_loss` (both), `epoch_learning_rate` (train), `evaluation_loss_vs_iterations` "
    "(validation, step = optimizer iterations), `<layer>/<weight>/histogram` as `[30, 3]` "
    "double tensors every epoch, the `keras` model-config tensor, and the profiler's "
    "`*.profile-empty` marker plus `plugins/profile/<date>/` (both ignored by readers).",
}


def write_readme(out: Path, runs: list[RunSpec]) -> None:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Sample runs",
        "",
        "Real (tiny) PyTorch training runs on synthetic data, logged exactly the way five common "
        "writers lay out their TensorBoard files. Every run is labelled in `labels.json` with the "
        "training problems it really shows (an empty list means healthy). The labels were checked "
        "against the logged numbers, not just the recipe.",
        "",
        "Problem names: " + ", ".join(f"`{p}`" for p in PROBLEMS) + ".",
        "",
        "## Layouts",
        "",
    ]
    for layout in LAYOUT_DIRS:
        lines.append(f"- **{layout}** - {_LAYOUT_NOTES[layout]}")
    lines += [
        "",
        "Wall times, host names, process ids and event-file names come from a simulated clock and "
        "machine, so every regeneration writes byte-identical files on the same platform.",
        "",
        "## Runs",
        "",
        "| run | layout | what was done | what it shows | expected findings |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        expected = r.expected or (
            ", ".join(f"`{p}`" for p in r.problems) if r.problems else "none (healthy)"
        )
        lines.append(
            f"| `{r.path}` | {r.layout} | {cell(r.recipe)} | {cell(r.shows)} | {expected} |"
        )
    lines += [
        "",
        "## Regenerating",
        "",
        "```bash",
        "pip install -e .[samples]      # or: pip install torch",
        "python scripts/make_sample_runs.py --out sample_runs",
        "```",
        "",
        "The script deletes and rewrites only its own sub-folders (`autostock/`, `puffin/`, `hf/`, "
        "`lightning/`, `keras/`) plus this README and `labels.json`. It trains on the CPU with one "
        "thread and takes a few minutes.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default="sample_runs", help="output directory (default: sample_runs)"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="regenerate only runs whose path contains this text (development aid: wall times of "
        "the shared autostock process then differ from a full run)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    selected = [r for r in RUNS if args.only is None or args.only in r.path]
    if args.only is None:
        for layout in LAYOUT_DIRS:  # only our own sub-folders; README.md/labels.json are rewritten
            shutil.rmtree(out / layout, ignore_errors=True)
    else:
        for spec in selected:
            shutil.rmtree(out / spec.path, ignore_errors=True)

    with SimulatedMachine() as machine:
        current_process = None
        for spec in selected:
            if spec.process != current_process:
                proc = _process_for(spec)
                machine.start_process(
                    host=proc["host"],
                    pid=proc["pid"],
                    start=proc["start"],
                    first_writer_uid=proc.get("first_writer_uid", 0),
                )
                current_process = spec.process
            print(f"  {spec.path}", flush=True)
            spec.build(machine, out)
    write_labels(out, RUNS)
    write_readme(out, RUNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
