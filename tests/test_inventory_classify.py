"""The inventory's shortcut for ordinary runs classifies every run as `classify_run` does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tbreport.reading.discovery import RunRef
from tbreport.reading.grouping import SPLIT_DIRS, _classify, _split, classify_run
from tbreport.reading.hparams import HPARAMS_TAG_PREFIX
from tbreport.reading.parsing import HistogramColumns
from tbreport.reading.rundata import RunData, RunFacts

_NAMES = [
    ".",
    "run",
    "exp/run",
    "exp/Loss_train",
    "exp/train",
    "exp/validation",
    "exp/eval",
    "exp/1700000000.123",
]
_TAGS = [[], ["Loss"], ["Loss", "epoch_acc"], ["epoch_loss"]]


def _run(name: str, tags: list[str], histogram_tags: int, hparams: bool) -> RunData:
    ref = RunRef(name=name, directory=name, files=[], hparams_yaml=None)
    return RunData(
        ref=ref,
        tags=tags,
        scalar_tag=np.zeros(0, np.int32),
        scalar_step=np.zeros(0, np.int64),
        scalar_wall=np.zeros(0),
        scalar_value=np.zeros(0),
        histograms=HistogramColumns.empty(),
        texts=[],
        hparam_contents=[(HPARAMS_TAG_PREFIX + "session_start_info", b"")] if hparams else [],
        files=1,
        bytes=1,
        facts=RunFacts(list(range(len(tags))), histogram_tags, None, None, None, None),
    )


@pytest.mark.parametrize("name", _NAMES)
def test_shortcut_agrees_with_classify_run(name):
    seen = 0
    for tags, histogram_tags, hparams, siblings in itertools.product(
        _TAGS, (0, 2), (False, True), ([], ["validation"], ["train", "test"])
    ):
        rd = _run(name, tags, histogram_tags, hparams)
        assert rd.facts is not None
        parent, last = _split(name)
        split_children = {parent: (set(siblings) | {last}) & SPLIT_DIRS}
        want = classify_run(
            name,
            tags,
            histogram_tags,
            hparams,
            siblings=frozenset(set(siblings) & SPLIT_DIRS - {last}),
        )
        assert _classify(rd, rd.facts, split_children) == want, (tags, histogram_tags, hparams)
        seen += want[1] != ""
    # Each kind of sub-run is reached, so the comparison covers more than plain runs.
    if name in ("exp/Loss_train", "exp/train", "exp/validation", "exp/1700000000.123"):
        assert seen
