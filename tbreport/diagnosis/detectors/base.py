"""The detector base class, the per-run data detectors see, and shared curve helpers.

A detector is one class in one module of this package (the registry finds it): code, name,
the severities it can raise, its problem, the roles it needs, a frozen ``Params`` dataclass whose
fields carry ``help`` metadata, a docstring with the sections ``## What it detects``,
``## Why it matters``, ``## What to do`` and ``## Example``, and a pure ``check(run, params)``
that yields :class:`~tbreport.model.Finding` records through :meth:`Detector.finding`: the
observed value and its numeric limit, the step and step range, the tags, and the
:class:`~tbreport.model.Mark` records a chart should draw. It never formats anything beyond its
one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from tbreport.diagnosis.semantics import RunSemantics
from tbreport.diagnosis.stats import rolling_median, small_median
from tbreport.errors import ConfigError
from tbreport.model import Finding, Mark, ReadWarning, Severity

DOC_SECTIONS = ("What it detects", "Why it matters", "What to do", "Example")
#: Detector class -> its parsed docstring sections (advice is read from them for every finding).
_DOC_SECTIONS: dict[type, dict[str, str]] = {}


def param(default: Any, help: str, *, minimum: float | None = None) -> Any:
    """A ``Params`` field with its documentation.

    Args:
        minimum: The smallest value a configuration may set. Numbers default to 0 (no
            threshold, window or share of these detectors is meaningful below it), and counts
            of points to 1 (a window of no point judges nothing).
    """
    if minimum is None and isinstance(default, (int, float)) and not isinstance(default, bool):
        minimum = 0
    return field(default=default, metadata={"help": help, "minimum": minimum})


class SkipDetector(Exception):
    """Raised inside ``check()`` when the run lacks what the detector needs (too few points, …).

    The detector is then reported as *skipped* with this reason, never as passed.
    """


@dataclass(frozen=True)
class Curve:
    """One scalar tag of one logical run: unique steps in order (the last write of a step wins).

    Attributes:
        tag: The logical tag.
        steps: int64 steps, strictly increasing.
        values: float64 values (may hold NaN/Inf).
        wall_times: float64 wall times.
    """

    tag: str
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray

    def __len__(self) -> int:
        return int(self.steps.size)

    def finite(self) -> Curve:
        """The points whose value is finite."""
        keep = np.isfinite(self.values)
        return Curve(self.tag, self.steps[keep], self.values[keep], self.wall_times[keep])

    def after(self, step: int) -> Curve:
        """The points at or after ``step``."""
        keep = self.steps >= step
        return Curve(self.tag, self.steps[keep], self.values[keep], self.wall_times[keep])


class RunData:
    """What a detector sees of one logical run.

    Attributes:
        run: Logical run path relative to the logdir.
        scalars: Logical scalars of the run (``tag, step, wall_time, value``).
        histograms: Histograms of the run with logical tags (Keras splits prefixed).
        roles: Role -> tags it resolved to.
        warnings: Read warnings about the run's files.
        inventory: The ``ReadResult.runs`` rows of the run and its sub-runs.
        semantics: The tags' meanings and the run's kind.
    """

    def __init__(
        self,
        *,
        run: str,
        scalars: pd.DataFrame | Callable[[], pd.DataFrame],
        histograms: pd.DataFrame,
        roles: Mapping[str, tuple[str, ...]],
        warnings: Sequence[ReadWarning] = (),
        inventory: pd.DataFrame | None = None,
        semantics: RunSemantics | None = None,
        arrays: ScalarArrays | None = None,
    ) -> None:
        self.run = run
        self.semantics = semantics
        #: ``"supervised"``, ``"reinforcement-learning"``, ``"adversarial"`` or ``"unknown"``.
        self.kind = semantics.kind if semantics is not None else "supervised"
        self.meanings = dict(semantics.meanings) if semantics is not None else {}
        # Roles judged on a sum of loss terms: the joined tag -> the summed tags.
        self._sums = {
            "+".join(tags): tuple(tags)
            for tags in (semantics.loss_sum.values() if semantics is not None else ())
        }
        # A frame, or (with `arrays`) how to build it when a detector first asks for it.
        self._scalars = scalars
        self.histograms = histograms
        self.roles = dict(roles)
        self.warnings = tuple(warnings)
        self.inventory = inventory if inventory is not None else pd.DataFrame()
        self._curves: dict[str, Curve] = {}
        # Row positions of each tag (in written order) and the columns as arrays: curves are cut
        # from arrays, not from a pandas group per tag.
        if arrays is not None:
            self._rows_of = _rows_by_codes(arrays.codes, arrays.names)
            self._columns = (arrays.steps, arrays.values, arrays.wall_times)
        else:
            frame = self.scalars
            self._rows_of = _rows_by_tag(frame["tag"]) if len(frame) else {}
            if self._rows_of:
                self._columns = (
                    frame["step"].to_numpy(np.int64),
                    frame["value"].to_numpy(np.float64),
                    frame["wall_time"].to_numpy(np.float64),
                )
        self._hist_rows_of = _rows_by_tag(histograms["tag"]) if len(histograms) else {}
        self._hist_frames: dict[str, dict[str, pd.DataFrame]] = {}

    @property
    def scalars(self) -> pd.DataFrame:
        """Logical scalars of the run (``tag, step, wall_time, value``)."""
        if callable(self._scalars):
            self._scalars = self._scalars()
        return self._scalars

    def nonfinite_tags(self) -> set[str]:
        """Tags with a NaN or infinite value anywhere (duplicate steps included), from the
        arrays: most runs have none, and the answer costs one vectorised pass."""
        if not self._rows_of:
            return set()
        bad = ~np.isfinite(self._columns[1])
        if not bad.any():
            return set()
        return {tag for tag, rows in self._rows_of.items() if bad[rows].any()}

    @property
    def scalar_tags(self) -> list[str]:
        return list(self._rows_of)

    @property
    def histogram_tags(self) -> list[str]:
        return list(self._hist_rows_of)

    def tag_curve(self, tag: str) -> Curve:
        """The curve of one scalar tag (duplicate steps: the last write wins)."""
        if tag not in self._curves and tag in self._sums:
            self._curves[tag] = _sum_curves(tag, [self.tag_curve(t) for t in self._sums[tag]])
        if tag not in self._curves:
            rows = self._rows_of.get(tag)
            if rows is None:
                empty = np.empty(0)
                curve = Curve(tag, empty.astype(np.int64), empty, empty)
            else:
                steps, values, walls = (column[rows] for column in self._columns)
                if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
                    curve = Curve(tag, steps, values, walls)  # the usual case: nothing to drop
                else:
                    # The last write of each step, in step order.
                    _, last = np.unique(steps[::-1], return_index=True)
                    keep = len(steps) - 1 - last
                    curve = Curve(tag, steps[keep], values[keep], walls[keep])
            self._curves[tag] = curve
        return self._curves[tag]

    def points(self, tag: str) -> Curve:
        """Every point of one scalar tag in step order, duplicate steps included (what a chart
        draws; :meth:`tag_curve` keeps the last write of a step, as detectors judge)."""
        rows = self._rows_of.get(tag)
        if rows is None:
            return self.tag_curve(tag)  # a derived curve (a sum of loss terms) or no data
        steps, values, walls = (column[rows] for column in self._columns)
        order = np.argsort(steps, kind="stable")
        return Curve(tag, steps[order], values[order], walls[order])

    def parts(self, tag: str) -> tuple[str, ...]:
        """The logged tags behind a tag: the summed loss terms of a role judged on their sum
        (``"a+b"``), else the tag itself."""
        return self._sums.get(tag, (tag,))

    def curve(self, role: str) -> Curve | None:
        """The curve of the first tag resolved for a scalar role, or None."""
        tags = self.roles.get(role)
        return self.tag_curve(tags[0]) if tags else None

    def required_curve(self, role: str) -> Curve:
        """The curve of a role the detector ``requires``.

        Raises:
            SkipDetector: No tag resolved to ``role``. The engine skips a detector whose
                required roles are missing before calling it; a detector checked directly on a
                run without the role is skipped the same way instead of failing on None.
        """
        curve = self.curve(role)
        if curve is None:
            raise SkipDetector(f"no tag matched role {role}")
        return curve

    def histogram_rows(self, tag: str) -> pd.DataFrame:
        """Every histogram of one tag in step order, duplicate steps included (for charts)."""
        rows = self._hist_rows_of.get(tag)
        if rows is None:
            return self.histograms.iloc[0:0]
        frame = self.histograms.iloc[rows]
        return frame.sort_values("step", kind="stable").reset_index(drop=True)

    def histogram_frames(self, role: str) -> dict[str, pd.DataFrame]:
        """Tag -> its histogram rows sorted by step (duplicates: last wins), for a histogram role,
        layers in model order (input layer to output layer, see `model_order`). Built once per
        role: several detectors read the same histograms."""
        cached = self._hist_frames.get(role)
        if cached is not None:
            return dict(cached)
        frames = {}
        for tag in self.roles.get(role, ()):
            rows = self._hist_rows_of.get(tag)
            frame = self.histograms.iloc[rows] if rows is not None else None
            if frame is not None and len(frame):
                frames[tag] = frame.drop_duplicates("step", keep="last").sort_values(
                    "step", kind="stable"
                )
        ordered = {tag: frames[tag] for tag in model_order(frames)}
        self._hist_frames[role] = ordered
        return dict(ordered)


@dataclass(frozen=True)
class ScalarArrays:
    """A run's scalar columns as arrays: tag codes into ``names``, steps, values, wall times."""

    codes: np.ndarray
    names: Sequence[str]
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray


