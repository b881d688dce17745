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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from tbreport.model import ReadWarning
from tbreport.reading.hparams import HPARAMS_TAG_PREFIX
from tbreport.reading.rundata import RunData, RunFacts

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


def _plain_run(last: str, scalar_tags: int) -> bool:
    """Whether a directory named ``last`` with that many scalar tags is a run of its own
    whatever else it holds: none of `classify_run`'s sub-run cases can apply."""
    return last not in SPLIT_DIRS and scalar_tags != 1 and not TIMESTAMP_DIR.match(last)


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
    if _plain_run(last, len(scalar_tags)):
        return name, "", ""
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


@dataclass
class InventoryCells:
    """Inventory cells of some runs, taken where they are read (a worker, or the reading process
    between its batches) so that only a few arrays per batch are left to join.

    A run whose logical run may depend on the directories beside it (a split-named one, say)
    keeps its `RunFacts` instead of a class; `inventory_frame` decides it with every run known.
    """

    names: list[str]
    classes: list[tuple[str, str, str] | RunFacts]
    numbers: dict[str, np.ndarray]  # one array per numeric column, one cell per run

    @classmethod
    def joined(cls, parts: list[InventoryCells]) -> InventoryCells:
        """The cells of ``parts`` one after the other."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls([], [], {key: np.zeros(0, dtype) for key, dtype in _NUMBER_TYPES.items()})
        return cls(
            names=[name for part in parts for name in part.names],
            classes=[c for part in parts for c in part.classes],
            numbers={
                key: np.concatenate([part.numbers[key] for part in parts]) for key in _NUMBER_TYPES
            },
        )

    def take(self, order: np.ndarray) -> InventoryCells:
        """The cells of runs ``order`` (positions), in that order."""
        positions = order.tolist()
        return InventoryCells(
            names=[self.names[k] for k in positions],
            classes=[self.classes[k] for k in positions],
            numbers={key: values[order] for key, values in self.numbers.items()},
        )


# The numeric cells, with their types; ``*_missing`` mark a step range without values.
_NUMBER_TYPES = {
    "files": np.int64,
    "bytes": np.int64,
    "scalar_tags": np.int64,
    "histogram_tags": np.int64,
    "scalars": np.int64,
    "histograms": np.int64,
    "first_step": np.int64,
    "first_step_missing": np.bool_,
    "last_step": np.int64,
    "last_step_missing": np.bool_,
    "first_wall_time": np.float64,
    "last_wall_time": np.float64,
    "duplicate_steps": np.int64,
    "purged": np.int64,
}


def inventory_cells(run_data: list[RunData]) -> InventoryCells:
    """The inventory cells of ``run_data`` (before their scalar columns are released)."""
    # Facts taken where the runs were assembled (workers), the others taken here.
    computed = iter(_run_facts([rd for rd in run_data if rd.facts is None]))
    facts = [rd.facts if rd.facts is not None else next(computed) for rd in run_data]
    names = [rd.ref.name for rd in run_data]
    classes: list[tuple[str, str, str] | RunFacts] = [
        (name, "", "") if _plain_run(_split(name)[1], len(fact.scalar_tag_ids)) else fact
        for name, fact in zip(names, facts, strict=True)
    ]
    first_step = [f.first_step for f in facts]
    last_step = [f.last_step for f in facts]
    # Column by column as typed arrays (pandas infers the type of a list of ints value by value).
    columns: dict[str, list[Any]] = {
        "files": [rd.files for rd in run_data],
        "bytes": [rd.bytes for rd in run_data],
        "scalar_tags": [len(f.scalar_tag_ids) for f in facts],
        "histogram_tags": [f.histogram_tags for f in facts],
        "scalars": [len(rd.scalar_tag) for rd in run_data],
        "histograms": [len(rd.histograms) for rd in run_data],
        "first_step": [0 if v is None else v for v in first_step],
        "first_step_missing": [v is None for v in first_step],
        "last_step": [0 if v is None else v for v in last_step],
        "last_step_missing": [v is None for v in last_step],
        "first_wall_time": [f.first_wall for f in facts],
        "last_wall_time": [f.last_wall for f in facts],
        "duplicate_steps": [rd.duplicate_steps for rd in run_data],
        "purged": [rd.purged for rd in run_data],
    }
    numbers: dict[str, np.ndarray] = {
        key: np.array(values, dtype=_NUMBER_TYPES[key]) for key, values in columns.items()
    }
    return InventoryCells(names=names, classes=classes, numbers=numbers)


def inventory_frame(
    cells: InventoryCells, run_data: list[RunData], warnings: list[ReadWarning]
) -> pd.DataFrame:
    """The inventory of ``run_data`` from their ``cells`` (in the same order)."""
    if not run_data:
        return pd.DataFrame([], columns=INVENTORY_COLUMNS).astype(_INVENTORY_TYPES)
    warning_count: dict[str, int] = {}
    for w in warnings:
        if w.run is not None:
            warning_count[w.run] = warning_count.get(w.run, 0) + 1
    names = cells.names
    classes = list(cells.classes)
    undecided = [k for k, c in enumerate(classes) if isinstance(c, RunFacts)]
    if undecided:
        children: dict[str, set[str]] = {}
        for name in names:
            parent, last = _split(name)
            children.setdefault(parent, set()).add(last)
        split_children = {parent: names & SPLIT_DIRS for parent, names in children.items()}
        for k in undecided:
            classes[k] = _classify(run_data[k], cast(RunFacts, classes[k]), split_children)
    decided = cast("list[tuple[str, str, str]]", classes)
    numbers = cells.numbers
    columns: dict[str, Any] = {key: numbers[key] for key in INVENTORY_COLUMNS if key in numbers}
    columns.update(
        run=names,
        logical_run=[c[0] for c in decided],
        subrun_kind=[c[1] for c in decided],
        subrun_key=[c[2] for c in decided],
        first_step=pd.arrays.IntegerArray(numbers["first_step"], numbers["first_step_missing"]),
        last_step=pd.arrays.IntegerArray(numbers["last_step"], numbers["last_step_missing"]),
        warnings=np.array([warning_count.get(name, 0) for name in names], dtype=np.int64),
    )
    return pd.DataFrame(columns, columns=INVENTORY_COLUMNS)


def build_inventory(run_data: list[RunData], warnings: list[ReadWarning]) -> pd.DataFrame:
    """One row per run directory, with counts, ranges and logical-run grouping facts."""
    return inventory_frame(inventory_cells(run_data), run_data, warnings)


# The inventory's types where they are not the ones pandas infers from Python values.
_INVENTORY_TYPES = {
    "first_step": "Int64",
    "last_step": "Int64",
    "first_wall_time": "float64",
    "last_wall_time": "float64",
}


def _classify(
    rd: RunData, fact: RunFacts, split_children: dict[str, set[str]]
) -> tuple[str, str, str]:
    """`classify_run` of one run, with the split-named directories beside it."""
    name = rd.ref.name
    parent, last = _split(name)
    # Only split-named siblings matter to `classify_run`: copying every sibling per run made a
    # logdir of thousands of runs quadratic.
    beside = split_children.get(parent)
    siblings = frozenset(beside - {last}) if beside else _NO_SIBLINGS
    scalar_tags = [rd.tags[int(t)] for t in fact.scalar_tag_ids]
    has_hparams = any(tag.startswith(HPARAMS_TAG_PREFIX) for tag, _ in rd.hparam_contents)
    return classify_run(name, scalar_tags, fact.histogram_tags, has_hparams, siblings=siblings)


_NO_SIBLINGS: frozenset[str] = frozenset()


def take_facts(run_data: list[RunData]) -> None:
    """Set each run's `RunFacts` (where it is assembled, so that workers share the work)."""
    for rd, fact in zip(run_data, _run_facts(run_data), strict=True):
        rd.facts = fact


