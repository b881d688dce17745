"""Data-integrity detectors (D9xx): what the event files themselves got wrong."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tbreport.diagnosis.detectors.base import Detector, RunData, SkipDetector, param
from tbreport.model import Finding, Severity


class DuplicateSteps(Detector):
    """The same tag was logged more than once at a step, with different values.

    ## What it detects
    Points of one tag sharing a step with an earlier point of that tag and holding a different
    value (identical repeats, such as Lightning logging `epoch` twice, are harmless and ignored).
    Steps already resolved by a restart purge are not counted.

    ## Why it matters
    Two values at one step make curves zig-zag and every per-step statistic ambiguous: usually
    several runs write into one directory, or a resumed run restarts its step counter.

    ## What to do
    - Give every run its own log directory
    - When resuming, restore the global step (or use `purge_step`)
    - Log once per step per tag

    ## Example
    `dup_steps/foo`: 10 steps hold two different values: flagged (info).
    """

    code = "D901"
    name = "duplicate-steps"
    severities = (Severity.INFO,)

    @dataclass(frozen=True)
    class Params:
        min_duplicates: int = param(1, "Fewest conflicting duplicate steps that are reported.")

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        frame = run.scalars
        if frame.empty:
            raise SkipDetector("no scalars")
        # Sub-runs of a logical run have distinct tags after folding, so (tag, step) is the key.
        if not _has_duplicate_steps(run):
            return  # the usual case, decided on arrays
        keyed = frame[["tag", "step", "value"]]
        dup_mask = keyed.duplicated(["tag", "step"], keep=False)
        dups = keyed[dup_mask]
        values = dups["value"].to_numpy(np.float64)
        dups = dups.assign(value=np.where(np.isnan(values), np.inf, values))
        conflicting = dups.groupby(["tag", "step"], observed=True)["value"].nunique()
        conflicting = conflicting[conflicting > 1]
        if len(conflicting) < params.min_duplicates:
            return
        per_tag = conflicting.groupby(level=0, observed=True).size()
        per_tag = per_tag[per_tag > 0].sort_values(ascending=False)
        first_step = int(conflicting.index.get_level_values(1).min())
        yield self.finding(
            run,
            message=(
                f"{len(conflicting)} step(s) hold conflicting values for {len(per_tag)} tag(s) "
                f"(e.g. {per_tag.index[0]}; threshold {params.min_duplicates})"
            ),
            step=first_step,
            evidence={
                "conflicting_steps": int(len(conflicting)),
                "per_tag": {str(k): int(v) for k, v in per_tag.head(20).items()},
                "min_duplicates": params.min_duplicates,
            },
            tags=[str(t) for t in per_tag.index[:20]],
            observed=len(conflicting),
            limit=params.min_duplicates,
        )


def _has_duplicate_steps(run: RunData) -> bool:
    """Whether any tag holds a step twice (from each tag's rows, without a pandas group)."""
    for tag in run.scalar_tags:
        steps = run.points(tag).steps  # in step order
        if steps.size > 1 and bool(np.any(steps[1:] == steps[:-1])):
            return True
    return False


#: ReadWarning kinds that mean bytes were damaged or unreadable.
DAMAGE_KINDS = frozenset(
    {
        "truncated-record",
        "checksum-mismatch",
        "corrupt-data",
        "zero-filled-tail",
        "undecodable-record",
        "unreadable",
        "lfs-pointer",
    }
)


class DamagedFile(Detector):
    """An event file of the run is truncated or damaged.

    ## What it detects
    Read warnings about the run's files that mean bytes were lost: a record cut off at the end
    (the writer was killed or is still writing), a checksum mismatch, or an unparsable record.
    Everything readable was still read; the finding says what was not.

    ## Why it matters
    Points after the damage may be missing, so the curves (and every other finding) may not
    cover the whole run. Checksum errors point at storage or copy problems.

    ## What to do
    - If the run is still training, read it again when it has finished
    - Re-copy the file from its source (checksum errors often come from partial copies)
    - Check the disk and the writer's shutdown (call `writer.close()`)

    ## Example
    `events.out.tfevents.1490697588` ends inside a record at byte 135,552: flagged (info).
    """

    code = "D902"
    name = "damaged-file"
    severities = (Severity.INFO,)

    @dataclass(frozen=True)
    class Params:
        include_kinds: str = param(
            "", "Extra comma-separated read-warning kinds to report, beyond the built-in list."
        )

    def check(self, run: RunData, params: Params) -> Iterator[Finding]:
        kinds = DAMAGE_KINDS | {k.strip() for k in params.include_kinds.split(",") if k.strip()}
        damage = [w for w in run.warnings if w.kind in kinds]
        if not damage:
            return
        first = damage[0]
        yield self.finding(
            run,
            message=f"{len(damage)} damaged-file problem(s) (threshold: any): {first.kind} in "
            f"{first.path}" + (f" at byte {first.offset}" if first.offset is not None else ""),
            step=None,
            evidence={
                "problems": [
                    {"kind": w.kind, "path": w.path, "offset": w.offset, "message": w.message}
                    for w in damage[:20]
                ],
                "count": len(damage),
                "threshold": "any damaged record",
            },
            observed=len(damage),
            limit=0,
        )
