"""The pathology zoo: hundreds of real tiny trainings, labelled, for calibrating the detectors.

``generate(out=..., count=..., seed=..., jobs=...)`` samples recipes (``recipes.py``), trains each
on synthetic data with torch on the CPU (``train.py``), writes it in one of seven writer layouts
(``writers.py``) and labels it from its intent and its logged numbers (``labels.py``). The output
is a directory of runs plus ``labels.json`` in the format of the labelled diagnosis corpus, and
``zoo.json`` (version, timing, counts). Torch is needed only here, never by tbreport itself.

This module imports no torch: the recipe sampler and the cache logic work without it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.zoo.recipes import LAYOUTS, PROBLEMS, Recipe, sample_recipes

__all__ = ["LAYOUTS", "PROBLEMS", "default_out", "generate", "sample_recipes", "version_hash"]

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
META_DIR = ".zoo"  # per-run results of an unfinished generation (resumable)


def version_hash(*, count: int, seed: int) -> str:
    """A short hash of everything that determines the zoo: code, arguments, torch version."""
    digest = hashlib.sha256()
    # The zoo's own modules and the sample-run generator whose machine and writers it reuses.
    sources = sorted(_HERE.glob("*.py")) + sorted((_REPO / "tools" / "samplegen").rglob("*.py"))
    for path in sources:
        digest.update(path.relative_to(_REPO).as_posix().encode())
        digest.update(path.read_bytes())
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    digest.update(f"count={count};seed={seed};torch={torch_version}".encode())
    return digest.hexdigest()[:12]


def default_out(*, count: int, seed: int) -> Path:
    """``~/.cache/tbreport/zoo/<version-hash>/`` (respects ``XDG_CACHE_HOME``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tbreport" / "zoo" / version_hash(count=count, seed=seed)


def _cost(recipe: Recipe) -> float:
    steps = recipe.epochs * -(-recipe.n_train // recipe.batch_size)
    return steps * (5.0 if recipe.model in {"rnn", "transformer"} else 1.0)


def _init_worker() -> None:
    import warnings

    import torch

    torch.set_num_threads(1)  # the workers share the cores: one thread each
    warnings.filterwarnings("ignore")


def build_one(recipe: Recipe, out: str, version: str) -> dict[str, Any]:
    """Train, write and label one recipe; store and return its result (runs in a worker)."""
    from tools.zoo.labels import label_run
    from tools.zoo.train import train_recipe
    from tools.zoo.writers import owned_dir, write_run

    started = time.perf_counter()
    root = Path(out)
    shutil.rmtree(root / owned_dir(recipe), ignore_errors=True)  # leftovers of a killed run
    history = train_recipe(recipe=recipe)
    path, rec = write_run(history=history, root=root)
    label = label_run(recipe=recipe, history=history, rec=rec)
    result = {
        "version": version,
        "path": path,
        "label": label,
        "recipe": recipe.to_dict(),
        "epochs_run": len(history.epochs),
        "cpu_seconds": round(history.seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
    meta = root / META_DIR / "runs" / f"{recipe.name}.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(meta)  # atomic: a result file always belongs to a finished run
    return result


def _summary(labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    required = Counter(p for entry in labels.values() for p in entry["required"])
    allowed = Counter(p for entry in labels.values() for p in entry["allowed"])
    return {
        "runs": len(labels),
        "healthy": sum(1 for e in labels.values() if not e["required"] and not e["allowed"]),
        "no_required_problem": sum(1 for e in labels.values() if not e["required"]),
        "required": {p: required.get(p, 0) for p in PROBLEMS},
        "allowed": {p: allowed.get(p, 0) for p in PROBLEMS},
        "layouts": dict(sorted(Counter(e["layout"] for e in labels.values()).items())),
        "families": dict(sorted(Counter(e["family"] for e in labels.values()).items())),
    }


def generate(
    *,
    out: str | Path | None = None,
    count: int = 220,
    seed: int = 0,
    jobs: int = 2,
    force: bool = False,
    log: Callable[[str], None] | None = print,
) -> Path:
    """Generate the zoo (or find it complete already) and return its directory.

    Args:
        out: Output directory; default ``default_out(count=count, seed=seed)``.
        count: Number of runs (recipes).
        seed: Recipe seed: the same seed gives the same recipes and labels.
        jobs: Worker processes (1: train in this process).
        force: Regenerate even when a complete zoo of this version is there.
        log: Progress printer (``None`` for silence).
    """
    say = log or (lambda _msg: None)
    version = version_hash(count=count, seed=seed)
    root = Path(out) if out is not None else default_out(count=count, seed=seed)
    manifest_path = root / "zoo.json"
    if not force and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") == version and manifest.get("complete"):
            say(f"zoo {version} already complete at {root}")
            return root
    root.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    recipes = sample_recipes(count=count, seed=seed)
    results: dict[str, dict[str, Any]] = {}
    for recipe in recipes:  # finished runs of an interrupted generation are kept
        meta = root / META_DIR / "runs" / f"{recipe.name}.json"
        if meta.exists() and not force:
            data = json.loads(meta.read_text())
            if data.get("version") == version:
                results[recipe.name] = data
    todo = sorted((r for r in recipes if r.name not in results), key=_cost, reverse=True)
    say(f"zoo {version}: {len(todo)} of {len(recipes)} runs to train into {root} ({jobs} jobs)")
    started = time.perf_counter()
    args = [(r, str(root), version) for r in todo]
    if jobs <= 1:
        _init_worker()
        done = (build_one(*a) for a in args)
        _collect(done, results, len(todo), say)
    else:
        ctx = multiprocessing.get_context("spawn")  # no state shared with the parent
        with ctx.Pool(jobs, initializer=_init_worker, maxtasksperchild=40) as pool:
            _collect(pool.imap_unordered(_star_build, args), results, len(todo), say)
    seconds = time.perf_counter() - started
    labels = {
        results[r.name]["path"]: results[r.name]["label"]
        for r in sorted(recipes, key=lambda r: results[r.name]["path"])
    }
    (root / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    manifest = {
        "version": version,
        "complete": True,
        "count": count,
        "seed": seed,
        "jobs": jobs,
        "wall_seconds_this_pass": round(seconds, 1),
        "cpu_seconds_training": round(sum(r["cpu_seconds"] for r in results.values()), 1),
        "summary": _summary(labels),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"done in {seconds:.0f} s: {json.dumps(manifest['summary'])}")
    return root


def _star_build(args: tuple[Recipe, str, str]) -> dict[str, Any]:
    return build_one(*args)


def _collect(done, results: dict, total: int, say: Callable[[str], None]) -> None:
    for i, result in enumerate(done, 1):
        name = result["recipe"]["name"]
        results[name] = result
        label = result["label"]
        if i % 10 == 0 or i == total:
            say(f"  {i}/{total} {result['path']}: required={label['required']}")
