"""The sample-run generator (tools/samplegen): its catalogue is the one source of sample_runs/'s
README tables and labels.json, it imports without torch, and its recipes build and train."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

from tools.samplegen import catalogue, readme
from tools.samplegen.catalogue import LAYOUTS, RUNS

REPO = ROOT
# The committed runs, whatever TBREPORT_SAMPLE_RUNS points the other tests at: the catalogue
# describes these.
SAMPLE_RUNS = ROOT / "sample_runs"
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed"
)


def test_readme_and_labels_are_rendered_from_the_catalogue():
    stale = [p.name for p in readme.stale_docs(SAMPLE_RUNS)]
    assert not stale, (
        f"sample_runs/{' and sample_runs/'.join(stale)} drifted from tools/samplegen/catalogue.py;"
        f" edit the catalogue and run: {readme.REFRESH}"
    )


def test_a_changed_spec_makes_the_docs_stale(tmp_path):
    for name in ("README.md", "labels.json"):
        (tmp_path / name).write_text((SAMPLE_RUNS / name).read_text())
    assert readme.stale_docs(tmp_path) == []
    edited = [dataclasses.replace(RUNS[0], shows="something else"), *RUNS[1:]]
    text = (tmp_path / "README.md").read_text()
    assert readme.render_readme(text, edited) != text
    relabelled = [dataclasses.replace(RUNS[0], problems=("overfitting",)), *RUNS[1:]]
    assert readme.render_labels(relabelled) != readme.render_labels()
    # Hand edits outside the generated blocks are kept; inside them they are overwritten.
    (tmp_path / "README.md").write_text(text.replace("| autostock |", "| autostonk |", 1))
    assert readme.stale_docs(tmp_path) == [tmp_path / "README.md"]
    (tmp_path / "README.md").write_text(text + "\nA note by hand.\n")
    assert readme.stale_docs(tmp_path) == []
    readme.write_docs(tmp_path)
    assert (tmp_path / "README.md").read_text().endswith("A note by hand.\n")


def test_every_block_needs_its_markers():
    text = (SAMPLE_RUNS / "README.md").read_text()
    for name in readme.BLOCKS:
        broken = text.replace(f"<!-- /{name} -->", "")
        with pytest.raises(ValueError, match=name):
            readme.render_readme(broken)


def test_table_and_labels_list_every_run_in_catalogue_order():
    table = readme.render_runs_table(list(RUNS)).splitlines()[2:]
    assert [row.split(" | ")[0] for row in table] == [f"| `{r.path}`" for r in RUNS]
    labels = json.loads(readme.render_labels())["runs"]
    assert list(labels) == [r.path for r in RUNS]
    assert labels["autostock/20250110_143022/gru_exp_lr"]["allowed"] == ["erratic-loss"]


def test_catalogue_is_consistent():
    assert len({r.name for r in RUNS}) == len({r.path for r in RUNS}) == len(RUNS) == 36
    assert {r.layout for r in RUNS} == {layout.name for layout in LAYOUTS}
    for layout in LAYOUTS:
        runs = [r for r in RUNS if r.layout == layout.name]
        assert any(not r.problems for r in runs), f"{layout.name}: no healthy run"
        assert any(r.problems for r in runs), f"{layout.name}: no problem run"
    with pytest.raises(ValueError, match="unknown problems"):
        dataclasses.replace(RUNS[0], problems=("sadness",))
    with pytest.raises(ValueError, match="HFRecipe"):
        dataclasses.replace(RUNS[0], writer=catalogue.HF(seconds_per_step=0.1))


def test_simulated_processes_match_the_committed_file_names():
    # events.out.tfevents.<time>.<host>.<pid>.<writer uid>[.v2]: the catalogue's processes are
    # the ones that wrote the committed runs.
    for spec in RUNS:
        proc = catalogue.process_of(spec)
        names = [
            p.name
            for p in (SAMPLE_RUNS / spec.path).rglob("events.out.tfevents.*")
            if not p.name.endswith(".profile-empty")  # the profiler's marker has no pid
        ]
        assert names, spec.path
        for name in names:
            assert f".{proc.host}.{proc.pid}." in name, (spec.path, name, proc)
        if spec.layout != "autostock":  # its own process: the first file is made at the start
            assert min(int(n.split(".")[3]) for n in names) == int(proc.start), spec.path
    autostock = {catalogue.process_of(r) for r in RUNS if r.layout == "autostock"}
    assert len(autostock) == 1  # one process trains all of them


def test_select_by_name_path_or_layout():
    assert [r.name for r in catalogue.select(["lstm_basic"])] == ["lstm_basic"]
    assert catalogue.select([RUNS[5].path]) == [RUNS[5]]
    assert [r.layout for r in catalogue.select(["keras"])] == ["keras"] * 5
    both = catalogue.select(["dense_regression", "lstm_basic"])
    assert [r.name for r in both] == ["lstm_basic", "dense_regression"]  # catalogue order
    with pytest.raises(KeyError, match="nope"):
        catalogue.select(["lstm_basic", "nope"])


def test_package_catalogue_and_readme_import_without_torch(tmp_path):
    # A fresh interpreter in which `import torch` (and numpy) fails, as where torch is missing.
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["numpy"] = None
        import tools.samplegen, tools.samplegen.catalogue, tools.samplegen.readme
        import tools.samplegen.writers
        from tools.samplegen.__main__ import main
        from tools.samplegen.readme import render_readme, render_labels, SAMPLE_RUNS
        text = (SAMPLE_RUNS / "README.md").read_text()
        assert render_readme(text) == text
        assert render_labels() == (SAMPLE_RUNS / "labels.json").read_text()
        assert main(["--readme", "--out", {str(tmp_path)!r}]) == 0
        try:
            main(["--out", {str(tmp_path / "runs")!r}])
        except SystemExit as exc:
            print("exit", exc.code)
        print("loaded", sorted(m for m, v in sys.modules.items() if v is not None
                               and m.split(".")[0] in ("torch", "numpy", "tensorboard")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "exit 2" in out.stdout, out.stdout
    assert "loaded []" in out.stdout, out.stdout
    assert "needs no torch" in out.stderr
    assert "pip install torch" in out.stderr
    assert (tmp_path / "README.md").read_text() == (SAMPLE_RUNS / "README.md").read_text()
    assert (tmp_path / "labels.json").read_text() == (SAMPLE_RUNS / "labels.json").read_text()


@needs_torch
def test_every_recipe_builds():
    import numpy as np
    import torch

    from tools.samplegen.build import _keras_model_json
    from tools.samplegen.data import DATASETS
    from tools.samplegen.models import TinyEncoderConfig
    from tools.samplegen.trainer import make_trainer
    from tools.samplegen.writers.hf import hf_training_args

    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng():
            for spec in RUNS:
                if isinstance(spec.recipe, catalogue.HFRecipe):
                    r = spec.recipe
                    data = DATASETS[r.data.kind](seed=r.data_seed, **r.data.params)
                    args = hf_training_args(spec.name, **r.args)
                    assert data.n_train > args["per_device_train_batch_size"]
                    TinyEncoderConfig(**r.config)
                    continue
                trainer = make_trainer(spec.recipe)
                named = dict(trainer.model.named_parameters())
                hist = getattr(spec.writer, "hist_params", ())
                assert set(hist) <= set(named), (spec.name, sorted(set(hist) - set(named)))
                if spec.layout == "keras":
                    assert json.loads(_keras_model_json(spec.recipe, trainer.model))
    finally:
        np.random.set_state(np_state)


@pytest.mark.slow
@needs_torch
def test_a_generated_run_matches_the_committed_one(tmp_path):
    # A cheap run, trained again: the same files (names from the simulated machine), tags, steps
    # and wall times as committed, and the same values up to float noise across platforms.
    import numpy as np

    import tbreport

    name = "linear_on_nonlinear"
    spec = catalogue.select([name])[0]
    subprocess.run(
        [sys.executable, "-m", "tools.samplegen", "--out", str(tmp_path), "--only", name],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    made, committed = tmp_path / spec.path, SAMPLE_RUNS / spec.path

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(made) == files(committed)
    keys = ["run", "tag", "step", "wall_time"]
    a = tbreport.read(str(made)).scalars.sort_values(keys).reset_index(drop=True)
    b = tbreport.read(str(committed)).scalars.sort_values(keys).reset_index(drop=True)
    assert a[keys].equals(b[keys])
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-4)
    assert readme.stale_docs(tmp_path) == []
