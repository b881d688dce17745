"""The detector registry is complete and every detector documents itself."""

from __future__ import annotations

import dataclasses
import re

import pytest

import tbreport.diagnosis.detectors as detectors_pkg
from tbreport.diagnosis.detectors import ALL_DETECTORS, find_detector, select_detectors
from tbreport.diagnosis.detectors.base import DOC_SECTIONS, Detector
from tbreport.diagnosis.roles import ALL_ROLES
from tbreport.errors import ConfigError
from tbreport.model import PROBLEMS, Severity

#: Each problem of the vocabulary has a detector of the same name (a public contract).
REQUIRED_NAMES = set(PROBLEMS)


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found.add(sub)
        found |= _all_subclasses(sub)
    return found


def test_every_detector_subclass_is_registered():
    # Importing the package imports every detector module.
    assert detectors_pkg is not None
    unregistered = {
        c.__name__
        for c in _all_subclasses(Detector)
        if c not in ALL_DETECTORS and c.__module__.startswith("tbreport.")
    }
    assert not unregistered, f"Detector subclasses missing from ALL_DETECTORS: {unregistered}"


def test_codes_and_names_are_unique_and_well_formed():
    codes = [d.code for d in ALL_DETECTORS]
    names = [d.name for d in ALL_DETECTORS]
    assert len(set(codes)) == len(codes), f"duplicate codes: {codes}"
    assert len(set(names)) == len(names), f"duplicate names: {names}"
    for d in ALL_DETECTORS:
        assert re.fullmatch(r"[A-Z]\d{3}", d.code), f"{d.__name__}: bad code {d.code!r}"
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", d.name), f"{d.__name__}: bad name {d.name!r}"
        assert isinstance(d.severity, Severity)


def test_public_contract_names_exist():
    assert {d.name for d in ALL_DETECTORS} >= REQUIRED_NAMES


def test_code_families_match_the_design():
    families = {
        "overfitting": "L",
        "underfitting": "L",
        "erratic-loss": "L",
        "non-finite-loss": "L",
        "exploding-gradients": "G",
        "vanishing-gradients": "G",
        "dead-neurons": "G",
        "collapsed-predictions": "P",
    }
    for name, letter in families.items():
        assert find_detector(name).code.startswith(letter), name


@pytest.mark.parametrize("detector", ALL_DETECTORS, ids=lambda d: d.code)
def test_docstring_has_the_four_sections(detector):
    sections = detector.doc_sections()
    for heading in DOC_SECTIONS:
        assert sections.get(heading), f"{detector.code}: missing or empty '## {heading}'"
    assert detector.summary
    assert not detector.summary.startswith("#")
    assert detector.advice(), f"{detector.code}: 'What to do' gives no advice"


@pytest.mark.parametrize("detector", ALL_DETECTORS, ids=lambda d: d.code)
def test_every_param_is_documented_and_has_a_default(detector):
    assert dataclasses.is_dataclass(detector.Params)
    assert detector.Params.__dataclass_params__.frozen, f"{detector.code}: Params must be frozen"
    for fld in dataclasses.fields(detector.Params):
        assert fld.metadata.get("help"), f"{detector.code}.{fld.name} has no help text"
        assert fld.default is not dataclasses.MISSING, f"{detector.code}.{fld.name} has no default"
        assert fld.type in {"int", "float", "bool", "str"}, (
            f"{detector.code}.{fld.name}: {fld.type}"
        )
    detector.Params()  # defaults alone build a valid Params


@pytest.mark.parametrize("detector", ALL_DETECTORS, ids=lambda d: d.code)
def test_required_roles_are_known(detector):
    for role in (*detector.requires, *detector.requires_any):
        assert role in ALL_ROLES, f"{detector.code} requires unknown role {role!r}"


def test_detectors_with_roles_mention_params_in_their_docs():
    # Every threshold named in a docstring exists as a parameter (keeps docs and code in step).
    for d in ALL_DETECTORS:
        text = " ".join(d.doc_sections().values())
        fields = {f.name for f in dataclasses.fields(d.Params)}
        for mentioned in re.findall(r"`([a-z_]+)`", text):
            if (
                "_" in mentioned
                and mentioned not in ALL_ROLES
                and not mentioned.startswith(("clip_", "purge_", "pred_", "grad_"))
            ):
                assert mentioned in fields, f"{d.code} docs mention `{mentioned}`, not a parameter"


