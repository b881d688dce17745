"""A Lightning callback that stops ``Trainer.fit`` on a tbreport finding, as EarlyStopping would.

Example::

    from tbreport.integrations.lightning import TbreportCallback

    trainer = lightning.Trainer(max_epochs=50, callbacks=[TbreportCallback(stop_on="error")])

Without ``logdir`` it watches the trainer's log directory (``trainer.log_dir``). At every epoch
end (and start, when Lightning has written the epoch's metrics) it flushes the loggers that can be
flushed (TensorBoardLogger's SummaryWriter), then polls.
"""

from __future__ import annotations

from typing import Any

from tbreport.integrations._common import StopperCallback, missing_framework

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        raise missing_framework(
            "tbreport.integrations.lightning", "Lightning", "`pip install lightning`"
        ) from None


class TbreportCallback(StopperCallback, Callback):
    """Poll the log directory at every training epoch end; stop on a finding at or above
    ``stop_on``.

    Args:
        logdir: The directory to watch; None for the trainer's ``log_dir``.
        stop_on: ``"error"`` (default), ``"warning"``, ``"info"``, or ``"never"`` to only log.
        config: As for ``tbreport.diagnose`` (a Config, a mapping, or a toml path).
        stall_seconds: As for :class:`tbreport.Monitor`.

    Attributes:
        stopped_by: The finding that stopped training, or None.
    """

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer, where=f"epoch {trainer.current_epoch}")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        # Lightning writes epoch-level metrics after the callbacks' epoch-end hooks, so they are
        # on disk only now: checking here stops before a whole epoch is spent on a NaN.
        if trainer.current_epoch > 0:
            self._check(trainer, where=f"the end of epoch {trainer.current_epoch - 1}")

    def _check(self, trainer: Any, *, where: str) -> None:
        for each in getattr(trainer, "loggers", None) or []:
            flush = getattr(getattr(each, "experiment", None), "flush", None)
            if callable(flush):
                flush()
        self.stopper.bind(getattr(trainer, "log_dir", None))
        should_stop = self.stopper.check(where=where) is not None
        strategy = getattr(trainer, "strategy", None)
        if strategy is not None and hasattr(strategy, "reduce_boolean_decision"):
            # Every process must agree, or distributed training hangs (as in EarlyStopping).
            should_stop = strategy.reduce_boolean_decision(should_stop, all=False)
        if should_stop:
            trainer.should_stop = True


__all__ = ["TbreportCallback"]
