#!/usr/bin/env python
"""Time ``tbreport report`` on a large logdir: 100 runs x 10,000 steps x 4 scalar tags.

The logdir is generated once (with ``tbreport.testing``) into ``bench/out/report_logdir`` and
reused. Each run logs AutoStock-style ``Loss/train``, ``Loss/validation``, ``Learning_Rate`` and
``Gradient/norm`` every step, plus hparams; some runs overfit, spike or diverge to NaN so the
report has findings to draw.

Usage::

    python bench/bench_report.py [--runs 100] [--steps 10000] [--browser]

``--browser`` also opens the report in headless Chromium (``/usr/bin/chromium``, driven by
playwright) and times the first paint and drawing every chart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tbreport.testing import (  # noqa: E402
    file_version_event,
    hparams_events,
    scalar_event,
    write_events,
)

OUT = ROOT / "bench" / "out"


def _write_run(args: tuple[Path, int, int]) -> None:
    path, index, steps = args
    rng = np.random.default_rng(index)
    step = np.arange(steps)
    decay = 1.0 / (1.0 + step / (steps / 20))
    train = decay + rng.normal(0, 0.02, steps)
    val = 1.1 * decay + rng.normal(0, 0.01, steps)
    kind = index % 10
    if kind == 1:  # overfitting after a third of the run
        onset = steps // 3
        val[onset:] += np.linspace(0, 0.5, steps - onset)
    elif kind == 2:  # loss spikes
        train[rng.choice(steps, 8, replace=False)] += 3.0
    elif kind == 3:  # divergence to NaN
        train[int(steps * 0.8) :] = np.nan
    lr = 1e-3 * 0.5 ** (step // (steps // 4))
    grad = np.abs(rng.normal(1.0, 0.2, steps))
    wall = 1_700_000_000.0 + 0.05 * step
    records = [file_version_event(wall_time=wall[0]).SerializeToString()]
    for i in range(steps):
        w = float(wall[i])
        for tag, values in (
            ("Loss/train", train),
            ("Loss/validation", val),
            ("Learning_Rate", lr),
            ("Gradient/norm", grad),
        ):
            records.append(
                scalar_event(tag, float(values[i]), step=i, wall_time=w).SerializeToString()
            )
    write_events(path / "events.out.tfevents.1700000000.bench.1.0", records)
    hparams = {
        "lr": float(10 ** rng.uniform(-4, -2)),
        "hidden": int(rng.choice([64, 128, 256])),
        "cell": str(rng.choice(["lstm", "gru"])),
    }
    write_events(
        path / "1700000000.5" / "events.out.tfevents.1700000000.bench.1.1",
        [file_version_event(wall_time=wall[0]), *hparams_events(hparams, wall_time=wall[0])],
    )


def make_logdir(root: Path, *, runs: int, steps: int) -> Path:
    stamp = root / f".complete-{runs}x{steps}"
    if stamp.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    jobs = [(root / f"run_{i:03d}", i, steps) for i in range(runs)]
    started = time.perf_counter()
    with multiprocessing.Pool() as pool:
        pool.map(_write_run, jobs)
    stamp.touch()
    print(f"generated {runs} runs x {steps} steps in {time.perf_counter() - started:.1f} s")
    return root


def time_browser(path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        started = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        page.evaluate("document.getElementById('comparison').scrollIntoView()")
        page.wait_for_function("window.tbreport.renderedCount() > 0")
        first = time.perf_counter() - started
        charts = page.locator("div.plot[data-chart]").count()
        started = time.perf_counter()
        page.evaluate("window.tbreport.renderAll()")
        all_charts = time.perf_counter() - started
        started = time.perf_counter()
        page.fill("#run-filter", "run_00[0-4]")
        page.wait_for_timeout(50)
        page.evaluate("1")
        filtering = time.perf_counter() - started
        started = time.perf_counter()
        page.evaluate(
            "() => { const s = document.getElementById('smoothing'); s.value = '0.9';"
            " s.dispatchEvent(new Event('input')); }"
        )
        page.wait_for_timeout(50)
        page.evaluate("1")
        resmooth = time.perf_counter() - started
        browser.close()
    print(
        f"browser: page load {loaded:.2f} s; first charts in view {first:.2f} s; "
        f"drawing all {charts} charts "
        f"{all_charts:.2f} s; filter {filtering:.2f} s; re-smoothing all {resmooth:.2f} s; "
        f"page errors: {len(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()

    import tbreport
    from tbreport.diagnosis import diagnose
    from tbreport.outputs import atomic_write_text
    from tbreport.report import render_report

    logdir = make_logdir(OUT / "report_logdir", runs=args.runs, steps=args.steps)
    timings = {}
    started = time.perf_counter()
    result = tbreport.read(logdir)
    timings["read"] = time.perf_counter() - started
    started = time.perf_counter()
    diagnosis = diagnose(result)
    timings["diagnose"] = time.perf_counter() - started
    started = time.perf_counter()
    html = render_report(result, diagnosis, logdir=str(logdir))
    timings["render"] = time.perf_counter() - started
    out = OUT / "bench_report.html"
    started = time.perf_counter()
    atomic_write_text(out, html)
    timings["write"] = time.perf_counter() - started
    total = sum(timings.values())
    points = len(result.scalars)
    print(
        f"{args.runs} runs x {args.steps} steps: {points:,} scalar points, "
        f"{len(diagnosis)} findings"
    )
    print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()) + f"; total {total:.2f} s")
    print(f"  HTML {out.stat().st_size / 1e6:.1f} MB ({out})")
    if args.browser:
        time_browser(out)


if __name__ == "__main__":
    main()