def _rows_by_codes(codes: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Tag -> positions of its rows, from tag codes into ``names``; tags in order of first
    appearance."""
    if codes.size == 0:
        return {}
    present, first = np.unique(codes, return_index=True)
    present = present[np.argsort(first)]
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.searchsorted(ordered, present, side="left")
    ends = np.searchsorted(ordered, present, side="right")
    return {
        names[int(code)]: order[start:end]
        for code, start, end in zip(present, starts, ends, strict=True)
        if code >= 0
    }


def _rows_by_tag(tags: pd.Series) -> dict[str, np.ndarray]:
    """Tag -> positions of its rows, tags in order of first appearance (as ``groupby``)."""
    if isinstance(tags.dtype, pd.CategoricalDtype):
        # The codes are there already; keep the categories present, in order of appearance.
        all_codes = tags.cat.codes.to_numpy()
        present, first = np.unique(all_codes, return_index=True)
        present = present[np.argsort(first)]
        remap = np.full(len(tags.cat.categories) + 1, -1, dtype=np.int64)
        remap[present] = np.arange(present.size)
        codes = remap[all_codes]
        # One conversion to Python strings (an arrow-backed index is slow to index one by one).
        names: list[object] = tags.cat.categories.take(present).tolist()
    else:
        codes, uniques = pd.factorize(tags, sort=False)
        names = list(uniques.tolist())
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {
        str(tag): order[bounds[i] : bounds[i + 1]]
        for i, tag in enumerate(names)
        if bounds[i + 1] > bounds[i]
    }


def _sum_curves(tag: str, curves: Sequence[Curve]) -> Curve:
    """The sum of several loss terms at the steps every one of them was logged at."""
    common = curves[0].steps
    for curve in curves[1:]:
        common = np.intersect1d(common, curve.steps, assume_unique=True)
    values = np.zeros(common.size)
    walls = np.zeros(common.size)
    for curve in curves:
        index = np.searchsorted(curve.steps, common)
        values = values + curve.values[index]
        walls = np.maximum(walls, curve.wall_times[index])
    return Curve(tag, common.astype(np.int64), values, walls)


class Detector:
    """Base class of every detector; see the module docstring for the contract."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: Every severity the detector can raise, lowest first. A finding of another severity is a
    #: bug (:meth:`finding` refuses it), and a configured override maps each of them.
    severities: ClassVar[tuple[Severity, ...]] = ()
    #: The severity of a finding that does not choose one: the lowest of ``severities``
    #: (filled in by ``__init_subclass__``).
    severity: ClassVar[Severity] = Severity.WARNING
    #: The training problem its findings report, in the seed vocabulary (``model.PROBLEMS``),
    #: or None for findings about the data rather than the training.
    problem: ClassVar[str | None] = None
    #: Run kinds the detector judges (``"supervised"``, ``"reinforcement-learning"``,
    #: ``"adversarial"``, ``"unknown"``); empty: every kind.
    run_kinds: ClassVar[tuple[str, ...]] = ()
    #: Run kinds whose assessment rests on this detector: a run of such a kind is called healthy
    #: only when one of its key detectors ran (see ``diagnosis.engine.KEY_DETECTORS``).
    assesses: ClassVar[tuple[str, ...]] = ()
    #: Its findings are about a change of a curve's level (a rise, a plateau, no response): a
    #: chart carrying one stays on a linear axis, which a log axis would flatten. Findings of the
    #: problems in ``report.scales.LINEAR_PROBLEMS`` do so whatever their detector.
    linear_axis: ClassVar[bool] = False
    #: Roles that must all be present, else the detector is skipped.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Roles of which at least one must be present (empty: no such condition).
    requires_any: ClassVar[tuple[str, ...]] = ()
    #: Names of detectors whose finding on the same run explains this one's (a root cause): the
    #: symptom is then not reported, so the advice given is the cause's.
    explained_by: ClassVar[tuple[str, ...]] = ()
    #: One-line summary, the first line of the docstring (filled in by ``__init_subclass__``).
    summary: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Params:
        """No parameters."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        doc = (cls.__doc__ or "").strip()
        cls.summary = doc.splitlines()[0].strip() if doc else ""
        declared = cls.__dict__.get("severities")
        if declared:
            levels = tuple(sorted({Severity(s) for s in declared}, key=lambda s: s.rank))
            cls.severities = levels
            if "severity" not in cls.__dict__:
                cls.severity = levels[0]
        elif "severity" in cls.__dict__ or not cls.severities:
            cls.severities = (Severity(cls.severity),)
        if cls.severity not in cls.severities:
            raise TypeError(
                f"{cls.__name__}: default severity {cls.severity} is not among its severities "
                f"{', '.join(map(str, cls.severities))}"
            )

    # -- documentation ------------------------------------------------------------------------
    @classmethod
    def doc_sections(cls) -> dict[str, str]:
        """The docstring's ``## Heading`` sections, heading -> dedented body."""
        cached = _DOC_SECTIONS.get(cls)
        if cached is None:
            cached = _DOC_SECTIONS[cls] = cls._parse_doc_sections()
        return dict(cached)

    @classmethod
    def _parse_doc_sections(cls) -> dict[str, str]:
        import inspect

        doc = inspect.cleandoc(cls.__doc__ or "")
        sections: dict[str, str] = {}
        current = None
        lines: list[str] = []
        for line in doc.splitlines():
            match = re.match(r"^##\s+(.*\S)\s*$", line)
            if match:
                if current is not None:
                    sections[current] = "\n".join(lines).strip()
                current, lines = match.group(1), []
            elif current is not None:
                lines.append(line)
        if current is not None:
            sections[current] = "\n".join(lines).strip()
        return sections

    @classmethod
    def advice(cls) -> str:
        """The ``What to do`` section as one line: bullet points joined with ``; ``."""
        body = cls.doc_sections().get("What to do", "")
        items = []
        for line in body.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith(("- ", "* ")):
                items.append(line[2:].strip())
            elif items:
                items[-1] += " " + line
            else:
                items.append(line)
        return "; ".join(items)

    @classmethod
    def param_fields(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls.Params))

    @classmethod
    def make_params(cls, overrides: Mapping[str, Any] | None = None) -> Any:
        """``Params`` with ``overrides`` applied, each checked against the field's type.

        Raises:
            ConfigError: An unknown parameter or a value of the wrong type.
        """
        overrides = dict(overrides or {})
        fields = {f.name: f for f in cls.param_fields()}
        values = {}
        for key, value in overrides.items():
            name = key.replace("-", "_")
            if name not in fields:
                known = ", ".join(fields) or "none"
                raise ConfigError(
                    f"detector {cls.code} ({cls.name}) has no parameter {key!r} "
                    f"(parameters: {known})"
                )
            values[name] = _coerce(value, fields[name], cls)
        return cls.Params(**values)

    # -- checking -----------------------------------------------------------------------------
    def missing_roles(self, run: RunData) -> str | None:
        """Why the detector cannot run on ``run`` (a missing role, another run kind), or None."""
        kind = getattr(run, "kind", "unknown")
        if self.run_kinds and kind not in self.run_kinds:
            return f"does not apply to {kind} runs"
        for role in self.requires:
            if not run.roles.get(role):
                return f"no tag matched role {role}"
        if self.requires_any and not any(run.roles.get(r) for r in self.requires_any):
            return "no tag matched any of the roles " + ", ".join(self.requires_any)
        return None

    def check(self, run: RunData, params: Any) -> Iterator[Finding]:
        """Yield the findings of this detector on one run; raise :class:`SkipDetector` when the
        data cannot answer the question. Pure: reads ``run``, changes nothing."""
        raise NotImplementedError

    def finding(
        self,
        run: RunData,
        *,
        message: str,
        step: int | None,
        evidence: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        severity: Severity | None = None,
        strength: float | None = None,
        advice: str | None = None,
        observed: float | None = None,
        limit: float | None = None,
        step_range: Sequence[int] | None = None,
        marks: Iterable[Mark | None] = (),
    ) -> Finding:
        """A finding of this detector, with its problem and advice attached.

        Args:
            strength: How far past the threshold (1.0 = at it), see :class:`Finding`.
            advice: Advice chosen from the evidence; the documented ``What to do`` when None.
            observed: The value compared with the threshold; ``limit``: that threshold.
            step_range: ``(first, last)`` steps the problem covers.
            marks: What a chart should draw; ``None`` entries (a mark that could not be placed,
                see :func:`mark_point`) are left out.

        Raises:
            ValueError: ``severity`` is not one the detector declares, or a mark is on a tag the
                run does not have or the finding does not name (a chart could not draw it).
        """
        severity = Severity(severity) if severity is not None else self.severity
        if severity not in self.severities:
            raise ValueError(
                f"{self.code} ({self.name}) declares severities "
                f"{', '.join(map(str, self.severities))}, not {severity}"
            )
        if strength is not None and not math.isfinite(strength):
            strength = None
        tags, marks = _logged(run, tags, marks)
        if marks and hasattr(run, "scalar_tags"):
            known = {*run.scalar_tags, *run.histogram_tags}
            stray = sorted({m.tag for m in marks if m.tag not in known or m.tag not in tags})
            if stray:
                raise ValueError(
                    f"{self.code} ({self.name}) marks tags the run does not have or the finding "
                    f"does not name: {', '.join(stray)}"
                )
        return Finding(
            run=run.run,
            code=self.code,
            name=self.name,
            severity=severity,
            message=message,
            step=step,
            evidence={k: jsonable(v) for k, v in (evidence or {}).items()},
            advice=self.advice() if advice is None else advice,
            tags=tags,
            problem=self.problem,
            strength=None if strength is None else round(float(strength), 3),
            observed=_rounded(observed),
            limit=_rounded(limit),
            # Finding checks that it is a (first, last) pair.
            step_range=None if step_range is None else cast(tuple[int, int], tuple(step_range)),
            marks=marks,
        )


