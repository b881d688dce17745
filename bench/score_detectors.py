#!/usr/bin/env python
"""Score the detectors against a labelled corpus: recall and precision per problem.

Two label formats are understood:

* ``sample_runs/labels.json``: ``{"runs": {run: {"problems": [...], "allowed": [...]}}}`` with
  detector or problem names;
* the real-run corpus format (``../shared/diagnosis-corpus/labels.json``, the pathology zoo):
  ``{run: {"required": [...], "allowed": [...], "why": ...}}`` with problem names such as
  ``erratic_loss`` or ``nan_loss``.

Scoring rule: a warning or error finding counts for its ``problem``; a required problem without
such a finding is a miss; a finding whose problem is neither required nor allowed is a false
alarm; any warning or error on a run with no required or allowed problem is a healthy-run alarm.
Info findings do not count.

With ``--cv``, the detectors' main thresholds are chosen by grouped cross-validation: for each
source (a repository folder, or a label's ``family``), the grid point that scores best on the
other sources is applied to it, and the held-out findings are pooled. The printed table is then
held-out recall and precision (see ``bench/calibrate.py`` for the grid).

Usage::

    python bench/score_detectors.py [LOGDIR [LABELS]] [--strict] [--details] [--cv]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tbreport.diagnosis import diagnose  # noqa: E402
from tbreport.diagnosis.detectors import ALL_DETECTORS  # noqa: E402
from tbreport.model import PROBLEMS, Severity  # noqa: E402
from tbreport.reading.reader import read  # noqa: E402

_ALIASES = {"nan-loss": "non-finite-loss", "nan": "non-finite-loss"}


def problem_of(name: str) -> str | None:
    """A label's problem or detector name as a problem of the seed vocabulary (None: unknown)."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in PROBLEMS:
        return key
    for detector in ALL_DETECTORS:
        if key in (detector.name, detector.code.lower()):
            return detector.problem
    return None


def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    """Run -> ``{"required": set, "allowed": set, "group": str}`` from either label format."""
    data = json.loads(path.read_text())
    out: dict[str, dict[str, Any]] = {}
    if isinstance(data.get("runs"), Mapping):
        for run, entry in data["runs"].items():
            required = {p for p in map(problem_of, entry.get("problems", ())) if p}
            allowed = {p for p in map(problem_of, entry.get("allowed", ())) if p} - required
            group = entry.get("family") or entry.get("layout") or run.split("/", 1)[0]
            out[run] = {"required": required, "allowed": allowed, "group": group}
        return out
    for run, entry in data.items():
        if not isinstance(entry, Mapping) or "required" not in entry:
            continue
        required = {p for p in map(problem_of, entry.get("required", ())) if p}
        allowed = {p for p in map(problem_of, entry.get("allowed", ())) if p} - required
        group = entry.get("family") or run.split("/", 1)[0]
        out[run] = {"required": required, "allowed": allowed, "group": group}
    return out


def found_problems(diagnosis) -> dict[str, dict[str, str]]:
    """Run -> {problem or "(none)": worst severity} over warning and error findings."""
    found: dict[str, dict[str, str]] = {run.run: {} for run in diagnosis.runs}
    for finding in diagnosis:
        severity = Severity(finding.severity)
        if severity.rank < Severity.WARNING.rank:
            continue
        key = finding.problem or f"({finding.name})"
        current = found.setdefault(finding.run, {}).get(key)
        if current is None or severity.rank > Severity(current).rank:
            found[finding.run][key] = severity.value
    return found


def tally(labels: Mapping[str, Mapping[str, Any]], found: Mapping[str, Mapping[str, str]]) -> dict:
    """Counts per problem, mismatches and healthy-run alarms for ``found`` against ``labels``."""
    counts = {p: Counter() for p in PROBLEMS}
    mismatches, healthy_alarms = [], []
    for run, entry in labels.items():
        got = found.get(run, {})
        required, allowed = entry["required"], entry["allowed"]
        for problem in PROBLEMS:
            hit = problem in got
            if problem in required:
                counts[problem]["tp" if hit else "fn"] += 1
                if not hit:
                    mismatches.append((run, problem, "missed", ""))
            elif hit and problem not in allowed:
                counts[problem]["fp"] += 1
                mismatches.append((run, problem, "false alarm", got[problem]))
        if not required and not allowed and got:
            healthy_alarms.append((run, dict(got)))
    return {
        "counts": counts,
        "mismatches": mismatches,
        "healthy_alarms": healthy_alarms,
        "healthy_runs": sum(1 for e in labels.values() if not e["required"] and not e["allowed"]),
        "runs": len(labels),
        "missing_runs": [run for run in labels if run not in found],
    }


