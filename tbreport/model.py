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

#: The seed guides' vocabulary of training problems. Every finding names one of them (or none, for
#: bookkeeping findings such as damaged files), so detectors of every run kind speak one language.
PROBLEMS: tuple[str, ...] = (
    "overfitting",
    "underfitting",
    "erratic-loss",
    "non-finite-loss",
    "exploding-gradients",
    "vanishing-gradients",
    "dead-neurons",
    "collapsed-predictions",
)


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
        problem: The training problem in the seed vocabulary (:data:`PROBLEMS`), or None.
        strength: How far past its threshold the observation is, in units of the threshold or
            of the curve's own noise (1.0 = just at the threshold); None when not measurable.
            Sort by it to see the clearest cases first.
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
    problem: str | None = None
    strength: float | None = None

    def __post_init__(self) -> None:
        if self.problem is not None and self.problem not in PROBLEMS:
            raise ValueError(f"unknown problem {self.problem!r}; expected one of {PROBLEMS}")
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(str(self.severity)))

    def __repr__(self) -> str:
        from tbreport.report.notebook import finding_repr

        return finding_repr(self)

    def _repr_html_(self) -> str:
        from tbreport.report.notebook import finding_html

        return finding_html(self)

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
            "problem": self.problem,
            "strength": self.strength,
        }
