"""Benchmark every shape of logdir against tbparse, EventAccumulator, a bare loop and a raw read.

Shapes (generated once under ``--workdir``, reused):

- ``scalars``: 10 runs x 4 tags x 20,000 steps of PyTorch ``simple_value`` scalars (800k);
- ``tensors``: 10 runs x 4 tags x 20,000 steps of Keras/TF2 rank-0 tensor scalars, in ``train/``
  and ``validation/`` sub-runs, plugin metadata on the first value of a tag (800k);
- ``histograms``: 20 runs x 20 tags x 500 steps of PyTorch ``HistogramProto`` (200k);
- ``many-runs``: 5,000 runs x 2 tags x 50 steps (500k scalars in 5,000 files);
- ``big-file``: one file of 5,000,000 scalars;
- ``huge-file``: one file of 20,000,000 scalars (tbreport and the raw read only: memory bound).

Readers, each in a fresh process, alternating (the order rotates every repeat), median of
``--repeat``: ``tbreport.read`` with ``jobs=1`` and ``jobs=2``; the same from another source tree
(``--baseline DIR``, e.g. ``git archive <commit> tbreport | tar -x -C DIR``) to show before/after;
tbparse; TensorBoard's ``EventAccumulator`` (nothing downsampled); a bare loop (``struct`` framing,
no checksums, the compiled protobuf ``Event.FromString`` per record, Python lists, one DataFrame);
and the raw read (every file's bytes, nothing parsed: the I/O floor). For shapes of several runs,
also the runs cut in two halves of equal bytes, each read with ``jobs=1``, in one process or in two
forked ones that share and send nothing: their ratio is the most two processes give this machine
on that shape, next to which ``jobs=2`` against ``jobs=1`` is read. Peak memory is the largest
resident set of the process (``ru_maxrss``; for ``jobs=2`` also the largest worker's), interpreter
and imports included, next to the size of the resulting DataFrame(s). With ``--pairs N``,
``jobs=1`` and ``jobs=2`` (and the two halves) are then also run as N pairs, one right after the
other, and the ratio is given pair by pair: the machine's speed drifts over minutes, so this
ratio is steadier than one of two medians.

Then diagnosis, report and audit at scale: ``diagnose`` on 100 runs x 10,000 steps and on 1,000
runs x 100 steps (the read excluded), ``render_report`` on the first, and ``audit`` of an archive of
1,000 small runs with 1 and 2 jobs, and again from its cache.

Usage::

    python3 bench/bench_shapes.py                       # everything (~30 minutes on 2 cores)
    python3 bench/bench_shapes.py --shapes histograms,many-runs --repeat 3
    python3 bench/bench_shapes.py --baseline /tmp/tbreport-before --skip-peers
    python3 bench/bench_shapes.py --scale 0.1 --no-scale-tests   # quick look
    python3 bench/bench_shapes.py --skip-peers --only "tbreport jobs=1" --no-scale-tests \\
        --pairs 15                                      # jobs=2 / jobs=1, pair by pair
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALL = 1_700_000_000.0

# -- generating the shapes ---------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _scalar_records(tags: list[str], steps: int, seed: int, first_step: int = 0) -> bytes:
    """``simple_value`` events byte for byte as protobuf serialises them, without protobuf
    (tens of millions of records in reasonable time); checked against protobuf in ``_check``."""
    import numpy as np

    from tbreport.testing import frame

    rng = np.random.default_rng(seed)
    values = rng.random((steps, len(tags))).astype(np.float32)
    heads = [b"\x0a" + _varint(len(t.encode())) + t.encode() + b"\x15" for t in tags]
    pack_d, pack_f = struct.Struct("<d").pack, struct.Struct("<f").pack
    out = []
    for i in range(steps):
        step = first_step + i
        wall = pack_d(WALL + step * 0.05)
        step_bytes = b"\x10" + _varint(step) if step else b""
        for t, head in enumerate(heads):
            value = head + pack_f(float(values[i, t]))
            summary = b"\x0a" + _varint(len(value)) + value
            event = b"\x09" + wall + step_bytes + b"\x2a" + _varint(len(summary)) + summary
            out.append(frame(event))
    return b"".join(out)


def _check_scalar_records() -> None:
    import numpy as np

    from tbreport.testing import frame, scalar_event

    rng = np.random.default_rng(7)
    value = float(rng.random((1, 1)).astype(np.float32)[0, 0])
    expected = frame(scalar_event("a/b", value, step=0, wall_time=WALL).SerializeToString())
    assert _scalar_records(["a/b"], 1, 7) == expected


def _header() -> bytes:
    from tbreport.testing import file_version_event, frame

    return frame(file_version_event(wall_time=WALL).SerializeToString())


SCALAR_TAGS = ["Loss/train", "Loss/validation", "Learning_Rate", "Gradient/norm"]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _gen_scalar_runs(root: Path, runs: int, tags: list[str], steps: int) -> None:
    for r in range(runs):
        name = f"run_{r:05d}" if runs > 100 else f"run_{r:02d}"
        data = _header() + _scalar_records(tags, steps, seed=r)
        _write(root / name / "events.out.tfevents.1700000000.bench.1.0", data)


def _gen_tensor_run(args: tuple[Path, int, int]) -> None:
    root, r, steps = args
    import numpy as np

    from tbreport.testing import frame, tensor_scalar_event

    rng = np.random.default_rng(r)
    for split, tags in (
        ("train", ["epoch_loss", "epoch_accuracy"]),
        ("validation", ["epoch_loss", "epoch_accuracy"]),
    ):
        values = rng.random((steps, len(tags)))
        out = [_header()]
        for step in range(steps):
            for t, tag in enumerate(tags):
                event = tensor_scalar_event(
                    tag,
                    float(values[step, t]),
                    step=step,
                    wall_time=WALL + step * 0.05,
                    with_metadata=step == 0,
                )
                out.append(frame(event.SerializeToString()))
        _write(
            root / f"run_{r:02d}" / split / "events.out.tfevents.1700000000.bench.1.v2",
            b"".join(out),
        )


def _gen_histogram_run(args: tuple[Path, int, int, int]) -> None:
    root, r, tags, steps = args
    import numpy as np

    from tbreport.testing import frame, histogram_event

    rng = np.random.default_rng(r)
    out = [_header()]
    for step in range(steps):
        for t in range(tags):
            # Weights of one sign over a few decades: about 100 buckets (1.6 KB) per record.
            values = rng.lognormal(-3.0 + 0.1 * t, 1.5, 500)
            event = histogram_event(
                f"weights/layer_{t:02d}", values, step=step, wall_time=WALL + step
            )
            out.append(frame(event.SerializeToString()))
    _write(root / f"run_{r:02d}" / "events.out.tfevents.1700000000.bench.1.0", b"".join(out))


def _gen_big_file(root: Path, points: int) -> None:
    tags = [f"metric/{i}" for i in range(5)]
    steps = points // len(tags)
    path = root / "run" / "events.out.tfevents.1700000000.bench.1.0"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(_header())
        chunk = 100_000
        for start in range(0, steps, chunk):
            out.write(
                _scalar_records(tags, min(chunk, steps - start), seed=start, first_step=start)
            )


def shape_specs(scale: float) -> dict[str, dict]:
    def n(x: int) -> int:
        return max(1, int(x * scale))

    return {
        "scalars": {
            "multi_run": True,
            "what": f"{10} runs x 4 tags x {n(20_000):,} steps",
            "kind": "scalars",
            "make": lambda root: _gen_scalar_runs(root, 10, SCALAR_TAGS, n(20_000)),
        },
        "tensors": {
            "multi_run": True,
            "what": f"10 runs x 2 splits x 2 tags x {n(20_000):,} steps (TF2 tensors)",
            "kind": "tensors",
            "make": lambda root: _pool(_gen_tensor_run, [(root, r, n(20_000)) for r in range(10)]),
        },
        "histograms": {
            "multi_run": True,
            "what": f"20 runs x 20 tags x {n(500)} steps (histograms)",
            "kind": "histograms",
            "make": lambda root: _pool(
                _gen_histogram_run, [(root, r, 20, n(500)) for r in range(20)]
            ),
        },
        "many-runs": {
            "multi_run": True,
            "what": f"{n(5_000):,} runs x 2 tags x 50 steps",
            "kind": "scalars",
            "make": lambda root: _gen_scalar_runs(root, n(5_000), SCALAR_TAGS[:2], 50),
        },
        "big-file": {
            "what": f"1 file of {n(5_000_000):,} scalars",
            "kind": "scalars",
            "make": lambda root: _gen_big_file(root, n(5_000_000)),
        },
        "huge-file": {
            "what": f"1 file of {n(20_000_000):,} scalars",
            "kind": "scalars",
            "make": lambda root: _gen_big_file(root, n(20_000_000)),
            "peers": False,
        },
    }


def _pool(fn, jobs: list) -> None:
    import multiprocessing

    with multiprocessing.Pool(2) as pool:
        pool.map(fn, jobs)


def ensure_shape(workdir: Path, name: str, spec: dict, scale: float) -> Path:
    root = workdir / f"{name}-{scale:g}"
    marker = root / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        if root.exists():
            import shutil

            shutil.rmtree(root)
        root.mkdir(parents=True)
        spec["make"](root)
        marker.write_text("ok\n")
        print(f"generated {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return root


# -- readers -----------------------------------------------------------------------------------

_PRELUDE = """
import os, resource, sys, time, json
import numpy, pandas


