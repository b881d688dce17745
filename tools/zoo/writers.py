"""Replay a training history into TensorBoard event files, in one of seven writer layouts.

The layouts mirror those of ``tools/samplegen`` (and reuse its simulated machine, TF2 proto
writer, hparams summaries and HF ``TrainingArguments`` dict) and add two more:

=========== ====================================================================================
autostock   ``autostock/<stamp>/<name>``: ``Loss/train``, ``Loss/validation``, ``Learning_Rate``,
            ``Gradient/norm`` (epoch mean), ``Best_Val_Loss``, ``Weights/<p>``, ``Gradients/<p>``,
            ``Predictions/mean|std``; step = epoch.
puffin      ``puffin/<name>``: ``train_loss``, ``val_loss``, ``learning_rate/group_<i>``,
            ``pred_mean``, ``pred_std``, ``weights/<p>``, ``gradients/<p>``; ``add_hparams`` at the
            end (timestamp sub-directory).
hf          ``hf/<name>/runs/<date>_host``: ``train/loss`` (window mean, 4 decimals, NaN filter),
            ``train/grad_norm``, ``train/learning_rate``, ``train/epoch``, ``eval/loss``,
            ``eval/accuracy|mae``, ``eval/runtime``..., a custom callback's ``parameters/<p>``,
            ``grads/<p>``, ``eval/pred_mean|std``; ``args`` and ``model_config`` text.
lightning   ``lightning/<name>/lightning_logs/version_0``: ``hp_metric`` + hparams,
            ``train_loss_step``, ``train_loss_epoch``, ``val_loss``, ``epoch``, ``lr-<Opt>``,
            ``grad_2.0_norm_total``, histograms ``<p>`` and ``<p>_grad``, ``pred_mean|std``;
            ``hparams.yaml``.
keras       ``keras/<name>/{train,validation}`` TF2 ``.v2`` files: ``epoch_loss``,
            ``epoch_learning_rate``, ``epoch_gradient_norm`` (custom ``train_step`` metric),
            ``epoch_accuracy|mae``, ``evaluation_loss_vs_iterations``, ``epoch_pred_mean|std``,
            ``<layer>/<kernel|bias>/histogram`` tensors.
tf2loop     ``tf2loop/<name>/{train,test}`` (the TF2 custom-training-loop tutorial): ``loss`` and
            ``accuracy|mae`` in each, ``learning_rate`` and ``grad_norm`` in ``train/``, TF2
            histogram tensors ``weights/<p>`` and ``gradients/<p>``, ``pred_mean|std`` in
            ``test/``; step = epoch.
tbx         ``tbx/<name>`` (tensorboardX / fairseq style, one directory): ``train/loss``,
            ``train/gnorm``, ``train/lr``, ``train/clip`` every ``log_interval`` updates,
            ``valid/loss``, ``valid/accuracy|mae``, ``valid/best_loss``, ``valid/pred_std|mean``
            per epoch; step = number of updates.
=========== ====================================================================================

Resumed runs: a second process opens a new writer on the same directory and continues the step
count ("continue"), or a run is logged only from the checkpoint with the best validation loss on
("best_first", its first point is its best). Every writer also reports what it logged to a
``Recorder`` so that the labels are checked against the logged numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from torch.utils.tensorboard import SummaryWriter

from tools.samplegen.machine import SimulatedMachine, hparams_summaries
from tools.samplegen.writers.hf import hf_training_args
from tools.samplegen.writers.tf2 import TF2SummaryWriter
from tools.zoo.recipes import Recipe
from tools.zoo.train import Epoch, History


class Recorder:
    """What a layout wrote, by role: the numbers the labels are checked against."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.tags: dict[str, str] = {}
        self.grad_hists: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        self.weight_hists: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)

    def scalar(self, role: str, tag: str, step: int, value: float) -> None:
        self.scalars[role].append((int(step), float(value)))
        self.tags.setdefault(role, tag)

    def series(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        points = self.scalars.get(role, [])
        return (
            np.array([p[0] for p in points], dtype=np.int64),
            np.array([p[1] for p in points], dtype=np.float64),
        )


def _finite(a: np.ndarray | None) -> bool:
    return a is not None and bool(np.isfinite(a).all())


def owned_dir(recipe: Recipe) -> str:
    """The directory (relative to the zoo root) that belongs to this run alone."""
    if recipe.layout == "autostock":
        return Autostock.path_for(recipe)
    return f"{recipe.layout}/{recipe.name}"


def segments(history: History) -> list[tuple[int, int]]:
    """Epoch ranges ``[start, stop)`` written by successive processes."""
    n = len(history.epochs)
    r = history.recipe
    if r.resume == "continue" and n > 3:
        cut = min(max(1, r.resume_epoch), n - 2)
        return [(0, cut), (cut, n)]
    if r.resume == "best_first" and n > 6:
        val = np.array([e.val_loss for e in history.epochs[: n - 5]])
        val = np.where(np.isfinite(val), val, np.inf)
        # The run restarts from its best checkpoint: its first logged point is its best.
        return [(int(np.argmin(val)), n)]
    return [(0, n)]


# ------------------------------------------------------------------------------------------
# Layouts
# ------------------------------------------------------------------------------------------


class Layout:
    """One writer layout; ``open``/``step``/``epoch``/``close`` are called per process."""

    name = ""
    split_dirs: tuple[str, ...] = ()

    def __init__(
        self, *, history: History, root: Path, machine: SimulatedMachine, rec: Recorder
    ) -> None:
        self.h, self.r, self.root, self.machine, self.rec = (
            history,
            history.recipe,
            root,
            machine,
            rec,
        )
        self.cls = self.r.task == "classification"
        self.metric = "accuracy" if self.cls else "mae"
        self.best_val = math.inf

    @property
    def logical_path(self) -> str:
        return f"{self.name}/{self.r.name}"

    @property
    def run_dir(self) -> Path:
        return self.root / self.logical_path

    def hist_epoch(self, epoch: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]] | None:
        return self.h.snapshots.get(epoch) if self.r.log_histograms else None

    def now(self) -> float:
        return self.machine.clock.time()

    def open(self, index: int, first_epoch: int) -> None:
        raise NotImplementedError

    def step(self, step: int, epoch: int) -> None:  # epoch-level layouts ignore it
        pass

    def epoch(self, ep: Epoch) -> None:
        raise NotImplementedError

    def close(self, last: bool) -> None:
        raise NotImplementedError

    def hparams(self) -> dict[str, Any]:
        r = self.r
        return {
            "model": r.model,
            "width": r.width,
            "depth": r.depth,
            "activation": r.activation,
            "optimizer": r.optimizer,
            "lr": r.lr,
            "weight_decay": r.weight_decay,
            "batch_size": r.batch_size,
            "epochs": r.epochs,
            "schedule": r.schedule,
            "clip_norm": r.clip_norm,
            "n_train": r.n_train,
        }