def _logged(
    run: RunData, tags: Sequence[str], marks: Iterable[Mark | None]
) -> tuple[tuple[str, ...], tuple[Mark, ...]]:
    """Tags and marks on the tags that were logged: a curve summed from loss terms (``"a+b"``)
    is no tag of the run and no chart shows it, so it names its terms, and its steps are marked
    on each term (a value on the sum is on none of their curves)."""
    parts = getattr(run, "parts", lambda tag: (tag,))
    logged = tuple(dict.fromkeys(part for tag in tags for part in parts(tag)))
    placed: list[Mark] = []
    for mark in marks:
        if mark is None:
            continue
        terms = parts(mark.tag)
        if terms == (mark.tag,):
            placed.append(mark)
        elif mark.kind in ("vline", "band"):
            placed.extend(dataclasses.replace(mark, tag=term) for term in terms)
    return logged, tuple(placed)


def _rounded(value: float | None) -> float | None:
    """A number for a finding: 6 significant digits (as evidence), None when not finite."""
    if value is None:
        return None
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


# -- marks: what a chart draws for a finding -----------------------------------------------------
# Each returns None when the mark cannot be placed (a non-finite value, an empty band), so a
# detector can pass them to ``finding(marks=...)`` without guarding every number. Values are
# rounded as evidence is (6 significant digits), so a mark and the evidence agree.


