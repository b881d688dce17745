"""Configuration of the diagnosis: which detectors run, their parameters, tag roles, fail level.

Sources, later beating earlier: detector defaults, then ``[tool.tbreport]`` in ``pyproject.toml``
or the top level of ``tbreport.toml`` (the nearest one found from the working directory upwards,
``tbreport.toml`` first), then command-line options. Example::

    [tool.tbreport]
    select = ["L", "G201"]          # codes, names or code prefixes; default: every detector
    extend-select = []
    ignore = ["erratic-loss"]
    fail-on = "warning"             # error | warning | info | never

    [tool.tbreport.roles]           # replaces the default patterns of a role
    val_loss = ["metrics/holdout_loss"]

    [tool.tbreport.detectors.overfitting]   # a code or a name; unknown keys are errors
    min_rise = 0.2
    severity = "error"              # optional severity override

    [tool.tbreport.detectors.G201]  # raises warning and error: map each level (a single
    severity = { warning = "info", error = "warning" }   # level is refused for it)
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tbreport.diagnosis.roles import ALL_ROLES
from tbreport.errors import ConfigError

_toml: ModuleType | None  # tomllib, or tomli on Python 3.10 (None when it is not installed)
if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml
    except ModuleNotFoundError:
        _toml = None

FAIL_LEVELS = ("error", "warning", "info", "never")
_KNOWN_KEYS = {"select", "extend-select", "ignore", "fail-on", "roles", "detectors"}


@dataclass(frozen=True)
class Config:
    """Everything that changes what ``diagnose`` and ``check`` do.

    Attributes:
        select: Detectors to run (codes, names or code prefixes); ``None`` means all.
        extend_select: Added to ``select``.
        ignore: Removed from the selection, after ``select`` and ``extend_select``.
        fail_on: Lowest severity that makes ``tbreport check`` exit 1: error, warning, info, never.
        roles: Role -> regular expressions replacing that role's default tag patterns.
        detectors: Detector code or name -> parameter overrides (plus an optional ``severity``:
            one level for a detector that raises one, else a table declared level -> level;
            see :func:`tbreport.diagnosis.engine.severity_override`).
        source: The file the settings came from, if any.
    """

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str = "error"
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    detectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.fail_on not in FAIL_LEVELS:
            raise ConfigError(
                f"fail-on must be one of {', '.join(FAIL_LEVELS)}, got {self.fail_on!r}"
            )
        for role in self.roles:
            if role not in ALL_ROLES:
                raise ConfigError(f"unknown role {role!r} (known roles: {', '.join(ALL_ROLES)})")

    def override(
        self,
        *,
        select: Iterable[str] | None = None,
        extend_select: Iterable[str] | None = None,
        ignore: Iterable[str] | None = None,
        fail_on: str | None = None,
        roles: Mapping[str, Iterable[str]] | None = None,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Config:
        """A copy with command-line settings on top (``None`` keeps this config's value).

        ``select`` replaces the file's selection; ``extend_select`` and ``ignore`` add to the
        file's lists; ``roles`` and ``detectors`` replace per role / per detector key.
        """
        merged_roles = dict(self.roles)
        for role, patterns in (roles or {}).items():
            merged_roles[role] = tuple(patterns)
        merged_detectors = {key: dict(value) for key, value in self.detectors.items()}
        for key, values in (detectors or {}).items():
            merged_detectors.setdefault(key, {}).update(values)
        return dataclasses.replace(
            self,
            select=tuple(select) if select is not None else self.select,
            extend_select=self.extend_select + tuple(extend_select or ()),
            ignore=self.ignore + tuple(ignore or ()),
            fail_on=fail_on if fail_on is not None else self.fail_on,
            roles=merged_roles,
            detectors=merged_detectors,
        )


def _string_list(value: Any, *, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a string or a list of strings")
    items: list[str] = []
    for v in value:  # "L1,G201" is accepted as well as ["L1", "G201"]
        items.extend(part.strip() for part in v.split(",") if part.strip())
    return tuple(items)


def config_from_mapping(table: Mapping[str, Any], *, source: str = "configuration") -> Config:
    """Build a :class:`Config` from a parsed ``[tool.tbreport]`` table.

    Raises:
        ConfigError: Unknown keys or values of the wrong type.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [tool.tbreport] must be a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    select = None
    if "select" in table:
        select = _string_list(table["select"], key="select", source=source)
    roles_table = table.get("roles", {})
    if not isinstance(roles_table, Mapping):
        raise ConfigError(f"{source}: [tool.tbreport.roles] must be a table")
    roles = {
        role: _string_list(patterns, key=f"roles.{role}", source=source)
        for role, patterns in roles_table.items()
    }
    detectors_table = table.get("detectors", {})
    if not isinstance(detectors_table, Mapping) or not all(
        isinstance(v, Mapping) for v in detectors_table.values()
    ):
        raise ConfigError(f"{source}: [tool.tbreport.detectors.<code>] entries must be tables")
    fail_on = table.get("fail-on", "error")
    if not isinstance(fail_on, str):
        raise ConfigError(f"{source}: fail-on must be a string")
    try:
        return Config(
            select=select,
            extend_select=_string_list(
                table.get("extend-select", []), key="extend-select", source=source
            ),
            ignore=_string_list(table.get("ignore", []), key="ignore", source=source),
            fail_on=fail_on,
            roles=roles,
            detectors={str(k): dict(v) for k, v in detectors_table.items()},
            source=source,
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    if _toml is None:  # pragma: no cover
        raise ConfigError(f"cannot read {path}: install 'tomli' on Python 3.10")
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = _toml.load(handle)
            return document
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(
            f"{path} nests arrays or tables too deeply to be a configuration"
        ) from None


def load_config_file(path: str | os.PathLike[str]) -> Config:
    """Read one configuration file: ``pyproject.toml`` (its ``[tool.tbreport]``) or a
    ``tbreport.toml`` (its top level, or a ``[tool.tbreport]`` table if it has one).

    Raises:
        ConfigError: The file cannot be read or holds invalid settings.
    """
    path = Path(path)
    data = _read_toml(path)
    table = data.get("tool", {}).get("tbreport") if isinstance(data.get("tool"), dict) else None
    if table is None:
        if path.name == "pyproject.toml":
            table = {}
        else:
            table = {k: v for k, v in data.items() if k != "tool"}
    return config_from_mapping(table, source=str(path))


def find_config_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``tbreport.toml``, or ``pyproject.toml`` with a ``[tool.tbreport]`` table,
    from ``start`` (the working directory by default) up to the filesystem root."""
    directory = Path(start or Path.cwd()).resolve()
    for candidate_dir in (directory, *directory.parents):
        own = candidate_dir / "tbreport.toml"
        if own.is_file():
            return own
        pyproject = candidate_dir / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = _read_toml(pyproject)
            except ConfigError:
                continue
            tool = data.get("tool")
            if isinstance(tool, dict) and "tbreport" in tool:
                return pyproject
    return None


def load_config(
    *, path: str | os.PathLike[str] | None = None, search_from: str | os.PathLike[str] | None = None
) -> Config:
    """The configuration for a command: ``path`` if given, else the nearest config file, else
    the defaults.

    Args:
        path: An explicit ``pyproject.toml`` or ``tbreport.toml``.
        search_from: Where the upward search starts (the working directory by default).
    """
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"configuration file {os.fspath(path)!r} does not exist")
        return load_config_file(path)
    found = find_config_file(search_from)
    return load_config_file(found) if found else Config()


def as_config(value: Config | Mapping[str, Any] | str | os.PathLike[str] | None) -> Config:
    """Accept what ``tbreport.diagnose(config=...)`` accepts: a Config, a ``[tool.tbreport]``-style
    mapping, a path to a config file, or None for the defaults."""
    if value is None:
        return Config()
    if isinstance(value, Config):
        return value
    if isinstance(value, Mapping):
        return config_from_mapping(value, source="config argument")
    if isinstance(value, (str, os.PathLike)):
        return load_config(path=value)
    raise ConfigError(
        f"config must be a tbreport Config, a mapping or a path, not {type(value).__name__}"
    )