class TorchEpochLayout(Layout):
    """Shared code of the torch ``SummaryWriter`` layouts."""

    def open(self, index: int, first_epoch: int) -> None:
        self.w = SummaryWriter(log_dir=str(self.run_dir))

    def hist(self, wtag: str, gtag: str, step: int, epoch: int) -> None:
        snap = self.hist_epoch(epoch)
        if snap is None:
            return
        for name, (weights, grads) in snap.items():
            if _finite(weights):  # add_histogram raises on NaN input: real loops skip it
                self.w.add_histogram(wtag.format(name), weights, step)
                self.rec.weight_hists[name].append((step, weights))
            if _finite(grads):
                self.w.add_histogram(gtag.format(name), grads, step)
                self.rec.grad_hists[name].append((step, grads))

    def close(self, last: bool) -> None:
        self.w.close()


class Autostock(TorchEpochLayout):
    name = "autostock"

    @staticmethod
    def path_for(recipe: Recipe) -> str:
        start = dt.datetime(2025, 1, 10, 14, 30, 22) + dt.timedelta(hours=3 * recipe.index)
        return f"autostock/{start:%Y%m%d_%H%M%S}/{recipe.name}"

    @property
    def logical_path(self) -> str:
        return self.path_for(self.r)

    def epoch(self, ep: Epoch) -> None:
        w, rec, e = self.w, self.rec, ep.epoch
        for role, tag, value in (
            ("train_loss", "Loss/train", ep.train_loss),
            ("val_loss", "Loss/validation", ep.val_loss),
            ("lr", "Learning_Rate", ep.lr),
            ("grad_norm", "Gradient/norm", ep.grad_norm),
        ):
            w.add_scalar(tag, value, e)
            rec.scalar(role, tag, e, value)
        if ep.val_loss < self.best_val:  # a new best model is saved
            self.best_val = ep.val_loss
            w.add_scalar("Best_Val_Loss", ep.val_loss, e)
        if self.r.log_predictions:
            w.add_scalar("Predictions/mean", ep.pred_mean, e)
            w.add_scalar("Predictions/std", ep.pred_std, e)
            rec.scalar("pred_std", "Predictions/std", e, ep.pred_std)
        self.hist("Weights/{}", "Gradients/{}", e, e)


