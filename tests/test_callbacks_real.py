"""The Keras and HF Trainer callbacks inside the real frameworks (skipped when not installed).

Each training goes NaN at a known point; the callback must stop it soon after, and a healthy
training must run to its end.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest


def _fresh(monkeypatch, name: str):
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def _keras(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("nan_from_epoch", [3, None])
def test_keras_fit_stops_on_a_nan_loss(tmp_path, monkeypatch, nan_from_epoch):
    keras = _keras(monkeypatch)
    from torch.utils.tensorboard import SummaryWriter

    callback_cls = _fresh(monkeypatch, "tbreport.integrations.keras").TbreportCallback
    logdir = tmp_path / "run"

    class EpochLogger(keras.callbacks.Callback):
        # Keras' own TensorBoard callback needs TensorFlow: log epoch_loss the same way.
        def __init__(self) -> None:
            super().__init__()
            self.writer = SummaryWriter(str(logdir / "train"))

        def on_epoch_end(self, epoch, logs=None):
            loss = float(logs["loss"])
            if nan_from_epoch is not None and epoch >= nan_from_epoch:
                loss = float("nan")
            self.writer.add_scalar("epoch_loss", loss, epoch)
            self.writer.flush()

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    stopper = callback_cls(str(logdir), stop_on="error")
    history = model.fit(x, y, epochs=12, verbose=0, callbacks=[EpochLogger(), stopper])
    if nan_from_epoch is None:
        assert stopper.stopped_by is None
        assert len(history.history["loss"]) == 12
    else:
        assert stopper.stopped_by is not None
        assert stopper.stopped_by.code == "L104"
        assert len(history.history["loss"]) == nan_from_epoch + 1  # stopped after that epoch


@pytest.mark.parametrize("nan_from_step", [24, None])
def test_hf_trainer_stops_on_a_nan_loss(tmp_path, monkeypatch, nan_from_step):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    callback_cls = _fresh(monkeypatch, "tbreport.integrations.transformers").TbreportCallback

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.calls = 0

        def forward(self, x, labels=None):
            self.calls += 1
            loss = torch.nn.functional.mse_loss(self.layer(x), labels)
            if nan_from_step is not None and self.calls > nan_from_step:
                loss = loss * float("nan")
            return {"loss": loss}

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 64

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"x": torch.randn(4, generator=g), "labels": torch.randn(1, generator=g)}

    arguments = {"logging_dir": str(tmp_path / "runs")}  # transformers 4; 5 writes in output_dir
    if "logging_dir" not in transformers.TrainingArguments.__dataclass_fields__:
        arguments = {}
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        **arguments,
        num_train_epochs=10,
        per_device_train_batch_size=8,
        logging_steps=2,
        report_to=["tensorboard"],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    os.environ.setdefault("WANDB_DISABLED", "true")
    stopper = callback_cls(stop_on="error")
    trainer = transformers.Trainer(model=Model(), args=args, train_dataset=Data())
    trainer.add_callback(stopper)
    trainer.train()
    if nan_from_step is None:
        assert stopper.stopped_by is None
        assert trainer.state.global_step == 80
    else:
        assert stopper.stopped_by is not None
        assert stopper.stopped_by.code == "L104"
        assert trainer.state.global_step < 80  # stopped at the end of the epoch that went NaN
