"""Diagnosis of real runs written by other people (``../shared``): kinds, pairing, honesty.

The real-run corpora sit beside the repository (``../shared/conformance/realworld`` and the
labelled ``../shared/diagnosis-corpus``); the tests skip when they are absent.
"""

from __future__ import annotations

import sys

import pytest
from conftest import DIAGNOSIS_CORPUS, REALWORLD, ROOT

import tbreport
from tbreport.model import Severity

CORPORA = [REALWORLD, DIAGNOSIS_CORPUS]
# Rules written for a loss that must fall: never on an RL or GAN run.
LOSS_RULES = {
    "overfitting",
    "underfitting",
    "erratic-loss",
    "generalisation-gap",
    "diverged-loss",
    "frozen-loss",
}

needs_shared = pytest.mark.skipif(
    not all(c.is_dir() for c in CORPORA), reason="../shared corpora are not beside the repository"
)


@pytest.fixture(scope="module", params=CORPORA, ids=lambda p: p.name)
def diagnosed(request):
    read = tbreport.read(request.param)
    return read, tbreport.diagnose(read)


@needs_shared
def test_no_loss_rule_judges_a_reinforcement_learning_or_gan_run(diagnosed):
    _, diagnosis = diagnosed
    kinds = {run.run: run.kind for run in diagnosis.runs}
    wrong = [
        f"{f.run} ({kinds[f.run]}): {f.name}"
        for f in diagnosis
        if kinds[f.run] in ("reinforcement-learning", "adversarial") and f.name in LOSS_RULES
    ]
    assert not wrong, wrong


@needs_shared
def test_reinforcement_learning_runs_are_recognised():
    diagnosis = tbreport.diagnose(
        DIAGNOSIS_CORPUS / "PacktPublishing__Deep-Reinforcement-Learning-Hands-On"
    )
    assert diagnosis.runs
    assert all(r.kind == "reinforcement-learning" for r in diagnosis.runs)
    bad = {f.run for f in diagnosis if f.name == "reward-not-improving"}
    assert bad == {"Chapter09/res/Dec06_16-05-54_gpu-pong-pg-bad"}


@needs_shared
def test_no_run_is_called_healthy_without_a_key_detector(diagnosed):
    _, diagnosis = diagnosed
    for run in diagnosis.runs:
        if run.status == "healthy":
            assert run.assessed, run
            assert not run.reason, run
        if not run.assessed:
            assert run.status in ("not-assessed", "info", "warning", "error")
            assert run.reason


@needs_shared
def test_every_train_and_validation_split_is_paired(diagnosed):
    read, diagnosis = diagnosed
    inventory = read.runs
    splits = inventory[inventory["subrun_kind"] == "keras-split"]
    roles = {run.run: run.roles for run in diagnosis.runs}
    for logical, rows in splits.groupby("logical_run"):
        if rows["subrun_key"].nunique() < 2 or rows["scalars"].min() == 0:
            continue  # a lone split, or one that holds only histograms
        assert "train_loss" in roles[logical], (
            logical,
            dict(roles[logical]),
        )
        assert "val_loss" in roles[logical], (
            logical,
            dict(roles[logical]),
        )


@needs_shared
def test_the_labelled_corpus_scores_at_least_its_targets():
    # A regression guard on the corpus the thresholds were calibrated on (bench/calibrate.py
    # reports the held-out figures): every labelled problem found, no false or healthy alarm.
    sys.path.insert(0, str(ROOT / "bench"))
    from score_detectors import score

    corpus = DIAGNOSIS_CORPUS
    report = score(corpus, corpus / "labels.json")
    assert not report["missing_runs"]
    assert not report["healthy_alarms"], report["healthy_alarms"]
    for problem, counts in report["counts"].items():
        cases = counts["tp"] + counts["fn"]
        if cases:
            assert counts["tp"] / cases >= 0.9, (problem, dict(counts))
        if counts["tp"] + counts["fp"]:
            assert counts["tp"] / (counts["tp"] + counts["fp"]) >= 0.9, (problem, dict(counts))


@needs_shared
def test_nan_explained_variance_is_information_not_an_error():
    corpus = DIAGNOSIS_CORPUS / "BTHeinbach__gym-flp"
    diagnosis = tbreport.diagnose(corpus)
    metric = [f for f in diagnosis if f.name == "non-finite-metric"]
    assert metric
    assert all(f.severity == Severity.INFO and f.problem is None for f in metric)
    assert not [f for f in diagnosis if f.name == "non-finite-loss"]
