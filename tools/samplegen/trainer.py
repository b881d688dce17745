"""A small, deterministic training loop with hooks for the writers, and recipes turned into it.

``Trainer.fit`` calls ``on_step(StepInfo)`` after every optimizer step and ``on_epoch(EpochInfo)``
after every epoch; the writers log from those hooks. ``make_trainer(recipe)`` builds the dataset,
model, optimizer, schedule and trainer of a catalogue ``Recipe``, in the order that fixes the
random draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tools.samplegen.catalogue import Optimizer, Part, Recipe
from tools.samplegen.data import DATASETS, Dataset
from tools.samplegen.models import MODELS, init_linears


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
            (the runs keep logging the NaN/inf values for a few epochs, as real loops do);
            ``None`` never stops.
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
    stop_after_nonfinite: int | None = 5
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
            stop = self.stop_after_nonfinite
            if stop is not None and nonfinite_epochs >= stop:
                break
        return self.history


def seeded(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def finite_tensor(t: torch.Tensor | None) -> bool:
    return t is not None and bool(torch.isfinite(t).all())


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


def make_optimizer(spec: Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = {}
    params: Any = model.parameters()
    if spec.weight_decay and not spec.decay_biases:
        # Parameter groups with weight decay on weights only (biases are not decayed).
        named = list(model.named_parameters())
        params = [
            {
                "params": [p for n, p in named if not n.endswith("bias")],
                "weight_decay": spec.weight_decay,
            },
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
        ]
    elif spec.weight_decay:
        kwargs["weight_decay"] = spec.weight_decay
    if spec.name == "SGD":
        if spec.momentum:
            kwargs["momentum"] = spec.momentum
        return torch.optim.SGD(params, lr=spec.lr, **kwargs)
    return torch.optim.Adam(params, lr=spec.lr, **kwargs)


LRAtStep = Callable[[int], float]
EpochScheduler = Callable[[torch.optim.Optimizer, float], None]


def make_schedule(
    part: Part, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int
) -> tuple[LRAtStep | None, EpochScheduler | None]:
    """A catalogue schedule as ``(lr_at_step, epoch_scheduler)``, one of them ``None``.

    Per step (the LR is set before every optimizer step):

    * ``cosine``: cosine decay from the optimizer's LR to 0 over the whole training.
    * ``switch(before, after, at_epoch)``: ``before`` until epoch ``at_epoch``, then ``after``.
    * ``warmup(start, peak, epochs)``: linear from ``start`` to ``peak`` over ``epochs``, then flat.

    Per epoch (a torch scheduler stepped after every epoch): ``plateau(factor, patience)``
    (ReduceLROnPlateau on the validation loss), ``multistep(milestones, gamma)``,
    ``exponential(gamma)``, ``step(step_size, gamma)``, ``power(base)`` (LambdaLR: the
    optimizer's LR times ``base ** epoch``).
    """
    p = part.params
    sched = torch.optim.lr_scheduler
    if part.kind == "cosine":
        base_lr, total = optimizer.param_groups[0]["lr"], epochs * steps_per_epoch
        return (
            lambda step: base_lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        ), None
    if part.kind == "switch":
        before, after, switch_step = p["before"], p["after"], p["at_epoch"] * steps_per_epoch
        return (lambda step: before if step < switch_step else after), None
    if part.kind == "warmup":
        start, peak, warmup = p["start"], p["peak"], p["epochs"] * steps_per_epoch
        return (lambda step: start + (peak - start) * min(1.0, step / warmup)), None
    if part.kind == "plateau":
        plateau = sched.ReduceLROnPlateau(optimizer, factor=p["factor"], patience=p["patience"])
        return None, lambda _opt, val_loss: plateau.step(val_loss)
    if part.kind == "multistep":
        epoch_sched: Any = sched.MultiStepLR(
            optimizer, milestones=list(p["milestones"]), gamma=p["gamma"]
        )
    elif part.kind == "exponential":
        epoch_sched = sched.ExponentialLR(optimizer, gamma=p["gamma"])
    elif part.kind == "step":
        epoch_sched = sched.StepLR(optimizer, step_size=p["step_size"], gamma=p["gamma"])
    elif part.kind == "power":
        base = p["base"]
        epoch_sched = sched.LambdaLR(optimizer, lambda epoch: base**epoch)
    else:
        raise ValueError(f"unknown schedule {part.kind!r}")
    return None, lambda _opt, _val: epoch_sched.step()


def make_trainer(recipe: Recipe) -> Trainer:
    """The recipe's trainer, ready to ``fit``. Seeds torch and numpy first; the dataset, the
    model's initialisation and the batch order are then fixed by the recipe alone."""
    seeded(recipe.seed)
    data = DATASETS[recipe.data.kind](seed=recipe.seed, **recipe.data.params)
    model = MODELS[recipe.model.kind](**recipe.model.params)
    if recipe.init is not None:
        init = recipe.init
        init_linears(model, weight_std=init.weight_std, bias=init.bias, first=init.first)
    optimizer = make_optimizer(recipe.optimizer, model)
    lr_at_step = epoch_scheduler = None
    if recipe.schedule is not None:
        lr_at_step, epoch_scheduler = make_schedule(
            recipe.schedule,
            optimizer,
            steps_per_epoch=math.ceil(data.n_train / recipe.batch_size),
            epochs=recipe.epochs,
        )
    return Trainer(
        model,
        data,
        optimizer,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        seed=recipe.seed if recipe.shuffle_seed is None else recipe.shuffle_seed,
        clip_norm=recipe.clip_norm,
        lr_at_step=lr_at_step,
        epoch_scheduler=epoch_scheduler,
        stop_after_nonfinite=recipe.stop_after_nonfinite,
    )
