"""Layout 1: the AutoStock Trader ``BaseModel.fit`` loop (torch ``SummaryWriter``, step = epoch)."""

from __future__ import annotations

import math
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from tools.samplegen.machine import SimulatedMachine
from tools.samplegen.trainer import EpochInfo, Trainer, finite_tensor


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
