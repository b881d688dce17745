"""Each training framework's real tags and layout are understood (issue 9: tests per writer).

For every writer in ``writer_layouts.CASES`` (TF1, TF2 custom loops with ``test/``, ``val/``,
``valid/`` and ``eval/`` splits, Keras, Lightning, HF Trainer, tensorboardX, Ultralytics,
YOLOv5, detectron2, mmdetection, fairseq, timm, Stable-Baselines3, CleanRL, RLlib and GAN
conventions) a healthy run, a run with a problem and a run without points are written in the
writer's layout and diagnosed, and the test checks (a) what the key tags mean, (b) the run's
kind, (c) the roles the detectors get, (d) the logical run's name, and (e) that the problem's
detector fires on the problem run and stays silent on its healthy look-alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from writer_layouts import (
    CASES,
    EMPTY,
    FALLBACK_FILE,
    GAN,
    HEALTHY,
    NAN_EV,
    PROBLEM,
    RL,
    SUPERVISED,
    WriterCase,
    available,
    make_variant,
)

from tbreport.diagnosis import diagnose
from tbreport.diagnosis.engine import RunDiagnosis
from tbreport.diagnosis.semantics import describe_tag

#: Findings that judge a loss as a supervised loss: never on an RL or GAN run, whose losses are
#: moving targets.
LOSS_RULES = {"overfitting", "underfitting", "erratic-loss", "generalisation-gap"}
IDS = [case.name for case in CASES]


def _skip_unless_available(case: WriterCase) -> None:
    if case.requires and not available(case.requires):
        pytest.skip(f"{case.requires} is not installed")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """Every case's variants, each in its own logdir ``<root>/<case>/<variant>``."""
    root = tmp_path_factory.mktemp("writers")
    for case in CASES:
        if case.requires and not available(case.requires):
            continue
        for variant in case.variants:
            case.write(root / case.name / variant, make_variant(variant, problem=case.problem))
    return root


@pytest.fixture(scope="module")
def diagnosed(written) -> dict[tuple[str, str], dict[str, RunDiagnosis]]:
    """(case, variant) -> the diagnosis of every logical run in that writer's logdir."""
    # One diagnosis over every logdir: each case's runs are found under its own prefix.
    diagnosis = diagnose(written)
    out: dict[tuple[str, str], dict[str, RunDiagnosis]] = {}
    for run in diagnosis.runs:
        name, variant, *rest = run.run.split("/")
        out.setdefault((name, variant), {})["/".join(rest) or "."] = run
    return out


def _run(diagnosed, case: WriterCase, variant: str) -> RunDiagnosis:
    _skip_unless_available(case)
    runs = diagnosed[(case.name, variant)]
    assert case.run in runs, f"{case.name}: expected run {case.run!r}, got {sorted(runs)}"
    return runs[case.run]


def _findings(run: RunDiagnosis) -> list[str]:
    return [f"{f.name} ({f.severity.value}): {f.message}" for f in run.findings]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_key_tags_mean_what_the_writer_means(case):
    """(a) Split, quantity and goal of the writer's key tags."""
    for tag, (split, quantity, goal) in case.meanings.items():
        meaning = describe_tag(tag)
        got = (meaning.split, meaning.quantity, meaning.goal)
        assert got == (split, quantity, goal), f"{tag}: {got} ({meaning.evidence})"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_logical_run_kind_and_roles(diagnosed, case):
    """(b) the run kind, (c) the roles the detectors get, (d) the logical run name."""
    run = _run(diagnosed, case, HEALTHY)
    assert run.kind == case.family, run.kind_evidence
    for role, tags in case.roles.items():
        got = tuple(sorted(run.roles.get(role, ())))  # histogram roles keep the file's order
        assert got == tuple(sorted(tags)), f"{role}: {got} (roles {run.roles})"
    for role in case.absent_roles:
        assert role not in run.roles, f"{role} resolved to {run.roles[role]}"
    if case.family == SUPERVISED and "val_loss" in case.roles:
        assert "train_loss" in run.roles, "a validation loss must come with its training loss"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_healthy_look_alike_is_silent(diagnosed, case):
    """(e) A healthy run in the writer's layout has no finding."""
    run = _run(diagnosed, case, HEALTHY)
    if case.family == GAN:
        # No detector judges a GAN's health from its losses: nothing fires, nothing is claimed.
        assert not run.findings, _findings(run)
        assert run.status == "not-assessed"
        assert "adversarial" in run.reason
        return
    assert run.status == "healthy", _findings(run) or run.reason


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_problem_detector_fires(diagnosed, case):
    """(e) The problem's detector fires, and nothing else does."""
    run = _run(diagnosed, case, PROBLEM)
    names = {f.name for f in run.findings}
    if case.problem is None:
        assert not names, _findings(run)
        return
    skipped = {s.name: s.reason for s in run.skipped}
    assert case.problem in names, f"{case.problem} silent: {skipped.get(case.problem)}"
    assert names == {case.problem}, _findings(run)
    if case.family == RL:
        (finding,) = run.findings
        assert finding.problem == "underfitting"
        assert finding.code == "E601"


