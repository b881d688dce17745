"""Plain records shared by the readers, detectors and report layers.

Nothing here formats or renders: the report layer decides how a record looks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """How bad a finding is; ordered ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __str__(self) -> str:  # "error", not "Severity.ERROR"
        return self.value


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class ReadWarning:
    """Something the reader could not take at face value; the data it could read is still returned.

    Attributes:
        kind: A stable short name, e.g. ``"truncated-record"``, ``"checksum-mismatch"``,
            ``"not-an-event-file"``, ``"lfs-pointer"``, ``"duplicate-steps"``,
            ``"purged-by-restart"``.
        path: The file (or run directory) the warning is about, as the user would write it.
        offset: Byte offset inside ``path`` where the problem starts, when it is about bytes.
        message: One sentence for people.
        run: The run the file belongs to, when known.
    """

    kind: str
    path: str
    message: str
    offset: int | None = None
    run: str | None = None

    def __str__(self) -> str:
        where = self.path if self.offset is None else f"{self.path} @ byte {self.offset}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis about one logical run.

    Attributes:
        run: Logical run path relative to the logdir (``"."`` for the logdir itself).
        code: Stable detector code, e.g. ``"L101"``.
        name: Stable kebab-case detector name, e.g. ``"overfitting"``.
        severity: ``error``, ``warning`` or ``info``.
        message: One line: what was observed against which threshold.
        step: The step where the problem shows (first bad step, best step, onset); None if global.
        evidence: Observed values, thresholds and step ranges (JSON-serialisable scalars/lists).
        advice: What to do about it, from the detector's documentation.
        tags: The tags the evidence was computed from.
    """

    run: str
    code: str
    name: str
    severity: Severity
    message: str
    step: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    advice: str = ""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The finding as the JSON schema's ``findings[]`` item."""
        return {
            "run": self.run,
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "step": self.step,
            "evidence": dict(self.evidence),
            "advice": self.advice,
            "tags": list(self.tags),
        }
