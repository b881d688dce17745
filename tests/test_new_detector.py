"""scripts/new_detector.py scaffolds a detector and its tests in one go, into a copy of the
package: the registry finds the new module, the registry's own checks accept it, and its
fires/silent pair is xfail until the rule is written."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tbreport.diagnosis.detectors as registry

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "new_detector.py"


@pytest.fixture
def script(monkeypatch):
    """The script as a module, run in this process (its sys.path change undone afterwards)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("new_detector", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the package and the test helpers, with two detectors scaffolded into it."""
    root = tmp_path_factory.mktemp("scaffold")
    shutil.copytree(
        ROOT / "tbreport", root / "tbreport", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "tests").mkdir()
    for helper in ("conftest.py", "diagnosis_helpers.py", "test_registry.py"):
        shutil.copy(ROOT / "tests" / helper, root / "tests" / helper)
    first = _run(
        ROOT, str(SCRIPT), "spiky-loss", "L108", "--problem", "erratic-loss", "--dest", str(root)
    )
    assert first.returncode == 0, first.stderr
    assert "wrote tbreport/diagnosis/detectors/spiky_loss.py" in first.stdout
    assert "wrote tests/test_detector_spiky_loss.py" in first.stdout
    assert "python3 scripts/render_rules.py" in first.stdout  # the step that remains
    second = _run(
        ROOT,
        str(SCRIPT),
        "reward-plateau",
        "E606",
        "--problem",
        "underfitting",
        "--run-kinds",
        "reinforcement-learning",
        "--role",
        "reward",
        "--severities",
        "warning,error",
        "--dest",
        str(root),
    )
    assert second.returncode == 0, second.stderr
    return root


def test_the_registry_finds_the_new_modules_in_code_order(repo):
    out = _run(
        repo,
        "-c",
        "import tbreport.diagnosis.detectors as d; "
        "print(' '.join(x.code for x in d.ALL_DETECTORS)); "
        "e = d.find_detector('E606'); print(e.severity.value, [s.value for s in e.severities])",
    )
    assert out.returncode == 0, out.stderr
    codes, levels = out.stdout.splitlines()
    codes = codes.split()
    assert codes.index("L108") == codes.index("L107") + 1
    assert codes.index("E606") == codes.index("E605") + 1
    assert levels == "warning ['warning', 'error']"


def test_the_scaffold_passes_the_registry_checks_and_lint(repo):
    out = _run(
        repo,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_registry.py",
        "-k",
        "not readme",
    )
    assert out.returncode == 0, out.stdout[-3000:]
    ruff = shutil.which("ruff")
    if ruff:
        files = [
            "tbreport/diagnosis/detectors/spiky_loss.py",
            "tbreport/diagnosis/detectors/reward_plateau.py",
            "tests/test_detector_spiky_loss.py",
            "tests/test_detector_reward_plateau.py",
        ]
        config = ["--config", str(ROOT / "pyproject.toml")]
        for command in (["check"], ["format", "--check"]):
            lint = subprocess.run(
                [ruff, *command, "--no-cache", *config, *files],
                cwd=repo,
                capture_output=True,
                text=True,
            )
            assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_scaffolded_tests_xfail_until_the_rule_is_written(repo):
    out = _run(
        repo,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rxX",
        "tests/test_detector_spiky_loss.py",
        "tests/test_detector_reward_plateau.py",
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 passed, 4 xfailed" in out.stdout, out.stdout[-3000:]


def test_the_scaffolded_detector_runs_on_real_runs_and_reports_nothing(repo):
    # Registered at once, it must not disturb a diagnosis before its rule is written.
    out = _run(
        repo,
        "-c",
        "import sys; sys.path.insert(0, 'tests'); "
        "import tempfile, pathlib, tbreport; "
        "from diagnosis_helpers import make_curves, write_run; "
        "root = pathlib.Path(tempfile.mkdtemp()); "
        "write_run(root, 'run', 'puffin', make_curves('erratic-loss')); "
        "(run,) = tbreport.diagnose(root).runs; "
        "print(' '.join(f.code for f in run.findings)); "
        "print(' '.join(s.code for s in run.skipped))",
    )
    assert out.returncode == 0, out.stderr
    found, skipped = out.stdout.splitlines()
    assert "L103" in found.split()
    assert "L108" not in found.split() + skipped.split()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("overfitting", "L108", "--problem", "overfitting"), "name overfitting is taken by L101"),
        (("spiky-loss", "L101", "--problem", "erratic-loss"), "code L101 is taken by overfitting"),
        (("spiky-loss", "L208", "--problem", "erratic-loss"), "is in no family"),
        (("spiky-loss", "X108", "--problem", "erratic-loss"), "is in no family"),
        (("Spiky_Loss", "L108", "--problem", "erratic-loss"), "must be kebab-case"),
        (("spiky-loss", "L1080", "--problem", "erratic-loss"), "three digits"),
        (("spiky-loss", "L108", "--problem", "sadness"), "is not one of"),
        (("spiky-loss", "L108", "--problem", "none", "--severities", "fatal"), "severity 'fatal'"),
        (("spiky-loss", "L108", "--problem", "none", "--run-kinds", "gan"), "run kind 'gan'"),
        (("spiky-loss", "L108", "--problem", "none", "--role", "weight_histograms"), "scalar role"),
    ],
)
def test_bad_or_taken_names_and_codes_are_refused(script, tmp_path, capsys, args, message):
    assert script.main([*args, "--dest", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.py")), "nothing is written when the scaffold is refused"


def test_a_retired_code_and_an_existing_file_are_refused(script, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "RETIRED_CODES", {"L108": "merged into erratic-loss"})
    assert script.main(["spiky-loss", "L108", "--problem", "none", "--dest", str(tmp_path)]) == 2
    assert "L108 is retired (merged into erratic-loss)" in capsys.readouterr().err
    monkeypatch.setattr(registry, "RETIRED_CODES", {})
    target = tmp_path / "tests" / "test_detector_spiky_loss.py"
    target.parent.mkdir()
    target.write_text("# mine\n")
    assert script.main(["spiky-loss", "L108", "--problem", "none", "--dest", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert not (tmp_path / "tbreport").exists()
