"""``tbreport watch``: diagnose runs while they train, reporting each finding once."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import click

from tbreport.cli.common import SEVERITY_COLOURS
from tbreport.cli.options import (
    build_config,
    config_option,
    fail_on_option,
    format_option,
    selection_options,
)
from tbreport.errors import EXIT_FINDINGS, EXIT_OK
from tbreport.model import Finding, ReadWarning, Severity
from tbreport.monitor import Monitor, RunStatus
from tbreport.outputs import check_output_file
from tbreport.reading.discovery import discover_runs
from tbreport.reading.incremental import DEFAULT_STALL_SECONDS
from tbreport.report import write_html

# C0/C1 control characters, DEL and the bidirectional overrides: anything that could move the
# cursor, recolour the terminal or reorder text if printed as it is.
_UNSAFE = {
    **{c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]},
    **{c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]},
}


def terminal_safe(text: object) -> str:
    """``text`` with control characters escaped (``\\x1b``), safe to print to a terminal."""
    return str(text).translate(_UNSAFE)


def _finding_line(finding: Finding) -> str:
    where = f"step {finding.step}" if finding.step is not None else "whole run"
    return (
        f"{terminal_safe(finding.run)}  {finding.code} {Severity(finding.severity).value:<7} "
        f"{finding.name} ({where}): {terminal_safe(finding.message)}"
    )


def _json_line(finding: Finding, wall_time: float) -> str:
    item = finding.to_dict()
    item["wall_time"] = wall_time
    try:
        return json.dumps(item, allow_nan=False)
    except ValueError:  # a NaN in the evidence: strict JSON has no NaN, so say it as text
        return json.dumps(_finite(item), allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _format_value(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class _Output:
    """Where findings, warnings and the status table go, for one output format."""

    def __init__(self, *, output_format: str, live: bool) -> None:
        self.output_format = output_format
        self.live = None
        self.console = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self.console = Console()
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def finding(self, finding: Finding, wall_time: float) -> None:
        if self.output_format == "json":
            sys.stdout.write(_json_line(finding, wall_time) + "\n")
            sys.stdout.flush()  # a reader of the pipe must see it now, not at exit
        elif self.console is not None:
            from rich.text import Text

            colour = SEVERITY_COLOURS[Severity(finding.severity).value]
            self.console.print(Text(_finding_line(finding), style=colour))
        else:
            click.echo(_finding_line(finding))
            sys.stdout.flush()

    def warning(self, warning: ReadWarning) -> None:
        click.echo(f"tbreport: [{warning.kind}] {terminal_safe(warning)}", err=True)

    def table(self, runs: list[RunStatus], *, logdir: str, polls: int) -> None:
        if self.live is None:
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=f"tbreport watch {terminal_safe(logdir)}  (poll {polls}, Ctrl-C to stop)",
            title_justify="left",
        )
        for column in ("run", "last step", "train loss", "val loss", "status", "newest finding"):
            table.add_column(column, overflow="fold")
        for status in runs:
            losses = {role: _format_value(value) for role, (_, value) in status.losses.items()}
            newest = status.newest
            table.add_row(
                Text(terminal_safe(status.run)),
                "" if status.last_step is None else str(status.last_step),
                losses.get("train_loss", ""),
                losses.get("val_loss", ""),
                Text(status.status, style=SEVERITY_COLOURS.get(status.status, "")),
                Text(_newest(newest)),
            )
        self.live.update(table, refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def summary(self, text: str) -> None:
        # JSON lines stay machine-readable on stdout; the summary goes to stderr then.
        click.echo(text, err=self.output_format == "json")


def _newest(finding: Finding | None) -> str:
    if finding is None:
        return ""
    where = f" at step {finding.step}" if finding.step is not None else ""
    return f"{finding.code} {finding.name}{where}"


def _summary(monitor: Monitor, started: float) -> str:
    counts = {s.value: 0 for s in Severity}
    for finding in monitor.findings:
        counts[Severity(finding.severity).value] += 1
    runs = monitor.runs
    problems = [r for r in runs if r.status != "healthy"]
    lines = [
        f"tbreport watch: {len(runs)} run(s) watched for {time.monotonic() - started:.0f} s "
        f"({monitor.reader.polls} polls); {len(monitor.findings)} finding(s) reported "
        f"({counts['error']} error, {counts['warning']} warning, {counts['info']} info)"
    ]
    lines += [f"  {terminal_safe(r.run)}: {r.status}" for r in problems]
    return "\n".join(lines)


def _findings_signature(monitor: Monitor) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (r.run, f.code, Severity(f.severity).value) for r in monitor.runs for f in r.findings
    )


@click.command("watch")
@click.argument("logdir", type=click.Path(path_type=str))
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="Seconds between polls.",
)
@format_option(
    ["text", "json"],
    help="text: a live table on a terminal (else one line per finding); json: one JSON object "
    "per new finding per line.",
)
@fail_on_option(
    help="Exit 1 as soon as a finding at or above this severity appears "
    "[default: the config's, else error]."
)
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SECONDS",
    help="Exit (0, or 1 per --fail-on) once no file has grown for this long.",
)
@click.option(
    "--stall",
    "stall_seconds",
    type=click.FloatRange(min=0.0),
    default=DEFAULT_STALL_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="A partial record at the end of a file counts as damage once the file has not grown "
    "for this long (before that, the writer is still writing it).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Rewrite this HTML report (atomically) whenever the findings change.",
)
@click.option("--force", is_flag=True, help="Let --html overwrite a file tbreport did not write.")
@selection_options
@config_option
def watch(
    logdir: str,
    interval: float,
    output_format: str,
    fail_on: str | None,
    until_idle: float | None,
    stall_seconds: float,
    html_path: str | None,
    force: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    role_options: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Watch the runs in LOGDIR while they train; report each new finding once.

    \b
    Every --interval seconds only the bytes written since the last poll are
    read and only the runs they belong to are diagnosed again. A finding is
    reported once, and again only if its severity rises. A record still
    being written is not damage (see --stall). LOGDIR may not exist yet.

    \b
    Exit status: 1 as soon as a finding at or above --fail-on appears;
    0 on Ctrl-C (after a summary) or at --until-idle without such a finding;
    2 bad usage or unreadable input.

    \b
    Examples:
      tbreport watch runs/
      tbreport watch runs/ --fail-on error --format json
      tbreport watch runs/ --until-idle 600 --html live-report.html
    """
    config = build_config(
        config_path=config_path,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        fail_on=fail_on,
        role_options=role_options,
    )
    if os.path.exists(logdir):  # a file that is not an event file is an error now, not later
        discover_runs(logdir)
    if html_path is not None:
        check_output_file(html_path, force=force)
    monitor = Monitor(logdir, config=config, stall_seconds=stall_seconds)
    live = output_format == "text" and sys.stdout.isatty()
    click.echo(
        f"tbreport: watching {terminal_safe(logdir)} every {interval:g} s"
        + ("" if os.path.exists(logdir) else " (it does not exist yet)")
        + "; Ctrl-C to stop",
        err=True,
    )
    output = _Output(output_format=output_format, live=live)
    started = time.monotonic()
    try:
        code = _poll_until_done(
            monitor,
            output,
            logdir=logdir,
            interval=interval,
            until_idle=until_idle,
            html_path=html_path,
        )
    except KeyboardInterrupt:
        code = EXIT_OK
    finally:
        output.close()
    output.summary(_summary(monitor, started))
    if code:
        sys.exit(code)


