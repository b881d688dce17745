"""``tbreport ls`` and ``tbreport export``: what is in a LOGDIR, and all of it as CSV."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from tbreport import __version__
from tbreport.reader import ReadResult, read
from tbreport.selection import wide_scalars

EXPORT_FILES = (
    "meanings.csv",
    "scalars.csv",
    "scalars_wide.csv",
    "histograms.csv",
    "hparams.csv",
    "runs.csv",
    "text.csv",
    "warnings.csv",
)
HISTOGRAM_EXPORT_COLUMNS = [
    "run",
    "tag",
    "step",
    "wall_time",
    "min",
    "max",
    "mean",
    "std",
    "num",
    "zero_fraction",
]


def read_options(func):
    """Options shared by every command that reads a LOGDIR."""
    func = click.option(
        "--engine",
        type=click.Choice(["fast", "accumulator"]),
        default="fast",
        show_default=True,
        help="Reader: tbreport's own, or TensorBoard's EventAccumulator (slow reference).",
    )(func)
    func = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes for parsing files [default: all cores when worthwhile].",
    )(func)
    func = click.option(
        "--tags",
        "tags",
        metavar="REGEX",
        default=None,
        help="Only scalar/histogram/text tags matching this regular expression.",
    )(func)
    return func


def read_logdir(logdir: str, *, tags: str | None, jobs: int | None, engine: str) -> ReadResult:
    """Read with the shared options and print the warnings summary to stderr."""
    result = read(logdir, jobs=jobs, tags=tags, engine=engine)
    report_warnings(result)
    return result


def report_warnings(result: ReadResult, *, limit: int = 10) -> None:
    """A short, readable account of what could not be taken at face value."""
    warnings = result.warnings
    if not warnings:
        return
    click.secho(f"tbreport: {len(warnings)} warning(s) while reading:", fg="yellow", err=True)
    by_kind: dict[str, list] = {}
    for warning in warnings:
        by_kind.setdefault(warning.kind, []).append(warning)
    shown = 0
    for kind, group in by_kind.items():
        # Routine kinds (a profiler placeholder in every Keras run) get one line, not one each.
        for warning in group[: 1 if len(group) > 2 else 2]:
            if shown < limit:
                click.echo(f"  - [{kind}] {warning}", err=True)
                shown += 1
        if len(group) > 2 and shown <= limit:
            click.echo(f"    ... and {len(group) - 1} more [{kind}]", err=True)
    if shown < len(warnings):
        click.echo("  (all of them: `tbreport export` writes warnings.csv)", err=True)


@click.command("ls")
@click.argument("logdir", type=click.Path())
@click.option(
    "--meaning",
    is_flag=True,
    help=(
        "Show what each scalar tag was taken to mean (split, quantity, granularity, the roles "
        "the detectors use it for) and each logical run's kind, with the evidence."
    ),
)
@read_options
def ls(logdir: str, meaning: bool, tags: str | None, jobs: int | None, engine: str) -> None:
    """List runs and their tags with point counts and step ranges.

    LOGDIR is a directory of runs (as given to `tensorboard --logdir`) or one event file.
    With --meaning, list logical runs (Keras train/ + validation/ folded together) and how
    each tag is understood; a wrong meaning is corrected with `check --role NAME=REGEX`.
    """
    result = read_logdir(logdir, tags=tags, jobs=jobs, engine=engine)
    if meaning:
        from tbreport.diagnosis import describe_meanings

        click.echo(format_meanings(describe_meanings(result)))
    else:
        click.echo(format_listing(result))


def printable(text: str) -> str:
    """Text from an event file made safe for a terminal: control characters escaped."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def format_meanings(table: pd.DataFrame) -> str:
    """The text `tbreport ls --meaning` prints: one block per logical run, one line per tag."""
    lines = []
    for run, rows in table.groupby("run", sort=False):
        kind = rows["kind"].iloc[0]
        lines.append(f"{printable(str(run))}  [{kind}]")
        width = max(len(printable(str(t))) for t in rows["tag"])
        for row in rows.itertuples(index=False):
            goal = row.goal if isinstance(row.goal, str) else ""
            what = row.quantity + (f" ({goal})" if goal else "")
            split = row.split if isinstance(row.split, str) else "-"
            roles = f"  -> {row.roles}" if isinstance(row.roles, str) and row.roles else ""
            lines.append(
                f"    {printable(str(row.tag)):<{width}}  {split:<10}  {what:<29}  "
                f"{row.granularity:<7}{roles}".rstrip()
            )
        lines.append("")
    if not lines:
        return "no scalar tags"
    return "\n".join(lines).rstrip("\n")


