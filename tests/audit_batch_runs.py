"""A logdir of many small units for the batched audit: every layout whose summaries could depend
on which units are read together (shared by tests/test_audit_batch.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tbreport.testing import (
    file_version_event,
    histogram_event,
    hparams_events,
    scalar_event,
    tensor_scalar_event,
    text_event,
    write_events,
)

WALL = 1_700_000_000.0


def _curves(directory: Path, *, steps: int, train, val=None, name: str = "1") -> Path:
    events = [file_version_event(wall_time=WALL)]
    for step in range(steps):
        events.append(scalar_event("train/loss", train(step), step=step, wall_time=WALL + step))
        if val is not None:
            events.append(scalar_event("val/loss", val(step), step=step, wall_time=WALL + step))
    return write_events(directory / f"events.out.tfevents.{name}.host", events)


def _series(directory: Path, tag: str, values: list[float], *, offset: float = 0.0) -> Path:
    events = [file_version_event(wall_time=WALL)]
    events += [
        scalar_event(tag, v, step=s, wall_time=WALL + offset + s) for s, v in enumerate(values)
    ]
    return write_events(directory / "events.out.tfevents.1.host", events)


def make_batch_runs(root: Path, *, sweep_children: int = 40) -> Path:
    """Write the logdir under ``root`` and return it."""
    rng = np.random.default_rng(11)
    # add_hparams: the session directory joins its run, with a status and numbers, text, bools.
    _curves(
        root / "alpha",
        steps=60,
        train=lambda s: float(np.exp(-s / 20) + 0.01 * rng.random()),
        val=lambda s: float(np.exp(-s / 20) + 0.05),
    )
    write_events(
        root / "alpha" / "1700000000.25" / "events.out.tfevents.2.host",
        hparams_events(
            {"lr": 0.01, "batch_size": 64, "optimizer": "adam", "amsgrad": True},
            metrics=["val/loss"],
            wall_time=WALL,
        ),
    )
    # Keras splits, TF2 tensor scalars.
    for split, offset in (("train", 0.0), ("validation", 0.1)):
        events = [file_version_event(wall_time=WALL)]
        events += [
            tensor_scalar_event(
                "epoch_loss",
                float(1.0 / (epoch + 1) + offset),
                step=epoch,
                wall_time=WALL + 10 * epoch,
                with_metadata=epoch == 0,
            )
            for epoch in range(20)
        ]
        write_events(root / "keras" / split / "events.out.tfevents.3.host", events)
    # A run ending in NaN, one that overfits, plain runs of one file each.
    _curves(
        root / "nan_run",
        steps=60,
        train=lambda s: float(np.exp(-s / 20)) if s < 40 else float("nan"),
        val=lambda s: float(np.exp(-s / 20) + 0.05),
    )
    _curves(
        root / "overfit",
        steps=80,
        train=lambda s: float(np.exp(-s / 20)),
        val=lambda s: float(np.exp(-s / 20) + 0.05 + max(0, s - 30) * 0.02),
    )
    for i in range(6):
        _series(root / "plain" / f"p{i}", "loss", [1.0 / (s + 1 + i) for s in range(30)])
    # Damage: a cut record, an undecodable file beside a good one, an empty file.
    damaged = _curves(root / "damaged", steps=40, train=lambda s: 1.0 / (s + 1))
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) - 20])
    _curves(root / "garbage", steps=20, train=lambda s: 1.0 / (s + 1))
    (root / "garbage" / "events.out.tfevents.9.host").write_bytes(bytes(range(256)) * 3)
    (root / "empty").mkdir(parents=True)
    (root / "empty" / "events.out.tfevents.1.host").write_bytes(b"")
    # Lightning: hparams.yaml of a run and of a nested run of the same unit (an int here and a
    # float there make one numeric column of the unit's table), and an unreadable yaml.
    lightning = root / "lightning" / "version_0"
    _curves(lightning, steps=30, train=lambda s: 1.0 / (s + 1), val=lambda s: 1.2 / (s + 1))
    (lightning / "hparams.yaml").write_text(
        "lr: 3\nlayers: !!python/tuple [3, 4]\nflag: true\nnothing: null\n"
        "seed: 123456789012345678901234567890\nmodel:\n  width: 128\n",
        encoding="utf-8",
    )
    _curves(lightning / "finetune", steps=10, train=lambda s: 0.5 / (s + 1))
    (lightning / "finetune" / "hparams.yaml").write_text("lr: 0.5\n", encoding="utf-8")
    _curves(root / "lightning" / "version_1", steps=30, train=lambda s: 1.0 / (s + 2))
    (root / "lightning" / "version_1" / "hparams.yaml").write_text(
        "lr: 7\nname: small\n", encoding="utf-8"
    )
    _curves(root / "lightning" / "version_2", steps=10, train=lambda s: 1.0 / (s + 2))
    (root / "lightning" / "version_2" / "hparams.yaml").write_text(
        "a: [unclosed\n", encoding="utf-8"
    )
    # HuggingFace Trainer arguments as JSON text.
    hf = [file_version_event(wall_time=WALL)]
    hf.append(
        text_event(
            "args/text_summary",
            json.dumps({"learning_rate": 5e-5, "num_train_epochs": 3, "fp16": False}),
            step=0,
            wall_time=WALL,
        )
    )
    hf += [
        scalar_event("train/loss", 1.0 / (s + 1), step=s * 10, wall_time=WALL + s)
        for s in range(30)
    ]
    write_events(root / "hf" / "events.out.tfevents.7.host", hf)
    # Histograms.
    events = [file_version_event(wall_time=WALL)]
    for step in range(8):
        events.append(
            histogram_event(
                "weights/dense", rng.normal(0, 1, 200), step=step, wall_time=WALL + step
            )
        )
        events.append(scalar_event("loss", 1.0 / (step + 1), step=step, wall_time=WALL + step))
    write_events(root / "hist" / "events.out.tfevents.6.host", events)
    # add_scalars series without a parent run: units of their own, one logical run.
    for series, bias in (("train", 0.0), ("validation", 0.2)):
        _series(
            root / "orphan" / f"Loss_{series}", "Loss", [2.0 / (s + 1) + bias for s in range(20)]
        )
    # A sweep of many add_scalars series under a run: not pre-grouped, merged after reading.
    _series(root / "wide", "lr", [0.1] * 20)
    for i in range(sweep_children):
        _series(root / "wide" / f"Loss_k{i:02d}", "Loss", [1.0 / (s + 1 + i) for s in range(20)])
    return root
