"""Lightning hparams.yaml files are read as plain data, and hostile ones are refused."""

from __future__ import annotations

import itertools

import pytest

from tbreport.reading.hparams import load_hparams_yaml


def test_python_tags_are_read_as_plain_values(tmp_path):
    path = tmp_path / "hparams.yaml"
    path.write_text(
        "input_shape: !!python/tuple\n- 128\n- 64\nlr: 0.001\nmodel: !!python/object:a.B {x: 1}\n"
    )
    loaded = load_hparams_yaml(str(path))
    assert loaded == {"input_shape": [128, 64], "lr": 0.001, "model": {"x": 1}}


def test_alias_bomb_is_refused(tmp_path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefgh"
    for prev, name in itertools.pairwise(names):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "hparams.yaml"
    path.write_text("\n".join(levels) + "\n")
    with pytest.raises(ValueError, match="alias"):
        load_hparams_yaml(str(path))


def test_a_few_aliases_are_fine(tmp_path):
    path = tmp_path / "hparams.yaml"
    path.write_text("dims: &d [64, 32]\nencoder: {dims: *d}\ndecoder: {dims: *d}\n")
    assert load_hparams_yaml(str(path))["decoder"] == {"dims": [64, 32]}


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "hparams.yaml"
    path.write_text("x: " + "y" * (2 << 20) + "\n")
    with pytest.raises(ValueError, match="larger than"):
        load_hparams_yaml(str(path))
