"""The ``tbreport`` command line: the click group; each verb lives in a module beside this one.

Shared option bundles are in `tbreport.cli.options`, shared helpers (output checks, reading with
warnings on stderr) in `tbreport.cli.common`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from tbreport._version import __version__
from tbreport.cli import audit, check, read, report, watch
from tbreport.errors import EXIT_USAGE, TbreportError
from tbreport.textsafe import term_safe


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that temporary files are cleaned up."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception for the duration of a command (when nobody else handles
    it), so `finally` blocks run as they do for Ctrl-C and no half-written file is left."""
    installed = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    )
    if installed:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Group(click.Group):
    """Turns every expected failure into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        if os.environ.get("NO_COLOR"):  # https://no-color.org: no ANSI colour anywhere
            ctx.color = False
        try:
            with _sigterm_unwinds():
                return super().invoke(ctx)
        except _Terminated:
            click.echo("tbreport: terminated", err=True)
            sys.exit(128 + signal.SIGTERM)
        except TbreportError as exc:
            # Messages quote paths and names from the input: no control characters get through.
            click.secho(f"tbreport: error: {term_safe(exc)}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("tbreport: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:  # e.g. `tbreport ls runs | head`
            sys.stderr.close()
            sys.exit(0)
        except OSError as exc:  # disk full, read-only file system...: the machine, not a bug
            where = f": {exc.filename}" if exc.filename else ""
            reason = exc.strerror or str(exc) or type(exc).__name__
            click.secho(
                f"tbreport: error: {term_safe(reason)}{term_safe(where)}", fg="red", err=True
            )
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # a bug: still no traceback unless asked for
            if os.environ.get("TBREPORT_DEBUG"):
                raise
            click.secho(
                f"tbreport: internal error: {type(exc).__name__}: {exc}\n"
                "  (set TBREPORT_DEBUG=1 to see the traceback, and please report it)",
                fg="red",
                err=True,
            )
            sys.exit(EXIT_USAGE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tbreport")
def cli() -> None:
    """Turn TensorBoard event files into answers.

    \b
    Read every scalar, histogram and hyperparameter (no downsampling), diagnose
    what went wrong in training, and write self-contained HTML or CSV reports.

    \b
    Examples:
      tbreport ls runs/
      tbreport export runs/ -o exported/
      tbreport check runs/ --fail-on error
      tbreport report runs/ -o report.html
      tbreport watch runs/ --fail-on error
    """


cli.add_command(read.ls)
cli.add_command(read.export)
cli.add_command(check.check)
cli.add_command(check.rules)
cli.add_command(audit.audit)
cli.add_command(report.report)
cli.add_command(watch.watch)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tbreport")
