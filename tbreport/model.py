"""Plain records shared by the readers, detectors and report layers.

Nothing here formats or renders: the report layer decides how a record looks.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Iterable, Mapping
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


#: What a :class:`Mark` can ask a chart to draw.
MARK_KINDS: tuple[str, ...] = ("point", "vline", "band", "hline")


@dataclass(frozen=True, slots=True)
class Mark:
    """What a chart should draw for a finding, on the chart of one tag.

    Detectors say what to draw; the report decides how it looks. Every mark names the tag
    (scalar or histogram) whose values or steps it refers to, so a chart only draws the marks of
    the tags it shows and a mark never points at a curve that is not there.

    Attributes:
        kind: ``"point"`` (``value`` at ``step`` on the tag's curve), ``"vline"`` (a step),
            ``"band"`` (the steps ``step`` to ``step_end``) or ``"hline"`` (a level ``value`` in
            the tag's units).
        tag: The tag the mark belongs to.
        step: The step of a point, a vline or the start of a band.
        value: The value of a point or an hline, in the tag's units.
        step_end: The last step of a band.
        label: A short label for the chart (``"best"``, ``"peak"``), may be empty.
    """

    kind: str
    tag: str
    step: int | None = None
    value: float | None = None
    step_end: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MARK_KINDS:
            raise ValueError(f"unknown mark kind {self.kind!r}; expected one of {MARK_KINDS}")
        if not isinstance(self.tag, str) or not self.tag:
            raise ValueError(f"a mark needs the tag it belongs to, got {self.tag!r}")
        object.__setattr__(self, "step", _as_step(self.step, "mark step"))
        object.__setattr__(self, "step_end", _as_step(self.step_end, "mark step_end"))
        object.__setattr__(self, "value", _as_number(self.value, "mark value"))
        object.__setattr__(self, "label", str(self.label or ""))
        needs = {
            "point": ("step", "value"),
            "vline": ("step",),
            "band": ("step", "step_end"),
            "hline": ("value",),
        }[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} mark needs a finite {' and '.join(missing)}")
        if (
            self.kind == "band"
            and self.step is not None
            and self.step_end is not None  # both are, for a band (checked above)
            and self.step_end < self.step
        ):
            raise ValueError(f"a band mark ends before it starts ({self.step}..{self.step_end})")

    def to_dict(self) -> dict[str, Any]:
        """The mark as the JSON schema's ``findings[].marks[]`` item."""
        return {
            "kind": self.kind,
            "tag": self.tag,
            "step": self.step,
            "value": self.value,
            "step_end": self.step_end,
            "label": self.label,
        }


def _as_number(value: Any, what: str) -> float | None:
    """A plain finite float, or None (NaN and infinities say nothing a chart or a sort can use)."""
    if value is None:
        return None
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)  # numpy scalars, ints, Decimals...
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {value!r}") from None
    return number if math.isfinite(number) else None


def _as_step(value: Any, what: str) -> int | None:
    """A plain int step, or None; a float must be whole (numpy ints and 3.0 are accepted)."""
    if value is None:
        return None
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(number)


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis about one logical run.

    The typed fields are the contract every detector fills and every output reads; ``evidence``
    holds whatever else a detector measured, for people. Values are coerced on construction
    (numpy numbers to Python, lists to tuples, ``"warning"`` to :class:`Severity`), so a finding
    is the same whichever way it was built.

    Attributes:
        run: Logical run path relative to the logdir (``"."`` for the logdir itself).
        code: Stable detector code, e.g. ``"L101"``.
        name: Stable kebab-case detector name, e.g. ``"overfitting"``.
        severity: ``error``, ``warning`` or ``info``.
        message: One line: what was observed against which threshold.
        step: The step where the problem shows (first bad step, best step, onset); None if global.
        evidence: Further observed values and parameters, for people (JSON-serialisable
            scalars, lists and mappings); a threshold that is not a number is described here
            under ``"threshold"``.
        advice: What to do about it, from the detector's documentation.
        tags: The tags the finding was computed from.
        problem: The training problem in the seed vocabulary (:data:`PROBLEMS`), or None.
        strength: How far past its threshold the observation is, in units of the threshold or
            of the curve's own noise (1.0 = just at the threshold); None when not measurable.
            Sort by it to see the clearest cases first.
        observed: The measured quantity the detector compared with its threshold (a rise, a
            ratio, a count...), or None when no single number was compared.
        limit: The numeric threshold ``observed`` was compared with, or None.
        step_range: The ``(first, last)`` steps the problem covers, or None.
        marks: What a chart of the run should draw for this finding (:class:`Mark`).
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
    observed: float | None = None
    limit: float | None = None
    step_range: tuple[int, int] | None = None
    marks: tuple[Mark, ...] = ()

    def __post_init__(self) -> None:
        if self.problem is not None and self.problem not in PROBLEMS:
            raise ValueError(f"unknown problem {self.problem!r}; expected one of {PROBLEMS}")
        # Callers may pass a severity's value ("warning"), and any iterable of tags.
        severity: object = self.severity
        if not isinstance(severity, Severity):
            object.__setattr__(self, "severity", Severity(str(severity).strip().lower()))
        set_ = object.__setattr__
        set_(self, "step", _as_step(self.step, "step"))
        for name in ("strength", "observed", "limit"):
            set_(self, name, _as_number(getattr(self, name), name))
        tags: Iterable[object] = self.tags
        set_(self, "tags", (tags,) if isinstance(tags, str) else tuple(str(t) for t in tags))
        set_(self, "step_range", _as_step_range(self.step_range))
        set_(self, "marks", tuple(_as_mark(m) for m in self.marks))
        if not isinstance(self.evidence, Mapping):
            raise TypeError(f"evidence must be a mapping, got {type(self.evidence).__name__}")

    def __repr__(self) -> str:
        """``Finding(L101 overfitting, warning, run='a', step=40): message``.

        In a notebook a finding shows as HTML too: ``_repr_html_`` is added by the presentation
        layer (``tbreport/__init__.py`` wires ``report/notebook.py``), which this module does not
        import.
        """
        step = "" if self.step is None else f", step={self.step}"
        return (
            f"Finding({self.code} {self.name}, {self.severity.value}, run={self.run!r}{step}): "
            f"{self.message}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The finding as the JSON schema's ``findings[]`` item."""
        return {
            "run": self.run,
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "step": self.step,
            "step_range": list(self.step_range) if self.step_range is not None else None,
            "observed": self.observed,
            "limit": self.limit,
            "evidence": dict(self.evidence),
            "advice": self.advice,
            "tags": list(self.tags),
            "problem": self.problem,
            "strength": self.strength,
            "marks": [m.to_dict() for m in self.marks],
        }


def _as_step_range(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or len(value) != 2:
        raise ValueError(f"step_range must be (first, last), got {value!r}")
    first, last = _as_step(value[0], "step_range"), _as_step(value[1], "step_range")
    if first is None or last is None or last < first:
        raise ValueError(f"step_range must be (first, last) with first <= last, got {value!r}")
    return first, last


def _as_mark(value: Any) -> Mark:
    if isinstance(value, Mark):
        return value
    if isinstance(value, Mapping):
        return Mark(**value)
    raise TypeError(f"marks must be Mark records, got {type(value).__name__}")
