"""Diagnose runs while they train: :class:`Monitor` polls a LOGDIR and returns new findings.

``Monitor.poll()`` reads only what was written since the last poll (`tbreport.reading.incremental`),
re-diagnoses only the logical runs that changed, and returns each finding once: again only when
its severity rises. It needs no training framework, so any loop can call it every epoch::

    monitor = tbreport.Monitor("runs/", fail_on="error")
    for epoch in range(epochs):
        train_one_epoch()
        writer.flush()
        for finding in monitor.poll():
            print(finding.severity, finding.run, finding.message)
        if monitor.should_stop:
            break

``tbreport watch`` is the same engine behind a command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tbreport.diagnosis import Diagnosis, RunDiagnosis, diagnose
from tbreport.diagnosis.config import FAIL_LEVELS, Config, as_config
from tbreport.errors import ConfigError
from tbreport.model import Finding, ReadWarning, Severity
from tbreport.reading.incremental import DEFAULT_STALL_SECONDS, IncrementalReader, PollResult
from tbreport.reading.result import ReadResult

# Roles whose last value the status table shows, in this order.
_LOSS_ROLES = ("train_loss", "val_loss")


@dataclass(frozen=True)
class RunStatus:
    """Where one logical run stands after the last poll that changed it.

    Attributes:
        run: Logical run, relative to the logdir.
        status: ``"healthy"`` or the worst current finding's severity.
        last_step: The largest step written so far (None before the first point).
        losses: Role (``train_loss``, ``val_loss``) -> ``(tag, last value)``.
        findings: The run's current findings (the latest diagnosis), worst first.
        newest: The finding most recently reported for this run, if any.
        updated: ``time.time()`` of the last diagnosis of this run.
    """

    run: str
    status: str
    last_step: int | None
    losses: Mapping[str, tuple[str, float]]
    findings: tuple[Finding, ...]
    newest: Finding | None
    updated: float


@dataclass
class _Reported:
    tags: set[str]
    rank: int


@dataclass
class _RunEntry:
    diagnosis: RunDiagnosis
    status: RunStatus


@dataclass
class PollStats:
    """Counters of the last :meth:`Monitor.poll` (for progress displays and benchmarks).

    Attributes:
        read: What the incremental reader found.
        diagnosed: Logical runs diagnosed again.
        seconds: Wall time of the poll.
    """

    read: PollResult | None = None
    diagnosed: tuple[str, ...] = ()
    seconds: float = 0.0
    warnings: list[ReadWarning] = field(default_factory=list)


class Monitor:
    """Watch a LOGDIR and report each new finding once.

    Args:
        logdir: The directory the training writes its runs into (or one event file). It may not
            exist yet; polls find nothing until it does.
        fail_on: Lowest severity that sets :attr:`should_stop`: ``"error"``, ``"warning"``,
            ``"info"`` or ``"never"``; None takes the configuration's ``fail-on`` (default error).
        config: As for ``tbreport.diagnose``: a ``Config``, a ``[tool.tbreport]``-style mapping,
            a path to a ``pyproject.toml``/``tbreport.toml``, or None for the defaults.
        stall_seconds: How long a file must stop growing before a partial record at its end is
            reported as damage (it is normal while a writer is writing).

    Attributes:
        findings: Every finding reported so far, in the order reported.
        triggered: The reported findings at or above ``fail_on``.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        fail_on: str | None = None,
        config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = as_config(config)
        self.fail_on = self.config.fail_on if fail_on is None else str(fail_on).lower()
        if self.fail_on not in FAIL_LEVELS:
            raise ConfigError(f"fail_on must be one of {', '.join(FAIL_LEVELS)}, got {fail_on!r}")
        self.logdir = str(logdir)
        self.reader = IncrementalReader(logdir, stall_seconds=stall_seconds, clock=clock)
        self.findings: list[Finding] = []
        self.triggered: list[Finding] = []
        self.last_poll = PollStats()
        self._entries: dict[str, _RunEntry] = {}
        self._reported: dict[tuple[str, str], list[_Reported]] = {}

    # -- the loop ----------------------------------------------------------------------------

    def poll(self, *, finished: bool = False) -> list[Finding]:
        """Read what was written since the last poll and diagnose the runs it changed.

        Args:
            finished: Training is over: a partial record at the end of a file is now damage.

        Returns:
            The findings not reported before (or reported before at a lower severity), worst
            first.
        """
        started = time.perf_counter()
        read = self.reader.poll(finished=finished)
        diagnosed: list[str] = []
        new: list[Finding] = []
        if read.changed or read.removed:
            results = self.reader.logical_results(read.changed)
            live = set(self.reader.logical_runs())
            for gone in [run for run in self._entries if run not in live]:
                del self._entries[gone]
            for logical, result in results.items():
                new.extend(self._diagnose(logical, result))
                diagnosed.append(logical)
        new.sort(key=lambda f: (-Severity(f.severity).rank, f.run, f.code))
        self.findings.extend(new)
        if self.fail_on != "never":
            threshold = Severity(self.fail_on).rank
            self.triggered.extend(f for f in new if Severity(f.severity).rank >= threshold)
        self.last_poll = PollStats(
            read=read,
            diagnosed=tuple(diagnosed),
            seconds=time.perf_counter() - started,
            warnings=list(read.warnings),
        )
        return new

    @property
    def should_stop(self) -> bool:
        """True once a finding at or above ``fail_on`` has been reported."""
        return bool(self.triggered)

    def idle_seconds(self) -> float:
        """Seconds since a file last grew or appeared."""
        return self.reader.idle_seconds()

    # -- what is known -----------------------------------------------------------------------

    @property
    def runs(self) -> list[RunStatus]:
        """The status of every logical run diagnosed so far, by run name."""
        return [self._entries[name].status for name in sorted(self._entries)]

    def diagnosis(self) -> Diagnosis:
        """The latest diagnosis of every logical run, as one :class:`~tbreport.Diagnosis`.

        Its ``read`` is None; :meth:`read_result` gives the data (it costs a full assembly).
        """
        runs = [self._entries[name].diagnosis for name in sorted(self._entries)]
        findings = [f for r in runs for f in r.findings]
        return Diagnosis(findings, runs=runs, read=None)

    def read_result(self) -> ReadResult:
        """Everything read so far, as ``tbreport.read`` would return it."""
        return self.reader.result()

    # -- internals ---------------------------------------------------------------------------

    def _diagnose(self, logical: str, result: ReadResult) -> list[Finding]:
        diagnosis = diagnose(result, config=self.config)
        run_diagnosis = next((r for r in diagnosis.runs if r.run == logical), None)
        if run_diagnosis is None:  # nothing assembled for it (e.g. no complete record yet)
            return []
        new = [f for f in run_diagnosis.findings if self._is_new(f)]
        previous = self._entries.get(logical)
        newest = new[0] if new else (previous.status.newest if previous else None)
        status = RunStatus(
            run=logical,
            status=run_diagnosis.status,
            last_step=_last_step(result),
            losses=_last_losses(result, run_diagnosis),
            findings=run_diagnosis.findings,
            newest=newest,
            updated=time.time(),
        )
        self._entries[logical] = _RunEntry(run_diagnosis, status)
        return new

    def _is_new(self, finding: Finding) -> bool:
        """Whether a finding was not reported yet (or only at a lower severity); records it.

        A finding is "the same" as an earlier one of the same run and detector when they share
        a tag (or neither names one): its step and message move as the run goes on.
        """
        rank = Severity(finding.severity).rank
        tags = set(finding.tags)
        earlier = self._reported.setdefault((finding.run, finding.code), [])
        for entry in earlier:
            if entry.tags & tags or not (entry.tags or tags):
                if entry.rank >= rank:
                    entry.tags |= tags
                    return False
                entry.rank = rank
                entry.tags |= tags
                return True
        earlier.append(_Reported(tags, rank))
        return True


def _last_step(result: ReadResult) -> int | None:
    steps = result.runs["last_step"].dropna() if len(result.runs) else ()
    return int(max(steps)) if len(steps) else None


def _last_losses(result: ReadResult, run: RunDiagnosis) -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    scalars = None
    for role in _LOSS_ROLES:
        tags = run.roles.get(role) or ()
        if not tags:
            continue
        if scalars is None:
            scalars = result.logical_scalars()
        values = scalars.loc[scalars["tag"] == tags[0], "value"]
        if len(values):
            out[role] = (tags[0], float(values.iloc[-1]))
    return out


__all__ = ["Monitor", "PollStats", "RunStatus"]