def mark_point(tag: str, step: Any, value: Any, label: str = "") -> Mark | None:
    """A value at a step of a tag's curve (a best, a peak, the point of a collapse)."""
    if step is None or value is None or not math.isfinite(float(value)):
        return None
    return Mark("point", tag, step=int(step), value=_rounded(value), label=label)


def mark_vline(tag: str, step: Any, label: str = "") -> Mark | None:
    """A step of a tag's chart (a spike, a drop)."""
    return None if step is None else Mark("vline", tag, step=int(step), label=label)


def mark_band(tag: str, start: Any, end: Any, label: str = "") -> Mark | None:
    """The steps ``start`` to ``end`` of a tag's chart (what came after the best step...)."""
    if start is None or end is None or int(end) < int(start):
        return None
    return Mark("band", tag, step=int(start), step_end=int(end), label=label)


def mark_hline(tag: str, value: Any, label: str = "") -> Mark | None:
    """A level in a tag's units (the value a loss froze at)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return Mark("hline", tag, value=_rounded(value), label=label)


def param_minimum(fld: dataclasses.Field[Any]) -> float | None:
    """The smallest value a configuration may give a parameter (None: no lower bound): its
    ``minimum`` metadata, and at least 1 for a count of points."""
    minimum = fld.metadata.get("minimum")  # e.g. field(default=5, metadata={"minimum": 1})
    kind = fld.type if isinstance(fld.type, str) else getattr(fld.type, "__name__", "")
    if kind == "int" and (fld.name.endswith("points") or fld.name.startswith("min_points")):
        minimum = max(minimum or 0, 1)
    return minimum


def _coerce(value: Any, fld: dataclasses.Field[Any], cls: type[Detector]) -> Any:
    kind = fld.type if isinstance(fld.type, str) else getattr(fld.type, "__name__", "")
    where = f"detector {cls.code} ({cls.name}) parameter {fld.name!r}"
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind in {"int", "float"}:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        minimum = param_minimum(fld)
        if minimum is not None and number < minimum:
            raise ConfigError(f"{where} must be at least {minimum}, got {value!r}")
        if kind == "int":
            if number != int(number):
                raise ConfigError(f"{where} must be a whole number, got {value!r}")
            return int(number)
        return number
    return value


def jsonable(value: Any) -> Any:
    """Evidence values as plain JSON types (numpy scalars to Python, NaN/Inf to strings)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