def score(logdir: Path, labels_path: Path, *, config: Any = None) -> dict:
    """Diagnose ``logdir`` and compare with the labels; returns every count and mismatch."""
    labels = load_labels(labels_path)
    started = time.perf_counter()
    result = read(logdir)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    diagnosis = diagnose(result, config=config)
    diagnose_seconds = time.perf_counter() - started
    report = tally(labels, found_problems(diagnosis))
    report.update(read_seconds=read_seconds, diagnose_seconds=diagnose_seconds)
    return report


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(report: dict, *, target: float, details: bool, min_cases: int = 5) -> tuple[str, bool]:
    """The markdown table and whether every target is met (problems with at least
    ``min_cases`` labelled cases must reach ``target`` recall and precision)."""
    lines = [
        "| problem | labelled | TP | FP | FN | recall | precision |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    total = Counter()
    for problem, c in report["counts"].items():
        if not any(c.values()):
            continue
        total.update(c)
        recall = _ratio(c["tp"], c["tp"] + c["fn"])
        precision = _ratio(c["tp"], c["tp"] + c["fp"])
        cases = c["tp"] + c["fn"]
        if cases >= min_cases and (
            (recall or 0) < target or (precision is not None and precision < target)
        ):
            ok = False
        lines.append(
            f"| {problem} | {cases} | {c['tp']} | {c['fp']} | {c['fn']} | {_fmt(recall)} "
            f"| {_fmt(precision)} |"
        )
    lines.append(
        f"| **all** | {total['tp'] + total['fn']} | {total['tp']} | {total['fp']} | "
        f"{total['fn']} | {_fmt(_ratio(total['tp'], total['tp'] + total['fn']))} | "
        f"{_fmt(_ratio(total['tp'], total['tp'] + total['fp']))} |"
    )
    lines.append("")
    alarms = report["healthy_alarms"]
    lines.append(
        f"Healthy runs with a warning or error: {len(alarms)} of {report['healthy_runs']}"
        f" ({report['runs']} labelled runs)."
    )
    if alarms:
        ok = False
        for run, found in alarms:
            lines.append(f"- {run}: {', '.join(f'{n} ({s})' for n, s in sorted(found.items()))}")
    if report["missing_runs"]:
        ok = False
        lines.append(f"Labelled runs not found in the logdir: {', '.join(report['missing_runs'])}")
    if details and report["mismatches"]:
        lines.append("")
        lines.append("Mismatches:")
        for run, name, kind, severity in report["mismatches"]:
            lines.append(f"- {run}: {name} {kind}" + (f" ({severity})" if severity else ""))
    if "read_seconds" in report:
        lines.append("")
        lines.append(
            f"Read {report['read_seconds']:.2f} s, diagnosed {report['diagnose_seconds']:.2f} s."
        )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", nargs="?", type=Path, default=REPO / "sample_runs")
    parser.add_argument("labels", nargs="?", type=Path, default=None, help="LOGDIR/labels.json")
    parser.add_argument("--target", type=float, default=0.9, help="recall/precision target")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--details", action="store_true", help="list every mismatch")
    parser.add_argument(
        "--cv", action="store_true", help="held-out scores by grouped cross-validation"
    )
    args = parser.parse_args(argv)
    labels = args.labels or args.logdir / "labels.json"
    if not labels.is_file():
        print(f"score_detectors: no labels at {labels}", file=sys.stderr)
        return 2
    if args.cv:
        from calibrate import held_out_report  # bench/calibrate.py

        report = held_out_report(args.logdir, labels)
    else:
        report = score(args.logdir, labels)
    text, ok = render(report, target=args.target, details=args.details)
    print(text)
    if args.strict and not ok:
        print("score_detectors: targets missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
