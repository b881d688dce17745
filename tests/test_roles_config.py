"""Tag roles (defaults per framework, overrides) and configuration files (precedence, errors)."""

from __future__ import annotations

import pytest

from tbreport.diagnosis.config import (
    Config,
    as_config,
    config_from_mapping,
    find_config_file,
    load_config,
)
from tbreport.diagnosis.roles import RolePatterns, parse_role_option
from tbreport.errors import ConfigError

LAYOUT_TAGS = {
    "autostock": (
        ["Loss/train", "Loss/validation", "Learning_Rate", "Gradient/norm", "Best_Val_Loss"],
        ["Weights/lstm.weight_ih_l0", "Gradients/lstm.weight_ih_l0", "Weights/fc.weight"],
    ),
    "puffin": (
        ["train_loss", "val_loss", "learning_rate", "pred_mean", "pred_std"],
        ["weights/fc.0.weight", "gradients/fc.0.weight"],
    ),
    "hf": (
        [
            "train/loss",
            "eval/loss",
            "train/learning_rate",
            "train/grad_norm",
            "train/train_loss",
            "train/epoch",
            "eval/accuracy",
        ],
        [],
    ),
    "lightning": (
        ["train_loss_step", "train_loss_epoch", "val_loss", "lr-Adam", "epoch", "hp_metric"],
        [],
    ),
    "keras": (
        [
            "train/epoch_loss",
            "validation/epoch_loss",
            "validation/evaluation_loss_vs_iterations",
            "train/epoch_learning_rate",
            "train/epoch_accuracy",
        ],
        ["train/dense/kernel/histogram", "train/dense/bias/histogram"],
    ),
    "add_scalars": (["Loss/train", "Loss/validation"], []),
}

EXPECTED = {
    "autostock": {
        "train_loss": "Loss/train",
        "val_loss": "Loss/validation",
        "learning_rate": "Learning_Rate",
        "grad_norm": "Gradient/norm",
    },
    "puffin": {
        "train_loss": "train_loss",
        "val_loss": "val_loss",
        "learning_rate": "learning_rate",
        "pred_std": "pred_std",
        "pred_mean": "pred_mean",
    },
    "hf": {
        "train_loss": "train/loss",
        "val_loss": "eval/loss",
        "learning_rate": "train/learning_rate",
        "grad_norm": "train/grad_norm",
    },
    "lightning": {
        "train_loss": "train_loss_epoch",
        "val_loss": "val_loss",
        "learning_rate": "lr-Adam",
    },
    "keras": {
        "train_loss": "train/epoch_loss",
        "val_loss": "validation/epoch_loss",
        "learning_rate": "train/epoch_learning_rate",
    },
    "add_scalars": {"train_loss": "Loss/train", "val_loss": "Loss/validation"},
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_TAGS))
def test_default_roles_cover_every_layout(layout):
    scalars, histograms = LAYOUT_TAGS[layout]
    roles = RolePatterns.build().resolve(scalar_tags=scalars, histogram_tags=histograms)
    for role, tag in EXPECTED[layout].items():
        assert roles.get(role, ())[:1] == (tag,), f"{layout}: {role} -> {roles.get(role)}"


def test_summary_tags_never_stand_in_for_a_loss():
    roles = RolePatterns.build().resolve(
        scalar_tags=[
            "Best_Val_Loss",
            "train/train_loss",
            "validation/evaluation_loss_vs_iterations",
        ],
        histogram_tags=[],
    )
    assert "val_loss" not in roles, roles
    assert "train_loss" not in roles, roles


def test_histogram_roles_split_gradients_from_weights():
    _, histograms = LAYOUT_TAGS["autostock"]
    roles = RolePatterns.build().resolve(scalar_tags=[], histogram_tags=histograms)
    assert roles["gradient_histograms"] == ("Gradients/lstm.weight_ih_l0",)
    assert roles["weight_histograms"] == ("Weights/lstm.weight_ih_l0", "Weights/fc.weight")
    keras = RolePatterns.build().resolve(scalar_tags=[], histogram_tags=LAYOUT_TAGS["keras"][1])
    assert keras["weight_histograms"] == tuple(LAYOUT_TAGS["keras"][1])


