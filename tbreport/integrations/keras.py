"""A Keras callback that stops ``model.fit`` on a tbreport finding, as EarlyStopping would.

Example::

    from tbreport.integrations.keras import TbreportCallback

    model.fit(x, y, epochs=50, callbacks=[
        keras.callbacks.TensorBoard("runs/exp1"),
        TbreportCallback("runs/exp1", stop_on="error"),   # after the TensorBoard callback
    ])

It sees what the TensorBoard callback has flushed to disk by the end of the epoch.
"""

from __future__ import annotations

import os
from typing import Any

from tbreport.integrations._common import StopperCallback, missing_framework

try:
    import keras
except ImportError:
    try:
        from tensorflow import keras  # TF 2.x before Keras 3
    except ImportError:
        raise missing_framework(
            "tbreport.integrations.keras",
            "Keras",
            "`pip install keras` (or `pip install tensorflow`)",
        ) from None


class TbreportCallback(StopperCallback, keras.callbacks.Callback):
    """Poll ``logdir`` at every epoch end; stop training on a finding at or above ``stop_on``.

    Args:
        logdir: The directory the TensorBoard callback writes to.
        stop_on: ``"error"`` (default), ``"warning"``, ``"info"``, or ``"never"`` to only log.
        config: As for ``tbreport.diagnose`` (a Config, a mapping, or a toml path).
        stall_seconds: As for :class:`tbreport.Monitor`.

    Attributes:
        stopped_by: The finding that stopped training, or None.
        stopper: The underlying poller; ``stopper.monitor`` is the :class:`tbreport.Monitor`.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        stop_on: str = "error",
        config: Any = None,
        stall_seconds: float = 60.0,
    ) -> None:
        # Keras cannot tell where its TensorBoard callback writes: the directory is required.
        super().__init__(logdir, stop_on=stop_on, config=config, stall_seconds=stall_seconds)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopper.check(where=f"epoch {epoch}") is not None:
            self.model.stop_training = True


__all__ = ["TbreportCallback"]
