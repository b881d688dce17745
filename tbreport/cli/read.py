"""``tbreport ls`` and ``tbreport export``: what is in a LOGDIR, and all of it as CSV."""

from __future__ import annotations

import json
from typing import Any

import click
import pandas as pd

from tbreport._version import __version__
from tbreport.cli.common import plural, probe_output, read_logdir
from tbreport.cli.options import format_option, quiet_option, read_options, verbose_option
from tbreport.diagnosis import describe_meanings
from tbreport.outputs import DIR_MARKER, check_output_dir, mark_output_dir, remove_stale
from tbreport.reading.reader import Engine
from tbreport.reading.result import ReadResult
from tbreport.report.csvsafe import neutralise_frame
from tbreport.report.export import EXPORT_FILES, write_export
from tbreport.textsafe import term_safe


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
@format_option(["text", "json", "csv"], help="Text for people, JSON or CSV for programs.")
@read_options
@quiet_option
@verbose_option
def ls(
    logdir: str,
    meaning: bool,
    output_format: str,
    tags: str | None,
    runs: str | None,
    jobs: int | None,
    engine: Engine,
    quiet: bool,
    verbose: bool,
) -> None:
    """List runs and their tags with point counts and step ranges.

    LOGDIR is a directory of runs (as given to `tensorboard --logdir`), one event file, a
    .tar/.tar.gz/.zip archive (read in place) or an fsspec URL (s3://, gs://, file://...).
    With --meaning, list logical runs (Keras train/ + validation/ folded together) and how
    each tag is understood; a wrong meaning is corrected with `check --role NAME=REGEX`.
    """
    result = read_logdir(
        logdir, tags=tags, runs=runs, jobs=jobs, engine=engine, verbose=verbose, quiet=quiet
    )
    if meaning:
        table = describe_meanings(result)
        if output_format == "text":
            click.echo(format_meanings(table))
        else:
            click.echo(_machine_table(table, output_format), nl=False)
        return
    if output_format == "text":
        click.echo(format_listing(result))
    elif output_format == "csv":
        click.echo(_machine_table(listing_table(result), "csv"), nl=False)
    else:
        click.echo(json.dumps(listing_document(result), indent=2, allow_nan=False))


def _machine_table(table: pd.DataFrame, output_format: str) -> str:
    if output_format == "csv":
        return neutralise_frame(table).to_csv(index=False)
    records = json.loads(table.to_json(orient="records"))
    return json.dumps(records, indent=2, allow_nan=False) + "\n"


def listing_table(result: ReadResult) -> pd.DataFrame:
    """One row per run and tag: ``run, logical_run, tag, kind, points, first_step, last_step``
    (what `tbreport ls --format csv` writes)."""
    table = _tag_table(result).rename(
        columns={"size": "points", "min": "first_step", "max": "last_step"}
    )
    inventory = result.runs
    logical = dict(
        zip(inventory["run"].astype(str), inventory["logical_run"].astype(str), strict=True)
    )
    table.insert(1, "logical_run", [logical.get(str(r), str(r)) for r in table["run"]])
    columns = ["run", "logical_run", "tag", "kind", "points", "first_step", "last_step"]
    return table[columns].reset_index(drop=True)


def listing_document(result: ReadResult) -> dict[str, Any]:
    """What `tbreport ls --format json` writes: the runs with their counts and tags."""
    table = listing_table(result)
    by_run = {run: frame for run, frame in table.groupby("run", sort=False)}
    runs = []
    row: Any  # a row of the inventory: its columns are object, int and float
    for row in result.runs.itertuples(index=False):
        tags = by_run.get(str(row.run))
        runs.append(
            {
                "run": str(row.run),
                "logical_run": str(row.logical_run),
                "files": int(row.files),
                "scalars": int(row.scalars),
                "histograms": int(row.histograms),
                "tags": [] if tags is None else _tag_entries(tags),
            }
        )
    return {
        "logdir": str(result.logdir),
        "runs": runs,
        "hparams": int(max(len(result.hparams.columns) - 1, 0)),
        "warnings": len(result.warnings),
    }


def _tag_entries(tags: pd.DataFrame) -> list[dict[str, Any]]:
    """One run's rows of the listing table, as the JSON document lists them."""
    entries = []
    t: Any  # a row of the listing table
    for t in tags.itertuples(index=False):
        entries.append(
            {
                "tag": str(t.tag),
                "kind": t.kind,
                "points": int(t.points),
                "first_step": int(t.first_step),
                "last_step": int(t.last_step),
            }
        )
    return entries