class Puffin(TorchEpochLayout):
    name = "puffin"

    def open(self, index: int, first_epoch: int) -> None:
        self.w = SummaryWriter(log_dir=str(self.run_dir), flush_secs=120)

    def epoch(self, ep: Epoch) -> None:
        w, rec, e = self.w, self.rec, ep.epoch
        w.add_scalar("train_loss", ep.train_loss, e)
        w.add_scalar("val_loss", ep.val_loss, e)
        rec.scalar("train_loss", "train_loss", e, ep.train_loss)
        rec.scalar("val_loss", "val_loss", e, ep.val_loss)
        for i in range(2):  # weights and no-decay (bias) parameter groups
            w.add_scalar(f"learning_rate/group_{i}", ep.lr, e)
        rec.scalar("lr", "learning_rate/group_0", e, ep.lr)
        if self.r.log_predictions:
            w.add_scalar("pred_mean", ep.pred_mean, e)
            w.add_scalar("pred_std", ep.pred_std, e)
            rec.scalar("pred_std", "pred_std", e, ep.pred_std)
        self.hist("weights/{}", "gradients/{}", e, e)
        self.best_val = (
            min(self.best_val, ep.val_loss) if math.isfinite(ep.val_loss) else self.best_val
        )
        self.last_val = ep.val_loss

    def close(self, last: bool) -> None:
        if last:
            self.machine.clock.advance(0.4)
            metrics = {
                "hparam/best_val_loss": self.best_val if math.isfinite(self.best_val) else math.nan,
                "hparam/final_val_loss": self.last_val,
            }
            self.w.add_hparams(self.hparams(), metrics)
        self.w.close()


