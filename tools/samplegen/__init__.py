"""The sample-run generator: the labelled tiny trainings of ``sample_runs/``.

Every run is a real (tiny) PyTorch training job on synthetic data, logged the way one of five
writers lays out its TensorBoard files. ``python3 -m tools.samplegen`` regenerates them.

=================== ===========================================================================
``catalogue.py``    the runs as data: one frozen ``RunSpec`` each (recipe, writer settings,
                    problems, README prose), plus the layouts and the simulated processes
``readme.py``       ``sample_runs/README.md``'s generated blocks and ``labels.json``, rendered
                    from the catalogue
``data.py``         the synthetic datasets
``models.py``       the torch models
``trainer.py``      the training loop with per-step/per-epoch hooks; recipes turned into it
``machine.py``      the simulated clock, host, pid and writer counter (deterministic files)
``writers/``        one writer per layout: autostock, puffin, hf, lightning, keras (+ ``tf2``)
``build.py``        trains and writes the runs (``generate``)
=================== ===========================================================================

``tools.samplegen``, ``catalogue`` and ``readme`` import no torch (nor numpy); everything that
trains does. The pathology zoo (``tools/zoo``) reuses the simulated machine and writers.
"""

from __future__ import annotations

from tools.samplegen.catalogue import LAYOUTS, PROBLEMS, RUNS, RunSpec

__all__ = ["LAYOUTS", "PROBLEMS", "RUNS", "RunSpec"]
