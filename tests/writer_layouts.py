"""Event files laid out the way each training framework writes them, for the semantics tests.

Every :class:`WriterCase` names a framework's logical run, the tags it writes (with the
directories it splits them over and the steps it logs them at) and what tbreport must make of
them: the meaning of its key tags, the run's kind, the roles the detectors get, and the detector
that fires on a run with a problem.

Where the framework writes through a TensorBoard writer that may be installed here (PyTorch's
``torch.utils.tensorboard.SummaryWriter``, ``tensorboardX``), that writer writes the file; without
it, ``tbreport.testing`` writes the same ``simple_value`` events. TensorFlow and Keras output
(TF2 rank-0 tensor scalars, TF1 ``simple_value`` scalars and ``HistogramProto`` histograms) is
always written by ``tbreport.testing``. Each case's ``source`` says where its tag list comes from.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from diagnosis_helpers import make_curve

from tbreport.testing import (
    file_version_event,
    histogram_event,
    scalar_event,
    tensor_histogram_event,
    tensor_scalar_event,
    text_event,
    write_events,
)

SUPERVISED = "supervised"
RL = "reinforcement-learning"
GAN = "adversarial"

#: Variants written for every case: a healthy run, a run with the case's problem, a run whose
#: event files hold no point; RL cases that log an explained variance also get a NaN there.
HEALTHY, PROBLEM, EMPTY, NAN_EV = "healthy", "problem", "empty", "nan-explained-variance"
EPOCHS = 40
TORCH = "torch.utils.tensorboard"
TBX = "tensorboardX"
#: The event file name used when no writer package writes the file.
FALLBACK_FILE = "events.out.tfevents.1000.host.1.0"


def available(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# -- writing ---------------------------------------------------------------------------------


class EventLog:
    """One event file in ``directory``, written by ``backend``.

    ``"torch"`` and ``"tensorboardX"`` use that package's ``SummaryWriter`` when it is installed
    and otherwise write the same ``simple_value`` events; ``"tf1"`` writes ``simple_value``
    scalars and ``HistogramProto`` histograms, ``"tf2"`` rank-0 tensor scalars and ``[k, 3]``
    tensor histograms, as TensorFlow does.
    """

    def __init__(self, directory: Path, *, backend: str) -> None:
        self.directory = directory
        self.backend = backend
        self.events = [file_version_event(wall_time=1000.0)]
        self.seen: set[str] = set()
        self.writer = None
        directory.mkdir(parents=True, exist_ok=True)
        if backend == "torch" and available(TORCH):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(directory))
        elif backend == "tensorboardX" and available(TBX):
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(logdir=str(directory))

    @property
    def real(self) -> bool:
        """Whether the writer package itself writes the file."""
        return self.writer is not None

    def scalar(self, tag: str, value: float, step: int) -> None:
        wall = 1000.0 + step
        if self.writer is not None:
            self.writer.add_scalar(tag, float(value), int(step), walltime=wall)
        elif self.backend == "tf2":
            first = tag not in self.seen
            self.seen.add(tag)
            self.events.append(
                tensor_scalar_event(
                    tag, float(value), step=int(step), wall_time=wall, with_metadata=first
                )
            )
        else:
            self.events.append(scalar_event(tag, float(value), step=int(step), wall_time=wall))

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        wall = 1000.0 + step
        if self.writer is not None:
            self.writer.add_histogram(tag, values, int(step), walltime=wall)
        elif self.backend == "tf2":
            first = tag not in self.seen
            self.seen.add(tag)
            self.events.append(
                tensor_histogram_event(
                    tag, values, step=int(step), wall_time=wall, with_metadata=first
                )
            )
        else:
            self.events.append(histogram_event(tag, values, step=int(step), wall_time=wall))

    def text(self, tag: str, text: str) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, 0)
        else:
            # add_text stores its tag as "<tag>/text_summary".
            self.events.append(text_event(f"{tag}/text_summary", text, step=0, wall_time=1000.0))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            write_events(self.directory / FALLBACK_FILE, self.events)


# -- curves ----------------------------------------------------------------------------------


@dataclass
class Curves:
    """The curves of one variant, one value per epoch (or RL iteration).

    Attributes:
        train: Training loss (healthy decay, or the problem's shape).
        val: Validation loss.
        reward: Episode reward: rising when healthy, flat for the problem.
        value_loss: An RL critic or GAN generator loss: rises in every variant (a moving target).
        policy_loss: An RL policy or GAN discriminator loss: oscillates in every variant.
        explained_variance: RL value-function fit, NaN at some points for ``NAN_EV``.
        empty: No point at all, only the event files.
    """

    train: np.ndarray
    val: np.ndarray
    reward: np.ndarray
    value_loss: np.ndarray
    policy_loss: np.ndarray
    explained_variance: np.ndarray
    empty: bool = False

    def metric(self, loss: np.ndarray) -> np.ndarray:
        """An accuracy-like metric that mirrors a loss."""
        return np.clip(1.0 - 0.5 * loss / loss.max(), 0.0, 1.0)


def make_variant(variant: str, *, problem: str | None, n: int = EPOCHS, seed: int = 5) -> Curves:
    """The curves of ``variant`` for a case whose problem is ``problem``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    train = make_curve("healthy", n, seed=seed)
    val = make_curve("healthy-val", n, seed=seed + 1)
    if variant == PROBLEM and problem == "overfitting":
        train = make_curve("overfit-train", n, seed=seed)
        val = make_curve("overfit-val", n, seed=seed + 1)
    elif variant == PROBLEM and problem == "underfitting":
        train = make_curve("flat", n, seed=seed)
        val = make_curve("flat", n, seed=seed + 1)
    if variant == PROBLEM:
        reward = -150.0 + rng.normal(scale=4.0, size=n)
    else:
        reward = -200.0 + 180.0 * (1 - np.exp(-t / (n / 4))) + rng.normal(scale=4.0, size=n)
    value_loss = 0.2 * np.exp(3.0 * t / n) * np.exp(rng.normal(scale=0.3, size=n))
    policy_loss = 0.05 * np.sin(t * 2.1) + rng.normal(scale=0.03, size=n)
    explained_variance = 1.0 - np.exp(-t / 8.0) + rng.normal(scale=0.02, size=n)
    if variant == NAN_EV:
        explained_variance[n // 3 :: 4] = np.nan  # SB3: returns without variance
    return Curves(
        train=train,
        val=val,
        reward=reward,
        value_loss=value_loss,
        policy_loss=policy_loss,
        explained_variance=explained_variance,
        empty=variant == EMPTY,
    )


def _per_step(values: np.ndarray, k: int, *, seed: int = 9) -> np.ndarray:
    """``k`` logged points per epoch around each epoch's value (minibatch wobble)."""
    rng = np.random.default_rng(seed)
    return np.repeat(values, k) * np.exp(rng.normal(scale=0.01, size=values.size * k))


def _logs(root: Path, dirs: Mapping[str, str], *, backend: str) -> dict[str, EventLog]:
    return {key: EventLog(root / path, backend=backend) for key, path in dirs.items()}


def _close(logs: Mapping[str, EventLog]) -> None:
    for log in logs.values():
        log.close()


# -- supervised writers ----------------------------------------------------------------------


def write_tf1(root: Path, c: Curves) -> None:
    """TF1 ``tf.compat.v1.summary`` + ``FileWriter(logdir)``: scalars and a histogram in the
    name scope ``layer1``."""
    log = EventLog(root, backend="tf1")
    rng = np.random.default_rng(1)
    if not c.empty:
        for e in range(len(c.train)):
            log.scalar("loss", c.train[e], e)
            log.scalar("accuracy", c.metric(c.train)[e], e)
            if e % 10 == 0:
                log.histogram("layer1/weights", rng.normal(scale=0.1, size=256), e)
    log.close()


def tf2_writer(split_dir: str, val_tag: str = "loss") -> Callable[[Path, Curves], None]:
    """A TF2 custom loop (the ``GradientTape`` tutorial): ``train/`` and ``<split_dir>/`` writers
    under one run, ``tf.summary.scalar`` per epoch."""

    def write(root: Path, c: Curves) -> None:
        run = root / "gradient_tape" / "20240101-000000"
        logs = _logs(run, {"train": "train", "val": split_dir}, backend="tf2")
        if not c.empty:
            for e in range(len(c.train)):
                logs["train"].scalar("loss", c.train[e], e)
                logs["train"].scalar("accuracy", c.metric(c.train)[e], e)
                logs["val"].scalar(val_tag, c.val[e], e)
                logs["val"].scalar("accuracy", c.metric(c.val)[e], e)
        _close(logs)

    return write


def write_keras(root: Path, c: Curves) -> None:
    """Keras 3 ``callbacks.TensorBoard(histogram_freq=1)``: ``train/`` + ``validation/``."""
    run = root / "fit" / "20240101-000000"
    logs = _logs(run, {"train": "train", "val": "validation"}, backend="tf2")
    rng = np.random.default_rng(2)
    if not c.empty:
        for e in range(len(c.train)):
            logs["train"].scalar("epoch_accuracy", c.metric(c.train)[e], e)
            logs["train"].scalar("epoch_loss", c.train[e], e)
            logs["train"].scalar("epoch_learning_rate", 1e-3, e)
            for layer in ("dense", "dense_1"):
                for param in ("kernel", "bias"):
                    values = rng.normal(scale=0.1, size=64)
                    logs["train"].histogram(f"sequential/{layer}/{param}/histogram", values, e)
            # Keras' evaluation curve on the iteration axis, beside the per-epoch one.
            logs["val"].scalar("evaluation_accuracy_vs_iterations", c.metric(c.val)[e], 10 * e)
            logs["val"].scalar("evaluation_loss_vs_iterations", c.val[e], 10 * e)
            logs["val"].scalar("epoch_accuracy", c.metric(c.val)[e], e)
            logs["val"].scalar("epoch_loss", c.val[e], e)
    _close(logs)


def write_lightning(root: Path, c: Curves) -> None:
    """Lightning ``TensorBoardLogger`` + ``LearningRateMonitor(log_momentum=True)``;
    ``self.log("train_loss", on_step=True, on_epoch=True)``, ``self.log("val_loss")``: 8
    optimiser steps per epoch, ``log_every_n_steps=2``."""
    run = root / "lightning_logs" / "version_0"
    log = EventLog(run, backend="torch")
    (run / "hparams.yaml").write_text("lr: 0.001\nhidden: 32\n", encoding="utf-8")
    if not c.empty:
        steps_per_epoch = 8
        train_steps = _per_step(c.train, 4)
        for e in range(len(c.train)):
            first = e * steps_per_epoch
            log.scalar("lr-Adam", 1e-3, first)
            log.scalar("lr-Adam-momentum", 0.9, first)
            for i, step in enumerate(range(first + 1, first + steps_per_epoch, 2)):
                log.scalar("train_loss_step", train_steps[4 * e + i], step)
                log.scalar("epoch", e, step)
            last = first + steps_per_epoch - 1
            log.scalar("val_loss", c.val[e], last)
            log.scalar("epoch", e, last)
            log.scalar("train_loss_epoch", c.train[e], last)
            log.scalar("epoch", e, last)
    log.close()


def write_hf(root: Path, c: Curves) -> None:
    """HF ``Trainer`` ``TensorBoardCallback`` (``report_to="tensorboard"``): ``logging_steps=5``,
    10 steps per epoch, ``eval_strategy="epoch"``; ``rewrite_logs`` prefixes ``train/`` and
    ``eval/``; the end-of-training summary at the last step."""
    log = EventLog(root / "runs" / "Jan01_00-00-00_host", backend="torch")
    log.text("args", '{"learning_rate": 5e-05, "num_train_epochs": 40}')
    if not c.empty:
        steps_per_epoch = 10
        train_steps = _per_step(c.train, 2)
        rng = np.random.default_rng(3)
        for e in range(len(c.train)):
            for i in range(2):
                step = e * steps_per_epoch + 5 * (i + 1)
                log.scalar("train/loss", train_steps[2 * e + i], step)
                log.scalar("train/grad_norm", float(np.exp(rng.normal(scale=0.1))), step)
                log.scalar("train/learning_rate", 5e-5 * (1 - step / 400), step)
                log.scalar("train/epoch", step / steps_per_epoch, step)
            step = (e + 1) * steps_per_epoch
            log.scalar("eval/loss", c.val[e], step)
            log.scalar("eval/runtime", 0.5, step)
            log.scalar("eval/samples_per_second", 128.0, step)
            log.scalar("eval/steps_per_second", 16.0, step)
            log.scalar("train/epoch", e + 1, step)
        last = len(c.train) * steps_per_epoch
        for tag, value in (
            ("train/train_runtime", 20.0),
            ("train/train_samples_per_second", 64.0),
            ("train/train_steps_per_second", 8.0),
            ("train/total_flos", 1e9),
            ("train/train_loss", float(np.mean(c.train))),
        ):
            log.scalar(tag, value, last)
    log.close()


def write_tensorboardx(root: Path, c: Curves) -> None:
    """tensorboardX's own ``SummaryWriter()`` (default ``runs/<date>_<host>``) with the tags of
    its README example: ``Loss/train``, ``Loss/test``, ``Accuracy/train``, ``Accuracy/test``."""
    log = EventLog(root / "runs" / "Jan01_00-00-00_host", backend="tensorboardX")
    if not c.empty:
        for e in range(len(c.train)):
            log.scalar("Loss/train", c.train[e], e)
            log.scalar("Loss/test", c.val[e], e)
            log.scalar("Accuracy/train", c.metric(c.train)[e], e)
            log.scalar("Accuracy/test", c.metric(c.val)[e], e)
    log.close()


_YOLO_PARTS = {"box": 1.0, "cls": 1.6, "dfl": 1.2}


def write_ultralytics(root: Path, c: Curves) -> None:
    """Ultralytics YOLOv8 ``callbacks/tensorboard.py``: ``label_loss_items(prefix="train")`` and
    ``trainer.lr`` at ``on_train_epoch_end``, ``trainer.metrics`` at ``on_fit_epoch_end``, all
    at step ``epoch + 1``, into ``runs/detect/train``."""
    log = EventLog(root / "runs" / "detect" / "train", backend="torch")
    if not c.empty:
        for e in range(len(c.train)):
            step = e + 1
            for part, scale in _YOLO_PARTS.items():
                log.scalar(f"train/{part}_loss", scale * c.train[e], step)
            for group in range(3):
                log.scalar(f"lr/pg{group}", 0.01 * (1 - e / 50), step)
            metric = c.metric(c.val)[e]
            log.scalar("metrics/precision(B)", metric, step)
            log.scalar("metrics/recall(B)", metric * 0.9, step)
            log.scalar("metrics/mAP50(B)", metric * 0.8, step)
            log.scalar("metrics/mAP50-95(B)", metric * 0.5, step)
            for part, scale in _YOLO_PARTS.items():
                log.scalar(f"val/{part}_loss", scale * c.val[e], step)
    log.close()


def write_yolov5(root: Path, c: Curves) -> None:
    """YOLOv5 ``train.py``/``utils/loggers``: one ``add_scalar(tag, x, epoch)`` per key of its
    fixed tag list, into ``runs/train/exp``."""
    log = EventLog(root / "runs" / "train" / "exp", backend="torch")
    parts = {"box": 1.0, "obj": 0.7, "cls": 0.4}
    if not c.empty:
        for e in range(len(c.train)):
            for part, scale in parts.items():
                log.scalar(f"train/{part}_loss", scale * c.train[e], e)
            metric = c.metric(c.val)[e]
            log.scalar("metrics/precision", metric, e)
            log.scalar("metrics/recall", metric * 0.9, e)
            log.scalar("metrics/mAP_0.5", metric * 0.8, e)
            log.scalar("metrics/mAP_0.5:0.95", metric * 0.5, e)
            for part, scale in parts.items():
                log.scalar(f"val/{part}_loss", scale * c.val[e], e)
            for group in range(3):
                log.scalar(f"x/lr{group}", 0.01 * (1 - e / 50), e)
    log.close()


def write_detectron2(root: Path, c: Curves) -> None:
    """detectron2 ``TensorboardXWriter`` (``cfg.OUTPUT_DIR``): the event storage every 20
    iterations, COCO evaluation every 5 writes; no validation loss."""
    log = EventLog(root / "output", backend="torch")
    if not c.empty:
        train = _per_step(c.train, 5)
        for i, total in enumerate(train):
            it = 20 * (i + 1) - 1
            log.scalar("total_loss", total, it)
            for tag, share in (
                ("loss_cls", 0.35),
                ("loss_box_reg", 0.35),
                ("loss_rpn_cls", 0.1),
                ("loss_rpn_loc", 0.2),
            ):
                log.scalar(tag, share * total, it)
            log.scalar("lr", 0.02, it)
            for tag, value in (
                ("data_time", 0.01),
                ("time", 0.3),
                ("eta_seconds", 1000.0 - i),
                ("fast_rcnn/cls_accuracy", 0.9),
                ("fast_rcnn/fg_cls_accuracy", 0.7),
                ("fast_rcnn/false_negative", 0.2),
                ("roi_head/num_fg_samples", 30.0),
                ("roi_head/num_bg_samples", 482.0),
                ("rpn/num_pos_anchors", 40.0),
                ("rpn/num_neg_anchors", 216.0),
            ):
                log.scalar(tag, value, it)
            if i % 5 == 4:
                ap = 40.0 * (1 - total / train.max())
                for tag, scale in (("bbox/AP", 1.0), ("bbox/AP50", 1.6), ("bbox/AP75", 1.1)):
                    log.scalar(tag, ap * scale, it)
    log.close()


def write_mmdetection(root: Path, c: Curves) -> None:
    """mmdetection 3 (mmengine ``LoggerHook`` + ``TensorboardVisBackend``) into
    ``<work_dir>/<timestamp>/vis_data``: training keys every 50 iterations, COCO metrics per
    epoch."""
    log = EventLog(root / "faster-rcnn" / "20240101_000000" / "vis_data", backend="torch")
    if not c.empty:
        train = _per_step(c.train, 4)
        for i, total in enumerate(train):
            it = 50 * (i + 1)
            log.scalar("lr", 0.02, it)
            log.scalar("data_time", 0.01, it)
            log.scalar("time", 0.4, it)
            log.scalar("loss", total, it)
            for tag, share in (
                ("loss_rpn_cls", 0.1),
                ("loss_rpn_bbox", 0.2),
                ("loss_cls", 0.35),
                ("loss_bbox", 0.35),
            ):
                log.scalar(tag, share * total, it)
            log.scalar("acc", 90.0, it)
            log.scalar("memory", 3000.0, it)
            if i % 4 == 3:
                m = c.metric(c.val)[i // 4]
                for tag, scale in (("coco/bbox_mAP", 0.4), ("coco/bbox_mAP_50", 0.6)):
                    log.scalar(tag, m * scale, i // 4 + 1)
    log.close()


def write_fairseq(root: Path, c: Curves) -> None:
    """fairseq ``TensorboardProgressBarWrapper``: one ``SummaryWriter`` per progress-bar tag
    (``train``, ``train_inner``, ``valid``) under ``--tensorboard-logdir``, each stat added
    under its bare key at step ``num_updates``."""
    logs = _logs(
        root, {"train": "train", "inner": "train_inner", "valid": "valid"}, backend="torch"
    )
    if not c.empty:
        updates = 100
        inner = _per_step(c.train, 4)
        best = np.inf
        for e in range(len(c.train)):
            for i in range(4):
                step = e * updates + 25 * (i + 1)
                _fairseq_train_stats(logs["inner"], inner[4 * e + i], step)
            step = (e + 1) * updates
            _fairseq_train_stats(logs["train"], c.train[e], step)
            best = min(best, c.val[e])
            for key, value in (
                ("loss", c.val[e]),
                ("nll_loss", 0.9 * c.val[e]),
                ("ppl", 2 ** (0.9 * c.val[e])),
                ("wps", 9000.0),
                ("wpb", 2000.0),
                ("bsz", 64.0),
                ("best_loss", best),
            ):
                logs["valid"].scalar(key, value, step)
    _close(logs)


def _fairseq_train_stats(log: EventLog, loss: float, step: int) -> None:
    for key, value in (
        ("loss", loss),
        ("nll_loss", 0.9 * loss),
        ("ppl", 2 ** (0.9 * loss)),
        ("wps", 8000.0),
        ("ups", 4.0),
        ("wpb", 2000.0),
        ("bsz", 64.0),
        ("lr", 5e-4),
        ("gnorm", 1.2),
        ("loss_scale", 128.0),
        ("train_wall", 30.0),
        ("gb_free", 10.0),
        ("wall", float(step)),
    ):
        log.scalar(key, value, step)


def write_timm(root: Path, c: Curves) -> None:
    """timm's ``train.py`` columns (``update_summary``: ``train_`` + train metrics, ``eval_`` +
    eval metrics, ``lr``), logged with a ``SummaryWriter`` in its output folder."""
    log = EventLog(root / "train" / "20240101-000000-resnet50-224", backend="torch")
    if not c.empty:
        for e in range(len(c.train)):
            log.scalar("train_loss", c.train[e], e)
            log.scalar("eval_loss", c.val[e], e)
            log.scalar("eval_top1", 100 * c.metric(c.val)[e], e)
            log.scalar("eval_top5", 100 * min(1.0, 1.2 * c.metric(c.val)[e]), e)
            log.scalar("lr", 0.05, e)
    log.close()


# -- reinforcement-learning writers -----------------------------------------------------------


def sb3_writer(algo: str) -> Callable[[Path, Curves], None]:
    """Stable-Baselines3 ``Logger`` with ``tensorboard_log=``: ``<algo>_1/``, step
    ``num_timesteps``, the keys ``algo`` records (``train/n_updates`` and ``time/`` counters
    other than fps are excluded from TensorBoard by SB3)."""

    def write(root: Path, c: Curves) -> None:
        log = EventLog(root / f"{algo}_1", backend="torch")
        if not c.empty:
            for i in range(len(c.reward)):
                step = 64 * (i + 1)
                log.scalar("rollout/ep_len_mean", 20.0 + i, step)
                log.scalar("rollout/ep_rew_mean", c.reward[i], step)
                if algo == "DQN":
                    log.scalar("rollout/exploration_rate", max(0.05, 1 - i / 10), step)
                log.scalar("time/fps", 900.0, step)
                if i == 0:
                    continue  # the first rollout is logged before any training
                log.scalar("train/learning_rate", 3e-4, step)
                if algo == "PPO":
                    log.scalar("train/approx_kl", 0.01, step)
                    log.scalar("train/clip_fraction", 0.1, step)
                    log.scalar("train/clip_range", 0.2, step)
                    log.scalar("train/loss", c.value_loss[i] + c.policy_loss[i], step)
                    log.scalar("train/policy_gradient_loss", c.policy_loss[i], step)
                if algo in ("PPO", "A2C"):
                    log.scalar("train/entropy_loss", -0.6, step)
                    log.scalar("train/explained_variance", c.explained_variance[i], step)
                    log.scalar("train/value_loss", c.value_loss[i], step)
                if algo == "A2C":
                    log.scalar("train/policy_loss", c.policy_loss[i], step)
                if algo == "DQN":
                    log.scalar("train/loss", c.value_loss[i], step)
                if algo == "SAC":
                    log.scalar("train/actor_loss", c.policy_loss[i], step)
                    log.scalar("train/critic_loss", c.value_loss[i], step)
                    log.scalar("train/ent_coef", 0.1, step)
                    log.scalar("train/ent_coef_loss", c.policy_loss[i], step)
        log.close()

    return write


def cleanrl_writer(script: str) -> Callable[[Path, Curves], None]:
    """CleanRL ``ppo.py``/``dqn.py``: ``SummaryWriter(f"runs/{run_name}")`` with ``run_name =
    f"{env_id}__{exp_name}__{seed}__{int(time.time())}"``, step ``global_step``."""

    def write(root: Path, c: Curves) -> None:
        log = EventLog(root / "runs" / f"CartPole-v1__{script}__1__1700000000", backend="torch")
        if not c.empty:
            for i in range(len(c.reward)):
                step = 512 * (i + 1)
                log.scalar("charts/episodic_return", c.reward[i], step - 7)
                log.scalar("charts/episodic_length", 20.0 + i, step - 7)
                if script == "ppo":
                    log.scalar("charts/learning_rate", 2.5e-4 * (1 - i / 50), step)
                    log.scalar("losses/value_loss", c.value_loss[i], step)
                    log.scalar("losses/policy_loss", c.policy_loss[i], step)
                    log.scalar("losses/entropy", 0.6, step)
                    log.scalar("losses/old_approx_kl", 0.01, step)
                    log.scalar("losses/approx_kl", 0.01, step)
                    log.scalar("losses/clipfrac", 0.1, step)
                    log.scalar("losses/explained_variance", c.explained_variance[i], step)
                else:
                    log.scalar("losses/td_loss", c.value_loss[i], step)
                    log.scalar("losses/q_values", 10.0 + i, step)
                log.scalar("charts/SPS", 1500.0, step)
        log.close()

    return write


_RLLIB_STATS = "ray/tune/info/learner/default_policy/learner_stats"


def write_rllib(root: Path, c: Curves) -> None:
    """RLlib through Tune's ``TBXLoggerCallback``: the flattened result dict under ``ray/tune/``
    at step ``timesteps_total`` (NaN values are never written), one trial directory per run."""
    trial = "PPO_CartPole-v1_a1b2c_00000_0_2024-01-01_00-00-00"
    log = EventLog(root / "PPO_2024-01-01_00-00-00" / trial, backend="tensorboardX")
    if not c.empty:
        for i in range(len(c.reward)):
            step = 4000 * (i + 1)
            log.scalar("ray/tune/episode_reward_mean", c.reward[i], step)
            log.scalar("ray/tune/episode_reward_max", c.reward[i] + 30, step)
            log.scalar("ray/tune/episode_reward_min", c.reward[i] - 30, step)
            log.scalar("ray/tune/episode_len_mean", 20.0 + i, step)
            log.scalar("ray/tune/episodes_this_iter", 100.0, step)
            log.scalar("ray/tune/timesteps_total", step, step)
            log.scalar("ray/tune/time_this_iter_s", 3.0, step)
            for key, value in (
                ("cur_lr", 5e-5),
                ("total_loss", c.value_loss[i] + c.policy_loss[i]),
                ("policy_loss", c.policy_loss[i]),
                ("vf_loss", c.value_loss[i]),
                ("vf_explained_var", c.explained_variance[i]),
                ("kl", 0.01),
                ("entropy", 0.6),
                ("entropy_coeff", 0.0),
            ):
                if np.isfinite(value):
                    log.scalar(f"{_RLLIB_STATS}/{key}", value, step)
    log.close()


# -- GAN writers -----------------------------------------------------------------------------


def gan_writer(
    d_tag: str, g_tag: str, extra: Mapping[str, float] | None = None
) -> Callable[[Path, Curves], None]:
    """A GAN training loop that logs its discriminator and generator losses (and ``extra``
    constants) every 100 iterations."""

    def write(root: Path, c: Curves) -> None:
        log = EventLog(root / "runs" / "gan", backend="torch")
        if not c.empty:
            for i in range(len(c.value_loss)):
                step = 100 * i
                log.scalar(d_tag, 0.7 + 4 * c.policy_loss[i], step)
                log.scalar(g_tag, 1.0 + c.value_loss[i], step)
                for tag, value in (extra or {}).items():
                    log.scalar(tag, value, step)
        log.close()

    return write


# -- cases -----------------------------------------------------------------------------------

Meaning = tuple[str | None, str, str | None]  # (split, quantity, goal)


@dataclass(frozen=True)
class WriterCase:
    """One framework's run layout and what tbreport must make of it.

    Attributes:
        name: Case id.
        family: ``SUPERVISED``, ``RL`` or ``GAN`` (the expected run kind).
        run: The logical run path relative to the logdir the writer wrote.
        write: ``write(logdir, curves)``.
        meanings: Key tag (logical, split-prefixed) -> ``(split, quantity, goal)``.
        roles: Role -> tags the detectors must get (other roles are not checked).
        absent_roles: Roles that must not resolve.
        problem: The detector that fires on the ``PROBLEM`` variant (None: no detector judges
            the run's kind).
        backend: The writer package used when it is installed (``TORCH``, ``TBX``) or None.
        source: Where the tags and layout come from.
        variants: The variants written.
        requires: A module the case cannot be written without (its tests skip without it).
    """

    name: str
    family: str
    run: str
    write: Callable[[Path, Curves], None]
    meanings: Mapping[str, Meaning]
    roles: Mapping[str, tuple[str, ...]]
    problem: str | None
    source: str
    backend: str | None = TORCH
    absent_roles: tuple[str, ...] = ()
    variants: tuple[str, ...] = (HEALTHY, PROBLEM, EMPTY)
    requires: str | None = None


L, M, LR, BK = "loss", "metric", "learning-rate", "bookkeeping"
MIN, MAX = "minimise", "maximise"
TRAIN, VAL, TEST = "train", "validation", "test"


def _tf2_case(split_dir: str, val_tag: str = "loss") -> WriterCase:
    split = TEST if split_dir == "test" else VAL
    roles = {"train_loss": ("train/loss",), "val_loss": (f"{split_dir}/{val_tag}",)}
    if split == VAL:
        roles["val_metric"] = (f"{split_dir}/accuracy",)
    return WriterCase(
        name=f"tf2-{split_dir}" + ("-v_loss" if val_tag == "v_loss" else ""),
        family=SUPERVISED,
        run="gradient_tape/20240101-000000",
        write=tf2_writer(split_dir, val_tag),
        meanings={
            "train/loss": (TRAIN, L, MIN),
            "train/accuracy": (TRAIN, M, MAX),
            f"{split_dir}/{val_tag}": (split, L, MIN),
            f"{split_dir}/accuracy": (split, M, MAX),
        },
        roles=roles,
        problem="overfitting",
        backend=None,
        source="TF 2.21 tf.summary.create_file_writer (checked on a real run; TensorFlow "
        "guide's GradientTape loop); v_loss from TensorFlow custom-loop tutorials",
    )


def _sb3_case(
    algo: str, meanings: Mapping[str, Meaning], roles: Mapping[str, tuple[str, ...]]
) -> WriterCase:
    return WriterCase(
        name=f"sb3-{algo.lower()}",
        family=RL,
        run=f"{algo}_1",
        write=sb3_writer(algo),
        meanings={
            "rollout/ep_rew_mean": (None, "reward", MAX),
            "rollout/ep_len_mean": (None, "episode-length", None),
            "train/learning_rate": (TRAIN, LR, None),
            "time/fps": (None, BK, None),
            **meanings,
        },
        roles={"reward": ("rollout/ep_rew_mean",), "learning_rate": ("train/learning_rate",)}
        | dict(roles),
        problem="reward-not-improving",
        # Only the algorithms that log an explained variance can log a NaN there.
        variants=(HEALTHY, PROBLEM, EMPTY, NAN_EV)
        if "explained_variance" in roles
        else (HEALTHY, PROBLEM, EMPTY),
        source="Stable-Baselines3 PPO/A2C/DQN/SAC learn(tensorboard_log=...) "
        "(checked on a real run)",
    )


CASES: tuple[WriterCase, ...] = (
    WriterCase(
        name="tf1",
        family=SUPERVISED,
        run=".",
        write=write_tf1,
        meanings={"loss": (None, L, MIN), "accuracy": (None, M, MAX)},
        roles={"train_loss": ("loss",), "weight_histograms": ("layer1/weights",)},
        absent_roles=("val_loss", "gradient_histograms"),
        problem="underfitting",
        backend=None,
        source="TF 2.21 tf.compat.v1.summary.scalar/histogram + FileWriter (checked on a real run)",
    ),
    _tf2_case("test"),
    _tf2_case("test", "v_loss"),
    _tf2_case("val"),
    _tf2_case("valid"),
    _tf2_case("eval"),
    WriterCase(
        name="keras",
        family=SUPERVISED,
        run="fit/20240101-000000",
        write=write_keras,
        meanings={
            "train/epoch_loss": (TRAIN, L, MIN),
            "validation/epoch_loss": (VAL, L, MIN),
            "train/epoch_accuracy": (TRAIN, M, MAX),
            "validation/epoch_accuracy": (VAL, M, MAX),
            "train/epoch_learning_rate": (TRAIN, LR, None),
            "validation/evaluation_loss_vs_iterations": (VAL, BK, None),
        },
        roles={
            "train_loss": ("train/epoch_loss",),
            "val_loss": ("validation/epoch_loss",),
            "learning_rate": ("train/epoch_learning_rate",),
            "train_metric": ("train/epoch_accuracy",),
            "val_metric": ("validation/epoch_accuracy",),
            "weight_histograms": tuple(
                f"train/sequential/{layer}/{param}/histogram"
                for layer in ("dense", "dense_1")
                for param in ("kernel", "bias")
            ),
        },
        problem="overfitting",
        backend=None,
        source="Keras 3.15 (TF 2.21) model.fit + callbacks.TensorBoard(histogram_freq=1) "
        "(checked on a real run)",
    ),
    WriterCase(
        name="lightning",
        family=SUPERVISED,
        run="lightning_logs/version_0",
        write=write_lightning,
        meanings={
            "train_loss_step": (TRAIN, L, MIN),
            "train_loss_epoch": (TRAIN, L, MIN),
            "val_loss": (VAL, L, MIN),
            "epoch": (None, BK, None),
            "lr-Adam": (None, LR, None),
            "lr-Adam-momentum": (None, BK, None),
        },
        roles={
            "train_loss": ("train_loss_epoch",),
            "train_loss_step": ("train_loss_step",),
            "val_loss": ("val_loss",),
            "learning_rate": ("lr-Adam",),
        },
        problem="overfitting",
        source="Lightning 2.6.6 Trainer + TensorBoardLogger + LearningRateMonitor (checked on a "
        "real run; lr-<name>-momentum from LearningRateMonitor's log_momentum source)",
    ),
    WriterCase(
        name="hf-trainer",
        family=SUPERVISED,
        run="runs/Jan01_00-00-00_host",
        write=write_hf,
        meanings={
            "train/loss": (TRAIN, L, MIN),
            "eval/loss": (VAL, L, MIN),
            "train/learning_rate": (TRAIN, LR, None),
            "train/grad_norm": (TRAIN, "gradient-norm", None),
            "train/epoch": (TRAIN, BK, None),
            "eval/runtime": (VAL, BK, None),
            "eval/samples_per_second": (VAL, BK, None),
            "train/train_loss": (TRAIN, BK, None),
            "train/total_flos": (TRAIN, BK, None),
        },
        roles={
            "train_loss": ("train/loss",),
            "val_loss": ("eval/loss",),
            "learning_rate": ("train/learning_rate",),
            "grad_norm": ("train/grad_norm",),
        },
        problem="overfitting",
        source="transformers 5.25 Trainer(report_to=['tensorboard']) (checked on a real run)",
    ),
    WriterCase(
        name="tensorboardx",
        family=SUPERVISED,
        run="runs/Jan01_00-00-00_host",
        write=write_tensorboardx,
        meanings={
            "Loss/train": (TRAIN, L, MIN),
            "Loss/test": (TEST, L, MIN),
            "Accuracy/train": (TRAIN, M, MAX),
            "Accuracy/test": (TEST, M, MAX),
        },
        roles={"train_loss": ("Loss/train",), "val_loss": ("Loss/test",)},
        problem="overfitting",
        backend=TBX,
        requires=TBX,
        source="tensorboardX 2.6.5 SummaryWriter (README/tutorial tags)",
    ),
    WriterCase(
        name="ultralytics-v8",
        family=SUPERVISED,
        run="runs/detect/train",
        write=write_ultralytics,
        meanings={
            "train/box_loss": (TRAIN, L, MIN),
            "val/dfl_loss": (VAL, L, MIN),
            "metrics/mAP50(B)": (None, M, MAX),
            "metrics/mAP50-95(B)": (None, M, MAX),
            "metrics/precision(B)": (None, M, MAX),
            "lr/pg0": (None, LR, None),
        },
        roles={
            "train_loss": ("train/box_loss+train/cls_loss+train/dfl_loss",),
            "val_loss": ("val/box_loss+val/cls_loss+val/dfl_loss",),
            "learning_rate": ("lr/pg0",),
        },
        problem="overfitting",
        source="ultralytics/utils/callbacks/tensorboard.py (on_train_epoch_end, "
        "on_fit_epoch_end) and the detection trainer's loss and metric keys",
    ),
    WriterCase(
        name="yolov5",
        family=SUPERVISED,
        run="runs/train/exp",
        write=write_yolov5,
        meanings={
            "train/obj_loss": (TRAIN, L, MIN),
            "val/box_loss": (VAL, L, MIN),
            "metrics/mAP_0.5": (None, M, MAX),
            "metrics/mAP_0.5:0.95": (None, M, MAX),
            "x/lr0": (None, LR, None),
        },
        roles={
            "train_loss": ("train/box_loss+train/cls_loss+train/obj_loss",),
            "val_loss": ("val/box_loss+val/cls_loss+val/obj_loss",),
            "learning_rate": ("x/lr0",),
        },
        problem="overfitting",
        source="YOLOv5 train.py / utils/loggers tag list",
    ),
    WriterCase(
        name="detectron2",
        family=SUPERVISED,
        run="output",
        write=write_detectron2,
        meanings={
            "total_loss": (None, L, MIN),
            "loss_cls": (None, L, MIN),
            "loss_box_reg": (None, L, MIN),
            "lr": (None, LR, None),
            "bbox/AP": (None, M, MAX),
            "fast_rcnn/cls_accuracy": (None, M, MAX),
            "eta_seconds": (None, BK, None),
            "roi_head/num_fg_samples": (None, BK, None),
        },
        roles={"train_loss": ("total_loss",), "learning_rate": ("lr",)},
        absent_roles=("val_loss",),
        problem="underfitting",
        source="detectron2 EventStorage keys of the default trainer (GeneralizedRCNN losses, "
        "fast_rcnn/roi_head/rpn stats, COCOEvaluator bbox/AP*) via TensorboardXWriter",
    ),
    WriterCase(
        name="mmdetection",
        family=SUPERVISED,
        run="faster-rcnn/20240101_000000/vis_data",
        write=write_mmdetection,
        meanings={
            "loss": (None, L, MIN),
            "loss_bbox": (None, L, MIN),
            "acc": (None, M, MAX),
            "lr": (None, LR, None),
            "coco/bbox_mAP": (None, M, MAX),
            "memory": (None, BK, None),
        },
        roles={"train_loss": ("loss",), "learning_rate": ("lr",)},
        absent_roles=("val_loss",),
        problem="underfitting",
        source="mmengine LoggerHook/LogProcessor keys and mmdetection CocoMetric names",
    ),
    WriterCase(
        name="fairseq",
        family=SUPERVISED,
        run=".",
        write=write_fairseq,
        meanings={
            "train/loss": (TRAIN, L, MIN),
            "valid/loss": (VAL, L, MIN),
            "train/nll_loss": (TRAIN, L, MIN),
            "valid/ppl": (VAL, M, MIN),
            "train/lr": (TRAIN, LR, None),
            "train/gnorm": (TRAIN, "gradient-norm", None),
            "train/loss_scale": (TRAIN, BK, None),
            "valid/best_loss": (VAL, BK, None),
        },
        roles={
            "train_loss": ("train/loss",),
            "val_loss": ("valid/loss",),
            "learning_rate": ("train/lr",),
            "grad_norm": ("train/gnorm",),
        },
        problem="overfitting",
        source="fairseq/logging/progress_bar.py TensorboardProgressBarWrapper and the stats "
        "of fairseq_cli/train.py",
    ),
    WriterCase(
        name="timm",
        family=SUPERVISED,
        run="train/20240101-000000-resnet50-224",
        write=write_timm,
        meanings={
            "train_loss": (TRAIN, L, MIN),
            "eval_loss": (VAL, L, MIN),
            "eval_top1": (VAL, M, MAX),
            "lr": (None, LR, None),
        },
        roles={
            "train_loss": ("train_loss",),
            "val_loss": ("eval_loss",),
            "val_metric": ("eval_top1",),
            "learning_rate": ("lr",),
        },
        problem="overfitting",
        source="timm/utils/summary.py update_summary column names (timm's train.py itself "
        "writes summary.csv, not event files)",
    ),
    _sb3_case(
        "PPO",
        {
            "train/value_loss": (TRAIN, L, MIN),
            "train/policy_gradient_loss": (TRAIN, L, MIN),
            "train/entropy_loss": (TRAIN, "entropy", None),
            "train/approx_kl": (TRAIN, "kl-divergence", None),
            "train/explained_variance": (TRAIN, "explained-variance", MAX),
            "train/clip_fraction": (TRAIN, BK, None),
            "train/loss": (TRAIN, L, MIN),
        },
        {
            "approx_kl": ("train/approx_kl",),
            "entropy": ("train/entropy_loss",),
            "explained_variance": ("train/explained_variance",),
        },
    ),
    _sb3_case(
        "A2C",
        {
            "train/policy_loss": (TRAIN, L, MIN),
            "train/explained_variance": (TRAIN, "explained-variance", MAX),
        },
        {"explained_variance": ("train/explained_variance",)},
    ),
    _sb3_case(
        "DQN", {"train/loss": (TRAIN, L, MIN), "rollout/exploration_rate": (None, BK, None)}, {}
    ),
    _sb3_case(
        "SAC", {"train/critic_loss": (TRAIN, L, MIN), "train/actor_loss": (TRAIN, L, MIN)}, {}
    ),
    WriterCase(
        name="cleanrl-ppo",
        family=RL,
        run="runs/CartPole-v1__ppo__1__1700000000",
        write=cleanrl_writer("ppo"),
        meanings={
            "charts/episodic_return": (None, "reward", MAX),
            "charts/episodic_length": (None, "episode-length", None),
            "charts/learning_rate": (None, LR, None),
            "losses/value_loss": (None, L, MIN),
            "losses/policy_loss": (None, L, MIN),
            "losses/entropy": (None, "entropy", None),
            "losses/approx_kl": (None, "kl-divergence", None),
            "losses/old_approx_kl": (None, "kl-divergence", None),
            "losses/clipfrac": (None, BK, None),
            "losses/explained_variance": (None, "explained-variance", MAX),
        },
        roles={
            "reward": ("charts/episodic_return",),
            "learning_rate": ("charts/learning_rate",),
            "approx_kl": ("losses/approx_kl",),
            "entropy": ("losses/entropy",),
            "explained_variance": ("losses/explained_variance",),
        },
        problem="reward-not-improving",
        variants=(HEALTHY, PROBLEM, EMPTY, NAN_EV),
        source="CleanRL cleanrl/ppo.py writer.add_scalar calls",
    ),
    WriterCase(
        name="cleanrl-dqn",
        family=RL,
        run="runs/CartPole-v1__dqn__1__1700000000",
        write=cleanrl_writer("dqn"),
        meanings={
            "charts/episodic_return": (None, "reward", MAX),
            "losses/td_loss": (None, L, MIN),
            "losses/q_values": (None, "unknown", None),
        },
        roles={"reward": ("charts/episodic_return",)},
        problem="reward-not-improving",
        source="CleanRL cleanrl/dqn.py writer.add_scalar calls",
    ),
    WriterCase(
        name="rllib",
        family=RL,
        run="PPO_2024-01-01_00-00-00/PPO_CartPole-v1_a1b2c_00000_0_2024-01-01_00-00-00",
        write=write_rllib,
        meanings={
            "ray/tune/episode_reward_mean": (None, "reward", MAX),
            "ray/tune/episode_len_mean": (None, "episode-length", None),
            f"{_RLLIB_STATS}/vf_loss": (None, L, MIN),
            f"{_RLLIB_STATS}/cur_lr": (None, LR, None),
            f"{_RLLIB_STATS}/entropy": (None, "entropy", None),
            f"{_RLLIB_STATS}/vf_explained_var": (None, "explained-variance", MAX),
            "ray/tune/timesteps_total": (None, BK, None),
        },
        roles={
            "reward": ("ray/tune/episode_reward_mean",),
            "learning_rate": (f"{_RLLIB_STATS}/cur_lr",),
            "explained_variance": (f"{_RLLIB_STATS}/vf_explained_var",),
        },
        problem="reward-not-improving",
        backend=TBX,
        source="Ray Tune TBXLoggerCallback (ray/tune/ + flatten_dict) and RLlib PPO learner stats",
    ),
    WriterCase(
        name="gan-loss_D",
        family=GAN,
        run="runs/gan",
        write=gan_writer("loss_D", "loss_G"),
        meanings={"loss_D": (None, L, MIN), "loss_G": (None, L, MIN)},
        roles={},
        absent_roles=("reward", "val_loss"),
        problem=None,
        source="GAN loss naming named in issue 9 (loss_D, loss_G)",
    ),
    WriterCase(
        name="gan-errD",
        family=GAN,
        run="runs/gan",
        write=gan_writer("errD", "errG", {"D_x": 0.6, "D_G_z": 0.4}),
        meanings={"errD": (None, L, MIN), "errG": (None, L, MIN)},
        roles={},
        absent_roles=("reward", "val_loss"),
        problem=None,
        source="the PyTorch DCGAN example's loss names (errD, errG, D(x), D(G(z)))",
    ),
    WriterCase(
        name="gan-d_loss",
        family=GAN,
        run="runs/gan",
        write=gan_writer("d_loss", "g_loss"),
        meanings={"d_loss": (None, L, MIN), "g_loss": (None, L, MIN)},
        roles={},
        absent_roles=("reward", "val_loss"),
        problem=None,
        source="PyTorch-GAN / Keras-GAN loss names (d_loss, g_loss)",
    ),
)