def test_override_replaces_defaults_and_is_case_insensitive():
    patterns = RolePatterns.build({"val_loss": ["metrics/holdout_.*"], "train_loss": "MY_LOSS"})
    roles = patterns.resolve(
        scalar_tags=["val_loss", "metrics/holdout_mse", "my_loss"], histogram_tags=[]
    )
    assert roles["val_loss"] == ("metrics/holdout_mse",)
    assert roles["train_loss"] == ("my_loss",)


def test_bad_role_overrides_are_config_errors():
    with pytest.raises(ConfigError, match="unknown role"):
        RolePatterns.build({"validation": "x"})
    with pytest.raises(ConfigError, match="invalid regular expression"):
        RolePatterns.build({"val_loss": "("})
    with pytest.raises(ConfigError, match="NAME=REGEX"):
        parse_role_option("val_loss")
    with pytest.raises(ConfigError, match="unknown role"):
        parse_role_option("nope=x")
    assert parse_role_option("val_loss=a=b") == ("val_loss", "a=b")


def test_pyproject_tool_table_is_read(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.tbreport]\nselect = ["L", "G201"]\n'
        'ignore = "erratic-loss"\n'
        'fail-on = "warning"\n\n[tool.tbreport.roles]\nval_loss = ["holdout"]\n\n'
        "[tool.tbreport.detectors.overfitting]\nmin_rise = 0.2\n"
    )
    config = load_config(search_from=tmp_path)
    assert config.select == ("L", "G201")
    assert config.ignore == ("erratic-loss",)
    assert config.fail_on == "warning"
    assert config.roles == {"val_loss": ("holdout",)}
    assert config.detectors == {"overfitting": {"min_rise": 0.2}}
    assert config.source.endswith("pyproject.toml")


def test_tbreport_toml_wins_and_search_walks_upwards(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.tbreport]\nfail-on = "warning"\n')
    (tmp_path / "tbreport.toml").write_text('fail-on = "never"\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_config_file(nested) == tmp_path / "tbreport.toml"
    assert load_config(search_from=nested).fail_on == "never"


def test_pyproject_without_tool_table_is_ignored(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config_file(tmp_path) != tmp_path / "pyproject.toml"


def test_cli_beats_file_beats_defaults():
    file_config = config_from_mapping(
        {
            "select": ["L"],
            "ignore": ["L103"],
            "fail-on": "warning",
            "detectors": {"L101": {"min_rise": 0.3}},
        }
    )
    merged = file_config.override(
        select=["G"],
        ignore=["G203"],
        fail_on="never",
        roles={"val_loss": ["v"]},
        detectors={"L101": {"alpha": 0.01}},
    )
    assert merged.select == ("G",)
    assert merged.ignore == ("L103", "G203")
    assert merged.fail_on == "never"
    assert merged.roles == {"val_loss": ("v",)}
    assert merged.detectors["L101"] == {"min_rise": 0.3, "alpha": 0.01}
    # Not given on the command line: the file's values stay.
    assert file_config.override().select == ("L",)
    assert Config().fail_on == "error"
    assert Config().select is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"selec": ["L"]}, "unknown key"),
        ({"fail-on": "sometimes"}, "fail-on must be one of"),
        ({"select": 3}, "must be a string or a list"),
        ({"roles": {"nope": "x"}}, "unknown role"),
        ({"detectors": {"L101": 3}}, "must be tables"),
    ],
)
def test_invalid_config_values_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(table, source="test.toml")


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "tbreport.toml"
    bad.write_text("select = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(path=tmp_path / "missing.toml")


def test_as_config_accepts_mappings_paths_and_none(tmp_path):
    assert as_config(None) == Config()
    assert as_config({"select": ["L101"]}).select == ("L101",)
    path = tmp_path / "tbreport.toml"
    path.write_text('ignore = ["D"]\n')
    assert as_config(path).ignore == ("D",)
    with pytest.raises(ConfigError):
        as_config(42)
