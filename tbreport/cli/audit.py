"""``tbreport audit``: one row per logical run of directories, archives and URLs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import click

from tbreport.audit import AUDIT_FILES, AuditResult, write_audit
from tbreport.audit import audit as run_audit
from tbreport.audit.executor import Backend
from tbreport.cli.common import plural, probe_output, report_warnings
from tbreport.cli.options import (
    build_config,
    config_option,
    quiet_option,
    selection_options,
    verbose_option,
)
from tbreport.outputs import check_output_dir
from tbreport.reading.inputs import compile_pattern
from tbreport.reading.sources import DEFAULT_MAX_MEMBER_BYTES, DEFAULT_MAX_TOTAL_BYTES, Limits
from tbreport.textsafe import term_safe

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """``"2GiB"``, ``"500MB"``, ``"1.5g"``, ``"1048576"`` -> bytes (``K``/``M``/``G``/``T`` are
    powers of 1000, ``Ki``/``Mi``/``Gi``/``Ti`` powers of 1024).

    Raises:
        ValueError: ``text`` is not a size.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 2GiB, 500MB, 1048576)")
    number, unit, binary = match.groups()
    base = 1024 if binary or not unit else 1000
    return int(float(number) * base ** _POWERS[unit.lower()])


if TYPE_CHECKING:  # generic in recent click only (8.1, still supported, is not at run time)
    _IntParamType = click.ParamType[int]
else:
    _IntParamType = click.ParamType


class SizeType(_IntParamType):
    """A byte count with an optional unit."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size < 1:
            self.fail("must be at least 1 byte", param, ctx)
        return size


def _summary_line(result: AuditResult) -> str:
    """``audited 5 runs from 1 source in 0.4 s (...): 2 error, 3 healthy; 0 with ...``."""
    stats = result.stats
    statuses: dict[str, int] = {}
    problems = 0
    for _, summary in result.runs:
        status = str(summary.values.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
        problems += bool(summary.problems)
    shown = ", ".join(
        f"{statuses[s]} {s}"
        for s in ("error", "warning", "info", "healthy", "not-assessed", "unaudited")
        if statuses.get(s)
    )
    return (
        f"audited {plural(len(result.runs), 'run')} from {plural(stats.sources, 'source')} in "
        f"{stats.seconds:.1f} s ({stats.cached_units} of {plural(stats.units, 'unit')} from the "
        f"cache): {shown or 'no runs'}; {problems} with data-integrity problems"
    )


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Directory for audit.csv and audit.html (created when missing).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: all cores]; with --executor dask and no --scheduler, the "
    "workers of the local Dask cluster.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where runs are read and diagnosed: a local process pool, or Dask.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Run on an existing Dask cluster (tcp://host:8786); its workers read the runs "
    "directly from the same path or URL.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Cache of listings and run summaries [default: $XDG_CACHE_HOME/tbreport or "
    "~/.cache/tbreport].",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option(
    "--max-member-bytes",
    type=SizeType(),
    default=DEFAULT_MAX_MEMBER_BYTES,
    show_default="2GiB",
    help="Skip (with a warning) event files and archive members larger than this.",
)
@click.option(
    "--max-total-bytes",
    type=SizeType(),
    default=DEFAULT_MAX_TOTAL_BYTES,
    show_default="20GiB",
    help="Stop (exit 2) when an archive expands beyond this.",
)
@selection_options
@config_option
@click.option("--force", is_flag=True, help="Write into an output directory holding other files.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on stderr [default: when stderr is a terminal].",
)
@click.option(
    "--runs",
    "runs",
    metavar="REGEX",
    default=None,
    help="Only logical runs whose name matches this regular expression (case-insensitive).",
)
@quiet_option
@verbose_option
def audit(
    paths: tuple[str, ...],
    output: str,
    jobs: int | None,
    executor: Backend,
    scheduler: str | None,
    cache_dir: str | None,
    no_cache: bool,
    max_member_bytes: int,
    max_total_bytes: int,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    role_options: tuple[str, ...],
    config_path: str | None,
    force: bool,
    progress: bool | None,
    runs: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Audit archives of runs: which finished, diverged, overfit; hparams and best losses.

    \b
    PATH is a directory of runs, a .tar, .tar.gz/.tgz or .zip archive (read
    in place, nothing unpacked), or an fsspec URL of either (s3://, gs://,
    file://... when the fsspec package for it is installed). Writes
    DIR/audit.csv (one row per logical run) and DIR/audit.html (overview
    linking each run's findings). Results are cached: a second audit of
    unchanged runs reads nothing again.

    \b
    Examples:
      tbreport audit runs-2023.tar.gz runs-2024.zip -o audit/
      tbreport audit s3://team-bucket/runs/ -o audit/ --jobs 16
      tbreport audit /shared/runs -o audit/ --scheduler tcp://10.0.0.5:8786
    """
    config = build_config(
        config_path=config_path,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        fail_on=None,
        role_options=role_options,
    )
    # Refuse a foreign output directory before spending minutes on the audit.
    probe_output(output, directory=True)
    check_output_dir(output, known_names=AUDIT_FILES, force=force)
    run_pattern = compile_pattern(runs, option="--runs")

    def warn(message: str) -> None:
        click.secho(f"tbreport: {term_safe(message)}", fg="yellow", err=True)

    result = run_audit(
        list(paths),
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        limits=Limits(max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes),
        config=config,
        progress=False if quiet else progress,
        warn=(lambda message: None) if quiet else warn,
    )
    if run_pattern is not None:
        result.runs = [(src, s) for src, s in result.runs if run_pattern.search(s.run)]
    written = write_audit(result, output, force=force)

    report_warnings(result.warnings, verbose=verbose, quiet=quiet, what="about the sources")
    if quiet:
        return
    click.echo(_summary_line(result), err=True)
    for path in written:
        click.echo(f"wrote {path}", err=True)
