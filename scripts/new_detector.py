#!/usr/bin/env python3
"""Scaffold a detector: its module and its tests, ready for the rule to be written.

    python3 scripts/new_detector.py spiky-loss L108 --problem erratic-loss
    python3 scripts/new_detector.py reward-plateau E606 --problem underfitting \\
        --run-kinds reinforcement-learning --role reward --severities warning,error

Writes ``tbreport/diagnosis/detectors/<name>.py`` (a Detector subclass with every declaration:
code, name, severities, problem, run kinds, needed role, documented parameters and the four
documentation sections; its ``check()`` reads the curve and reports nothing until the rule is
written) and ``tests/test_detector_<name>.py`` (a fires/silent pair marked
``xfail(strict=True)``: both fail until the rule fires on the problem run and stays silent on
the healthy one, and then the strict marks fail the suite until they are removed). The registry
finds the module by itself; the remaining steps are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ScaffoldError(Exception):
    """The detector cannot be scaffolded as asked."""


def _tuple(items: list[str]) -> str:
    """Python source of a tuple, as ruff formats it."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _validate(name: str, code: str, problem: str | None, severities, run_kinds, role) -> None:
    from tbreport.diagnosis.detectors import ALL_DETECTORS, FAMILIES, RETIRED_CODES
    from tbreport.diagnosis.roles import SCALAR_ROLES
    from tbreport.diagnosis.semantics import RUN_KINDS
    from tbreport.model import PROBLEMS, Severity

    if not re.fullmatch(r"[a-z]+(-[a-z]+)*", name):
        raise ScaffoldError(f"name {name!r} must be kebab-case words, e.g. spiky-loss")
    if not re.fullmatch(r"[A-Z]\d{3}", code):
        raise ScaffoldError(f"code {code!r} must be a family letter and three digits, e.g. L108")
    family = FAMILIES.get(code[0])
    if family is None or code[1] != family[0]:
        known = ", ".join(
            f"{letter}{digit}xx ({what})" for letter, (digit, what) in FAMILIES.items()
        )
        raise ScaffoldError(f"code {code} is in no family; families: {known}")
    if code in RETIRED_CODES:
        raise ScaffoldError(f"code {code} is retired ({RETIRED_CODES[code]}) and stays reserved")
    for detector in ALL_DETECTORS:
        if detector.code == code:
            raise ScaffoldError(f"code {code} is taken by {detector.name}")
        if detector.name == name:
            raise ScaffoldError(f"name {name} is taken by {detector.code}")
    if problem is not None and problem not in PROBLEMS:
        raise ScaffoldError(f"problem {problem!r} is not one of {', '.join(PROBLEMS)} (or none)")
    for level in severities:
        if level not in {s.value for s in Severity}:
            raise ScaffoldError(f"severity {level!r} is not error, warning or info")
    for kind in run_kinds:
        if kind not in RUN_KINDS:
            raise ScaffoldError(f"run kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
    if role not in SCALAR_ROLES:
        raise ScaffoldError(f"role {role!r} is not a scalar role: {', '.join(SCALAR_ROLES)}")


def _advice(problem: str | None) -> str:
    """The documented advice of the detector named after the problem, as bullet lines."""
    from tbreport.diagnosis.detectors import ALL_DETECTORS

    for detector in ALL_DETECTORS:
        if problem is not None and detector.name == problem:
            return detector.doc_sections()["What to do"]
    return "- Look at the curves around the step the finding names"


def detector_module(
    name: str, code: str, problem: str | None, severities, run_kinds, role: str
) -> str:
    words = name.replace("-", " ")
    about = f"the training problem {problem}" if problem else "the data rather than the training"
    advice = textwrap.indent(_advice(problem), " " * 4)
    levels = _tuple([f"Severity.{level.upper()}" for level in severities])
    kinds = _tuple([json.dumps(kind) for kind in run_kinds])
    return f'''"""{code} {name} (scaffolded by scripts/new_detector.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tbreport.diagnosis.detectors.base import Detector, RunData, param
from tbreport.model import Finding, Severity


class {_class_name(name)}(Detector):
    """The {role} curve shows {words}.

    ## What it detects
    The `{role}` curve, once it has at least `min_points` finite points, compared
    with `limit`.

    ## Why it matters
    Its findings report {about}.

    ## What to do
{advice}

    ## Example
    The `{role}` curve past `limit`: flagged.
    """

    code = "{code}"
    name = "{name}"
    severities = {levels}
    problem = {json.dumps(problem) if problem else None}
    run_kinds = {kinds}
    requires = ("{role}",)

    @dataclass(frozen=True)
    class Params:
        min_points: int = param(10, "Fewest finite points of the curve needed to judge.")
        limit: float = param(1.0, "The threshold the observed value is compared with.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        finite = run.required_curve("{role}").finite()
        if len(finite) < params.min_points:
            return
        # The rule compares a statistic of `finite` with `params.limit` and, past it, yields
        #     self.finding(run, message=..., step=..., observed=..., limit=params.limit,
        #                  step_range=(first, last), tags=(finite.tag,),
        #                  marks=[mark_band(finite.tag, first, last, "...")])
        # (mark_band, mark_point, mark_vline and mark_hline come from detectors.base).
        yield from ()
'''


def test_module(name: str, code: str, problem: str | None) -> str:
    from tbreport.model import PROBLEMS

    shape = problem if problem in PROBLEMS else None
    what = f"shows {problem}" if problem else "has the problem"
    problem_run = (
        f'write_run(root, "run", "puffin", make_curves({json.dumps(shape)}))'
        if shape
        else 'write_run(root, "run", "puffin", make_curves(None))  # write the problem here'
    )
    return f'''"""{code} {name}: fires on a run that {what}, stays silent on a healthy one.

Scaffolded by scripts/new_detector.py: both tests are expected to fail until the rule in
``check()`` is written; ``strict`` then fails the suite until the marks below are removed.
"""

from __future__ import annotations

import pytest
from diagnosis_helpers import make_curves, write_run

import tbreport
from tbreport.diagnosis.detectors import find_detector

CODE = "{code}"
SCAFFOLDED = pytest.mark.xfail(strict=True, reason="the rule of {code} is not written yet")


def _diagnosed(root, problem: bool):
    """This detector's diagnosis of a run that {what}, or of a healthy one."""
    if problem:
        {problem_run}
    else:
        write_run(root, "run", "puffin", make_curves(None))
    (result,) = tbreport.diagnose(root, config={{"select": [CODE]}}).runs
    return result


def test_the_registry_finds_it():
    assert find_detector(CODE).name == "{name}"


@SCAFFOLDED
def test_fires_on_a_run_that_shows_the_problem(tmp_path):
    result = _diagnosed(tmp_path, problem=True)
    assert not result.skipped, result.skipped
    (finding,) = result.findings
    assert finding.severity in find_detector(CODE).severities
    assert finding.observed is not None
    assert finding.limit is not None
    assert finding.step is not None
    assert finding.tags


@SCAFFOLDED
def test_silent_on_a_healthy_run(tmp_path):
    healthy = _diagnosed(tmp_path / "healthy", problem=False)
    assert not healthy.skipped, healthy.skipped
    assert not healthy.findings, healthy.findings
    # Silence says something only from a rule that fires on the problem.
    assert _diagnosed(tmp_path / "problem", problem=True).findings
'''


def scaffold(
    name: str,
    code: str,
    *,
    problem: str | None,
    severities=("warning",),
    run_kinds=(),
    role: str = "train_loss",
    dest: Path = ROOT,
) -> list[Path]:
    """Write the detector's module and tests under ``dest``; returns the two paths.

    Raises:
        ScaffoldError: A bad or taken name or code, an unknown problem, severity, run kind or
            role, or a file that already exists.
    """
    _validate(name, code, problem, severities, run_kinds, role)
    module = name.replace("-", "_")
    paths = {
        dest / "tbreport" / "diagnosis" / "detectors" / f"{module}.py": detector_module(
            name, code, problem, severities, run_kinds, role
        ),
        dest / "tests" / f"test_detector_{module}.py": test_module(name, code, problem),
    }
    for path in paths:
        if path.exists():
            raise ScaffoldError(f"{path} already exists")
    for path, text in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(paths)


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="kebab-case name, e.g. spiky-loss")
    parser.add_argument("code", help="family letter and three digits, e.g. L108")
    parser.add_argument(
        "--problem", required=True, help="the problem its findings report, or 'none'"
    )
    parser.add_argument(
        "--severities", default="warning", help="comma-separated, lowest first [warning]"
    )
    parser.add_argument("--run-kinds", default="", help="comma-separated [every kind]")
    parser.add_argument("--role", default="train_loss", help="the role it reads [train_loss]")
    parser.add_argument("--dest", type=Path, default=ROOT, help="repository root [this one]")
    args = parser.parse_args(argv)
    dest = args.dest.resolve()
    sys.path.insert(0, str(dest))  # validate against the registry the files go into
    problem = None if args.problem.lower() == "none" else args.problem
    try:
        written = scaffold(
            args.name,
            args.code.upper(),
            problem=problem,
            severities=_list(args.severities.lower()),
            run_kinds=_list(args.run_kinds),
            role=args.role,
            dest=dest,
        )
    except ScaffoldError as exc:
        print(f"new_detector: {exc}", file=sys.stderr)
        return 2
    module, tests = (path.relative_to(dest) for path in written)
    print(f"wrote {module}\nwrote {tests}")
    print(
        "The registry finds the module by itself. What remains:\n"
        f"  1. write the rule in check() and the documentation sections of\n"
        f"     {module};\n"
        f"  2. make the problem run of {tests} show the problem,\n"
        "     and remove its xfail marks once both tests pass (until then strict marks fail);\n"
        "  3. python3 scripts/render_rules.py   (adds it to the README table and docs/rules.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
