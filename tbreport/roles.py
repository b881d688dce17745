"""Tag roles: what a tag *means* (train loss, validation loss, learning rate, …).

Detectors ask for roles, never for raw tags, because every framework names its tags differently.
A role is an ordered list of regular expressions, matched case-insensitively against the whole
tag (``re.fullmatch``); the first pattern that matches any tag of the run wins, so earlier
patterns are preferred spellings and later ones are fallbacks. Tags are the *logical* tags of
:meth:`ReadResult.logical_scalars` (Keras ``train/epoch_loss``, ``add_scalars`` ``Loss/train``).

Users override a role's patterns in ``[tool.tbreport.roles]`` or with ``--role NAME=REGEX``; an
override replaces the defaults of that role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tbreport.errors import ConfigError
from tbreport.safe_regex import compile_pattern

# Separators frameworks put between words: "/", "_", "-", ".", " ".
_SEP = r"[/_\-. ]"
_TRAIN = r"(?:train|training)"
_VAL = r"(?:val|valid|validation|eval|evaluation|dev|test)"

#: Scalar roles: the tag (or the first of several) holding one curve.
SCALAR_ROLES: Mapping[str, tuple[str, ...]] = {
    "train_loss": (
        # puffin / Lightning / generic: train_loss, train/loss, training_loss
        rf"{_TRAIN}{_SEP}?loss",
        # AutoStock add_scalar and torch add_scalars: Loss/train
        rf"loss{_SEP}{_TRAIN}",
        # Keras train/ split, folded into the logical run
        rf"{_TRAIN}{_SEP}epoch{_SEP}loss",
        # Lightning on_epoch/on_step variants
        rf"{_TRAIN}{_SEP}?loss{_SEP}epoch",
        rf"{_TRAIN}{_SEP}?loss{_SEP}step",
        # HF Trainer without a split prefix, TF1 summaries, bare `loss`
        r"(?:epoch_)?loss",
        r"loss/loss",
        r"(?:.*/)?(?:average_)?cost",
    ),
    "val_loss": (
        rf"{_VAL}{_SEP}?loss",
        rf"loss{_SEP}{_VAL}",
        rf"{_VAL}{_SEP}epoch{_SEP}loss",
        rf"{_VAL}{_SEP}?loss{_SEP}epoch",
    ),
    "learning_rate": (
        r"(?:.*/)?(?:epoch_)?(?:learning[_\- ]?rate|lr)",
        r"(?:.*/)?(?:epoch_)?learning[_\- ]?rate/.*",
        r"(?:.*/)?lr[\-_/].*",  # Lightning LearningRateMonitor: lr-Adam, lr-SGD/pg1
        r"(?:.*/)?learning[_\- ]?rate/group_?\d+",
    ),
    "grad_norm": (
        r"(?:.*/)?(?:epoch_)?grad(?:ient)?s?[_/\- ]?norm(?:[_/\-]?(?:total|global|all|2))?",
        r"(?:.*/)?grad_2\.0_norm_total",
        r"(?:.*/)?(?:global|total)[_/\-]?grad(?:ient)?[_/\-]?norm",
    ),
    "pred_std": (
        r"(?:.*[/_])?pred(?:iction)?s?[_/\- ]?std",
        r"(?:.*[/_])?(?:output|outputs)[_/\- ]?std",
    ),
    "pred_mean": (
        r"(?:.*[/_])?pred(?:iction)?s?[_/\- ]?mean",
        r"(?:.*[/_])?(?:output|outputs)[_/\- ]?mean",
    ),
}

#: Histogram roles: every matching histogram tag (one per layer or parameter).
HISTOGRAM_ROLES: Mapping[str, tuple[str, ...]] = {
    "gradient_histograms": (
        # AutoStock Gradients/{layer}, puffin gradients/{name}, grads/..., grad/...
        r"(?:.*/)?(?:grad|grads|gradient|gradients)/.+",
        r".+[/_.](?:grad|grads|gradient|gradients)",
    ),
    "weight_histograms": (
        # AutoStock Weights/{layer}, puffin weights/{name}, parameters/...
        r"(?:.*/)?(?:weight|weights|param|params|parameter|parameters)/.+",
        # Keras (train/ split): dense/kernel/histogram, dense_1/bias_0; TF1: layer1/weights/...
        r".*(?:kernel|bias|weights?)(?:_\d+)?(?:/histogram)?",
        r".+/(?:weights|biases)/.+",
    ),
}

ROLE_DESCRIPTIONS: Mapping[str, str] = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "learning_rate": "learning rate",
    "grad_norm": "gradient norm (scalar)",
    "pred_std": "standard deviation of the predictions",
    "pred_mean": "mean of the predictions",
    "gradient_histograms": "gradient histograms, one tag per layer",
    "weight_histograms": "weight histograms, one tag per layer",
}

ALL_ROLES: tuple[str, ...] = tuple(SCALAR_ROLES) + tuple(HISTOGRAM_ROLES)

# Tags that look like a loss but summarise it and would hide what happened: AutoStock's
# Best_Val_Loss only ever falls; HF's train/train_loss is one end-of-run average; Keras'
# evaluation_loss_vs_iterations repeats the validation loss on the step axis.
_EXCLUDED_LOSS_TAGS = re.compile(
    r"(?:.*/)?best[_\- ]?.*|(?:.*/)?train/train_.*|.*_vs_iterations", re.IGNORECASE
)
_LOSS_ROLES = frozenset({"train_loss", "val_loss"})


def _compile(patterns: Iterable[str], *, role: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(compile_pattern(pattern, ignore_case=True))  # bounded time
        except re.error as exc:
            raise ConfigError(
                f"role {role!r}: invalid regular expression {pattern!r}: {exc}"
            ) from None
    return tuple(compiled)


@dataclass(frozen=True)
class RolePatterns:
    """The patterns of every role, defaults merged with overrides.

    Attributes:
        scalar: Role -> compiled patterns, for scalar roles.
        histogram: Role -> compiled patterns, for histogram roles.
        overridden: Roles whose default patterns were replaced (their matches are not filtered).
    """

    scalar: Mapping[str, tuple[re.Pattern[str], ...]]
    histogram: Mapping[str, tuple[re.Pattern[str], ...]]
    overridden: frozenset[str] = frozenset()

    @classmethod
    def build(cls, overrides: Mapping[str, Iterable[str] | str] | None = None) -> RolePatterns:
        """Default patterns with ``overrides`` (role -> regex or list of regexes) replacing some.

        Raises:
            ConfigError: An unknown role or an invalid regular expression.
        """
        overrides = dict(overrides or {})
        for role in overrides:
            if role not in ALL_ROLES:
                raise ConfigError(f"unknown role {role!r} (known roles: {', '.join(ALL_ROLES)})")
        scalar = {}
        for role, patterns in SCALAR_ROLES.items():
            chosen = overrides.get(role, patterns)
            scalar[role] = _compile([chosen] if isinstance(chosen, str) else chosen, role=role)
        histogram = {}
        for role, patterns in HISTOGRAM_ROLES.items():
            chosen = overrides.get(role, patterns)
            histogram[role] = _compile([chosen] if isinstance(chosen, str) else chosen, role=role)
        return cls(scalar=scalar, histogram=histogram, overridden=frozenset(overrides))

    def resolve(
        self, *, scalar_tags: Iterable[str], histogram_tags: Iterable[str]
    ) -> dict[str, tuple[str, ...]]:
        """Which tags each role resolves to in one logical run.

        Scalar roles resolve to the tags matched by their first matching pattern (usually one);
        histogram roles to every tag matched by any pattern, in the order given, a tag going to
        the gradient role before the weight role. Roles with no match are absent.
        """
        scalar_tags = list(dict.fromkeys(scalar_tags))
        histogram_tags = list(dict.fromkeys(histogram_tags))
        resolved: dict[str, tuple[str, ...]] = {}
        for role, patterns in self.scalar.items():
            candidates = scalar_tags
            if role in _LOSS_ROLES and role not in self.overridden:
                candidates = [t for t in scalar_tags if not _EXCLUDED_LOSS_TAGS.fullmatch(t)]
            for pattern in patterns:
                hits = tuple(t for t in candidates if pattern.fullmatch(t))
                if hits:
                    resolved[role] = hits
                    break
        taken: set[str] = set()
        for role, patterns in self.histogram.items():
            hits = tuple(
                t
                for t in histogram_tags
                if t not in taken and any(p.fullmatch(t) for p in patterns)
            )
            if hits:
                resolved[role] = hits
                taken.update(hits)
        return resolved


def parse_role_option(text: str) -> tuple[str, str]:
    """Parse one ``--role NAME=REGEX`` option.

    Raises:
        ConfigError: No ``=``, an unknown role, or an invalid regular expression.
    """
    name, sep, pattern = text.partition("=")
    name = name.strip()
    if not sep or not name or not pattern:
        raise ConfigError(f"--role expects NAME=REGEX, got {text!r}")
    if name not in ALL_ROLES:
        raise ConfigError(f"unknown role {name!r} in --role (known roles: {', '.join(ALL_ROLES)})")
    _compile([pattern], role=name)
    return name, pattern
