"""Logical runs and the run inventory.

Writers split one training run over several directories:

- Keras writes ``<run>/train`` and ``<run>/validation`` with the same tags (``epoch_loss``);
- PyTorch ``add_scalars(main, {k: v})`` writes one directory ``<run>/<main>_<k>`` per series, each
  holding tag ``main``;
- PyTorch ``add_hparams`` writes the hparams (and metric scalars) into ``<run>/<time.time()>``.

Each such directory stays a run of its own in ``ReadResult.scalars`` (as in TensorBoard); the
inventory records which logical run it belongs to, and `fold_into_logical_runs` merges them with
tags renamed so nothing collides (``validation/epoch_loss``, ``Loss/validation``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from tbreport.model import ReadWarning
from tbreport.reading.hparams import HPARAMS_TAG_PREFIX
from tbreport.reading.rundata import RunData

KERAS_SPLITS = ("train", "validation")
#: Directory names that hold one split of a run: Keras ``train``/``validation``, TensorFlow's
#: custom-loop tutorials ``train``/``test``, CatBoost ``learn``/``test``, and other spellings.
SPLIT_DIRS = frozenset({"train", "validation", "val", "valid", "eval", "test", "learn"})
#: A PyTorch ``add_hparams`` session directory (``time.time()`` as its name).
TIMESTAMP_DIR = re.compile(r"^\d{9,11}\.\d+$")

INVENTORY_COLUMNS = [
    "run",
    "logical_run",
    "subrun_kind",
    "subrun_key",
    "files",
    "bytes",
    "scalar_tags",
    "histogram_tags",
    "scalars",
    "histograms",
    "first_step",
    "last_step",
    "first_wall_time",
    "last_wall_time",
    "duplicate_steps",
    "purged",
    "warnings",
]


def _split(name: str) -> tuple[str, str]:
    if "/" not in name:
        return ".", name
    parent, last = name.rsplit("/", 1)
    return parent, last


def _is_split(last: str, scalar_tags: list[str], siblings: frozenset[str]) -> bool:
    """Whether a run directory named ``last`` is one split of its parent's run.

    A split sits beside another split of the same run (``train/`` + ``validation/``); alone, only
    a Keras ``train/`` or ``validation/`` (its tags are ``epoch_*``) is one. Ultralytics'
    ``runs/detect/train`` holds a whole run and stays a run of its own.
    """
    if last not in SPLIT_DIRS:
        return False
    if any(s in SPLIT_DIRS and s != last for s in siblings):
        return True
    return last in KERAS_SPLITS and any(
        t.startswith(("epoch_", "batch_", "evaluation_")) for t in scalar_tags
    )


def classify_run(
    name: str,
    scalar_tags: list[str],
    histogram_tags: int,
    has_hparams: bool,
    *,
    siblings: frozenset[str] | None = None,
) -> tuple[str, str, str]:
    """Return ``(logical_run, subrun_kind, subrun_key)`` for one run directory.

    Args:
        siblings: The last path components of the other run directories with the same parent
            (None: unknown, every split name counts as a split, as Keras writes them).
    """
    if name == ".":
        return name, "", ""
    parent, last = _split(name)
    if TIMESTAMP_DIR.match(last) and has_hparams and histogram_tags == 0:
        return parent, "hparams-session", last
    if siblings is None:
        if last in KERAS_SPLITS:
            return parent, "keras-split", last
    elif _is_split(last, scalar_tags, siblings):
        return parent, "keras-split", last
    if len(scalar_tags) == 1 and histogram_tags == 0:
        prefix = scalar_tags[0].replace("/", "_") + "_"
        if last.startswith(prefix) and len(last) > len(prefix):
            return parent, "add-scalars", last[len(prefix) :]
    return name, "", ""


def build_inventory(run_data: list[RunData], warnings: list[ReadWarning]) -> pd.DataFrame:
    """One row per run directory, with counts, ranges and logical-run grouping facts."""
    warning_count: dict[str, int] = {}
    for w in warnings:
        if w.run is not None:
            warning_count[w.run] = warning_count.get(w.run, 0) + 1
    children: dict[str, set[str]] = {}
    for rd in run_data:
        parent, last = _split(rd.ref.name)
        children.setdefault(parent, set()).add(last)
    split_children = {parent: names & set(SPLIT_DIRS) for parent, names in children.items()}
    rows = []
    for rd in run_data:
        scalar_tag_ids: Iterable[int] = np.unique(rd.scalar_tag) if len(rd.scalar_tag) else []
        scalar_tags = [rd.tags[int(t)] for t in scalar_tag_ids]
        hist_tags = {rd.tags[t] for t, _ in rd.histograms}
        # Ranges per column, without concatenating (or filtering) copies of a run's columns.
        steps = [rd.scalar_step, np.array([h.step for _, h in rd.histograms], dtype=np.int64)]
        walls = [rd.scalar_wall, np.array([h.wall_time for _, h in rd.histograms])]
        first_step, last_step = _range(steps, lambda a: None)
        first_wall, last_wall = _range(walls, lambda a: np.isfinite(a) & (a > 0))
        has_hparams = any(tag.startswith(HPARAMS_TAG_PREFIX) for tag, _ in rd.hparam_contents)
        parent, last = _split(rd.ref.name)
        # Only split-named siblings matter to `classify_run`: copying every sibling per run made
        # a logdir of thousands of runs quadratic.
        siblings = frozenset(split_children.get(parent, set()) - {last})
        logical, kind, key = classify_run(
            rd.ref.name, scalar_tags, len(hist_tags), has_hparams, siblings=siblings
        )
        rows.append(
            {
                "run": rd.ref.name,
                "logical_run": logical,
                "subrun_kind": kind,
                "subrun_key": key,
                "files": rd.files,
                "bytes": rd.bytes,
                "scalar_tags": len(scalar_tags),
                "histogram_tags": len(hist_tags),
                "scalars": len(rd.scalar_tag),
                "histograms": len(rd.histograms),
                "first_step": None if first_step is None else int(first_step),
                "last_step": None if last_step is None else int(last_step),
                "first_wall_time": None if first_wall is None else float(first_wall),
                "last_wall_time": None if last_wall is None else float(last_wall),
                "duplicate_steps": rd.duplicate_steps,
                "purged": rd.purged,
                "warnings": warning_count.get(rd.ref.name, 0),
            }
        )
    frame = pd.DataFrame(rows, columns=INVENTORY_COLUMNS)
    for column in ("first_step", "last_step"):
        frame[column] = frame[column].astype("Int64")
    for column in ("first_wall_time", "last_wall_time"):
        frame[column] = frame[column].astype("float64")
    return frame


def _range(
    parts: list[np.ndarray], valid: Callable[[np.ndarray], np.ndarray | None]
) -> tuple[float | None, float | None]:
    """Smallest and largest value over ``parts`` where ``valid(part)`` (None: everywhere)."""
    lows, highs = [], []
    for part in parts:
        mask = valid(part)
        if not len(part) or (mask is not None and not mask.any()):
            continue
        if mask is None:
            lows.append(part.min())
            highs.append(part.max())
        else:
            lows.append(np.min(part, where=mask, initial=np.inf))
            highs.append(np.max(part, where=mask, initial=-np.inf))
    return (min(lows), max(highs)) if lows else (None, None)


def fold_into_logical_runs(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Rename runs to their logical run and tags so that sub-runs merge without collisions.

    Keras splits become ``<split>/<tag>``, ``add_scalars`` series ``<tag>/<series>``; an
    ``add_hparams`` session keeps its tags. Other columns are unchanged.
    """
    if frame.empty:
        out = frame.copy()
        logical_names = list(dict.fromkeys(runs["logical_run"]))
        out["run"] = pd.Categorical(out["run"].astype(object), categories=logical_names)
        return out
    # A plain dict: one lookup per (run, tag) pair must stay cheap with 100k+ tags.
    info = {
        run: (logical, kind, key)
        for run, logical, kind, key in zip(
            runs["run"], runs["logical_run"], runs["subrun_kind"], runs["subrun_key"], strict=True
        )
    }
    run_names = list(frame["run"].cat.categories)
    tag_names = list(frame["tag"].cat.categories)
    run_codes = frame["run"].cat.codes.to_numpy().astype(np.int64)
    tag_codes = frame["tag"].cat.codes.to_numpy().astype(np.int64)
    pair = run_codes * len(tag_names) + tag_codes
    unique_pairs, inverse = np.unique(pair, return_inverse=True)
    new_runs, new_tags = [], []
    for p in unique_pairs.tolist():
        run = run_names[p // len(tag_names)]
        tag = tag_names[p % len(tag_names)]
        logical, kind, key = info.get(run, (run, "", ""))
        if kind == "keras-split":
            tag = f"{key}/{tag}"
        elif kind == "add-scalars":
            tag = f"{tag}/{key}"
        new_runs.append(logical)
        new_tags.append(tag)
    logical_order = list(dict.fromkeys([*runs["logical_run"], *new_runs]))
    tag_categories = sorted(set(new_tags))
    # Codes per unique (run, tag) pair, then per row: no per-row strings for millions of points.
    run_position = {name: i for i, name in enumerate(logical_order)}
    tag_position = {name: i for i, name in enumerate(tag_categories)}
    pair_run = np.array([run_position[r] for r in new_runs], dtype=np.int32)
    pair_tag = np.array([tag_position[t] for t in new_tags], dtype=np.int32)
    out = frame.copy(deep=False)
    out["run"] = pd.Categorical.from_codes(pair_run[inverse], categories=pd.Index(logical_order))
    out["tag"] = pd.Categorical.from_codes(pair_tag[inverse], categories=pd.Index(tag_categories))
    return out