def frame_bytes(df):
    # Bucket columns hold arrays: count their data, whoever owns it (pickled ones do not).
    total = 0
    for name in df.columns:
        column = df[name]
        if column.dtype == object and len(column) and isinstance(column.iloc[0], numpy.ndarray):
            total += sum(a.nbytes + 112 for a in column) + 8 * len(column)
        else:
            total += int(column.memory_usage(deep=True, index=False))
    return total
"""

_RESULT = """
own = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
result.update(seconds=seconds, rss=own.ru_maxrss * 1024, child_rss=children.ru_maxrss * 1024)
print("RESULT " + json.dumps(result))
"""

_TBREPORT = """
import tbreport
t = time.perf_counter()
r = tbreport.read(LOGDIR, jobs=JOBS)
seconds = time.perf_counter() - t
frame = frame_bytes(r.scalars) + frame_bytes(r.histograms)
result = {"rows": len(r.scalars) + len(r.histograms), "frame": frame}
"""

_TBPARSE = """
from tbparse import SummaryReader
t = time.perf_counter()
reader = SummaryReader(LOGDIR, extra_columns={"dir_name", "wall_time"})
df = getattr(reader, KIND)
seconds = time.perf_counter() - t
result = {"rows": len(df), "frame": frame_bytes(df)}
"""

_ACCUMULATOR = """
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util
t = time.perf_counter()
rows = {"run": [], "tag": [], "step": [], "wall_time": [], "value": []}
hist = []
for directory, _, files in sorted(os.walk(LOGDIR)):
    if not any("tfevents" in f for f in files):
        continue
    run = os.path.relpath(directory, LOGDIR)
    acc = EventAccumulator(directory, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in tags["scalars"]:
        for e in acc.Scalars(tag):
            rows["run"].append(run); rows["tag"].append(tag); rows["step"].append(e.step)
            rows["wall_time"].append(e.wall_time); rows["value"].append(e.value)
    for tag in tags["tensors"]:
        for e in acc.Tensors(tag):
            rows["run"].append(run); rows["tag"].append(tag); rows["step"].append(e.step)
            rows["wall_time"].append(e.wall_time)
            rows["value"].append(float(tensor_util.make_ndarray(e.tensor_proto)))
    for tag in tags["histograms"]:
        for e in acc.Histograms(tag):
            h = e.histogram_value
            hist.append((run, tag, e.step, e.wall_time, h.min, h.max, h.num, h.sum,
                         h.sum_squares, numpy.asarray(h.bucket_limit), numpy.asarray(h.bucket)))
df = pandas.DataFrame(hist) if hist else pandas.DataFrame(rows)
seconds = time.perf_counter() - t
result = {"rows": len(df), "frame": frame_bytes(df)}
"""

# The loop anyone would write first: struct framing, no checksums, one protobuf parse per record.
_BARE = """
import struct
from tensorboard.compat.proto import event_pb2
t = time.perf_counter()
parse = event_pb2.Event.FromString
unpack = struct.Struct("<Q").unpack_from
rows = {"run": [], "tag": [], "step": [], "wall_time": [], "value": []}
hist = []
for directory, _, files in sorted(os.walk(LOGDIR)):
    run = os.path.relpath(directory, LOGDIR)
    for name in sorted(files):
        if "tfevents" not in name:
            continue
        with open(os.path.join(directory, name), "rb") as handle:
            buf = handle.read()
        pos, n = 0, len(buf)
        while pos + 12 <= n:
            (length,) = unpack(buf, pos)
            event = parse(buf[pos + 12 : pos + 12 + length])
            pos += 16 + length
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    value = v.simple_value
                elif kind == "tensor":
                    tp = v.tensor
                    if tp.tensor_content:
                        value = float(numpy.frombuffer(tp.tensor_content, "<f4")[0])
                    elif tp.float_val:
                        value = tp.float_val[0]
                    else:
                        value = tp.double_val[0]
                elif kind == "histo":
                    h = v.histo
                    hist.append((run, v.tag, event.step, event.wall_time, h.min, h.max, h.num,
                                 h.sum, h.sum_squares, numpy.asarray(h.bucket_limit),
                                 numpy.asarray(h.bucket)))
                    continue
                else:
                    continue
                rows["run"].append(run); rows["tag"].append(v.tag); rows["step"].append(event.step)
                rows["wall_time"].append(event.wall_time); rows["value"].append(value)
df = pandas.DataFrame(hist) if hist else pandas.DataFrame(rows)
seconds = time.perf_counter() - t
result = {"rows": len(df), "frame": frame_bytes(df)}
"""

_RAW = """
t = time.perf_counter()
total = 0
for directory, _, files in os.walk(LOGDIR):
    for name in files:
        if "tfevents" in name:
            with open(os.path.join(directory, name), "rb") as handle:
                total += len(handle.read())
seconds = time.perf_counter() - t
result = {"rows": 0, "frame": 0, "bytes": total}
"""

# What two cores give this workload at best: the runs cut in two halves of equal bytes, each read
# by `read_runs` with jobs=1, one after the other or in two forked processes that share nothing
# and send nothing back (no walk, no combining, no hand-overs). Their ratio bounds what any
# split of the work between two processes can reach on this machine.
_HALVES = """
from tbreport.reading.discovery import discover_runs
from tbreport.reading.reader import read_runs
runs, _ = discover_runs(LOGDIR)
sizes = [sum(f.size for f in run.files) for run in runs]
half, total = 0, 0
while half < len(runs) and 2 * total < sum(sizes):
    total += sizes[half]
    half += 1
t = time.perf_counter()
if PROCESSES == 1:
    read_runs(runs[:half], jobs=1)
    read_runs(runs[half:], jobs=1)
else:
    child = os.fork()
    if child == 0:
        read_runs(runs[half:], jobs=1)
        os._exit(0)
    read_runs(runs[:half], jobs=1)
    os.waitpid(child, 0)
seconds = time.perf_counter() - t
result = {"rows": 0, "frame": 0}
"""

HALVES_ONE, HALVES_TWO = "halves in 1 process", "halves in 2 processes"


def readers(
    baseline: Path | None, skip_peers: bool, peers: bool, multi_run: bool = False
) -> dict[str, tuple[str, str]]:
    """Reader name -> (snippet, source tree on PYTHONPATH)."""
    out = {
        "tbreport jobs=1": (_TBREPORT.replace("JOBS", "1"), str(ROOT)),
        "tbreport jobs=2": (_TBREPORT.replace("JOBS", "2"), str(ROOT)),
    }
    if multi_run:
        out[HALVES_ONE] = (_HALVES.replace("PROCESSES", "1"), str(ROOT))
        out[HALVES_TWO] = (_HALVES.replace("PROCESSES", "2"), str(ROOT))
    if baseline is not None:
        out["before jobs=1"] = (_TBREPORT.replace("JOBS", "1"), str(baseline))
        out["before jobs=2"] = (_TBREPORT.replace("JOBS", "2"), str(baseline))
    if peers and not skip_peers:
        out["tbparse"] = (_TBPARSE, str(ROOT))
        out["EventAccumulator"] = (_ACCUMULATOR, str(ROOT))
        out["bare loop"] = (_BARE, str(ROOT))
    out["raw read"] = (_RAW, str(ROOT))
    return out


def run_code(code: str, pythonpath: str, timeout: float = 3600) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=pythonpath,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"benchmark snippet failed:\n{proc.stderr[-3000:]}")


def measure_read(snippet: str, pythonpath: str, logdir: Path, kind: str) -> dict:
    code = (
        f"LOGDIR = {str(logdir)!r}\nKIND = {kind!r}\n"
        + textwrap.dedent(_PRELUDE)
        + textwrap.dedent(snippet)
        + textwrap.dedent(_RESULT)
    )
    return run_code(code, pythonpath)


# -- diagnosis, report and audit at scale ------------------------------------------------------

_DIAGNOSE = """
import tbreport
from tbreport.diagnosis import diagnose
r = tbreport.read(LOGDIR, jobs=1)
t = time.perf_counter()
d = diagnose(r)
seconds = time.perf_counter() - t
result = {"rows": len(r.scalars), "findings": len(d)}
if REPORT:
    from tbreport.report import render_report
    t = time.perf_counter()
    html = render_report(r, d, logdir=LOGDIR)
    result["render"] = time.perf_counter() - t
"""

_AUDIT = """
from tbreport.audit import audit, write_audit
t = time.perf_counter()
res = audit([ARCHIVE], jobs=JOBS, cache_dir=CACHE, use_cache=CACHE is not None, progress=False)
write_audit(res, OUT, force=True)
seconds = time.perf_counter() - t
result = {"runs": len(res.runs), "cached": res.stats.cached_units, "units": res.stats.units}
"""


def scale_tests(workdir: Path, baseline: Path | None, repeat: int) -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_audit
    import bench_report

    trees = [("now", str(ROOT))] + ([("before", str(baseline))] if baseline else [])
    rows: list[tuple[str, str]] = []
    for runs, steps in ((100, 10_000), (1_000, 100)):
        logdir = bench_report.make_logdir(
            workdir / f"diagnose-{runs}x{steps}", runs=runs, steps=steps
        )
        found: dict[str, list[dict]] = {name: [] for name, _ in trees}
        for i in range(repeat):
            for name, tree in trees[i % len(trees) :] + trees[: i % len(trees)]:
                code = (
                    f"LOGDIR = {str(logdir)!r}\nREPORT = {runs == 100}\n"
                    + textwrap.dedent(_PRELUDE)
                    + textwrap.dedent(_DIAGNOSE)
                    + textwrap.dedent(_RESULT)
                )
                found[name].append(run_code(code, tree))
        now = statistics.median(m["seconds"] for m in found["now"])
        text = f"{now:.2f} s"
        if baseline:
            before = statistics.median(m["seconds"] for m in found["before"])
            text += f" (before {before:.2f} s: **{before / now:.1f}x**)"
        rows.append((f"diagnose {runs} runs x {steps:,} steps", text))
        if runs == 100:
            render = statistics.median(m["render"] for m in found["now"])
            text = f"{render:.2f} s"
            if baseline:
                text += f" (before {statistics.median(m['render'] for m in found['before']):.2f} s)"
            rows.append((f"render_report {runs} runs x {steps:,} steps", text))

    archive = workdir / "audit-1000.tar.gz"
    if not archive.exists():
        bench_audit.make_archive(archive, 1000)
    for name, tree in trees:
        cache = workdir / f"audit-cache-{name}"
        if cache.exists():
            import shutil

            shutil.rmtree(cache)
        results = {}
        for label, jobs, cache_dir in (
            ("1 job", 1, None),
            ("2 jobs", 2, None),
            ("first, cache", 2, cache),
            ("cached", 2, cache),
        ):
            code = (
                f"ARCHIVE = {str(archive)!r}\nJOBS = {jobs}\n"
                f"OUT = {str(workdir / 'audit-out')!r}\n"
                f"CACHE = {str(cache_dir) if cache_dir else None!r}\n"
                + textwrap.dedent(_PRELUDE)
                + textwrap.dedent(_AUDIT)
                + textwrap.dedent(_RESULT)
            )
            results[label] = run_code(code, tree)
        rate1 = results["1 job"]["runs"] / results["1 job"]["seconds"]
        rate2 = results["2 jobs"]["runs"] / results["2 jobs"]["seconds"]
        speed = results["first, cache"]["seconds"] / results["cached"]["seconds"]
        rows.append(
            (
                f"audit 1,000 small runs ({name})",
                f"{rate1:.0f} runs/s with 1 job, **{rate2:.0f} runs/s with 2 jobs**; "
                f"cached re-audit {results['cached']['seconds']:.2f} s: **{speed:.0f}x**",
            )
        )
    return rows


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes = "scalars,tensors,histograms,many-runs,big-file,huge-file"
    parser.add_argument("--shapes", default=shapes)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--repeat", type=int, default=1, help="median of N fresh processes")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "shapes")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another source tree (holding tbreport/) to time as 'before'",
    )
    parser.add_argument("--skip-peers", action="store_true", help="no tbparse/EA/bare loop")
    parser.add_argument("--only", default="", help="comma-separated reader names to run")
    parser.add_argument(
        "--no-scale-tests", action="store_true", help="skip diagnosis, report and audit at scale"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="then N rounds of jobs=1 and jobs=2 side by side (and of the halves) per multi-run "
        "shape: the median and quartiles of each round's ratio",
    )
    args = parser.parse_args(argv)
    _check_scalar_records()
    specs = shape_specs(args.scale)
    names = [s for s in args.shapes.split(",") if s]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    table = []
    logdirs: dict[str, Path] = {}
    for name in names:
        spec = specs[name]
        logdir = logdirs[name] = ensure_shape(args.workdir, name, spec, args.scale)
        size = sum(p.stat().st_size for p in logdir.rglob("*tfevents*"))
        kind = spec["kind"]
        chosen = readers(
            args.baseline, args.skip_peers, spec.get("peers", True), spec.get("multi_run", False)
        )
        if only:
            chosen = {k: v for k, v in chosen.items() if k in only or k == "raw read"}
        found: dict[str, list[dict]] = {k: [] for k in chosen}
        order = list(chosen)
        for i in range(args.repeat):
            for reader in order[i % len(order) :] + order[: i % len(order)]:
                snippet, tree = chosen[reader]
                try:
                    found[reader].append(measure_read(snippet, tree, logdir, kind))
                except Exception as exc:  # a peer failing must not end the table
                    print(f"  {name} / {reader}: failed: {exc}", file=sys.stderr)
                    continue
                m = found[reader][-1]
                print(
                    f"  {name} / {reader}: {m['seconds']:.2f} s, rss {m['rss'] / 1e6:.0f} MB",
                    file=sys.stderr,
                )
        table.append((name, spec["what"], size, found))
    print(report(table, args.repeat))
    print()
    print(scaling(table))
    if args.pairs:
        print()
        print(paired_scaling(logdirs, specs, rounds=args.pairs))
    if not args.no_scale_tests:
        rows = scale_tests(args.workdir, args.baseline, args.repeat)
        print()
        print("| at scale | result |")
        print("|---|---|")
        for what, value in rows:
            print(f"| {what} | {value} |")
    return 0


def report(table: list, repeat: int) -> str:
    lines = [
        f"Seconds (median of {repeat}, fresh processes, alternating); peak RSS in MB "
        "(jobs=2: main / largest worker); frame = DataFrame bytes.",
        "",
        "| shape | reader | seconds | vs tbparse | vs bare loop | peak RSS MB | frame MB | rows |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, what, size, found in table:
        med = _medians(found)
        for reader, runs in found.items():
            if not runs:
                lines.append(f"| {name} | {reader} | failed | | | | | |")
                continue
            seconds = med[reader]
            vs_tbparse = f"{med['tbparse'] / seconds:.1f}x" if "tbparse" in med else ""
            vs_bare = f"{med['bare loop'] / seconds:.2f}x" if "bare loop" in med else ""
            rss = max(m["rss"] for m in runs) / 1e6
            rss_text = f"{rss:.0f}"
            if "jobs=2" in reader:
                rss_text += f" / {max(m['child_rss'] for m in runs) / 1e6:.0f}"
            frame = runs[0]["frame"] / 1e6
            label = f"{name}<br>{what}, {size / 1e6:.0f} MB" if reader == next(iter(found)) else ""
            lines.append(
                f"| {label} | {reader} | {seconds:.2f} | {vs_tbparse} | {vs_bare} | {rss_text} "
                f"| {frame:.0f} | {runs[0]['rows']:,} |"
            )
    return "\n".join(lines)


def scaling(table: list) -> str:
    """``jobs=2`` against ``jobs=1``, next to the same ratio for two independent halves."""
    rows = [
        (
            name,
            _ratio(_medians(found), "tbreport jobs=1", "tbreport jobs=2"),
            _ratio(_medians(found), HALVES_ONE, HALVES_TWO),
        )
        for name, _, _, found in table
    ]
    return "\n".join(
        [
            "Two processes against one (medians): tbreport, and the two halves of the runs "
            "(the most two processes give here).",
            "",
            "| shape | tbreport jobs=1 / jobs=2 | halves: 1 process / 2 processes |",
            "|---|---:|---:|",
            *(f"| {name} | {tbreport} | {halves} |" for name, tbreport, halves in rows),
        ]
    )


def paired_scaling(logdirs: dict[str, Path], specs: dict[str, dict], *, rounds: int) -> str:
    """``jobs=2`` against ``jobs=1`` from pairs run one right after the other, ``rounds`` times:
    a pair sees the same state of the machine, which drifts by a quarter over an hour, so the
    ratio of each pair varies much less than the ratio of two medians taken minutes apart."""
    chosen = readers(None, skip_peers=True, peers=False, multi_run=True)
    pairs = [("tbreport jobs=1", "tbreport jobs=2"), (HALVES_ONE, HALVES_TWO)]
    lines = [
        f"Two processes against one, pair by pair ({rounds} rounds of each pair, one right "
        "after the other, the order alternating): median [lower quartile, upper quartile].",
        "",
        "| shape | tbreport jobs=1 / jobs=2 | halves: 1 process / 2 processes |",
        "|---|---:|---:|",
    ]
    for name, logdir in logdirs.items():
        spec = specs[name]
        if not spec.get("multi_run", False):
            continue
        ratios: list[list[float]] = [[] for _ in pairs]
        for i in range(rounds):
            for k, pair in enumerate(pairs):
                order = pair if i % 2 == 0 else pair[::-1]
                seconds = {
                    r: measure_read(chosen[r][0], chosen[r][1], logdir, spec["kind"])["seconds"]
                    for r in order
                }
                ratios[k].append(seconds[pair[0]] / seconds[pair[1]])
            print(
                f"  {name} round {i + 1}: " + ", ".join(f"{r[-1]:.2f}x" for r in ratios),
                file=sys.stderr,
            )
        cells = [_spread(r) for r in ratios]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}x" if values else ""
    low, median, high = statistics.quantiles(values, n=4)
    return f"{median:.2f}x [{low:.2f}, {high:.2f}]"


def _medians(found: dict[str, list[dict]]) -> dict[str, float]:
    """Each reader's median seconds (readers that failed every time left out)."""
    return {k: statistics.median(m["seconds"] for m in v) for k, v in found.items() if v}


def _ratio(medians: dict[str, float], one: str, two: str) -> str:
    if one not in medians or two not in medians:
        return ""
    return f"{medians[one] / medians[two]:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
