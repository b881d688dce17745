"""The typed Finding contract: fields are coerced on construction and checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tbreport.model import PROBLEMS, Finding, Mark, Severity


def _finding(**fields) -> Finding:
    base = {"run": "r", "code": "L101", "name": "overfitting", "severity": "warning"}
    return Finding(**{**base, "message": "m", **fields})


def test_numpy_values_lists_and_strings_become_plain_typed_values():
    finding = _finding(
        step=np.int64(12),
        observed=np.float32(0.25),
        limit=np.float64(0.1),
        strength=np.float64(2.5),
        step_range=[np.int64(12), 40.0],
        tags=["val_loss", "train_loss"],
        marks=[{"kind": "point", "tag": "val_loss", "step": np.int64(12), "value": np.float32(1)}],
    )
    assert finding.severity is Severity.WARNING
    assert type(finding.step) is int
    assert finding.step == 12
    assert type(finding.observed) is float
    assert finding.observed == pytest.approx(0.25)
    assert type(finding.limit) is float
    assert type(finding.strength) is float
    assert finding.step_range == (12, 40)
    assert all(type(s) is int for s in finding.step_range)
    assert finding.tags == ("val_loss", "train_loss")
    assert finding.marks == (Mark("point", "val_loss", step=12, value=1.0),)
    assert _finding(tags="loss").tags == ("loss",)  # one tag, not its letters
    assert _finding(severity=" ERROR ").severity is Severity.ERROR


def test_non_finite_numbers_become_none_so_the_json_stays_strict():
    finding = _finding(observed=float("nan"), limit=np.inf, strength=float("-inf"))
    assert finding.observed is None
    assert finding.limit is None
    assert finding.strength is None
    json.dumps(finding.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"problem": "sadness"}, ValueError),
        ({"severity": "fatal"}, ValueError),
        ({"observed": "any non-finite value"}, TypeError),
        ({"limit": True}, TypeError),
        ({"step": 2.5}, ValueError),
        ({"step_range": (10, 5)}, ValueError),
        ({"step_range": (1, 2, 3)}, ValueError),
        ({"marks": ["point"]}, TypeError),
        ({"evidence": ["not", "a", "mapping"]}, TypeError),
    ],
)
def test_invalid_values_are_refused(fields, error):
    with pytest.raises(error):
        _finding(**fields)


def test_every_problem_of_the_vocabulary_is_accepted():
    for problem in PROBLEMS:
        assert _finding(problem=problem).problem == problem


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "circle", "tag": "t", "step": 1},
        {"kind": "point", "tag": "", "step": 1, "value": 1.0},
        {"kind": "point", "tag": "t", "step": 1},  # a point needs its value
        {"kind": "point", "tag": "t", "step": 1, "value": float("nan")},
        {"kind": "vline", "tag": "t"},
        {"kind": "band", "tag": "t", "step": 5},
        {"kind": "band", "tag": "t", "step": 5, "step_end": 4},
        {"kind": "hline", "tag": "t", "step": 5},
    ],
)
def test_marks_need_what_their_kind_draws(fields):
    with pytest.raises(ValueError, match="mark"):
        Mark(**fields)


def test_to_dict_carries_the_typed_fields():
    finding = _finding(
        observed=0.3,
        limit=0.1,
        step=4,
        step_range=(4, 9),
        tags=("val",),
        problem="overfitting",
        marks=(Mark("band", "val", step=4, step_end=9, label="after"),),
        evidence={"best_value": 1.0},
    )
    item = finding.to_dict()
    assert item["observed"] == 0.3
    assert item["limit"] == 0.1
    assert item["step_range"] == [4, 9]
    assert item["marks"] == [
        {"kind": "band", "tag": "val", "step": 4, "value": None, "step_end": 9, "label": "after"}
    ]
    assert item["evidence"] == {"best_value": 1.0}
    assert item["problem"] == "overfitting"
    rebuilt = Finding(**{**item, "step_range": item["step_range"], "marks": item["marks"]})
    assert rebuilt == finding  # a JSON item builds the same finding back