def _tag_table(result: ReadResult) -> pd.DataFrame:
    parts = []
    for kind, frame in (("scalar", result.scalars), ("histogram", result.histograms)):
        if frame.empty:
            continue
        grouped = frame.groupby(["run", "tag"], observed=True, sort=False)["step"].agg(
            ["size", "min", "max"]
        )
        grouped = grouped.reset_index()
        grouped["kind"] = kind
        parts.append(grouped)
    if not result.text.empty:
        grouped = result.text.groupby(["run", "tag"], observed=True, sort=False)["step"].agg(
            ["size", "min", "max"]
        )
        grouped = grouped.reset_index()
        grouped["kind"] = "text"
        parts.append(grouped)
    if not parts:
        return pd.DataFrame(columns=["run", "tag", "size", "min", "max", "kind"])
    table = pd.concat([p.astype({"run": object, "tag": object}) for p in parts])
    return table.sort_values(["run", "kind", "tag"], kind="stable")


def format_listing(result: ReadResult) -> str:
    """The text `tbreport ls` prints: one block per run, one line per tag."""
    table = _tag_table(result)
    lines = []
    by_run = {run: frame for run, frame in table.groupby("run", sort=False)}
    for row in result.runs.itertuples(index=False):
        extra = ""
        if row.subrun_kind:
            extra = f"  (part of {row.logical_run}: {row.subrun_kind} {row.subrun_key})"
        lines.append(
            f"{row.run}  [{row.files} file(s), {row.scalars} scalars, "
            f"{row.histograms} histograms]{extra}"
        )
        tags = by_run.get(row.run)
        if tags is None:
            lines.append("    (no scalar, histogram or text tags)")
            continue
        width = max(len(str(t)) for t in tags["tag"])
        for tag_row in tags.itertuples(index=False):
            lines.append(
                f"    {str(tag_row.tag):<{width}}  {tag_row.kind:<9}  {tag_row.size:>8} points  "
                f"steps {tag_row.min}..{tag_row.max}"
            )
    hp = result.hparams
    if not hp.empty:
        lines.append(f"hparams: {len(hp.columns) - 1} columns for {len(hp)} run(s)")
    return "\n".join(lines)


def histogram_export(histograms: pd.DataFrame) -> pd.DataFrame:
    """The histogram table for CSV: statistics per run, tag and step (buckets omitted)."""
    return histograms[HISTOGRAM_EXPORT_COLUMNS]


def warnings_frame(result: ReadResult) -> pd.DataFrame:
    return pd.DataFrame(
        [(w.kind, w.run, w.path, w.offset, w.message) for w in result.warnings],
        columns=["kind", "run", "path", "offset", "message"],
    ).astype({"offset": "Int64"})


def write_export(result: ReadResult, out_dir: Path, *, wide: bool) -> list[Path]:
    """Write every export table into ``out_dir``; return the files written."""
    from tbreport.diagnosis import describe_meanings
    from tbreport.report.csvsafe import write_csv

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv(result.scalars, out_dir / "scalars.csv"),
        write_csv(histogram_export(result.histograms), out_dir / "histograms.csv"),
        write_csv(result.hparams, out_dir / "hparams.csv"),
        write_csv(result.runs, out_dir / "runs.csv"),
        write_csv(result.text, out_dir / "text.csv"),
        write_csv(warnings_frame(result), out_dir / "warnings.csv"),
        write_csv(describe_meanings(result), out_dir / "meanings.csv"),
    ]
    if wide:
        written.append(write_csv(wide_scalars(result.scalars), out_dir / "scalars_wide.csv"))
    return written


@click.command("export")
@click.argument("logdir", type=click.Path())
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(), help="Directory to write into."
)
@click.option("--wide", is_flag=True, help="Also write scalars_wide.csv: one column per tag.")
@click.option("--force", is_flag=True, help="Write into a directory that holds other files.")
@read_options
def export(
    logdir: str,
    output: str,
    wide: bool,
    force: bool,
    tags: str | None,
    jobs: int | None,
    engine: str,
) -> None:
    """Write every scalar, histogram and hyperparameter of LOGDIR as CSV files.

    \b
    Files written into the output directory:
      scalars.csv       run, tag, step, wall_time, value: one row per point, nothing dropped
      histograms.csv    run, tag, step, wall_time, min, max, mean, std, num, zero_fraction
      hparams.csv       one row per run, one column per hyperparameter
      runs.csv          inventory: files, counts, step and time ranges, logical-run grouping
      text.csv          text summaries
      warnings.csv      everything the reader skipped or repaired, with file and byte offset
      meanings.csv      per logical run and scalar tag: kind, split, quantity, roles, evidence
      scalars_wide.csv  with --wide: one row per run and step, one column per tag

    Text cells that a spreadsheet would run as a formula are prefixed with a quote.
    """
    from tbreport.outputs import check_output_dir, mark_output_dir

    out_dir = check_output_dir(output, known_names=EXPORT_FILES, force=force)
    result = read_logdir(logdir, tags=tags, jobs=jobs, engine=engine)
    written = write_export(result, out_dir, wide=wide)
    mark_output_dir(out_dir, generator=f"tbreport {__version__} export")
    points = len(result.scalars)
    click.echo(
        f"wrote {len(written)} files to {out_dir}: {points} scalar points, "
        f"{len(result.histograms)} histograms, {len(result.runs)} runs"
    )
