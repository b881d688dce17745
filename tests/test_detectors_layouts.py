"""Every problem is found, and healthy runs stay silent, in every tag layout (files on disk).

Synthetic curves from ``diagnosis_helpers`` are written as AutoStock, puffin, HF, Lightning
(train every 50 steps, validation per epoch on another grid), Keras (``train/`` + ``validation/``
sub-runs, TF2 tensor scalars) and torch ``add_scalars`` event files, read back with
``tbreport.read`` and diagnosed as logical runs.
"""

from __future__ import annotations

import pytest
from diagnosis_helpers import LAYOUTS, PROBLEMS, make_curves, write_run

from tbreport.diagnosis import diagnose
from tbreport.model import Severity

SEEDS = (3, 11)
# TF2 tensor histograms bucket the data range, so exact zeros cannot be told from small values
# (and Keras' TensorBoard callback logs no gradient histograms): dead-neurons needs torch-style
# histograms with a zero bucket.
NOT_OBSERVABLE = {("keras", "dead-neurons")}


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    expected = {}
    for seed in SEEDS:
        for layout in LAYOUTS:
            for problem in (None, *PROBLEMS):
                name = f"seed{seed}/{layout}/{problem or 'healthy'}"
                expected[write_run(root, name, layout, make_curves(problem, seed=seed))] = problem
    diagnosis = diagnose(root)
    return expected, {run.run: run for run in diagnosis.runs}


def test_every_logical_run_is_diagnosed_once(diagnosed):
    expected, runs = diagnosed
    assert set(runs) == set(expected), "Keras splits and add_scalars series must fold into one run"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_healthy_runs_are_silent(diagnosed, layout, seed):
    _, runs = diagnosed
    run = runs[f"seed{seed}/{layout}/healthy"]
    assert run.status == "healthy", [f"{f.name}: {f.message}" for f in run.findings]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_problem_is_found_and_nothing_else(diagnosed, layout, problem, seed):
    if (layout, problem) in NOT_OBSERVABLE:
        pytest.skip("not observable in this layout")
    _, runs = diagnosed
    run = runs[f"seed{seed}/{layout}/{problem}"]
    names = {f.name for f in run.findings}
    skipped = {s.name: s.reason for s in run.skipped}
    assert problem in names, f"{problem} not found; skipped: {skipped.get(problem)}"
    # Another detector of the same problem (diverged-loss beside erratic-loss) says the same.
    others = {
        f"{f.name} ({f.severity}): {f.message}"
        for f in run.findings
        if f.name != problem and f.problem != problem
    }
    assert not others, f"unexpected findings on a {problem} run: {others}"


def test_findings_carry_evidence_and_advice(diagnosed):
    _, runs = diagnosed
    for run in runs.values():
        for finding in run.findings:
            assert finding.advice, finding
            assert finding.evidence, finding
            assert finding.message, finding.message
            assert "threshold" in finding.message, finding.message
            assert isinstance(finding.severity, Severity)


def test_non_finite_loss_is_an_error_with_the_first_bad_step(diagnosed):
    _, runs = diagnosed
    for layout in LAYOUTS:
        run = runs[f"seed{SEEDS[0]}/{layout}/non-finite-loss"]
        (finding,) = [f for f in run.findings if f.name == "non-finite-loss"]
        assert finding.severity == Severity.ERROR
        assert finding.step is not None, "NaN starts at 60% of the run"
        assert finding.step > 0, "NaN starts at 60% of the run"
        assert run.status == "error"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_roles_are_skipped_with_a_reason_not_passed(tmp_path, layout):
    curves = make_curves(None, seed=5)
    curves.val_loss = None
    curves.pred_std = None
    run_name = write_run(tmp_path, "no_validation", layout, curves)
    (run,) = diagnose(tmp_path).runs
    assert run.run == run_name
    skipped = {s.name: s.reason for s in run.skipped}
    assert skipped["overfitting"] == "no tag matched role val_loss"
    assert skipped["collapsed-predictions"] == "no tag matched role pred_std"
    assert "underfitting" not in skipped, "train_loss is present, so underfitting must run"
    assert run.status == "healthy"
