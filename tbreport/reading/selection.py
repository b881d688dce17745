"""Narrow a ReadResult to some runs and tags (``ReadResult.select`` and ``--runs``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import pandas as pd

from tbreport.safe_regex import Pattern, compile_pattern

if TYPE_CHECKING:  # result.py imports this module
    from tbreport.reading.result import ReadResult

#: What ``select`` accepts for runs and tags: a regex (text or compiled), names, or None (all).
Selector = str | Pattern | Iterable[str] | None


def _matcher(pattern: Selector, what: str) -> Callable[[str], bool] | None:
    """A predicate on names: a regex (searched, case-insensitive), or an exact list of names."""
    if pattern is None:
        return None
    if isinstance(pattern, str):
        try:
            compiled = compile_pattern(pattern, ignore_case=True)
        except re.error as exc:
            raise ValueError(f"invalid {what} pattern {pattern!r}: {exc}") from None
        return lambda name: compiled.search(name) is not None
    if hasattr(pattern, "search"):  # a compiled pattern (re, RE2 or time-limited)
        searched = cast(Pattern, pattern)
        return lambda name: searched.search(name) is not None
    names = {str(n) for n in pattern}
    return lambda name: name in names


def _filter(frame: pd.DataFrame, column: str, keep: Callable[[str], bool]) -> pd.DataFrame:
    if frame is None or frame.empty or column not in frame:
        return frame
    values = frame[column]
    categories = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else None
    if categories is not None:
        wanted = [c for c in categories if keep(str(c))]
        mask = values.isin(wanted).to_numpy()
    else:
        mask = values.astype(str).map(keep).to_numpy(dtype=bool)
    out = frame.loc[mask].reset_index(drop=True)
    for name in ("run", "tag"):  # the categories list what is there, as after a read
        if name in out and isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].cat.remove_unused_categories()
    return out


def select(result: ReadResult, *, runs: Selector = None, tags: Selector = None) -> ReadResult:
    """A ReadResult holding only some runs and tags.

    Args:
        result: What ``tbreport.read`` returned.
        runs: A regular expression searched in each run's name, case-insensitively (a run is
            kept when its directory or its logical run matches, so ``exp1`` keeps Keras'
            ``exp1/train`` and ``exp1/validation``), or a list of exact names.
        tags: A regular expression searched in each tag, case-insensitively, or a list of exact
            tags. Hyperparameters are kept whatever the tags.

    Returns:
        A new ReadResult; the original is unchanged.
    """
    run_ok = _matcher(runs, "runs")
    tag_ok = _matcher(tags, "tags")
    out = result
    if run_ok is not None:
        inventory = result.runs
        logical_of: dict[str, str] = {}
        if inventory is not None and not inventory.empty:
            logical = inventory["logical_run"] if "logical_run" in inventory else inventory["run"]
            logical_of = {str(r): str(lr) for r, lr in zip(inventory["run"], logical, strict=True)}

        def keep_run(name: str) -> bool:
            return run_ok(name) or run_ok(logical_of.get(name, name))

        logical_kept = {lr for r, lr in logical_of.items() if keep_run(r)}

        def keep_logical(name: str) -> bool:
            return name in logical_kept or keep_run(name)

        out = replace(
            out,
            scalars=_filter(out.scalars, "run", keep_run),
            histograms=_filter(out.histograms, "run", keep_run),
            text=_filter(out.text, "run", keep_run),
            hparams=_filter(out.hparams, "run", keep_logical),
            hparam_records=_filter(out.hparam_records, "run", keep_logical),
            runs=_filter(out.runs, "run", keep_run),
            warnings=[w for w in out.warnings if w.run is None or keep_run(str(w.run))],
        )
    if tag_ok is not None:
        out = replace(
            out,
            scalars=_filter(out.scalars, "tag", tag_ok),
            histograms=_filter(out.histograms, "tag", tag_ok),
            text=_filter(out.text, "tag", tag_ok),
        )
    if out is not result:
        out.__dict__.pop("_logical_cache", None)  # cached folds belong to the original
    return out


def wide_scalars(scalars: pd.DataFrame) -> pd.DataFrame:
    """One row per run and step, one column per tag; nothing averaged.

    When a tag has several points at one step (restarts without purge, several writers), the
    extra points go to further rows numbered by an ``occurrence`` column instead of being merged.
    """
    if scalars.empty:
        return pd.DataFrame(columns=["run", "step"])
    frame = scalars[["run", "tag", "step", "value"]]
    occurrence = frame.groupby(["run", "tag", "step"], observed=True, sort=False).cumcount()
    keys = ["run", "step"]
    if int(occurrence.max()) > 0:
        frame = frame.assign(occurrence=occurrence.to_numpy())
        keys.append("occurrence")
    wide = frame.pivot_table(
        index=keys, columns="tag", values="value", aggfunc="first", observed=True, dropna=False
    )
    wide = wide.dropna(how="all")
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()