class Tf2Loop(Layout):
    name = "tf2loop"
    split_dirs = ("train", "test")

    def open(self, index: int, first_epoch: int) -> None:
        self.train = TF2SummaryWriter(self.run_dir / "train")
        self.test = TF2SummaryWriter(self.run_dir / "test")

    def epoch(self, ep: Epoch) -> None:
        rec, e = self.rec, ep.epoch
        self.train.scalar("loss", ep.train_loss, e, self.now())
        self.train.scalar("learning_rate", ep.lr, e, self.now())
        self.train.scalar("grad_norm", ep.grad_norm, e, self.now())
        rec.scalar("train_loss", "train/loss", e, ep.train_loss)
        rec.scalar("lr", "train/learning_rate", e, ep.lr)
        rec.scalar("grad_norm", "train/grad_norm", e, ep.grad_norm)
        self.test.scalar("loss", ep.val_loss, e, self.now())
        self.test.scalar(self.metric, ep.val_metric, e, self.now())
        rec.scalar("val_loss", "test/loss", e, ep.val_loss)
        if self.r.log_predictions:
            self.test.scalar("pred_mean", ep.pred_mean, e, self.now())
            self.test.scalar("pred_std", ep.pred_std, e, self.now())
            rec.scalar("pred_std", "test/pred_std", e, ep.pred_std)
        snap = self.hist_epoch(e)
        for name, (weights, grads) in (snap or {}).items():
            self.train.histogram(f"weights/{name}", weights, e, self.now())
            if _finite(weights):
                self.rec.weight_hists[name].append((e, weights))
            if grads is not None:
                self.train.histogram(f"gradients/{name}", grads, e, self.now())
                if _finite(grads):
                    self.rec.grad_hists[name].append((e, grads))

    def close(self, last: bool) -> None:
        self.train.close()
        self.test.close()


class Keras(Layout):
    name = "keras"
    split_dirs = ("train", "validation")

    def open(self, index: int, first_epoch: int) -> None:
        self.train = TF2SummaryWriter(self.run_dir / "train")
        if index == 0:
            self.train.keras_model(self._model_json(), self.now())
        self.val = None  # created lazily by the first validation, as Keras does

    def _model_json(self) -> str:
        r = self.r
        layers = [
            {
                "class_name": "Dense",
                "config": {"name": _keras_layer(n)[0], "activation": r.activation},
            }
            for n in self.h.hist_params
        ]
        config = {
            "class_name": "Sequential",
            "config": {"name": "sequential", "layers": layers},
            "compile_config": {
                "optimizer": {
                    "class_name": r.optimizer.capitalize(),
                    "config": {"learning_rate": r.lr},
                },
                "loss": "sparse_categorical_crossentropy" if self.cls else "mean_squared_error",
            },
        }
        return json.dumps(config)

    def epoch(self, ep: Epoch) -> None:
        rec, e = self.rec, ep.epoch
        if self.val is None:
            self.val = TF2SummaryWriter(self.run_dir / "validation")
        self.val.scalar("evaluation_loss_vs_iterations", ep.val_loss, ep.global_step, self.now())
        self.train.scalar("epoch_loss", ep.train_loss, e, self.now())
        self.train.scalar("epoch_learning_rate", ep.lr, e, self.now())
        self.train.scalar("epoch_gradient_norm", ep.grad_norm, e, self.now())
        self.val.scalar("epoch_loss", ep.val_loss, e, self.now())
        self.val.scalar(f"epoch_{self.metric}", ep.val_metric, e, self.now())
        rec.scalar("train_loss", "train/epoch_loss", e, ep.train_loss)
        rec.scalar("val_loss", "validation/epoch_loss", e, ep.val_loss)
        rec.scalar("lr", "train/epoch_learning_rate", e, ep.lr)
        rec.scalar("grad_norm", "train/epoch_gradient_norm", e, ep.grad_norm)
        if self.r.log_predictions:
            self.val.scalar("epoch_pred_mean", ep.pred_mean, e, self.now())
            self.val.scalar("epoch_pred_std", ep.pred_std, e, self.now())
            rec.scalar("pred_std", "validation/epoch_pred_std", e, ep.pred_std)
        for name, (weights, _grads) in (self.hist_epoch(e) or {}).items():
            layer, kind = _keras_layer(name)
            # Keras stores Dense kernels as (in, out): the transpose of torch's (out, in).
            values = weights.T if weights.ndim == 2 else weights
            self.train.histogram(f"{layer}/{kind}/histogram", values, e, self.now())
            if _finite(weights):
                rec.weight_hists[name].append((e, weights))

    def close(self, last: bool) -> None:
        self.train.close()
        if self.val is not None:
            self.val.close()


