"""What every test shares: where the test corpora are, and how tiny files are parsed.

Each path is defined here once, from this file's location, never from the machine: the
repository root, its ``sample_runs/``, and the ``shared/`` corpora beside the repository (tests
that need a corpus skip when it is absent). Helpers and tests import them:
``from conftest import ROOT, SAMPLE_RUNS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tbreport.reading import parsing

#: The repository (this file is ``tests/conftest.py``).
ROOT = Path(__file__).resolve().parents[1]
#: Runs of tiny models with known problems (``labels.json`` names each run's problems), made by
#: the sample-run generator (README.md, "Development"). ``TBREPORT_SAMPLE_RUNS`` points the suite
#: at another copy, e.g. a freshly generated one before it is committed.
SAMPLE_RUNS = Path(os.environ.get("TBREPORT_SAMPLE_RUNS") or ROOT / "sample_runs")
#: Corpora shared with other projects, beside the repository (``../shared``).
SHARED = ROOT.parent / "shared"
#: Real training logs of many writers (TensorBoard's reference counts are compared on them).
REALWORLD = SHARED / "conformance" / "realworld"
#: Real runs labelled with their problems (``bench/calibrate.py`` tunes thresholds on them).
DIAGNOSIS_CORPUS = SHARED / "diagnosis-corpus"


def sample_runs_or_skip() -> Path:
    """:data:`SAMPLE_RUNS`, or skip the test when no event file has been generated there."""
    if not any(p.is_file() for p in SAMPLE_RUNS.rglob("*tfevents*")):
        pytest.skip(f"{SAMPLE_RUNS} holds no event files yet (README.md, 'Development')")
    return SAMPLE_RUNS


@pytest.fixture
def sample_runs() -> Path:
    """The sample runs (the test is skipped when they have not been generated)."""
    return sample_runs_or_skip()


@pytest.fixture(autouse=True)
def _template_every_file(monkeypatch):
    """Decode even tiny test files with the templated fast path, so the tests compare it with the
    per-record protobuf decoding (real reads take it only for files of many records)."""
    monkeypatch.setattr(parsing, "_FAST_MIN_RECORDS", 0)
