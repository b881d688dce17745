"""``tbreport report``: one self-contained HTML file (or a CSV bundle) about every run."""

from __future__ import annotations

import time
from pathlib import Path

import click

from tbreport._version import __version__
from tbreport.cli.common import STDOUT, plural, probe_output, read_logdir
from tbreport.cli.options import (
    build_config,
    config_option,
    format_option,
    quiet_option,
    read_options,
    selection_options,
    verbose_option,
)
from tbreport.diagnosis import Diagnosis, diagnose
from tbreport.outputs import atomic_write_text, check_output_dir, check_output_file
from tbreport.reading.discovery import printable_name
from tbreport.reading.reader import Engine
from tbreport.report import render_report, write_csv_bundle
from tbreport.report.bundle import bundle_files
from tbreport.report.html import PlotlyMode
from tbreport.report.smoothing import DEFAULT_SMOOTHING
from tbreport.report.thinning import DEFAULT_MAX_POINTS

DEFAULT_HTML = "report.html"
DEFAULT_CSV_DIR = "report-csv"


def _size(path: Path) -> str:
    size: float = path.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover


def _checked_outputs(
    output: str | None, output_format: str, *, force: bool
) -> tuple[Path | None, Path | None]:
    """The CSV bundle's directory (for ``--format csv``), or the HTML file (None: standard
    output), refused when they cannot be written."""
    if output_format == "csv":
        probe_output(output or DEFAULT_CSV_DIR, directory=True)
        csv_dir = check_output_dir(
            output or DEFAULT_CSV_DIR, known_names=bundle_files(), force=force
        )
        return csv_dir, None
    probe_output(output or DEFAULT_HTML, directory=False, stdout_ok=True)
    if output == STDOUT:
        return None, None
    return None, check_output_file(output or DEFAULT_HTML, force=force)


def _summary(diagnosis: Diagnosis) -> str:
    """``3 runs, 1 error, 2 warnings, 0 info``."""
    counts = diagnosis.counts()
    return (
        f"{plural(len(diagnosis.runs), 'run')}, {plural(counts['error'], 'error')}, "
        f"{plural(counts['warning'], 'warning')}, {counts['info']} info"
    )


@click.command("report")
@click.argument("logdir", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=str),
    default=None,
    help=f"HTML file ('-': standard output), or directory for --format csv "
    f"[default: {DEFAULT_HTML}, {DEFAULT_CSV_DIR}/].",
)
@format_option(
    ["html", "csv"],
    help="One HTML file, or a directory of CSV files (summary, findings, every point).",
)
@click.option(
    "--plotly",
    "plotly_mode",
    type=click.Choice(["inline", "cdn"]),
    default="inline",
    show_default=True,
    help="Embed plotly.js (works offline) or load it from the plotly CDN (smaller file).",
)
@click.option("--title", default=None, help="Report title [default: tbreport: LOGDIR].")
@click.option(
    "--smoothing",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=DEFAULT_SMOOTHING,
    show_default=True,
    help="Initial smoothing weight of the charts (TensorBoard's EMA; a slider changes it).",
)
@click.option(
    "--max-points",
    type=click.IntRange(min=10),
    default=DEFAULT_MAX_POINTS,
    show_default=True,
    help="Thin longer curves to about this many points for display (CSV keeps all).",
)
@click.option("--force", is_flag=True, help="Overwrite an output that tbreport did not write.")
@selection_options
@config_option
@read_options
@quiet_option
@verbose_option
def report(
    logdir: str,
    output: str | None,
    output_format: str,
    plotly_mode: PlotlyMode,
    title: str | None,
    smoothing: float,
    max_points: int,
    force: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    role_options: tuple[str, ...],
    config_path: str | None,
    tags: str | None,
    runs: str | None,
    jobs: int | None,
    engine: Engine,
    quiet: bool,
    verbose: bool,
) -> None:
    """Write a report about every run in LOGDIR: one HTML file, or CSV files.

    \b
    The HTML report works offline and shows: an overview table of runs
    (health, best validation loss and its step, final losses, duration,
    findings, hyperparameters; sortable, filterable by regex), every
    finding with advice, per-run charts (smoothed losses with marks where
    findings happen, learning rate, gradient norm, predictions, weight and
    gradient distributions) and every metric the runs share compared on
    one chart each. LOGDIR may also be a .tar/.tar.gz/.zip archive or an
    fsspec URL.

    \b
    Examples:
      tbreport report runs/ -o report.html
      tbreport report runs/ -o report.html --plotly cdn
      tbreport report runs/ --format csv -o report-csv/
      tbreport report runs.tar.gz --runs 'lr_1e-3' -o - > report.html
    """
    started = time.perf_counter()
    config = build_config(
        config_path=config_path,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        fail_on=None,
        role_options=role_options,
    )
    # Refuse a bad output before spending time on reading.
    csv_dir, target = _checked_outputs(output, output_format, force=force)
    result = read_logdir(
        logdir, tags=tags, runs=runs, jobs=jobs, engine=engine, verbose=verbose, quiet=quiet
    )
    diagnosis = diagnose(result, config=config)
    summary = _summary(diagnosis)
    if csv_dir is not None:
        written = write_csv_bundle(result, diagnosis, csv_dir, force=force)
        if not quiet:
            click.echo(
                f"wrote {plural(len(written), 'CSV file')} to {csv_dir} ({summary}) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        return
    html = render_report(
        result,
        diagnosis,
        title=title,
        logdir=printable_name(logdir),
        plotly=plotly_mode,
        smoothing=smoothing,
        max_points=max_points,
    )
    _write_html(html, target, summary=summary, quiet=quiet, started=started)


def _write_html(
    html: str, target: Path | None, *, summary: str, quiet: bool, started: float
) -> None:
    """The report to ``target`` (None: standard output), and what was written on stderr."""
    if target is None:
        click.echo(html, nl=False)
        if not quiet:  # the summary goes to stderr: stdout is the report
            click.echo(f"wrote the report to standard output ({summary})", err=True)
        return
    atomic_write_text(target, html)
    elapsed = time.perf_counter() - started
    if not quiet:
        click.echo(
            f"wrote {target} ({_size(target)}; {summary}) in {elapsed:.1f} s "
            f"[tbreport {__version__}]"
        )
