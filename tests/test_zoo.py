"""The pathology-zoo generator (tools/zoo): recipes without torch, a tiny generation with it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from tools.zoo import recipes as zoo_recipes


def test_recipe_module_does_not_import_torch():
    # A fresh interpreter: the sampler must work where torch is not installed.
    code = (
        "import sys; import tools.zoo.recipes as r; r.sample_recipes(count=50, seed=1); "
        "import tools.zoo; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_recipes_are_deterministic():
    a = zoo_recipes.sample_recipes(count=220, seed=0)
    b = zoo_recipes.sample_recipes(count=220, seed=0)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
    c = zoo_recipes.sample_recipes(count=220, seed=1)
    assert [r.to_dict() for r in a] != [r.to_dict() for r in c]


def test_recipes_cover_every_problem_layout_and_family():
    recipes = zoo_recipes.sample_recipes(count=220, seed=0)
    cov = zoo_recipes.coverage(recipes)
    assert set(zoo_recipes.PROBLEMS) <= cov["intents"]
    assert "divergence" in cov["intents"]
    assert len(cov["layouts"]) >= 5
    assert len(cov["families"]) >= 4
    assert {"mlp", "cnn1d", "cnn2d", "rnn", "transformer"} <= cov["models"]
    assert {"sgd", "adam", "adamw"} <= cov["optimizers"]
    assert {"constant", "step", "cosine", "warm_restarts"} <= cov["schedules"]
    assert {"none", "continue", "best_first"} <= cov["resume"]
    healthy = sum(r.intent == "healthy" for r in recipes)
    assert healthy / len(recipes) >= 0.35
    lrs = [r.lr for r in recipes]
    # learning rates over more than four decades
    assert min(lrs) <= 1e-5
    assert max(lrs) >= 1.0
    assert len({r.name for r in recipes}) == len(recipes)


def test_every_intent_appears_in_several_layouts():
    recipes = zoo_recipes.sample_recipes(count=220, seed=0)
    for intent in [*zoo_recipes.PROBLEMS, "healthy"]:
        layouts = {r.layout for r in recipes if r.intent == intent}
        assert len(layouts) >= 4, (intent, layouts)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_generate_small_zoo_reads_and_labels(tmp_path):
    import tbreport
    from tools.zoo import generate

    out = generate(out=tmp_path / "zoo", count=7, seed=3, jobs=1, log=None)
    labels = json.loads((out / "labels.json").read_text())
    assert len(labels) == 7
    problems = set(zoo_recipes.PROBLEMS)
    for path, entry in labels.items():
        assert (out / path).is_dir()
        assert isinstance(entry["required"], list)
        assert isinstance(entry["allowed"], list)
        assert set(entry["required"]) <= problems
        assert set(entry["allowed"]) <= problems
        assert not set(entry["required"]) & set(entry["allowed"])
        assert isinstance(entry["why"], str)
        assert entry["why"]
        assert entry["family"] in zoo_recipes.FAMILIES
        assert entry["layout"] in zoo_recipes.LAYOUTS

    result = tbreport.read(str(out))
    assert not result.scalars.empty
    logical = set(result.runs["logical_run"])
    runs = set(result.runs["run"])
    for path in labels:
        # Split layouts (train/ + test/) are keyed by their parent, as in the corpus.
        assert path in logical or any(r.startswith(path + "/") for r in runs), path

    manifest = json.loads((out / "zoo.json").read_text())
    assert manifest["complete"]
    assert manifest["summary"]["runs"] == 7
    # A complete zoo of the same version is not regenerated.
    before = (out / "labels.json").stat().st_mtime_ns
    generate(out=out, count=7, seed=3, jobs=1, log=None)
    assert (out / "labels.json").stat().st_mtime_ns == before
