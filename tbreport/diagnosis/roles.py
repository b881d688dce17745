"""Tag roles: which tag plays which part (train loss, validation loss, learning rate, …).

Detectors ask for roles, never for raw tags, because every framework names its tags differently.
Scalar roles are resolved from each tag's meaning (:mod:`tbreport.diagnosis.semantics`);
histogram roles from ordered regular expressions, matched case-insensitively against the whole
tag. Tags are the *logical* tags of :meth:`ReadResult.logical_scalars` (Keras
``train/epoch_loss``, ``add_scalars`` ``Loss/train``).

Users override a role in ``[tool.tbreport.roles]`` or with ``--role NAME=REGEX`` (a regex or a
list of them, the first that matches any tag wins); an override replaces the default of that
role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tbreport.diagnosis.semantics import RunSemantics, describe_run
from tbreport.errors import ConfigError
from tbreport.safe_regex import Pattern, compile_pattern

#: Scalar roles detectors ask for. By default they are resolved from each tag's meaning
#: (:mod:`tbreport.diagnosis.semantics`); a user pattern replaces that for its role.
SCALAR_ROLES: Mapping[str, str] = {
    "train_loss": "training loss (paired with the validation loss when there is one)",
    "val_loss": "validation loss (the test split when no validation split exists)",
    "train_loss_step": "per-step training loss beside the per-epoch one",
    "train_metric": "training metric to maximise (accuracy, mAP...)",
    "val_metric": "validation metric to maximise (accuracy, mAP...)",
    "learning_rate": "learning rate",
    "grad_norm": "gradient norm (scalar)",
    "pred_std": "standard deviation of the predictions",
    "pred_mean": "mean of the predictions",
    "reward": "episode reward (reinforcement learning)",
    "entropy": "policy entropy (reinforcement learning)",
    "approx_kl": "approximate KL divergence of policy updates (reinforcement learning)",
    "explained_variance": "explained variance of the value function (reinforcement learning)",
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

ALL_ROLES: tuple[str, ...] = tuple(SCALAR_ROLES) + tuple(HISTOGRAM_ROLES)


def _compile(patterns: Iterable[str], *, role: str) -> tuple[Pattern, ...]:
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
    """

    scalar: Mapping[str, tuple[Pattern, ...]]
    histogram: Mapping[str, tuple[Pattern, ...]]

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
        for role, chosen in overrides.items():
            if role in SCALAR_ROLES:
                scalar[role] = _compile([chosen] if isinstance(chosen, str) else chosen, role=role)
        histogram = {}
        for role, patterns in HISTOGRAM_ROLES.items():
            chosen = overrides.get(role, patterns)
            histogram[role] = _compile([chosen] if isinstance(chosen, str) else chosen, role=role)
        return cls(scalar=scalar, histogram=histogram)

    def describe(
        self,
        *,
        scalar_tags: Iterable[str],
        histogram_tags: Iterable[str],
        counts: Mapping[str, int] | None = None,
    ) -> tuple[RunSemantics, dict[str, tuple[str, ...]]]:
        """The run's tag meanings and kind, and the tags each role resolves to.

        Scalar roles come from the tags' meanings, except the roles a user pattern overrides:
        those resolve to the tags matched by their first matching pattern. Histogram roles
        resolve to every tag matched by any pattern, a tag going to the gradient role before
        the weight role. Roles with no match are absent.
        """
        scalar_tags = list(dict.fromkeys(scalar_tags))
        histogram_tags = list(dict.fromkeys(histogram_tags))
        semantics = describe_run(scalar_tags, counts=counts)
        resolved: dict[str, tuple[str, ...]] = dict(semantics.roles)
        for role, patterns in self.scalar.items():
            resolved.pop(role, None)
            for pattern in patterns:
                hits = tuple(t for t in scalar_tags if pattern.fullmatch(t))
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
        ordered = {role: resolved[role] for role in ALL_ROLES if role in resolved}
        return semantics, ordered

    def resolve(
        self,
        *,
        scalar_tags: Iterable[str],
        histogram_tags: Iterable[str],
        counts: Mapping[str, int] | None = None,
    ) -> dict[str, tuple[str, ...]]:
        """Which tags each role resolves to in one logical run (see :meth:`describe`)."""
        return self.describe(scalar_tags=scalar_tags, histogram_tags=histogram_tags, counts=counts)[
            1
        ]


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