def _keras_layer(param: str) -> tuple[str, str]:
    module, _, kind = param.rpartition(".")
    return module.replace(".", "_") or "dense", "kernel" if kind == "weight" else kind


class StepLayout(Layout):
    """Layouts that log per optimizer step; ``log_every`` keeps a few points per epoch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        spe = self.h.steps_per_epoch
        self.log_every = max(1, min(50, spe // 4))
        self.window: list[float] = []


class HuggingFace(StepLayout):
    name = "hf"

    @property
    def logical_path(self) -> str:
        start = dt.datetime(2024, 11, 21, 10, 0, 0) + dt.timedelta(minutes=37 * self.r.index)
        return f"hf/{self.r.name}/runs/{start:%b%d_%H-%M-%S}_host"

    def open(self, index: int, first_epoch: int) -> None:
        self.w = SummaryWriter(log_dir=str(self.run_dir))
        r = self.r
        args = hf_training_args(
            r.name,
            learning_rate=r.lr,
            per_device_train_batch_size=r.batch_size,
            num_train_epochs=float(r.epochs),
            max_grad_norm=r.clip_norm,
            weight_decay=r.weight_decay,
            seed=r.seed,
            logging_steps=self.log_every,
            eval_strategy="epoch",
            optim="sgd" if r.optimizer == "sgd" else "adamw_torch",
            lr_scheduler_type={"step": "linear", "warm_restarts": "cosine_with_restarts"}.get(
                r.schedule, r.schedule
            ),
        )
        self.w.add_text("args", json.dumps(args, indent=2))
        self.w.add_text("model_config", json.dumps(self.hparams(), indent=2, sort_keys=True))
        self.window = []

    def step(self, step: int, epoch: int) -> None:
        loss = self.h.step_loss[step - 1]
        if math.isfinite(loss):
            self.window.append(loss)
        else:  # logging_nan_inf_filter: a NaN/inf loss counts as the window's running mean
            self.window.append(float(np.mean(self.window)) if self.window else 0.0)
        if step % self.log_every:
            return
        value = round(float(np.mean(self.window)), 4)
        self.window = []
        epoch_float = epoch + ((step - 1) % self.h.steps_per_epoch + 1) / self.h.steps_per_epoch
        for role, tag, v in (
            ("train_loss", "train/loss", value),
            ("grad_norm", "train/grad_norm", self.h.step_grad_norm[step - 1]),
            ("lr", "train/learning_rate", self.h.step_lr[step - 1]),
            ("", "train/epoch", epoch_float),
        ):
            self.w.add_scalar(tag, v, step)
            if role:
                self.rec.scalar(role, tag, step, v)

    def epoch(self, ep: Epoch) -> None:
        s = ep.global_step
        runtime = round(0.011 * math.ceil(self.r.n_val / 64) + 0.0087, 4)
        self.machine.clock.advance(runtime)
        logs = {"eval/loss": ep.val_loss, f"eval/{self.metric}": ep.val_metric}
        if self.r.log_predictions:
            logs.update({"eval/pred_mean": ep.pred_mean, "eval/pred_std": ep.pred_std})
        logs.update(
            {
                "eval/runtime": runtime,
                "eval/samples_per_second": round(self.r.n_val / runtime, 3),
                "train/epoch": float(ep.epoch + 1),
            }
        )
        for tag, value in logs.items():
            self.w.add_scalar(tag, value, s)
        self.rec.scalar("val_loss", "eval/loss", s, ep.val_loss)
        if self.r.log_predictions:
            self.rec.scalar("pred_std", "eval/pred_std", s, ep.pred_std)
        snap = self.hist_epoch(ep.epoch)
        for name, (weights, grads) in (snap or {}).items():
            if _finite(weights):
                self.w.add_histogram(f"parameters/{name}", weights, s)
                self.rec.weight_hists[name].append((s, weights))
            if _finite(grads):
                self.w.add_histogram(f"grads/{name}", grads, s)
                self.rec.grad_hists[name].append((s, grads))
        self.last = ep

    def close(self, last: bool) -> None:
        if last:
            s = self.last.global_step
            losses = np.array(self.h.step_loss[:s])
            for tag, value in (
                ("train/train_runtime", round(s * 0.01, 4)),
                (
                    "train/train_loss",
                    float(np.nanmean(losses)) if np.isfinite(losses).any() else 0.0,
                ),
                ("train/total_flos", float(6 * self.h.n_params * self.r.n_train * self.r.epochs)),
                ("train/epoch", float(self.last.epoch + 1)),
            ):
                self.w.add_scalar(tag, value, s)
        self.w.close()


class Lightning(StepLayout):
    name = "lightning"

    @property
    def logical_path(self) -> str:
        return f"lightning/{self.r.name}/lightning_logs/version_0"

    def open(self, index: int, first_epoch: int) -> None:
        self.w = SummaryWriter(log_dir=str(self.run_dir))
        if index == 0:  # log_hyperparams: hp_metric -1 and the hparams in the same file
            self.w.add_scalar("hp_metric", -1, 0)
            summaries = hparams_summaries(self.hparams(), {"hp_metric": -1})
            file_writer = self.w._get_file_writer()
            for summary in summaries:
                file_writer.add_summary(summary)
        self.opt_name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[self.r.optimizer]

    def step(self, step: int, epoch: int) -> None:
        if step % self.log_every:
            return
        s = step - 1  # _batches_that_stepped when the logs are flushed
        loss = self.h.step_loss[step - 1]
        values = (
            ("lr", f"lr-{self.opt_name}", self.h.step_lr[step - 1]),
            ("train_loss_step", "train_loss_step", loss),
            ("grad_norm", "grad_2.0_norm_total", self.h.step_grad_norm[step - 1]),
            ("", "epoch", epoch),
        )
        for role, tag, value in values:
            self.w.add_scalar(tag, value, s)
            if role:
                self.rec.scalar(role, tag, s, value)

    def epoch(self, ep: Epoch) -> None:
        s = ep.global_step - 1
        self.w.add_scalar("val_loss", ep.val_loss, s)
        self.w.add_scalar(f"val_{self.metric}", ep.val_metric, s)
        self.w.add_scalar("train_loss_epoch", ep.train_loss, s)
        self.w.add_scalar("epoch", ep.epoch, s)
        self.rec.scalar("val_loss", "val_loss", s, ep.val_loss)
        self.rec.scalar("train_loss", "train_loss_epoch", s, ep.train_loss)
        if self.r.log_predictions:
            self.w.add_scalar("pred_mean", ep.pred_mean, s)
            self.w.add_scalar("pred_std", ep.pred_std, s)
            self.rec.scalar("pred_std", "pred_std", s, ep.pred_std)
        snap = self.hist_epoch(ep.epoch)
        for name, (weights, grads) in (snap or {}).items():
            if _finite(weights):
                self.w.add_histogram(name, weights, s)
                self.rec.weight_hists[name].append((s, weights))
            if _finite(grads):
                self.w.add_histogram(f"{name}_grad", grads, s)
                self.rec.grad_hists[name].append((s, grads))

    def close(self, last: bool) -> None:
        self.w.close()
        if last:  # TensorBoardLogger.save(): hparams.yaml next to the event file
            with open(self.run_dir / "hparams.yaml", "w") as fh:
                for key, value in self.hparams().items():
                    yaml.dump({key: value}, fh)


class TensorboardX(StepLayout):
    name = "tbx"

    def open(self, index: int, first_epoch: int) -> None:
        self.w = SummaryWriter(log_dir=str(self.run_dir))
        self.clipped = 0

    def step(self, step: int, epoch: int) -> None:
        loss = self.h.step_loss[step - 1]
        self.window.append(loss)
        norm = self.h.step_grad_norm[step - 1]
        self.clipped += int(bool(self.r.clip_norm) and norm > self.r.clip_norm)
        if step % self.log_every:
            return
        values = (
            ("train_loss", "train/loss", float(np.mean(self.window))),
            ("grad_norm", "train/gnorm", norm),
            ("lr", "train/lr", self.h.step_lr[step - 1]),
            ("", "train/clip", 100.0 * self.clipped / len(self.window)),
        )
        self.window, self.clipped = [], 0
        for role, tag, value in values:
            self.w.add_scalar(tag, value, step)
            if role:
                self.rec.scalar(role, tag, step, value)

    def epoch(self, ep: Epoch) -> None:
        s = ep.global_step
        if math.isfinite(ep.val_loss):
            self.best_val = min(self.best_val, ep.val_loss)
        self.w.add_scalar("valid/loss", ep.val_loss, s)
        self.w.add_scalar(f"valid/{self.metric}", ep.val_metric, s)
        self.w.add_scalar("valid/best_loss", self.best_val, s)
        self.rec.scalar("val_loss", "valid/loss", s, ep.val_loss)
        if self.r.log_predictions:
            self.w.add_scalar("valid/pred_mean", ep.pred_mean, s)
            self.w.add_scalar("valid/pred_std", ep.pred_std, s)
            self.rec.scalar("pred_std", "valid/pred_std", s, ep.pred_std)
        for name, (weights, grads) in (self.hist_epoch(ep.epoch) or {}).items():
            if _finite(weights):
                self.w.add_histogram(f"params/{name}", weights, s)
                self.rec.weight_hists[name].append((s, weights))
            if _finite(grads):
                self.w.add_histogram(f"grads/{name}", grads, s)
                self.rec.grad_hists[name].append((s, grads))

    def close(self, last: bool) -> None:
        self.w.close()


LAYOUT_CLASSES: dict[str, type[Layout]] = {
    cls.name: cls
    for cls in (Autostock, Puffin, HuggingFace, Lightning, Keras, Tf2Loop, TensorboardX)
}

_HOSTS = {
    "autostock": ("trader-ws", 1736519422.61),
    "puffin": ("quant-mbp.local", 1732200000.0),
    "hf": ("host", 1732183203.2),
    "lightning": ("gpu-node-01", 1731590000.0),
    "keras": ("host", 1736519421.5),
    "tf2loop": ("tf-box", 1738000000.0),
    "tbx": ("fair-node-3", 1739000000.0),
}


def write_run(*, history: History, root: Path) -> tuple[str, Recorder]:
    """Write the run's event files under ``root``; returns its logical path and what it logged."""
    r = history.recipe
    rec = Recorder()
    seconds_per_step = (
        0.002 + history.n_params * 2e-8 + (0.01 if r.model in {"rnn", "transformer"} else 0)
    )
    with SimulatedMachine() as machine:
        layout = LAYOUT_CLASSES[r.layout](history=history, root=root, machine=machine, rec=rec)
        host, base = _HOSTS[r.layout]
        start = base + 7200.0 * r.index
        for i, (first, stop) in enumerate(segments(history)):
            # A resumed run is a new process on the same machine, hours later.
            machine.start_process(
                host=host,
                pid=20000 + 97 * r.index + i,
                start=start + 5400.0 * i,
                first_writer_uid=1666 if r.layout in {"keras", "tf2loop"} else 0,
            )
            layout.open(i, first)
            prev = history.epochs[first - 1].global_step if first else 0
            for e in range(first, stop):
                ep = history.epochs[e]
                for step in range(prev + 1, ep.global_step + 1):
                    machine.clock.advance(seconds_per_step)
                    layout.step(step, e)
                prev = ep.global_step
                machine.clock.advance(0.05)
                layout.epoch(ep)
            layout.close(last=i == len(segments(history)) - 1)
    return layout.logical_path, rec
