"""tbreport.Monitor against writers running in other processes, and the framework callbacks."""

from __future__ import annotations

import importlib
import logging
import sys
import time
import types

import pytest
from reader_helpers import event_file_name, scalar_series
from watch_helpers import start_writer, stop, wait_for

import tbreport
from tbreport import testing
from tbreport.model import Finding, Severity

pytestmark = pytest.mark.timeout(60)
NAN_STEP = 30


def _poll_until_marker_then_count(monitor, marker, *, interval=0.1, max_polls=50):
    """Poll; once the writer says the NaN is written, return (new findings, polls it took)."""
    for _ in range(max_polls):
        seen = marker.exists()
        new = monitor.poll()
        if seen:
            polls = 1
            while not [f for f in new if f.code == "L104"] and polls < 5:
                time.sleep(interval)
                new = monitor.poll()
                polls += 1
            return new, polls
        assert not [f for f in new if f.code == "L104"]
        time.sleep(interval)
    raise AssertionError("the writer never wrote its NaN")


@pytest.mark.parametrize("writer", ["project", "torch"])
def test_nan_is_reported_as_an_error_within_two_polls(tmp_path, writer):
    if writer == "torch":
        pytest.importorskip("torch.utils.tensorboard")
    marker = tmp_path / "nan-written"
    extra = ["--torch"] if writer == "torch" else []
    process = start_writer(
        tmp_path / "runs" / "exp",
        "--steps",
        "80",
        "--nan-at",
        str(NAN_STEP),
        "--delay",
        "0.02",
        "--marker",
        str(marker),
        *extra,
    )
    try:
        monitor = tbreport.Monitor(tmp_path / "runs", fail_on="error")
        new, polls = _poll_until_marker_then_count(monitor, marker)
        assert polls <= 2
        (finding,) = [f for f in new if f.code == "L104"]
        assert finding.severity == Severity.ERROR
        assert finding.run == "exp"
        assert finding.step == NAN_STEP
        assert monitor.should_stop
        assert monitor.triggered == [finding]
        # Reported once: later polls, with more NaNs, do not report it again.
        process.wait(timeout=30)
        assert not [f for f in monitor.poll(finished=True) if f.code == "L104"]
    finally:
        stop(process)


def test_healthy_run_gives_no_finding(tmp_path):
    process = start_writer(tmp_path / "exp", "--steps", "60", "--delay", "0.005")
    monitor = tbreport.Monitor(tmp_path, fail_on="info")
    try:
        found = []
        while process.poll() is None:
            found += monitor.poll()
            time.sleep(0.05)
        found += monitor.poll(finished=True)
        assert found == []
        assert not monitor.should_stop
        (status,) = monitor.runs
        assert status.status == "healthy"
        assert status.last_step == 59
        assert status.losses["train_loss"][0] == "train/loss"
    finally:
        stop(process)


def test_run_directory_created_mid_watch_is_picked_up(tmp_path):
    monitor = tbreport.Monitor(tmp_path / "runs")
    assert monitor.poll() == []  # the logdir does not even exist yet
    (tmp_path / "runs").mkdir()
    assert monitor.poll() == []
    process = start_writer(tmp_path / "runs" / "late", "--steps", "40", "--nan-at", "10")
    try:
        found = []
        wait_for(lambda: bool(found.extend(monitor.poll()) or found), every=0.1)
        assert [(f.run, f.code) for f in found] == [("late", "L104")]
    finally:
        stop(process)


def test_file_being_written_is_never_called_damaged(tmp_path):
    # Every record is written in two halves with a pause between them.
    process = start_writer(tmp_path / "exp", "--steps", "25", "--split", "0.03", "--delay", "0")
    monitor = tbreport.Monitor(tmp_path, fail_on="info", config={"select": ["D9"]})
    try:
        found = []
        partial_seen = 0
        while process.poll() is None:
            found += monitor.poll()
            partial_seen += monitor.reader.pending_bytes() > 0
            time.sleep(0.01)
        found += monitor.poll(finished=True)
        assert partial_seen > 0  # the test did look at files ending inside a record
        assert found == []
    finally:
        stop(process)


def test_truncated_and_rewritten_file_is_read_again(tmp_path):
    process = start_writer(tmp_path / "exp", "--steps", "30", "--delay", "0")
    process.wait(timeout=30)
    monitor = tbreport.Monitor(tmp_path)
    assert monitor.poll() == []
    (path,) = (tmp_path / "exp").iterdir()
    events = [testing.file_version_event(), *scalar_series("train/loss", range(10))]
    events += scalar_series("train/loss", range(10, 20), value=lambda s: float("nan"))
    with open(path, "r+b") as out:  # same file, truncated and rewritten by a restarted job
        out.truncate(0)
        out.write(b"".join(testing.frame(e.SerializeToString()) for e in events))
    found = monitor.poll()
    assert [w.kind for w in monitor.last_poll.warnings] == ["reread"]
    assert [(f.code, f.step) for f in found] == [("L104", 10)]
    assert monitor.runs[0].last_step == 19


def test_a_finding_is_reported_again_only_when_its_severity_rises(tmp_path):
    monitor = tbreport.Monitor(tmp_path)

    def finding(severity, tags=("grad_norm",), step=5):
        return Finding("r", "G201", "exploding-gradients", severity, "m", step=step, tags=tags)

    assert monitor._is_new(finding(Severity.WARNING))
    assert not monitor._is_new(finding(Severity.WARNING, step=9))  # same problem, later step
    assert not monitor._is_new(finding(Severity.INFO))
    assert monitor._is_new(finding(Severity.ERROR))  # worse: reported again
    assert not monitor._is_new(finding(Severity.ERROR, tags=("grad_norm", "other")))
    assert monitor._is_new(finding(Severity.WARNING, tags=("layer2/grad",)))  # another tag