# Runs with at most this many points and histograms are summarised together (one numpy pass over
# all of them); larger ones one by one, without concatenated copies of their columns.
_SMALL_RUN_ROWS = 1 << 14


def _run_facts(run_data: list[RunData]) -> list[RunFacts]:
    """Per run: its scalar tag ids (ascending), its number of histogram tags, first and last
    step, first and last valid wall time (finite and positive), None for a range without
    values."""
    facts: list[RunFacts | None] = [None] * len(run_data)
    small: list[int] = []
    for i, rd in enumerate(run_data):
        if len(rd.scalar_tag) + len(rd.histograms) <= _SMALL_RUN_ROWS:
            small.append(i)
            continue
        hist = rd.histograms
        # Ranges per column, without concatenating (or filtering) copies of a run's columns.
        facts[i] = RunFacts(
            np.unique(rd.scalar_tag).tolist() if len(rd.scalar_tag) else [],
            len(np.unique(hist.tag)) if len(hist) else 0,
            *_range([rd.scalar_step, hist.step], lambda a: None),
            *_range([rd.scalar_wall, hist.wall_time], lambda a: np.isfinite(a) & (a > 0)),
        )
    # In groups of runs of a bounded number of rows: the concatenated temporaries stay small.
    group: list[int] = []
    rows = 0
    for j in [*small, None]:
        size = len(run_data[j].scalar_tag) + len(run_data[j].histograms) if j is not None else 0
        if group and (j is None or rows + size > _SMALL_RUN_ROWS):
            for k, fact in zip(group, _small_run_facts([run_data[k] for k in group]), strict=True):
                facts[k] = fact
            group, rows = [], 0
        if j is not None:
            group.append(j)
            rows += size
    return facts  # type: ignore[return-value]


