"""Every detector, registered explicitly, and selection by code, name or code prefix.

Codes are a family letter plus three digits: ``L1xx`` loss, ``G2xx`` gradients, ``P3xx``
predictions, ``W4xx`` weights, ``R5xx`` learning-rate schedule, ``E6xx`` reinforcement-learning
episodes, ``D9xx`` data integrity. Codes
and names are a public contract: they never change meaning, and retired codes stay reserved.
"""

from __future__ import annotations

from collections.abc import Iterable

from tbreport.diagnosis.detectors.approx_kl_blow_up import ApproxKlBlowUp
from tbreport.diagnosis.detectors.base import Detector, RunData, SkipDetector
from tbreport.diagnosis.detectors.diverged_loss import DivergedLoss
from tbreport.diagnosis.detectors.entropy_collapse import EntropyCollapse
from tbreport.diagnosis.detectors.frozen_loss import FrozenLoss
from tbreport.diagnosis.detectors.gradients import (
    DeadNeurons,
    ExplodingGradients,
    VanishingGradients,
)
from tbreport.diagnosis.detectors.integrity import DamagedFile, DuplicateSteps
from tbreport.diagnosis.detectors.loss import (
    ErraticLoss,
    GeneralisationGap,
    NonFiniteLoss,
    Overfitting,
    Underfitting,
)
from tbreport.diagnosis.detectors.non_finite_metric import NonFiniteMetric
from tbreport.diagnosis.detectors.predictions import CollapsedPredictions
from tbreport.diagnosis.detectors.reward_collapse import RewardCollapse
from tbreport.diagnosis.detectors.reward_not_improving import RewardNotImproving
from tbreport.diagnosis.detectors.schedule import LrScheduleNoEffect
from tbreport.diagnosis.detectors.value_loss_blow_up import ValueLossBlowUp
from tbreport.diagnosis.detectors.weights import WeightCollapse, WeightGrowth
from tbreport.errors import ConfigError

ALL_DETECTORS: tuple[type[Detector], ...] = (
    Overfitting,
    Underfitting,
    ErraticLoss,
    NonFiniteLoss,
    GeneralisationGap,
    NonFiniteMetric,
    DivergedLoss,
    ExplodingGradients,
    VanishingGradients,
    DeadNeurons,
    CollapsedPredictions,
    FrozenLoss,
    WeightCollapse,
    WeightGrowth,
    LrScheduleNoEffect,
    RewardNotImproving,
    RewardCollapse,
    EntropyCollapse,
    ValueLossBlowUp,
    ApproxKlBlowUp,
    DuplicateSteps,
    DamagedFile,
)

__all__ = [
    "ALL_DETECTORS",
    "Detector",
    "RunData",
    "SkipDetector",
    "find_detector",
    "select_detectors",
]


def find_detector(key: str) -> type[Detector]:
    """The detector with this code or name (case-insensitive).

    Raises:
        ConfigError: No detector has that code or name.
    """
    wanted = key.strip().lower()
    for detector in ALL_DETECTORS:
        if detector.code.lower() == wanted or detector.name == wanted:
            return detector
    raise ConfigError(f"unknown detector {key!r}; `tbreport rules` lists codes and names")


def _matches(selector: str) -> list[type[Detector]]:
    wanted = selector.strip().lower()
    if wanted == "all":
        return list(ALL_DETECTORS)
    hits = [d for d in ALL_DETECTORS if d.name == wanted or d.code.lower().startswith(wanted)]
    if not hits:
        raise ConfigError(
            f"{selector!r} matches no detector code, name or code prefix; "
            "`tbreport rules` lists them"
        )
    return hits


def select_detectors(
    *,
    select: Iterable[str] | None = None,
    extend_select: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> tuple[type[Detector], ...]:
    """The detectors to run, in registry order.

    Args:
        select: Codes, names or code prefixes (``"L"``, ``"G20"``); ``None`` selects all.
        extend_select: Added to the selection.
        ignore: Removed from it (applied last).

    Raises:
        ConfigError: A selector that matches nothing.
    """
    chosen: set[type[Detector]] = set()
    if select is None:
        chosen.update(ALL_DETECTORS)
    else:
        for selector in select:
            chosen.update(_matches(selector))
    for selector in extend_select:
        chosen.update(_matches(selector))
    for selector in ignore:
        chosen.difference_update(_matches(selector))
    return tuple(d for d in ALL_DETECTORS if d in chosen)