def test_monitor_rejects_a_bad_fail_on(tmp_path):
    with pytest.raises(tbreport.errors.ConfigError, match="fail_on"):
        tbreport.Monitor(tmp_path, fail_on="fatal")


# -- framework callbacks, against minimal stand-ins for the frameworks -------------------------


def _nan_logdir(tmp_path):
    events = [testing.file_version_event(), *scalar_series("train/loss", range(10))]
    events += scalar_series("train/loss", range(10, 12), value=lambda s: float("nan"))
    testing.write_events(tmp_path / "run" / event_file_name(0), events)
    return tmp_path


class _Base:
    def __init__(self, *args, **kwargs) -> None:
        pass


def _install(monkeypatch, modules: dict[str, dict]) -> None:
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        for key, value in attributes.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)


def _fresh(monkeypatch, name: str):
    """Import ``name`` anew; after the test, sys.modules holds what it held before."""
    monkeypatch.setitem(sys.modules, name, None)  # remembers what to restore
    del sys.modules[name]
    return importlib.import_module(name)


def test_keras_callback_stops_fit_and_says_why(tmp_path, monkeypatch, caplog):
    callbacks = types.SimpleNamespace(Callback=_Base)
    _install(monkeypatch, {"keras": {"callbacks": callbacks}})
    module = _fresh(monkeypatch, "tbreport.integrations.keras")
    callback = module.TbreportCallback(_nan_logdir(tmp_path), stop_on="error")
    callback.model = types.SimpleNamespace(stop_training=False)
    with caplog.at_level(logging.WARNING, logger="tbreport"):
        callback.on_epoch_end(3, {})
    assert callback.model.stop_training
    assert callback.stopped_by.code == "L104"
    assert "stopping training after epoch 3: L104 non-finite-loss" in caplog.text


def test_lightning_callback_flushes_watches_log_dir_and_stops(tmp_path, monkeypatch):
    _install(
        monkeypatch,
        {
            "lightning": {},
            "lightning.pytorch": {},
            "lightning.pytorch.callbacks": {"Callback": _Base},
        },
    )
    module = _fresh(monkeypatch, "tbreport.integrations.lightning")
    flushed = []
    experiment = types.SimpleNamespace(flush=lambda: flushed.append(True))
    trainer = types.SimpleNamespace(
        loggers=[types.SimpleNamespace(experiment=experiment)],
        log_dir=str(_nan_logdir(tmp_path)),
        current_epoch=0,
        should_stop=False,
    )
    callback = module.TbreportCallback()
    callback.on_train_epoch_end(trainer, None)
    assert flushed
    assert trainer.should_stop
    assert callback.stopped_by.code == "L104"


def test_transformers_callback_stops_the_trainer(tmp_path, monkeypatch):
    _install(monkeypatch, {"transformers": {"TrainerCallback": _Base}})
    module = _fresh(monkeypatch, "tbreport.integrations.transformers")
    args = types.SimpleNamespace(logging_dir=str(_nan_logdir(tmp_path)))
    control = types.SimpleNamespace(should_training_stop=False)
    callback = module.TbreportCallback(stop_on="warning")
    callback.on_epoch_end(args, types.SimpleNamespace(epoch=1.0), control)
    assert control.should_training_stop


def test_healthy_run_does_not_stop_training(tmp_path, monkeypatch):
    _install(monkeypatch, {"transformers": {"TrainerCallback": _Base}})
    module = _fresh(monkeypatch, "tbreport.integrations.transformers")
    testing.write_events(
        tmp_path / "run" / event_file_name(0),
        [testing.file_version_event(), *scalar_series("train/loss", range(30))],
    )
    control = types.SimpleNamespace(should_training_stop=False)
    callback = module.TbreportCallback(tmp_path)
    callback.on_epoch_end(None, types.SimpleNamespace(epoch=1.0), control)
    assert not control.should_training_stop
    assert callback.stopped_by is None


@pytest.mark.parametrize(
    ("module", "blocked", "install"),
    [
        ("keras", ["keras", "tensorflow"], "pip install keras"),
        ("lightning", ["lightning", "pytorch_lightning"], "pip install lightning"),
        ("transformers", ["transformers"], "pip install transformers"),
    ],
)
def test_integrations_without_their_framework_say_how_to_install_it(
    monkeypatch, module, blocked, install
):
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, f"tbreport.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=install):
        importlib.import_module(f"tbreport.integrations.{module}")


def test_real_lightning_training_stops_after_the_epoch_that_went_nan(tmp_path, monkeypatch):
    lightning = pytest.importorskip("lightning")
    torch = pytest.importorskip("torch")
    from lightning.pytorch.loggers import TensorBoardLogger

    TbreportCallback = _fresh(monkeypatch, "tbreport.integrations.lightning").TbreportCallback

    class Model(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            if self.current_epoch >= 3:
                loss = loss * float("nan")
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=16
    )
    callback = TbreportCallback(stop_on="error")
    trainer = lightning.Trainer(
        max_epochs=20,
        logger=TensorBoardLogger(str(tmp_path)),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Model(), data)
    assert callback.stopped_by is not None
    assert callback.stopped_by.code == "L104"
    assert trainer.global_step == 4 * 4  # epochs 0-3 ran; epoch 4 did not start training