@pytest.mark.parametrize(
    ("case", "variant"),
    [
        pytest.param(c, v, id=f"{c.name}-{v}")
        for c in CASES
        if c.family in (RL, GAN)
        for v in (HEALTHY, PROBLEM, NAN_EV)
        if v in c.variants
    ],
)
def test_rl_and_gan_losses_never_judged_as_supervised(diagnosed, case, variant):
    """Rising critic and oscillating policy (or generator/discriminator) losses are normal."""
    run = _run(diagnosed, case, variant)
    judged = {f.name for f in run.findings} & LOSS_RULES
    assert not judged, _findings(run)
    assert not {s.name for s in run.skipped if "does not apply" not in s.reason} & LOSS_RULES


@pytest.mark.parametrize("case", [c for c in CASES if NAN_EV in c.variants], ids=lambda c: c.name)
def test_nan_explained_variance_is_information_only(diagnosed, case):
    """SB3/CleanRL log NaN explained variance when returns have no variance: not a NaN loss."""
    run = _run(diagnosed, case, NAN_EV)
    names = {f.name for f in run.findings}
    assert names == {"non-finite-metric"}, _findings(run)
    assert all(f.severity.value == "info" for f in run.findings)
    assert run.status == "info"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_run_without_points_is_not_assessed(diagnosed, case):
    """Event files with no point: the run is listed, never called healthy."""
    run = _run(diagnosed, case, EMPTY)
    assert run.status == "not-assessed", run.status
    assert not run.assessed, run.status
    assert "no scalar or histogram points" in run.reason
    assert not run.findings


def test_fairseq_train_inner_stays_a_run_of_its_own(diagnosed):
    """fairseq's per-update ``train_inner/`` is not a split name: it is diagnosed apart (its
    losses are the same curve per update), while ``train/`` + ``valid/`` pair."""
    (case,) = [c for c in CASES if c.name == "fairseq"]
    runs = diagnosed[(case.name, HEALTHY)]
    assert set(runs) == {".", "train_inner"}
    assert runs["train_inner"].roles["train_loss"] == ("loss",)


@pytest.mark.parametrize("name", ["tf1", "fairseq"])
def test_logdir_itself_is_the_run_named_dot(written, name):
    """Pointed at the writer's own logdir (``tbreport check logs/``), its run is ``.``."""
    (case,) = [c for c in CASES if c.name == name]
    runs = {r.run: r for r in diagnose(written / name / PROBLEM).runs}
    assert case.run == ".", sorted(runs)
    assert "." in runs, sorted(runs)
    assert {f.name for f in runs["."].findings} == {case.problem}


def test_problem_curves_have_the_problem_shape():
    """The overfitting run's validation loss rises at least 30% from its minimum while the
    training loss keeps falling; the flat RL reward ends where it started."""
    c = make_variant(PROBLEM, problem="overfitting")
    best = int(np.argmin(c.val))
    assert c.val[-5:].mean() >= 1.3 * c.val[best]
    assert best < len(c.val) - 10
    assert c.train[-5:].mean() < c.train[best]
    assert abs(c.reward[-5:].mean() - c.reward[:5].mean()) < 0.1 * abs(c.reward[:5].mean())


@pytest.mark.parametrize("case", [c for c in CASES if c.backend], ids=lambda c: c.name)
def test_the_writer_package_writes_the_files_when_installed(written, case):
    """PyTorch's or tensorboardX's own SummaryWriter wrote the files where it is installed."""
    _skip_unless_available(case)
    if not available(case.backend):
        pytest.skip(f"{case.backend} is not installed: tbreport.testing wrote the same events")
    files = list((written / case.name / HEALTHY).rglob("events.out.tfevents.*"))
    assert files, files
    assert all(f.name != FALLBACK_FILE for f in files), files


def test_every_case_is_distinct_and_documented():
    assert len(IDS) == len(set(IDS))
    for case in CASES:
        assert case.source, case.name
        assert case.family in (SUPERVISED, RL, GAN)
        assert set(case.variants) >= {HEALTHY, PROBLEM, EMPTY}
        assert np.isfinite(make_variant(HEALTHY, problem=case.problem).train).all()
