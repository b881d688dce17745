"""What the framework callbacks share: poll at epoch end, log findings, decide to stop."""

from __future__ import annotations

import logging
import os
from typing import Any

from tbreport.model import Finding, Severity
from tbreport.monitor import Monitor

logger = logging.getLogger("tbreport")


def missing_framework(module: str, framework: str, install: str) -> ImportError:
    """The ImportError raised when an integration's framework is not installed."""
    return ImportError(
        f"{module} needs {framework}, which is not installed here; install it with "
        f"{install} (tbreport itself needs no training framework: "
        "tbreport.Monitor works in any loop)"
    )


class Stopper:
    """Polls a :class:`~tbreport.Monitor` and says when training should stop, and why.

    Args:
        logdir: The directory the run writes its event files into; None until the callback
            learns it from the framework (see :meth:`bind`).
        stop_on: Lowest severity that stops training: ``"error"``, ``"warning"``, ``"info"`` or
            ``"never"`` (only log).
        config: As for ``tbreport.diagnose``.
        stall_seconds: As for :class:`~tbreport.Monitor`.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str] | None,
        *,
        stop_on: str = "error",
        config: Any = None,
        stall_seconds: float = 60.0,
    ) -> None:
        self.logdir = None if logdir is None else str(logdir)
        self.stop_on = stop_on
        self.config = config
        self.stall_seconds = stall_seconds
        self.monitor: Monitor | None = None
        self.stopped_by: Finding | None = None
        if self.logdir is not None:
            self._make_monitor()

    def _make_monitor(self) -> None:
        if self.logdir is None:  # pragma: no cover - called once a logdir is known
            return
        self.monitor = Monitor(
            self.logdir,
            fail_on=self.stop_on,
            config=self.config,
            stall_seconds=self.stall_seconds,
        )

    def bind(self, logdir: str | os.PathLike[str] | None) -> None:
        """Use ``logdir`` when none was given (the framework's own logging directory)."""
        if self.monitor is None and logdir is not None:
            self.logdir = str(logdir)
            self._make_monitor()

    def check(self, *, where: str) -> Finding | None:
        """Poll; log every new finding; return the finding that should stop training, if any.

        Args:
            where: Where training is, for the log (``"epoch 3"``).
        """
        if self.monitor is None:
            logger.warning("tbreport: no log directory to watch yet (%s); not checking", where)
            return None
        new = self.monitor.poll()
        for finding in new:
            level = logging.ERROR if finding.severity == Severity.ERROR else logging.WARNING
            if finding.severity == Severity.INFO:
                level = logging.INFO
            logger.log(
                level,
                "tbreport: %s %s in %s: %s",
                finding.code,
                finding.name,
                finding.run,
                finding.message,
            )
        if self.stopped_by is None and self.monitor.triggered:
            self.stopped_by = self.monitor.triggered[0]
            finding = self.stopped_by
            logger.warning(
                "tbreport: stopping training after %s: %s %s (%s) in run %s%s: %s",
                where,
                finding.code,
                finding.name,
                Severity(finding.severity).value,
                finding.run,
                "" if finding.step is None else f" at step {finding.step}",
                finding.message,
            )
            return finding
        return None


class StopperCallback:
    """The part every framework callback shares: a :class:`Stopper` and ``stopped_by``.

    Put it before the framework's callback class (``class C(StopperCallback, Callback)``).

    Args:
        logdir: The directory to watch; None to learn it from the framework.
        stop_on: ``"error"`` (default), ``"warning"``, ``"info"``, or ``"never"`` to only log.
        config: As for ``tbreport.diagnose`` (a Config, a mapping, or a toml path).
        stall_seconds: As for :class:`tbreport.Monitor`.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str] | None = None,
        *,
        stop_on: str = "error",
        config: Any = None,
        stall_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        self.stopper = Stopper(logdir, stop_on=stop_on, config=config, stall_seconds=stall_seconds)

    @property
    def stopped_by(self) -> Finding | None:
        """The finding that stopped training, or None."""
        return self.stopper.stopped_by