# -- shared curve helpers ----------------------------------------------------------------------


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits, scientific when tiny or huge."""
    if value is None or not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def pct(value: float) -> str:
    return f"{value * 100:.0f}%" if abs(value) >= 0.1 else f"{value * 100:.1f}%"


def positive_log(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """``log(values)`` when every finite value is positive (losses), else the values unchanged."""
    finite = values[np.isfinite(values)]
    if finite.size and np.all(finite > 0):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(values), True
    return values.astype(np.float64, copy=True), False


def trend_level(values: np.ndarray, *, fraction: float = 0.1, minimum: int = 3) -> np.ndarray:
    """The curve's level: a centred rolling median of ``max(minimum, fraction·n)`` points (odd)."""
    n = values.size
    window = max(minimum, int(round(fraction * n)))
    if window % 2 == 0:
        window += 1
    window = min(window, n if n % 2 else max(n - 1, 1))
    return rolling_median(values, window=window)


def head_level(
    values: np.ndarray, *, fraction: float = 0.1, minimum: int = 1, maximum: int = 20
) -> float:
    """Median of the first ``clip(fraction·n, minimum, maximum)`` finite points."""
    finite = values[np.isfinite(values)]
    k = int(min(max(minimum, round(fraction * finite.size)), maximum, finite.size))
    return small_median(finite[:k]) if k else float("nan")


