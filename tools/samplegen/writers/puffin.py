"""Layout 2: the puffin ``TrainingLogger`` (torch ``SummaryWriter``, ``add_hparams`` at the end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from tools.samplegen.machine import SimulatedMachine
from tools.samplegen.trainer import EpochInfo, Trainer, finite_tensor


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
