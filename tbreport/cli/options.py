"""Option bundles shared by several verbs, each declared once.

- `read_options` (``--tags --runs --jobs --engine``): every verb that reads a LOGDIR;
- `selection_options` (``--select --extend-select --ignore --role``) and `config_option`
  (``--config``): every verb that diagnoses (check, report, audit, watch), turned into one
  `Config` by `build_config`;
- `quiet_option` (``-q``) and `verbose_option` (``-v``);
- `format_option` (``-f/--format``, each verb its own choices) and `fail_on_option`
  (``--fail-on``: check, watch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from tbreport.diagnosis.config import FAIL_LEVELS, Config, load_config
from tbreport.diagnosis.roles import ALL_ROLES, parse_role_option

#: A command function (or command) that an option bundle decorates and returns, typed as it was.
F = TypeVar("F", bound=Callable[..., Any])


def read_options(func: F) -> F:
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
        help="Processes reading files, this one included [default: all cores when worthwhile].",
    )(func)
    func = click.option(
        "--runs",
        "runs",
        metavar="REGEX",
        default=None,
        help="Only runs whose name matches this regular expression (case-insensitive).",
    )(func)
    func = click.option(
        "--tags",
        "tags",
        metavar="REGEX",
        default=None,
        help="Only scalar/histogram/text tags matching this regular expression "
        "(case-insensitive, as TensorBoard's filter).",
    )(func)
    return func


def selection_options(func: F) -> F:
    """``--select --extend-select --ignore --role``: the detectors and roles of every verb that
    diagnoses (check, report, audit, watch)."""
    func = click.option(
        "--role",
        "role_options",
        multiple=True,
        metavar="NAME=REGEX",
        help=(
            "Tag pattern for a role (replaces its defaults; repeatable). Roles: "
            + ", ".join(ALL_ROLES)
            + "."
        ),
    )(func)
    func = click.option(
        "--ignore",
        multiple=True,
        metavar="CODES",
        help="Detectors to skip: codes, names or code prefixes, comma-separated or repeated.",
    )(func)
    func = click.option(
        "--extend-select",
        multiple=True,
        metavar="CODES",
        help="Detectors to add to the selection (from the config file or --select).",
    )(func)
    func = click.option(
        "--select",
        multiple=True,
        metavar="CODES",
        help="Detectors to run: codes (L101), names (overfitting), prefixes (L, G2) [default: all]",
    )(func)
    return func


def config_option(func: F) -> F:
    """``--config``: the configuration file (else the nearest one from the working directory)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=str),
        default=None,
        help=(
            "A pyproject.toml or tbreport.toml [default: the nearest one from the working "
            "directory]."
        ),
    )(func)


def _split_list(values: tuple[str, ...]) -> list[str] | None:
    """Repeatable, comma-separated option values as one list (None when not given)."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def build_config(
    *,
    config_path: str | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    fail_on: str | None,
    role_options: tuple[str, ...],
) -> Config:
    """The file configuration (explicit, or found from the working directory) with command-line
    options on top."""
    base = load_config(path=config_path)
    roles: dict[str, list[str]] = {}
    for text in role_options:
        name, pattern = parse_role_option(text)
        roles.setdefault(name, []).append(pattern)
    return base.override(
        select=_split_list(select),
        extend_select=_split_list(extend_select),
        ignore=_split_list(ignore),
        fail_on=fail_on,
        roles=roles,
    )


def quiet_option(func: F) -> F:
    """``-q/--quiet``: only errors on stderr."""
    return click.option(
        "--quiet", "-q", is_flag=True, help="Print nothing but errors (no summary, no warnings)."
    )(func)


def verbose_option(func: F) -> F:
    """``-v/--verbose``: every reading warning, not one example per kind."""
    return click.option(
        "--verbose", "-v", is_flag=True, help="List every reading warning, not one per kind."
    )(func)


def format_option(choices: list[str], *, help: str) -> Callable[[F], F]:
    """``-f/--format`` into ``output_format``, among ``choices`` (the first is the default)."""
    return click.option(
        "--format",
        "-f",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


def fail_on_option(*, help: str) -> Callable[[F], F]:
    """``--fail-on``: the severity at which the verb exits 1 (None: the config's)."""
    return click.option("--fail-on", type=click.Choice(list(FAIL_LEVELS)), default=None, help=help)
