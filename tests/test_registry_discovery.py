"""The registry finds every detector module itself, in a fixed order; codes follow their family;
retired codes stay reserved; lists of problems and key detectors come from one place."""

from __future__ import annotations

import re

import pytest

import tbreport.diagnosis.detectors as registry
from tbreport.diagnosis.detectors import (
    ALL_DETECTORS,
    FAMILIES,
    RETIRED_CODES,
    discover,
    find_detector,
    select_detectors,
)
from tbreport.diagnosis.engine import KEY_DETECTORS
from tbreport.diagnosis.semantics import RUN_KINDS
from tbreport.errors import ConfigError
from tbreport.model import PROBLEMS, Severity
from tbreport.report.scales import LINEAR_PROBLEMS

#: Every code that has shipped (git history up to the typed-Finding change). Each must stay a
#: live detector or move to RETIRED_CODES: removing a detector never frees its code. Codes added
#: later need not be listed here (adding a detector touches its own file only).
SHIPPED_CODES = {
    *("L101", "L102", "L103", "L104", "L105", "L106", "L107"),
    *("G201", "G202", "G203", "P301", "P302", "W401", "W402", "R501"),
    *("E601", "E602", "E603", "E604", "E605", "D901", "D902"),
}


def test_discovery_finds_every_detector_in_code_order_and_is_stable():
    assert discover() == ALL_DETECTORS
    assert [d.code for d in ALL_DETECTORS] == sorted(
        (d.code for d in ALL_DETECTORS), key=lambda c: (c[1:], c)
    )
    assert ALL_DETECTORS[0].code == "L101"
    assert ALL_DETECTORS[-1].code == "D902"


def test_codes_follow_their_family_letter_and_digit():
    for detector in ALL_DETECTORS:
        letter = detector.code[0]
        assert letter in FAMILIES, f"{detector.code}: unknown family {letter}"
        assert detector.code[1] == FAMILIES[letter][0], f"{detector.code}: not a {letter} code"


def test_no_live_detector_reuses_a_retired_code():
    live = {d.code for d in ALL_DETECTORS}
    reused = live & set(RETIRED_CODES)
    assert not reused, f"retired codes taken again: {sorted(reused)}"
    for code, why in RETIRED_CODES.items():
        assert re.fullmatch(r"[A-Z]\d{3}", code), code
        assert code[0] in FAMILIES, code
        assert why.strip(), f"{code}: say why it was retired"


def test_a_shipped_code_is_live_or_retired():
    gone = SHIPPED_CODES - {d.code for d in ALL_DETECTORS} - set(RETIRED_CODES)
    assert not gone, f"codes removed without retiring them (add to RETIRED_CODES): {sorted(gone)}"


def test_a_retired_code_is_refused_with_its_reason(monkeypatch):
    monkeypatch.setattr(registry, "RETIRED_CODES", {"L199": "merged into erratic-loss"})
    with pytest.raises(ConfigError, match=r"L199 was retired \(merged into erratic-loss\)"):
        find_detector("l199")
    with pytest.raises(ConfigError, match="matches no detector"):
        select_detectors(select=["L199"])


def test_every_detector_declares_its_severities_lowest_first():
    for detector in ALL_DETECTORS:
        assert detector.severities, detector.code
        assert all(isinstance(s, Severity) for s in detector.severities)
        ranks = [s.rank for s in detector.severities]
        assert ranks == sorted(set(ranks)), detector.code
        assert detector.severity == detector.severities[0], detector.code


def test_a_detector_cannot_emit_a_severity_it_did_not_declare():
    from diagnosis_helpers import run_data

    detector = find_detector("overfitting")()
    with pytest.raises(ValueError, match="declares severities warning, not error"):
        detector.finding(
            run_data({"loss": ([0, 1], [1.0, 1.0])}), message="m", step=1, severity="error"
        )


def test_key_detectors_and_problem_lists_come_from_the_registry():
    assert set(KEY_DETECTORS) == set(RUN_KINDS)
    for kind, names in KEY_DETECTORS.items():
        assert names == tuple(d.name for d in ALL_DETECTORS if kind in d.assesses)
    assert KEY_DETECTORS["supervised"]
    assert KEY_DETECTORS["reinforcement-learning"]
    assert all(kind in RUN_KINDS for d in ALL_DETECTORS for kind in d.assesses)
    assert set(PROBLEMS) >= LINEAR_PROBLEMS
    assert {d.problem for d in ALL_DETECTORS} - {None} <= set(PROBLEMS)
