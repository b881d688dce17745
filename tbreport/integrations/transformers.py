"""A Hugging Face ``Trainer`` callback that stops training on a tbreport finding.

Example::

    from tbreport.integrations.transformers import TbreportCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      callbacks=[TbreportCallback(stop_on="error")])

Without ``logdir`` it watches ``args.logging_dir``, where the Trainer's TensorBoard callback writes
(and flushes after every log).
"""

from __future__ import annotations

import os
from typing import Any

from tbreport.integrations._common import StopperCallback, missing_framework

try:
    from transformers import TrainerCallback
except ImportError:
    raise missing_framework(
        "tbreport.integrations.transformers",
        "Hugging Face transformers",
        "`pip install transformers`",
    ) from None


class TbreportCallback(StopperCallback, TrainerCallback):
    """Poll the logging directory at every epoch end; stop on a finding at or above ``stop_on``.

    Args:
        logdir: The directory to watch; None for ``TrainingArguments.logging_dir``.
        stop_on: ``"error"`` (default), ``"warning"``, ``"info"``, or ``"never"`` to only log.
        config: As for ``tbreport.diagnose`` (a Config, a mapping, or a toml path).
        stall_seconds: As for :class:`tbreport.Monitor`.

    Attributes:
        stopped_by: The finding that stopped training, or None.
    """

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.stopper.bind(_logging_dir(args))
        epoch = getattr(state, "epoch", None)
        where = f"epoch {epoch:g}" if isinstance(epoch, (int, float)) else "an epoch"
        if self.stopper.check(where=where) is not None:
            control.should_training_stop = True
        return control


def _logging_dir(args: Any) -> str | None:
    """Where the Trainer's TensorBoardCallback writes: ``args.logging_dir`` (transformers 4),
    else ``$TENSORBOARD_LOGGING_DIR`` or ``<output_dir>/runs`` (transformers 5, which writes
    one timestamped run below it)."""
    logging_dir = getattr(args, "logging_dir", None)
    if logging_dir:
        return str(logging_dir)
    if os.environ.get("TENSORBOARD_LOGGING_DIR"):
        return os.path.expanduser(os.environ["TENSORBOARD_LOGGING_DIR"])
    output_dir = getattr(args, "output_dir", None)
    return os.path.join(str(output_dir), "runs") if output_dir else None


__all__ = ["TbreportCallback"]
