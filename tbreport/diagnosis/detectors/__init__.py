"""Every detector, found in this package's modules, and selection by code, name or code prefix.

A detector is one :class:`~tbreport.diagnosis.detectors.base.Detector` subclass with a code in
one module of this package: the registry imports every module and lists what it finds, in code
order (the family's digit orders the families), so adding a detector is adding its file.

Codes are a family letter plus three digits: ``L1xx`` loss, ``G2xx`` gradients, ``P3xx``
predictions, ``W4xx`` weights, ``R5xx`` learning-rate schedule, ``E6xx`` reinforcement-learning
episodes, ``D9xx`` data integrity. Codes and names are a public contract: they never change
meaning, and retired codes stay reserved (:data:`RETIRED_CODES`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping

from tbreport.diagnosis.detectors.base import Detector, RunData, SkipDetector
from tbreport.errors import ConfigError

#: Code family letter -> (its digit, what its detectors judge), in registry order.
FAMILIES: Mapping[str, tuple[str, str]] = {
    "L": ("1", "loss curves"),
    "G": ("2", "gradients"),
    "P": ("3", "predictions"),
    "W": ("4", "weights"),
    "R": ("5", "learning-rate schedule"),
    "E": ("6", "reinforcement-learning episodes"),
    "D": ("9", "data integrity"),
}

#: Codes that were once given to a detector and are no detector's any more -> why. They stay
#: reserved: a configuration or a CI script that names one must not silently get another
#: detector. No detector has been retired yet; retire one by deleting its module and adding
#: its code here, e.g. ``"L108": "spiky-loss, merged into erratic-loss (L103) in 0.2"``.
RETIRED_CODES: Mapping[str, str] = {}


def _order(detector: type[Detector]) -> tuple[str, str]:
    """Registry order: by the code's digits (the family's digit leads them), then the code."""
    return detector.code[1:], detector.code


def discover() -> tuple[type[Detector], ...]:
    """Every Detector subclass with a code defined in a module of this package, in code order.

    Modules are imported in name order and classes sorted by code, so the order never depends
    on the file system.
    """
    found: dict[type[Detector], None] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Detector)
                and value.__module__ == module.__name__
                and value.code
            ):
                found[value] = None
    return tuple(sorted(found, key=_order))


ALL_DETECTORS: tuple[type[Detector], ...] = discover()

__all__ = [
    "ALL_DETECTORS",
    "FAMILIES",
    "RETIRED_CODES",
    "Detector",
    "RunData",
    "SkipDetector",
    "discover",
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
    retired = {code.lower(): (code, why) for code, why in RETIRED_CODES.items()}
    if wanted in retired:
        code, why = retired[wanted]
        raise ConfigError(f"detector {code} was retired ({why}); `tbreport rules` lists the others")
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
