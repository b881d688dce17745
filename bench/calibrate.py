#!/usr/bin/env python
"""Choose the detectors' main thresholds by cross-validation grouped by source, and report the
held-out recall and precision.

Every labelled corpus is split into groups: the repository folder of a real-run corpus, or the
``family`` of a zoo run (recipe family). For each group in turn, each detector's threshold is
chosen from a small grid on all the *other* groups (every corpus pooled), then applied to the
held-out group; the findings of the held-out groups are pooled and scored with the corpus
scoring rule (bench/score_detectors.py). A threshold that only fits the runs it was tuned on
shows up here as a held-out miss or false alarm.

Usage::

    python bench/calibrate.py                                  # ../shared/diagnosis-corpus
    python bench/calibrate.py --zoo "$(python bench/make_zoo.py --print-path)"
    python bench/calibrate.py LOGDIR LABELS [LOGDIR LABELS ...]

The printed tables are held-out figures per corpus, then the value each fold chose (a stable
choice across folds is what makes the default trustworthy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from score_detectors import found_problems, load_labels, render, tally  # noqa: E402

from tbreport.diagnosis import diagnose  # noqa: E402
from tbreport.diagnosis.detectors import find_detector  # noqa: E402
from tbreport.model import PROBLEMS  # noqa: E402
from tbreport.reading.reader import read  # noqa: E402

#: "detector.parameter" -> candidate values; the detector's default is always among them. Each
#: parameter is chosen on its own (the others at their defaults); a fold then applies all its
#: choices together to its held-out group.
GRID: Mapping[str, tuple[float, ...]] = {
    "overfitting.min_rise": (0.05, 0.1, 0.15, 0.2, 0.3),
    "overfitting.min_gap_plateau": (1.5, 2.0, 3.0, 5.0),
    "overfitting.min_train_drop_plateau": (0.2, 0.3, 0.5, 0.7),
    "underfitting.min_improvement": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    "erratic-loss.max_noise": (0.02, 0.03, 0.04, 0.05, 0.07, 0.1),
    "erratic-loss.short_noise_factor": (1.5, 2.0, 2.5, 3.0, 4.0),
    "exploding-gradients.max_early_norm": (1e3, 2e3, 3e3, 5e3, 1e4, 3e4),
    "dead-neurons.max_zero_fraction": (0.5, 0.6, 0.7, 0.8, 0.9),
    "reward-not-improving.min_improvement": (0.1, 0.2, 0.3, 0.5),
    "frozen-loss.rtol": (1e-5, 1e-4, 1e-3),
    "collapsed-predictions.max_ratio": (0.05, 0.1, 0.2),
}


def _split_key(key: str) -> tuple[str, str]:
    detector, param = key.rsplit(".", 1)
    return detector, param


#: What one alarm on a healthy run costs, in missed or false calls: the target is no alarm on
#: a healthy run at all, so a threshold that buys recall with healthy alarms rarely wins.
HEALTHY_ALARM_COST = 5.0


@dataclass
class Corpus:
    """One labelled corpus, read once."""

    name: str
    labels: dict[str, dict[str, Any]]
    read: Any


def _problem(detector: str) -> str:
    problem = find_detector(detector).problem
    assert problem in PROBLEMS
    return problem


def _findings(corpora: Sequence[Corpus], config: Mapping[str, Any] | None) -> dict:
    """Run -> {problem: severity} for every corpus (run names prefixed by the corpus)."""
    out: dict[str, dict[str, str]] = {}
    for corpus in corpora:
        for run, found in found_problems(diagnose(corpus.read, config=config)).items():
            out[f"{corpus.name}::{run}"] = found
    return out


def _objective(labels: Mapping[str, Mapping[str, Any]], found: Mapping, problem: str) -> float:
    """Correct calls minus wrong ones for one problem; a healthy-run alarm costs
    ``HEALTHY_ALARM_COST``. Each
    corpus weighs the same, however many runs it has, so a large generated corpus does not
    outvote the real runs."""
    sizes = Counter(run.split("::", 1)[0] for run in labels)
    score = 0.0
    for run, entry in labels.items():
        weight = 1.0 / sizes[run.split("::", 1)[0]]
        hit = problem in found.get(run, {})
        wanted = problem in entry["required"]
        if wanted:
            score += weight if hit else -weight
        elif hit and problem not in entry["allowed"]:
            score -= (
                HEALTHY_ALARM_COST if not entry["required"] and not entry["allowed"] else 1
            ) * weight
    return score


def cross_validate_many(corpora: Sequence[Corpus], *, grid: Mapping = GRID) -> dict:
    """Held-out findings for every labelled run, and the value each fold chose."""
    labels = {
        f"{c.name}::{run}": {**entry, "group": f"{c.name}::{entry['group']}"}
        for c in corpora
        for run, entry in c.labels.items()
    }
    default = _findings(corpora, None)
    defaults = {}
    by_value: dict[str, dict[float, dict]] = {}
    for key, values in grid.items():
        detector, param = _split_key(key)
        defaults[key] = getattr(find_detector(detector).Params(), param)
        by_value[key] = {}
        for value in values:
            if value == defaults[key]:
                by_value[key][value] = default
            else:
                config = {"detectors": {detector: {param: value}}}
                by_value[key][value] = _findings(corpora, config)
    groups = sorted({e["group"] for e in labels.values()})
    chosen: dict[str, Counter] = {key: Counter() for key in grid}
    held_out: dict[str, dict[str, str]] = {}
    combined: dict[tuple, dict] = {}  # a fold's choices together -> findings
    for group in groups:
        inside = {r: e for r, e in labels.items() if e["group"] != group}
        outside = [r for r, e in labels.items() if e["group"] == group]
        picks = {}
        for key, values in grid.items():
            problem = _problem(_split_key(key)[0])
            # Best training score; ties go to the documented default, then the smaller value.
            best = max(
                values,
                key=lambda v, p=problem, k=key: (
                    _objective(inside, by_value[k][v], p),
                    v == defaults[k],
                    -v,
                ),
            )
            picks[key] = best
            chosen[key][best] += 1
        changed = tuple(sorted((k, v) for k, v in picks.items() if v != defaults[k]))
        if changed not in combined:
            config: dict[str, dict[str, dict[str, float]]] = {"detectors": {}}
            for key, value in changed:
                detector, param = _split_key(key)
                config["detectors"].setdefault(detector, {})[param] = value
            combined[changed] = _findings(corpora, config) if changed else default
        for run in outside:
            held_out[run] = dict(combined[changed].get(run, {}))
    return {"labels": labels, "held_out": held_out, "default": default, "chosen": chosen}


def held_out_report(logdir: Path, labels_path: Path) -> dict:
    """Held-out scores of one corpus (groups: its repository folders or label families), in
    the form ``score_detectors.render`` prints."""
    (corpus,) = load([(logdir, labels_path)])
    result = cross_validate_many([corpus])
    labels, held = _split(result["labels"], result["held_out"], corpus.name)
    return tally(labels, held)


def load(pairs: Sequence[tuple[Path, Path]]) -> list[Corpus]:
    corpora = []
    for logdir, labels_path in pairs:
        name = logdir.name or str(logdir)
        corpora.append(Corpus(name=name, labels=load_labels(labels_path), read=read(logdir)))
    return corpora


def _split(labels: Mapping, found: Mapping, corpus: str) -> tuple[dict, dict]:
    prefix = f"{corpus}::"
    sub_labels = {r[len(prefix) :]: e for r, e in labels.items() if r.startswith(prefix)}
    sub_found = {r[len(prefix) :]: f for r, f in found.items() if r.startswith(prefix)}
    return sub_labels, sub_found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="*", type=Path, help="LOGDIR LABELS [LOGDIR LABELS ...]")
    parser.add_argument("--zoo", type=Path, help="a generated pathology zoo (adds it)")
    parser.add_argument("--details", action="store_true", help="list held-out mismatches")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give LOGDIR LABELS pairs")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2], strict=True))
    if not pairs:
        corpus = REPO.parent / "shared" / "diagnosis-corpus"
        pairs.append((corpus, corpus / "labels.json"))
    if args.zoo:
        pairs.append((args.zoo, args.zoo / "labels.json"))
    for _logdir, labels_path in pairs:
        if not labels_path.is_file():
            print(f"calibrate: no labels at {labels_path}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    corpora = load(pairs)
    result = cross_validate_many(corpora)
    figures = {}
    for corpus in corpora:
        labels, held = _split(result["labels"], result["held_out"], corpus.name)
        _, default = _split(result["labels"], result["default"], corpus.name)
        report = tally(labels, held)
        text, _ = render(report, target=0.9, details=args.details)
        groups = len({e["group"] for e in labels.values()})
        print(f"## {corpus.name}: held out by source ({groups} groups, {len(labels)} runs)\n")
        print(text)
        in_sample = tally(labels, default)
        print(f"\nIn-sample with the shipped defaults: {_summary(in_sample)}\n")
        figures[corpus.name] = {"held_out": _counts(report), "in_sample": _counts(in_sample)}
    print("## Thresholds chosen by the folds (value: folds)\n")
    for key, counts in result["chosen"].items():
        detector, param = _split_key(key)
        default_value = getattr(find_detector(detector).Params(), param)
        shown = ", ".join(f"{v:g}: {n}" for v, n in sorted(counts.items()))
        print(f"- {key} (default {default_value:g}): {shown}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _counts(report: Mapping) -> dict:
    return {
        "problems": {p: dict(c) for p, c in report["counts"].items() if any(c.values())},
        "healthy_alarms": len(report["healthy_alarms"]),
        "healthy_runs": report["healthy_runs"],
    }


def _summary(report: Mapping) -> str:
    total = Counter()
    for c in report["counts"].values():
        total.update(c)
    recall = total["tp"] / max(total["tp"] + total["fn"], 1)
    precision = total["tp"] / max(total["tp"] + total["fp"], 1)
    return (
        f"recall {recall:.2f}, precision {precision:.2f}, healthy runs alarmed "
        f"{len(report['healthy_alarms'])} of {report['healthy_runs']}"
    )


if __name__ == "__main__":
    sys.exit(main())
