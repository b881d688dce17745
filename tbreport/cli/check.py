"""``tbreport check`` (diagnose runs, exit non-zero on findings) and ``tbreport rules`` (docs)."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from typing import Any

import click

from tbreport.cli.common import SEVERITY_COLOURS, read_logdir, use_colour
from tbreport.cli.options import (
    build_config,
    config_option,
    fail_on_option,
    format_option,
    quiet_option,
    read_options,
    selection_options,
)
from tbreport.diagnosis import Diagnosis, diagnose
from tbreport.diagnosis.detectors import ALL_DETECTORS, Detector, find_detector
from tbreport.errors import EXIT_FINDINGS, EXIT_OK, ConfigError
from tbreport.model import Finding, Severity
from tbreport.reading.discovery import printable_name
from tbreport.reading.inputs import compile_pattern
from tbreport.reading.reader import Engine
from tbreport.report.csvsafe import csv_text
from tbreport.textsafe import term_safe


def exit_code_for(diagnosis: Diagnosis, *, fail_on: str) -> int:
    """1 when a finding at or above ``fail_on`` exists, else 0 (``never`` always gives 0)."""
    if fail_on == "never":
        return EXIT_OK
    threshold = Severity(fail_on).rank
    if any(Severity(f.severity).rank >= threshold for f in diagnosis):
        return EXIT_FINDINGS
    return EXIT_OK


# -- text output --------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(
    diagnosis: Diagnosis, *, verbose: bool = False, color: bool = False, quiet: bool = False
) -> str:
    """Findings grouped by run, worst first, then a one-line summary (with ``quiet``: the
    findings only)."""

    def style(text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if color else text

    out = io.StringIO()
    healthy, unassessed = [], []
    for run in diagnosis.runs:
        if not run.findings and not verbose:
            if run.assessed:
                healthy.append(run.run)
            else:
                unassessed.append(f"{term_safe(run.run)}: {run.reason}")
            continue
        status_colour = SEVERITY_COLOURS.get(run.status, "white")
        name = term_safe(run.run)
        out.write(style(name, bold=True) + "  " + style(run.status, fg=status_colour) + "\n")
        for f in run.findings:
            severity = Severity(f.severity).value
            where = f"step {f.step}" if f.step is not None else "whole run"
            out.write(
                "  "
                + style(f"{f.code} {severity:<7}", fg=SEVERITY_COLOURS[severity], bold=True)
                + f" {f.name} ({where}): {term_safe(f.message)}\n"
            )
            if f.advice:
                out.write(style(f"      fix: {term_safe(f.advice)}", dim=True) + "\n")
        if verbose:
            for s in run.skipped:
                reason = term_safe(s.reason)
                out.write(style(f"  skipped {s.code} {s.name}: {reason}", dim=True) + "\n")
            if run.roles:
                roles = term_safe(
                    "; ".join(f"{k}={', '.join(v[:3])}" for k, v in run.roles.items())
                )
                out.write(style(f"  roles: {roles}", dim=True) + "\n")
        out.write("\n")
    if quiet:
        return out.getvalue()
    if healthy:
        out.write(style(f"healthy ({_plural(len(healthy), 'run')}):", fg="green") + "\n")
        out.writelines(f"  {term_safe(name)}\n" for name in healthy)
        out.write("\n")
    if unassessed:
        header = f"not assessed ({_plural(len(unassessed), 'run')}):"
        out.write(style(header, fg="yellow") + "\n")
        out.writelines(f"  {line}\n" for line in unassessed)
        out.write("\n")
    counts = diagnosis.counts()
    problem_runs = sum(1 for r in diagnosis.runs if r.findings)
    summary = (
        f"{_plural(len(diagnosis), 'finding')} ({_plural(counts['error'], 'error')}, "
        f"{_plural(counts['warning'], 'warning')}, {counts['info']} info) in {problem_runs} of "
        f"{_plural(len(diagnosis.runs), 'run')}"
    )
    skipped = sum(len(r.skipped) for r in diagnosis.runs)
    if skipped and not verbose:
        summary += (
            f"; {_plural(skipped, 'detector check')} skipped for missing data (-v lists them)"
        )
    worst = diagnosis.worst()
    colour = SEVERITY_COLOURS[worst.value] if worst else "green"
    out.write(style(summary, fg=colour, bold=True) + "\n")
    return out.getvalue()


@click.command()
@click.argument("logdir", type=click.Path(path_type=str))
@format_option(["text", "json", "csv"], help="Output format.")
@selection_options
@fail_on_option(
    help="Exit 1 on a finding at or above this severity [default: the config's, else error]."
)
@config_option
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also list healthy runs, skipped detectors, roles and every reading warning.",
)
@click.option(
    "--fail-on-unassessed",
    is_flag=True,
    help="Exit 1 also when a run could not be assessed (no data, no loss or reward recognised).",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the text output [default: on a terminal, unless NO_COLOR is set].",
)
@read_options
@quiet_option
def check(
    logdir: str,
    output_format: str,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    role_options: tuple[str, ...],
    fail_on: str | None,
    config_path: str | None,
    verbose: bool,
    color: bool | None,
    fail_on_unassessed: bool,
    tags: str | None,
    runs: str | None,
    jobs: int | None,
    engine: Engine,
    quiet: bool,
) -> None:
    """Diagnose the training runs in LOGDIR and report what went wrong.

    \b
    Every logical run (Keras train/ + validation/ and add_scalars series
    folded together) is checked by every selected detector; detectors
    whose tags are missing are reported as skipped, never as passed.
    `tbreport rules` documents each detector.

    \b
    Exit status: 0 no finding at or above --fail-on; 1 such a finding
    exists; 2 bad usage or unreadable input.

    \b
    Examples:
      tbreport check runs/
      tbreport check runs/ --fail-on warning --format json > findings.json
      tbreport check runs/ --select L,G201 --ignore erratic-loss
      tbreport check runs/ --role val_loss='metrics/holdout_loss'
    """
    config = build_config(
        config_path=config_path,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        fail_on=fail_on,
        role_options=role_options,
    )
    # Read warnings go to stderr; damaged files also become D902 findings. Every tag is read:
    # a detector never judges a run on part of it, so --tags only selects what is shown.
    result = read_logdir(
        logdir, tags=None, runs=runs, jobs=jobs, engine=engine, verbose=verbose, quiet=quiet
    )
    diagnosis = diagnose(result, config=config)
    shown, hidden = filter_findings(diagnosis, tags=tags)
    if output_format == "json":
        document = shown.to_json_dict(logdir=printable_name(logdir))
        document["hidden_findings"] = hidden
        click.echo(json.dumps(document, indent=2, allow_nan=False))
    elif output_format == "csv":
        # Run names and tags come from the files: as formula-safe as every CSV we write.
        click.echo(csv_text(shown.to_frame(as_text=True)), nl=False)
    else:
        colour = use_colour(color)
        text = render_text(shown, verbose=verbose, color=colour, quiet=quiet)
        if hidden and not quiet:
            text += f"{_plural(hidden, 'finding')} on other tags hidden by --tags\n"
        click.echo(text, nl=False, color=colour)
    # The exit status and the runs' status count every finding, shown or not.
    code = exit_code_for(diagnosis, fail_on=config.fail_on)
    if not code and fail_on_unassessed and any(not r.assessed for r in diagnosis.runs):
        code = EXIT_FINDINGS
    if code:
        sys.exit(code)


def filter_findings(diagnosis: Diagnosis, *, tags: str | None) -> tuple[Diagnosis, int]:
    """The findings whose evidence comes from a tag matching ``tags`` (all when None), and how
    many were hidden. Runs keep their status: a hidden finding still makes a run unhealthy."""
    if not tags:
        return diagnosis, 0
    pattern = compile_pattern(tags, option="--tags")

    def keep(finding: Finding) -> bool:
        return any(pattern.search(t) for t in finding.tags)

    runs = [
        dataclasses.replace(r, findings=tuple(f for f in r.findings if keep(f)))
        for r in diagnosis.runs
    ]
    kept = [f for f in diagnosis if keep(f)]
    shown = Diagnosis(kept, runs=runs, read=diagnosis.read, detectors=diagnosis.detectors)
    return shown, len(diagnosis) - len(kept)


# -- rules --------------------------------------------------------------------------------------


# The documentation is rendered from the registry, for the README and docs/rules.md as well.
from tbreport.diagnosis.reference import (  # noqa: E402
    detector_reference,
    render_rule_text,
    rules_document,
    rules_markdown,
    rules_sections_markdown,
    rules_table,
)


def matching_detectors(key: str) -> list[type[Detector]]:
    """Detectors a RULE names: a code, a name, or a code prefix (as --select takes them).

    Raises:
        click.UsageError: Nothing matches.
    """
    try:
        return [find_detector(key)]
    except ConfigError:
        pass
    wanted = key.strip().lower()
    if wanted == "all":
        return list(ALL_DETECTORS)
    hits = [d for d in ALL_DETECTORS if d.code.lower().startswith(wanted)]
    if not hits:
        raise click.UsageError(
            f"unknown detector {key!r}: no code, name or code prefix matches; "
            "`tbreport rules` lists them"
        )
    return hits


@click.command()
@click.argument("rule", required=False)
@format_option(
    ["text", "json", "markdown"],
    help=(
        "Output format (markdown: the README's table; with RULE, the sections of docs/rules.md, "
        "all of it for 'all')."
    ),
)
def rules(rule: str | None, output_format: str) -> None:
    """Document the detectors: what each detects, why it matters, what to do, its defaults.

    \b
    Without RULE, a table of every detector (code, name, every severity it
    can raise, one line).
    RULE is a code (L101), a name (overfitting), a code prefix (L1, G) or
    "all": the full documentation of each detector it matches.

    \b
    Examples:
      tbreport rules
      tbreport rules overfitting
      tbreport rules L1
      tbreport rules G201 --format json
      tbreport rules all --format markdown     # docs/rules.md
    """
    chosen = matching_detectors(rule) if rule else list(ALL_DETECTORS)
    if output_format == "json":
        click.echo(json.dumps([detector_reference(d) for d in chosen], indent=2))
        return
    if output_format == "markdown":
        if not rule:
            click.echo(rules_markdown(chosen))
        elif rule.strip().lower() == "all":
            click.echo(rules_document(chosen), nl=False)
        else:
            click.echo(rules_sections_markdown(chosen), nl=False)
        return
    if not rule:
        click.echo(rules_table(chosen))
        click.echo("\n`tbreport rules CODE` (or a name, or a code prefix such as L1) explains one.")
        return
    click.echo("\n".join(render_rule_text(d) for d in chosen).rstrip() + "\n", nl=False)