def _poll_until_done(
    monitor: Monitor,
    output: _Output,
    *,
    logdir: str,
    interval: float,
    until_idle: float | None,
    html_path: str | None,
) -> int:
    """Poll every ``interval`` seconds, showing what is new (and rewriting the HTML report
    when the findings change), until a finding calls for a stop (exit status 1) or the files
    have been idle for ``until_idle`` seconds (0)."""
    html_signature: tuple[tuple[str, str, str], ...] | None = None
    while True:
        poll_started = time.monotonic()
        idle = until_idle is not None and monitor.idle_seconds() >= until_idle
        new = monitor.poll(finished=idle)
        detected = time.time()
        for warning in monitor.last_poll.warnings:
            output.warning(warning)
        for finding in new:
            output.finding(finding, detected)
        output.table(monitor.runs, logdir=logdir, polls=monitor.reader.polls)
        if html_path is not None:
            signature = _findings_signature(monitor)
            if signature != html_signature:
                _write_html(monitor, html_path, logdir=logdir)
                html_signature = signature
        if monitor.should_stop:
            return EXIT_FINDINGS
        if idle:
            return EXIT_OK
        time.sleep(max(0.0, interval - (time.monotonic() - poll_started)))


def _write_html(monitor: Monitor, path: str, *, logdir: str) -> None:
    if not monitor.reader.runs:
        return  # nothing to show yet
    # Files we write are ours from the first write on, so later rewrites need no --force.
    write_html(monitor.read_result(), monitor.diagnosis(), Path(path), force=True, logdir=logdir)


__all__ = ["terminal_safe", "watch"]