def test_selection_by_code_name_prefix_and_ignore():
    assert select_detectors() == ALL_DETECTORS
    assert [d.name for d in select_detectors(select=["overfitting"])] == ["overfitting"]
    loss = select_detectors(select=["L"])
    assert loss
    assert all(d.code.startswith("L") for d in loss)
    gradients = select_detectors(select=["G2"], ignore=["G201"])
    assert "G201" not in {d.code for d in gradients}
    assert {"G202", "G203"} <= {d.code for d in gradients}
    assert select_detectors(select=["l101"])[0].name == "overfitting"  # case-insensitive
    extended = select_detectors(select=["L101"], extend_select=["dead-neurons"])
    assert [d.name for d in extended] == ["overfitting", "dead-neurons"]


def test_unknown_selector_is_a_config_error():
    with pytest.raises(ConfigError, match="matches no detector"):
        select_detectors(select=["X999"])
    with pytest.raises(ConfigError, match="unknown detector"):
        find_detector("no-such-thing")


def test_make_params_validates_names_and_types():
    overfitting = find_detector("overfitting")
    params = overfitting.make_params({"min_rise": 0.25, "min-points": "8"})
    assert params.min_rise == 0.25
    assert params.min_points == 8
    with pytest.raises(ConfigError, match="no parameter"):
        overfitting.make_params({"bogus": 1})
    with pytest.raises(ConfigError, match="must be a number"):
        overfitting.make_params({"min_rise": "lots"})
    with pytest.raises(ConfigError, match="whole number"):
        overfitting.make_params({"min_points": 2.5})


def test_explained_by_names_real_detectors_without_cycles():
    names = {d.name: d for d in ALL_DETECTORS}
    for d in ALL_DETECTORS:
        for cause in d.explained_by:
            assert cause in names, f"{d.code}: bad explained_by {cause!r}"
            assert cause != d.name, f"{d.code}: bad explained_by {cause!r}"

    def reaches(start: str, target: str, seen: frozenset = frozenset()) -> bool:
        for cause in names[start].explained_by:
            if cause == target or (cause not in seen and reaches(cause, target, seen | {cause})):
                return True
        return False

    for d in ALL_DETECTORS:
        assert not reaches(d.name, d.name), f"{d.name} can explain itself away"


def test_readme_rules_table_is_rendered_from_the_registry():
    # Adding a detector touches its own file: the README's table must follow, never be edited.
    from conftest import ROOT

    from tbreport.cli.check import rules_markdown
    from tbreport.diagnosis.detectors import ALL_DETECTORS

    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- rules-table -->") + len("<!-- rules-table -->")
    end = readme.index("<!-- /rules-table -->")
    assert readme[start:end].strip() == rules_markdown(list(ALL_DETECTORS)), (
        "README rules table is stale: paste `tbreport rules --format markdown` between the markers"
    )


def test_every_problem_is_reported_by_some_detector():
    from tbreport.diagnosis.detectors import ALL_DETECTORS
    from tbreport.model import PROBLEMS

    covered = {d.problem for d in ALL_DETECTORS}
    assert set(PROBLEMS) <= covered, set(PROBLEMS) - covered
    assert all(d.problem in (*PROBLEMS, None) for d in ALL_DETECTORS)


def test_every_numeric_parameter_refuses_negative_values_and_empty_windows():
    import dataclasses

    import pytest

    from tbreport.diagnosis.detectors import ALL_DETECTORS
    from tbreport.errors import ConfigError

    checked = 0
    for detector in ALL_DETECTORS:
        for fld in dataclasses.fields(detector.Params):
            if isinstance(fld.default, bool) or not isinstance(fld.default, (int, float)):
                continue
            with pytest.raises(ConfigError, match="must be at least"):
                detector.make_params({fld.name: -1})
            if isinstance(fld.default, int) and fld.name.endswith("points"):
                with pytest.raises(ConfigError, match="at least 1"):
                    detector.make_params({fld.name: 0})
            assert detector.make_params({fld.name: fld.default}) == detector.Params()
            checked += 1
    assert checked > 40