def _small_run_facts(run_data: list[RunData]) -> list[RunFacts]:
    """`_run_facts` of many small runs at once."""
    count = len(run_data)
    width = max(max((len(rd.tags) for rd in run_data), default=1), 1)

    def tag_sets(tags: list[np.ndarray]) -> tuple[list[int], list[int]]:
        run_of = np.repeat(np.arange(count, dtype=np.int64), [len(t) for t in tags])
        pairs = np.unique(run_of * width + np.concatenate(tags).astype(np.int64))
        bounds = np.searchsorted(pairs // width, np.arange(count + 1)).tolist()
        return (pairs % width).tolist(), bounds

    scalar_tags, scalar_bounds = tag_sets([rd.scalar_tag for rd in run_data])
    _, hist_bounds = tag_sets([rd.histograms.tag for rd in run_data])
    # Steps and wall times of scalars then histograms, run after run.
    parts = [(rd.scalar_step, rd.histograms.step) for rd in run_data]
    sizes = np.array([len(a) + len(b) for a, b in parts], dtype=np.int64)
    steps = np.concatenate([x for pair in parts for x in pair]).astype(np.int64, copy=False)
    walls = np.concatenate(
        [x for rd in run_data for x in (rd.scalar_wall, rd.histograms.wall_time)]
    ).astype(np.float64, copy=False)
    filled = np.flatnonzero(sizes)
    starts = (np.cumsum(sizes) - sizes)[filled]
    first_step: list[float | None] = [None] * count
    last_step: list[float | None] = [None] * count
    first_wall: list[float | None] = [None] * count
    last_wall: list[float | None] = [None] * count
    if len(filled):
        lows = np.minimum.reduceat(steps, starts).tolist()
        highs = np.maximum.reduceat(steps, starts).tolist()
        valid = np.isfinite(walls) & (walls > 0)
        with np.errstate(invalid="ignore"):
            wall_lows = np.minimum.reduceat(np.where(valid, walls, np.inf), starts).tolist()
            wall_highs = np.maximum.reduceat(np.where(valid, walls, -np.inf), starts).tolist()
        for k, i in enumerate(filled.tolist()):
            first_step[i], last_step[i] = lows[k], highs[k]
            if wall_lows[k] != np.inf:
                first_wall[i], last_wall[i] = wall_lows[k], wall_highs[k]
    return [
        RunFacts(
            scalar_tags[scalar_bounds[i] : scalar_bounds[i + 1]],
            hist_bounds[i + 1] - hist_bounds[i],
            first_step[i],
            last_step[i],
            first_wall[i],
            last_wall[i],
        )
        for i in range(count)
    ]


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