def tail_level(
    values: np.ndarray, *, fraction: float = 0.1, minimum: int = 1, maximum: int = 50
) -> float:
    """Median of the last ``clip(fraction·n, minimum, maximum)`` finite points."""
    finite = values[np.isfinite(values)]
    k = int(min(max(minimum, round(fraction * finite.size)), maximum, finite.size))
    return small_median(finite[-k:]) if k else float("nan")


def train_at(train: Curve, steps: np.ndarray) -> np.ndarray:
    """Training loss at other steps (e.g. the validation steps), robustly.

    For each target step, the median of the training points logged since the previous target
    step (the training that the evaluation at that step follows); where none were logged, the
    training curve interpolated. Handles Lightning's train-every-50-steps / val-per-epoch and
    HF's eval-every-N-steps grids alike.
    """
    finite = train.finite()
    if len(finite) == 0:
        return np.full(steps.size, np.nan)
    out: np.ndarray = np.interp(steps, finite.steps, finite.values)
    if steps.size > 1 and np.all(np.diff(steps) > 0):
        # Training points in (previous target, target]: one grouped median (C), not one
        # numpy call per target, which cost seconds on 10,000-point curves.
        group = np.searchsorted(steps, finite.steps, side="left")
        inside = group < steps.size
        targets, medians = group_medians(group[inside], finite.values[inside])
        out[targets] = medians
        return out
    # Training points in (previous target, target]: contiguous slices of the sorted steps.
    highs = np.searchsorted(finite.steps, steps, side="right")
    lows = np.concatenate([[0], highs[:-1]]) if steps.size else highs
    for i, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
        if hi > lo:
            out[i] = small_median(finite.values[lo:hi])
    return out


