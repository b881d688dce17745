"""Every detector keeps the Finding contract on every run we have: the sample runs, the writer
layouts, the synthetic layouts and a fixture per detector that those do not trigger.

The contract: a finding's severity is one its detector declares (``tbreport rules`` shows them),
no detector errors, and every mark is on a tag the run has and the finding names, so a chart can
always draw it. ``Detector.finding`` enforces the same at run time; this runs it everywhere.
The report draws only from the typed fields: findings stripped of their evidence give the same
charts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from diagnosis_helpers import PROBLEMS, check, decay, make_curves, run_data, write_run
from writer_layouts import CASES, available, make_variant

import tbreport
from tbreport.diagnosis.detectors import ALL_DETECTORS, find_detector
from tbreport.model import ReadWarning

SAMPLE_RUNS = Path(
    os.environ.get("TBREPORT_SAMPLE_RUNS", Path(__file__).resolve().parent.parent / "sample_runs")
)
N = 200
STEPS = np.arange(N)


# -- corpora ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, tbreport.Diagnosis]:
    """Diagnoses of the sample runs, every writer layout and the synthetic layouts."""
    root = tmp_path_factory.mktemp("contract")
    for case in CASES:
        if case.requires and not available(case.requires):
            continue
        for variant in case.variants:
            case.write(
                root / "writers" / case.name / variant, make_variant(variant, problem=case.problem)
            )
    for layout in ("puffin", "keras", "lightning"):
        for problem in (None, *PROBLEMS):
            name = f"{layout}/{problem or 'healthy'}"
            write_run(root / "synthetic", name, layout, make_curves(problem, seed=3))
    out = {"writers": tbreport.diagnose(root / "writers")}
    out["synthetic"] = tbreport.diagnose(root / "synthetic")
    if (SAMPLE_RUNS / "labels.json").is_file():
        out["sample_runs"] = tbreport.diagnose(SAMPLE_RUNS)
    return out


def _rl(**series: np.ndarray):
    tags = {
        "reward": "rollout/ep_rew_mean",
        "entropy": "train/entropy_loss",
        "value": "train/value_loss",
        "policy": "train/policy_gradient_loss",
        "kl": "train/approx_kl",
    }
    t = np.linspace(0, 1, N)
    rng = np.random.default_rng(0)
    healthy = {
        "reward": 100 * (1 - np.exp(-4 * t)) + rng.normal(0, 2, N),
        "entropy": -(1.9 * np.exp(-1.2 * t)) * rng.lognormal(0, 0.02, N),
        "value": 3.0 * np.exp(-2 * t) * rng.lognormal(0, 0.3, N),
        "policy": rng.normal(0, 0.02, N),
    }
    healthy.update(series)
    steps = 2048 * (STEPS + 1)
    return run_data({tags[k]: (steps, v) for k, v in healthy.items()}, described=True)


def _weights(factor) -> dict:
    rng = np.random.default_rng(1)
    return {
        tag: [
            (step, rng.normal(scale=0.1 * factor(i), size=300))
            for i, step in enumerate(range(0, 40, 5))
        ]
        for tag in ("weights/fc1.weight", "weights/fc2.weight")
    }


def _frozen_loss():
    loss = np.ones(N)
    loss[:3] = [3.27, 4.41, 5.52]
    return run_data({"train_loss": (STEPS, loss)})


def _collapsed_reward():
    reward = 100 * (1 - np.exp(-4 * np.linspace(0, 1, N)))
    reward[120:] = 15.0
    return _rl(reward=reward)


def _entropy_collapse():
    entropy = -1.9 * np.ones(N)
    entropy[20:] = -0.01
    return _rl(entropy=entropy)


def _value_spike():
    value = 3.0 * np.exp(-2 * np.linspace(0, 1, N)) * np.random.default_rng(2).lognormal(0, 0.3, N)
    value[130] = 5_000.0
    return _rl(value=value)


def _kl_spike():
    kl = 0.015 * np.random.default_rng(3).lognormal(0, 0.5, N)
    kl[150] = 2.5
    return _rl(kl=kl)


#: Detector name -> a run that makes it fire (the corpora above do not trigger these).
FIXTURES = {
    "generalisation-gap": lambda: run_data(
        {
            "train_loss": (STEPS[:40], decay(40, floor=0.05)),
            "val_loss": (STEPS[:40], decay(40, start=1.1, floor=0.4)),
        }
    ),
    "frozen-loss": _frozen_loss,
    "weight-collapse": lambda: run_data(histograms=_weights(lambda i: 0.3**i)),
    "weight-growth": lambda: run_data(histograms=_weights(lambda i: 2.0**i)),
    "lr-schedule-no-effect": lambda: run_data(
        {
            "lr": (STEPS[:40], np.where(STEPS[:40] < 20, 1e-3, 1e-4)),
            "train_loss": (STEPS[:40], 0.5 + 0.001 * np.sin(STEPS[:40])),
        }
    ),
    "reward-not-improving": lambda: _rl(reward=-20 + np.random.default_rng(4).normal(0, 0.5, N)),
    "reward-collapse": _collapsed_reward,
    "entropy-collapse": _entropy_collapse,
    "value-loss-blow-up": _value_spike,
    "approx-kl-blow-up": _kl_spike,
    "duplicate-steps": lambda: run_data(
        {
            "loss": (
                np.concatenate([STEPS, STEPS[:5]]),
                np.concatenate([np.ones(N), np.full(5, 2.0)]),
            )
        }
    ),
    "damaged-file": lambda: run_data(
        {"loss": (STEPS, np.ones(N))},
        warnings=[ReadWarning("truncated-record", "run/events.1", "cut", offset=120, run="run")],
    ),
}


@pytest.fixture(scope="module")
def fixture_findings() -> dict[str, tuple]:
    """Fixture name -> (its run, every detector's findings on it)."""
    out = {}
    for name, build in FIXTURES.items():
        data = build()
        out[name] = (data, [f for d in ALL_DETECTORS for f in check(d.name, data)[0]])
    return out


def _everything(corpora, fixture_findings):
    """(where, run's tags, finding) over every corpus and fixture."""
    for corpus, diagnosis in corpora.items():
        for finding in diagnosis:
            view = diagnosis.views[finding.run]
            tags = {*view.scalar_tags, *view.histogram_tags}
            yield f"{corpus}:{finding.run}", tags, finding
    for name, (data, findings) in fixture_findings.items():
        for finding in findings:
            yield f"fixture {name}", {*data.scalar_tags, *data.histogram_tags}, finding


# -- the contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_each_fixture_makes_its_detector_fire(fixture_findings, name):
    _, findings = fixture_findings[name]
    assert name in {f.name for f in findings}, [f"{f.name}: {f.message}" for f in findings]


def test_the_corpus_covers_every_detector(corpora, fixture_findings):
    # A detector added later brings its own fires test, which goes through the same run-time
    # checks in Detector.finding; every detector of today is exercised here.
    fired = {f.name for _, _, f in _everything(corpora, fixture_findings)}
    silent = sorted({d.name for d in ALL_DETECTORS} - fired)
    assert not silent, f"no run of the corpus makes these fire: {silent}"


def test_every_emitted_severity_is_declared(corpora, fixture_findings):
    undeclared = [
        (where, f.code, f.severity.value)
        for where, _, f in _everything(corpora, fixture_findings)
        if f.severity not in find_detector(f.code).severities
    ]
    assert not undeclared, undeclared
    levels = {(f.code, f.severity.value) for _, _, f in _everything(corpora, fixture_findings)}
    assert ("G201", "error") in levels  # the two-level detector raises its upper level here


def test_no_detector_errors_on_any_run(corpora):
    errored = [
        (corpus, run.run, s.code, s.reason)
        for corpus, diagnosis in corpora.items()
        for run in diagnosis.runs
        for s in run.skipped
        if s.reason.startswith("errored")
    ]
    assert not errored, errored


def test_every_mark_is_on_a_tag_of_its_run_and_of_its_finding(corpora, fixture_findings):
    stray = []
    marks = 0
    for where, tags, finding in _everything(corpora, fixture_findings):
        for mark in finding.marks:
            marks += 1
            if mark.tag not in tags or mark.tag not in finding.tags:
                stray.append((where, finding.code, mark))
        if finding.step_range is not None:
            assert finding.step_range[0] <= finding.step_range[1], (where, finding.code)
        json.dumps(finding.to_dict(), allow_nan=False)
    assert not stray, stray[:10]
    assert marks > 100


def test_charts_draw_from_the_typed_fields_not_from_evidence(corpora):
    # Every key a chart could read from evidence is gone: the charts must not change.
    from tbreport.report import render_report

    diagnosis = corpora["synthetic"]
    stripped = tbreport.Diagnosis(
        [dataclasses.replace(f, evidence={}) for f in diagnosis],
        runs=[
            dataclasses.replace(
                r, findings=tuple(dataclasses.replace(f, evidence={}) for f in r.findings)
            )
            for r in diagnosis.runs
        ],
        read=diagnosis.read,
        detectors=diagnosis.detectors,
        views=diagnosis.views,
    )

    def charts(html: str) -> list[str]:
        # The chart payloads only (the findings table shows the evidence to people).
        return [part.split("</script>", 1)[0] for part in html.split('type="application/json"')[1:]]

    with_evidence = charts(render_report(diagnosis.read, diagnosis))
    assert with_evidence == charts(render_report(diagnosis.read, stripped))
    assert any('"circle-open"' in chart for chart in with_evidence), "no point mark was drawn"


@pytest.mark.parametrize("code", [d.code for d in ALL_DETECTORS if d.requires])
def test_a_detector_called_without_its_required_role_is_skipped(code):
    """The engine never calls a detector whose required roles are missing; called directly, it
    is skipped with the missing role named (it used to fail on a None curve)."""
    from tbreport.diagnosis.detectors.base import RunData, SkipDetector

    detector = find_detector(code)()
    columns = {"tag": [], "step": [], "value": [], "wall_time": []}
    run = RunData(
        run="r",
        scalars=pd.DataFrame(columns),
        histograms=pd.DataFrame({"tag": [], "step": []}),
        roles={},
    )
    with pytest.raises(SkipDetector):
        list(detector.check(run, detector.make_params()))
