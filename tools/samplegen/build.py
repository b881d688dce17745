"""Train the catalogue's runs and write them: ``generate(out)`` makes a ``sample_runs/``.

Deterministic: wall times, host names, process ids and file names come from the simulated
machine (``machine.py``), every run is seeded, and torch trains on one thread with deterministic
algorithms, so two generations on the same platform write identical bytes.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from tools.samplegen.catalogue import LAYOUTS, RUNS, HFRecipe, Recipe, RunSpec, process_of, select
from tools.samplegen.data import DATASETS
from tools.samplegen.machine import SimulatedMachine
from tools.samplegen.models import TinyEncoderConfig, TinyEncoderForSequenceClassification
from tools.samplegen.readme import write_docs
from tools.samplegen.trainer import make_trainer
from tools.samplegen.writers.autostock import autostock_fit
from tools.samplegen.writers.hf import hf_train, hf_training_args
from tools.samplegen.writers.keras import keras_fit, keras_model_json, keras_optimizer
from tools.samplegen.writers.lightning import lightning_fit
from tools.samplegen.writers.puffin import puffin_fit


def build_run(spec: RunSpec, machine: SimulatedMachine, out: Path) -> None:
    """Train one run and write it under ``out / spec.path`` (the process is already started)."""
    logdir = out / spec.path
    w = spec.writer
    if isinstance(spec.recipe, HFRecipe):
        _build_hf(spec, spec.recipe, machine, logdir)
        return
    trainer = make_trainer(spec.recipe)
    if spec.layout == "autostock":
        autostock_fit(
            machine,
            logdir,
            trainer,
            hist_params=list(w.hist_params),
            seconds_per_epoch=w.seconds_per_epoch,
        )
    elif spec.layout == "puffin":
        puffin_fit(
            machine,
            logdir,
            trainer,
            hparams=dict(w.hparams),
            hist_params=list(w.hist_params),
            seconds_per_epoch=w.seconds_per_epoch,
            pred_every=w.pred_every,
        )
    elif spec.layout == "lightning":
        lightning_fit(
            machine,
            logdir,
            trainer,
            hparams=dict(w.hparams),
            log_every_n_steps=w.log_every_n_steps,
            seconds_per_step=w.seconds_per_step,
            log_grad_norm=w.log_grad_norm,
        )
    elif spec.layout == "keras":
        keras_fit(
            machine,
            logdir,
            trainer,
            model_json=_keras_model_json(spec.recipe, trainer.model),
            seconds_per_epoch=w.seconds_per_epoch,
        )
    else:
        raise ValueError(f"{spec.name}: no writer for layout {spec.layout!r}")


def _keras_model_json(recipe: Recipe, model: torch.nn.Module) -> str:
    params = recipe.model.params
    return keras_model_json(
        model,
        params["input_dim"],
        params.get("activation", "relu"),
        "mean_squared_error",
        keras_optimizer(recipe.optimizer.name, recipe.optimizer.lr),
    )


def _build_hf(spec: RunSpec, recipe: HFRecipe, machine: SimulatedMachine, logdir: Path) -> None:
    data = DATASETS[recipe.data.kind](seed=recipe.data_seed, **recipe.data.params)
    args = hf_training_args(spec.name, **recipe.args)
    if recipe.nan_label is not None:
        batch, row = recipe.nan_label
        # The Trainer's first-epoch order: the same generator and seed as Trainer.fit's.
        order = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(args["seed"]))
        data.y_train[order[batch * args["per_device_train_batch_size"] + row]] = math.nan
    torch.manual_seed(args["seed"])
    model = TinyEncoderForSequenceClassification(TinyEncoderConfig(**recipe.config))
    hf_train(
        machine,
        logdir,
        model=model,
        data=data,
        args=args,
        seconds_per_step=spec.writer.seconds_per_step,
    )


def generate(
    out: Path,
    names: Iterable[str] | None = None,
    *,
    log: Callable[[str], None] | None = print,
) -> list[RunSpec]:
    """Train and write the runs (all, or those ``names`` selects), then README.md and labels.json.

    A full generation first deletes the layouts' own sub-folders of ``out``; a partial one only
    the selected runs' folders. A partial generation of runs that share a process (autostock)
    gives them other wall times than a full one.
    """
    specs = list(RUNS) if names is None else select(names)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    doomed = [layout.name for layout in LAYOUTS] if names is None else [s.path for s in specs]
    for path in doomed:
        shutil.rmtree(out / path, ignore_errors=True)

    with SimulatedMachine() as machine:
        current_process = None
        for spec in specs:
            proc = process_of(spec)
            if proc.key != current_process:
                machine.start_process(
                    host=proc.host,
                    pid=proc.pid,
                    start=proc.start,
                    first_writer_uid=proc.first_writer_uid,
                )
                current_process = proc.key
            if log is not None:
                log(f"  {spec.path}")
            build_run(spec, machine, out)
    write_docs(out)
    return specs
