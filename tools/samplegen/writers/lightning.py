"""Layout 4: PyTorch Lightning's ``TensorBoardLogger`` (emulated with torch's ``SummaryWriter``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from torch.utils.tensorboard import SummaryWriter

from tools.samplegen.machine import SimulatedMachine, hparams_summaries
from tools.samplegen.trainer import EpochInfo, StepInfo, Trainer


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