def group_medians(groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``groups`` (ascending) and the median of the ``values`` in each, for every
    group at once: one sort, no per-group call."""
    if groups.size == 0:
        return groups.astype(np.int64), values.astype(np.float64)
    if groups.size == 1 or bool(np.all(groups[1:] > groups[:-1])):
        return groups, values.astype(np.float64)  # one value per group: it is the median
    order = np.lexsort((values, groups))
    ordered_groups, ordered = groups[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered_groups[1:] != ordered_groups[:-1]]))
    counts = np.diff(np.concatenate([starts, [ordered.size]]))
    low = ordered[starts + (counts - 1) // 2]
    high = ordered[starts + counts // 2]
    return ordered_groups[starts], (low + high) / 2


def histogram_rms(frame: pd.DataFrame) -> np.ndarray:
    """Root mean square of the histogrammed values at each row: ``sqrt(sum_squares/num)``, or
    ``sqrt(std² + mean²)`` when ``sum_squares`` is missing (TF2 tensor histograms)."""
    num = frame["num"].to_numpy(np.float64)
    sum_squares = frame["sum_squares"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rms = np.sqrt(sum_squares / num)
        fallback = np.sqrt(
            frame["std"].to_numpy(np.float64) ** 2 + frame["mean"].to_numpy(np.float64) ** 2
        )
    chosen: np.ndarray = np.where(np.isnan(sum_squares), fallback, rms)
    return chosen


def histogram_sum_squares(frame: pd.DataFrame) -> np.ndarray:
    """``sum_squares`` per row, estimated as ``num·(std² + mean²)`` where it is missing."""
    num = frame["num"].to_numpy(np.float64)
    sum_squares = frame["sum_squares"].to_numpy(np.float64)
    estimate = num * (
        frame["std"].to_numpy(np.float64) ** 2 + frame["mean"].to_numpy(np.float64) ** 2
    )
    return np.where(np.isnan(sum_squares), estimate, sum_squares)


#: PyTorch's and TensorFlow's default histogram bins put exact zeros in [0, 1e-12) (and
#: (-1e-12, 0)): a bucket whose both edges lie within this bound holds (essentially) exact zeros.
#: Wider tolerances would count vanishing gradients of ~1e-11 as dead ones.
EXACT_ZERO_EDGE = 1.0000001e-12


def exact_zero_fraction(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the share of values that are exactly zero, from the buckets.

    Falls back to the reader's ``zero_fraction`` when a row has no buckets.
    """
    out = frame["zero_fraction"].to_numpy(np.float64).copy() if "zero_fraction" in frame else None
    if out is None:
        out = np.full(len(frame), np.nan)
    if "bucket_limit" not in frame or "bucket" not in frame:
        return out
    mins = frame["min"].to_numpy(np.float64)
    maxs = frame["max"].to_numpy(np.float64)
    nums = frame["num"].to_numpy(np.float64)
    squares = frame["sum_squares"].to_numpy(np.float64) if "sum_squares" in frame else nums * np.nan
    for i, (limits, counts) in enumerate(zip(frame["bucket_limit"], frame["bucket"], strict=True)):
        if limits is None or counts is None or len(counts) == 0 or not nums[i] > 0:
            continue
        limits = np.asarray(limits, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.float64)
        if mins[i] == 0.0 and maxs[i] == 0.0:
            out[i] = 1.0
            continue
        lefts = np.concatenate([[min(mins[i], limits[0])], limits[:-1]])
        at_zero = (lefts >= -EXACT_ZERO_EDGE) & (limits <= EXACT_ZERO_EDGE)
        out[i] = min(float(counts[at_zero].sum() / nums[i]), 1.0)
        # Everything in the zero bucket but a positive sum of squares: the values are tiny, not
        # zero (gradients that underflow the bucket edge vanish; they are not dead units).
        if out[i] >= 0.999 and np.isfinite(squares[i]) and squares[i] > 0:
            out[i] = 0.0
    return out


def histogram_nonfinite(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose min/max are NaN/Inf (the histogrammed tensor held non-finite values)."""
    cols = [c for c in ("min", "max", "sum", "sum_squares", "mean") if c in frame]
    values = frame[cols].to_numpy(np.float64)
    # sum/sum_squares are NaN by design for TF2 tensor histograms: judge on min/max/mean there.
    bad = ~np.isfinite(values[:, :2]) if values.shape[1] >= 2 else np.zeros((len(frame), 1), bool)
    return np.asarray(bad.any(axis=1))


def global_norm_by_step(frames: Mapping[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the global L2 norm over all tags' values logged at each step (tags missing at a
    step are left out)."""
    parts = []
    for frame in frames.values():
        parts.append(
            pd.DataFrame(
                {"step": frame["step"].to_numpy(np.int64), "ss": histogram_sum_squares(frame)}
            )
        )
    if not parts:
        return np.empty(0, np.int64), np.empty(0)
    joined = pd.concat(parts, ignore_index=True).groupby("step", sort=True)["ss"].sum(min_count=1)
    return joined.index.to_numpy(np.int64), np.sqrt(joined.to_numpy(np.float64))


def _natural_key(tag: str) -> tuple[tuple[int, int, str], ...]:
    """``net.8`` before ``net.16``: numbers in a tag compare as numbers."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", tag)
        if part
    )


def model_order(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Histogram tags from the input layer to the output layer.

    Writers log a model's layers in order (``named_parameters``), each with its own wall time,
    but the reader returns tags sorted by name (``net.16`` before ``net.8``). The write order
    is recovered from the wall times at the first step every layer was logged at; when those
    tie (one wall time per step), numbers in the names decide (``net.8`` before ``net.16``).
    """
    tags = list(frames)
    if len(tags) < 2:
        return tags
    natural = sorted(tags, key=_natural_key)
    firsts = {tag: int(frames[tag]["step"].iloc[0]) for tag in tags}
    step = max(firsts.values())
    times = {}
    for tag in tags:
        at = frames[tag].loc[frames[tag]["step"] == step, "wall_time"]
        if not len(at):
            return natural
        times[tag] = float(at.iloc[0])
    if len(set(times.values())) < len(tags) or not all(map(math.isfinite, times.values())):
        return natural
    return sorted(tags, key=lambda t: times[t])


def layer_label(tag: str) -> str:
    """A short layer name for messages: the tag without its role prefix."""
    return tag.split("/", 1)[1] if "/" in tag else tag


def is_embedding(tag: str) -> bool:
    """Whether a histogram tag is an embedding table (sparse gradients by design)."""
    return bool(re.search(r"embed|(?:^|[/_.])wte(?:$|[/_.])|(?:^|[/_.])wpe(?:$|[/_.])", tag, re.I))


def is_bias(tag: str) -> bool:
    """Whether a histogram tag is a bias vector (few values, often legitimately zero)."""
    return bool(re.search(r"(?:^|[/_.])bias(?:es)?(?:$|[/_.:\d])", tag, re.IGNORECASE))


@dataclass(frozen=True)
class FrozenLayers:
    """Weight layers whose histograms stopped changing (see `frozen_layers`)."""

    tags: list[str]
    since_step: int
    whole_network: bool


def frozen_layers(
    weights: Mapping[str, pd.DataFrame], *, min_points: int, min_fraction: float, rtol: float
) -> FrozenLayers | None:
    """Weight layers (no biases) whose histogram statistics stay identical, within ``rtol``,
    over the last ``min_fraction`` of their logs (at least ``min_points``) after having
    changed; None when every layer keeps changing."""
    # Exact sums only: TF2 tensor histograms carry bucket counts (their sums are NaN), whose
    # statistics can stay the same while the weights move within a bucket.
    stats_cols = ["min", "max", "sum", "sum_squares"]
    changing, frozen = [], []
    since = None
    for tag, frame in weights.items():
        if len(frame) < min_points or is_bias(tag):
            continue
        stats = frame[stats_cols].to_numpy(np.float64)
        if not np.isfinite(stats).all():
            continue
        scale = np.maximum(np.abs(stats[-1]), 1e-12)
        differs = np.any(np.abs(stats - stats[-1]) > rtol * scale, axis=1)
        first_same = int(np.nonzero(differs)[0][-1]) + 1 if differs.any() else 0
        span = len(stats) - first_same  # logs identical to the last one, at the end
        # A layer frozen for the last few logs only may just have converged below float
        # precision; one frozen for a good share of the run is not being trained. A layer
        # that never changed at all is most often frozen on purpose (a pretrained backbone)
        # or unused (a recurrent kernel over sequences of one step): it did not *stop*.
        if first_same > 0 and span >= max(min_points, min_fraction * len(stats)):
            frozen.append(tag)
            step = int(frame["step"].iloc[first_same])
            since = step if since is None else min(since, step)
        else:
            changing.append(tag)
    if not frozen or since is None:
        return None
    # Some layers frozen while others learn, or the whole network (a learning rate of 0, a
    # detached loss): either way those weights stopped being trained.
    return FrozenLayers(tags=frozen, since_step=since, whole_network=not changing)
