"""Layout 5: the Keras 3 ``TensorBoard`` callback on TF2 (``tf2.TF2SummaryWriter``, no TF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer import event_file_writer

from tools.samplegen.machine import SimulatedMachine
from tools.samplegen.models import FeedforwardNet
from tools.samplegen.trainer import EpochInfo, Trainer
from tools.samplegen.writers.tf2 import TF2SummaryWriter


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


def keras_optimizer(name: str, lr: float) -> dict[str, Any]:
    """The ``compile_config`` optimizer entry of the model config."""
    return {
        "module": "keras.optimizers",
        "class_name": name,
        "config": {"name": name.lower(), "learning_rate": lr},
        "registered_name": None,
    }