def format_meanings(table: pd.DataFrame) -> str:
    """The text `tbreport ls --meaning` prints: one block per logical run, one line per tag."""
    lines = []
    for run, rows in table.groupby("run", sort=False):
        kind = rows["kind"].iloc[0]
        lines.append(f"{term_safe(str(run))}  [{kind}]")
        width = max(len(term_safe(str(t))) for t in rows["tag"])
        row: Any  # a row of the meanings table
        for row in rows.itertuples(index=False):
            goal = row.goal if isinstance(row.goal, str) else ""
            what = row.quantity + (f" ({goal})" if goal else "")
            split = row.split if isinstance(row.split, str) else "-"
            roles = f"  -> {row.roles}" if isinstance(row.roles, str) and row.roles else ""
            lines.append(
                f"    {term_safe(str(row.tag)):<{width}}  {split:<10}  {what:<29}  "
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
    # Names come from the files: control characters are escaped, never sent to the terminal.
    row: Any  # a row of the inventory
    for row in result.runs.itertuples(index=False):
        extra = ""
        if row.subrun_kind:
            extra = (
                f"  (part of {term_safe(row.logical_run)}: {row.subrun_kind} "
                f"{term_safe(row.subrun_key)})"
            )
        lines.append(
            f"{term_safe(row.run)}  [{plural(row.files, 'file')}, {plural(row.scalars, 'scalar')}, "
            f"{plural(row.histograms, 'histogram')}]{extra}"
        )
        tags = by_run.get(row.run)
        if tags is None:
            lines.append("    (no scalar, histogram or text tags)")
            continue
        names = [term_safe(t) for t in tags["tag"]]
        width = max(len(t) for t in names)
        for name, tag_row in zip(names, tags.itertuples(index=False), strict=True):
            lines.append(
                f"    {name:<{width}}  {tag_row.kind:<9}  {tag_row.size:>8} points  "
                f"steps {tag_row.min}..{tag_row.max}"
            )
    hp = result.hparams
    if not hp.empty:
        lines.append(
            f"hparams: {plural(len(hp.columns) - 1, 'column')} for {plural(len(hp), 'run')}"
        )
    return "\n".join(lines)


@click.command("export")
@click.argument("logdir", type=click.Path())
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(), help="Directory to write into."
)
@format_option(
    ["csv", "parquet"],
    help="CSV (formula-safe, opens anywhere) or Parquet (typed, compact; needs pyarrow).",
)
@click.option("--wide", is_flag=True, help="Also write scalars_wide: one column per tag.")
@click.option("--force", is_flag=True, help="Write into a directory that holds other files.")
@read_options
@quiet_option
@verbose_option
def export(
    logdir: str,
    output: str,
    output_format: str,
    wide: bool,
    force: bool,
    tags: str | None,
    runs: str | None,
    jobs: int | None,
    engine: Engine,
    quiet: bool,
    verbose: bool,
) -> None:
    """Write every scalar, histogram and hyperparameter of LOGDIR as CSV (or Parquet) files.

    \b
    LOGDIR is a directory of runs, an event file, a .tar/.tar.gz/.zip archive or an fsspec URL.
    Files written into the output directory (.csv, or .parquet with --format parquet):
      scalars       run, tag, step, wall_time, value: one row per point, nothing dropped
      histograms    run, tag, step, wall_time, min, max, mean, std, num, zero_fraction
                    (Parquet also keeps bucket_limit and bucket)
      hparams       one row per run, one column per hyperparameter
      runs          inventory: files, counts, step and time ranges, logical-run grouping
      text          text summaries
      warnings      everything the reader skipped or repaired, with file and byte offset
      meanings      per logical run and scalar tag: kind, split, quantity, roles, evidence
      scalars_wide  with --wide: one row per run and step, one column per tag

    \b
    Exporting again into a directory tbreport wrote replaces its old files (a
    scalars_wide file from an earlier --wide export is removed). CSV text cells
    that a spreadsheet would run as a formula are prefixed with a quote.
    """
    # Refuse an output that cannot be written before reading anything.
    probe_output(output, directory=True)
    out_dir = check_output_dir(output, known_names=EXPORT_FILES, force=force)
    ours = (out_dir / DIR_MARKER).is_file() or (
        out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= set(EXPORT_FILES)
    )
    result = read_logdir(
        logdir, tags=tags, runs=runs, jobs=jobs, engine=engine, verbose=verbose, quiet=quiet
    )
    written = write_export(result, out_dir, wide=wide, output_format=output_format)
    if ours:
        remove_stale(out_dir, known=EXPORT_FILES, written=written)
    mark_output_dir(out_dir, generator=f"tbreport {__version__} export")
    if not quiet:
        click.echo(
            f"wrote {plural(len(written), 'file')} to {out_dir}: "
            f"{plural(len(result.scalars), 'scalar point')}, "
            f"{plural(len(result.histograms), 'histogram')}, {plural(len(result.runs), 'run')}"
        )
