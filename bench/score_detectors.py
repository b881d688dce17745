#!/usr/bin/env python
"""Score the detectors against the labelled sample runs: recall and precision per detector.

``sample_runs/labels.json`` says which problems (detector names) each logical run really has.
A finding of a labelled detector on a run counts as a true positive when the label lists it and
as a false positive otherwise; a listed problem without a finding is a false negative. Findings of
detectors that no label mentions (informational extras such as ``duplicate-steps``) are counted
in their own table, and any warning or error on a run labelled healthy is an alarm.

Usage::

    python bench/score_detectors.py [--logdir sample_runs] [--strict] [--details]

With ``--strict`` the exit status is 1 unless every labelled detector has recall and precision of
at least ``--target`` (0.9) and no healthy run gets a warning or an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tbreport.diagnosis import diagnose  # noqa: E402
from tbreport.diagnosis.detectors import ALL_DETECTORS  # noqa: E402
from tbreport.model import Severity  # noqa: E402
from tbreport.reader import read  # noqa: E402


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def score(logdir: Path, labels_path: Path) -> dict:
    """Diagnose ``logdir`` and compare with the labels; returns every count and mismatch."""
    labels = json.loads(labels_path.read_text())["runs"]
    started = time.perf_counter()
    result = read(logdir)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    diagnosis = diagnose(result)
    diagnose_seconds = time.perf_counter() - started

    found: dict[str, dict[str, str]] = {run.run: {} for run in diagnosis.runs}
    for finding in diagnosis:
        current = found.setdefault(finding.run, {}).get(finding.name)
        severity = Severity(finding.severity)
        if current is None or severity.rank > Severity(current).rank:
            found[finding.run][finding.name] = severity.value

    labelled_names = sorted({p for entry in labels.values() for p in entry["problems"]})
    order = [d.name for d in ALL_DETECTORS if d.name in labelled_names]
    order += [n for n in labelled_names if n not in order]
    counts = {name: Counter() for name in order}
    mismatches = []
    healthy_alarms = []
    missing_runs = [run for run in labels if run not in found]
    for run, entry in labels.items():
        expected = set(entry["problems"])
        got = found.get(run, {})
        for name in order:
            hit, wanted = name in got, name in expected
            if hit and wanted:
                counts[name]["tp"] += 1
            elif hit:
                counts[name]["fp"] += 1
                mismatches.append((run, name, "unexpected", got[name]))
            elif wanted:
                counts[name]["fn"] += 1
                mismatches.append((run, name, "missed", ""))
        if not expected:
            alarms = {n: s for n, s in got.items() if Severity(s).rank >= Severity.WARNING.rank}
            if alarms:
                healthy_alarms.append((run, alarms))
    extras = Counter()
    extra_runs: dict[str, list[str]] = {}
    for run, got in found.items():
        for name, severity in got.items():
            if name not in counts:
                extras[(name, severity)] += 1
                extra_runs.setdefault(name, []).append(run)
    return {
        "order": order,
        "counts": counts,
        "mismatches": mismatches,
        "healthy_alarms": healthy_alarms,
        "healthy_runs": sum(1 for e in labels.values() if not e["problems"]),
        "runs": len(labels),
        "missing_runs": missing_runs,
        "extras": extras,
        "extra_runs": extra_runs,
        "read_seconds": read_seconds,
        "diagnose_seconds": diagnose_seconds,
    }


def render(report: dict, *, target: float, details: bool) -> tuple[str, bool]:
    """The markdown tables, and whether every target is met."""
    lines = [
        "| detector | TP | FP | FN | recall | precision |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ok = True
    total = Counter()
    for name in report["order"]:
        c = report["counts"][name]
        total.update(c)
        recall = _ratio(c["tp"], c["tp"] + c["fn"])
        precision = _ratio(c["tp"], c["tp"] + c["fp"])
        if (recall is not None and recall < target) or (
            precision is not None and precision < target
        ):
            ok = False
        if precision is None and c["fn"]:
            ok = False
        lines.append(
            f"| {name} | {c['tp']} | {c['fp']} | {c['fn']} | {_fmt(recall)} | {_fmt(precision)} |"
        )
    lines.append(
        f"| **all** | {total['tp']} | {total['fp']} | {total['fn']} | "
        f"{_fmt(_ratio(total['tp'], total['tp'] + total['fn']))} | "
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
    if report["extras"]:
        lines.append("")
        lines.append("Findings of detectors without labels (not scored):")
        for (name, severity), n in sorted(report["extras"].items()):
            lines.append(f"- {name} ({severity}): {n} run(s)")
            if details:
                for run in report["extra_runs"][name]:
                    lines.append(f"  - {run}")
    if details and report["mismatches"]:
        lines.append("")
        lines.append("Mismatches:")
        for run, name, kind, severity in report["mismatches"]:
            lines.append(f"- {run}: {name} {kind}" + (f" ({severity})" if severity else ""))
    lines.append("")
    lines.append(
        f"Read {report['read_seconds']:.2f} s, diagnosed {report['diagnose_seconds']:.2f} s."
    )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", type=Path, default=REPO / "sample_runs")
    parser.add_argument("--labels", type=Path, default=None, help="default: LOGDIR/labels.json")
    parser.add_argument("--target", type=float, default=0.9, help="recall/precision target")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--details", action="store_true", help="list every mismatch")
    args = parser.parse_args(argv)
    labels = args.labels or args.logdir / "labels.json"
    if not labels.is_file():
        print(f"score_detectors: no labels at {labels}", file=sys.stderr)
        return 2
    report = score(args.logdir, labels)
    text, ok = render(report, target=args.target, details=args.details)
    print(text)
    if args.strict and not ok:
        print("score_detectors: targets missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
