"""Errors that reach the user as a message and an exit code, never a traceback."""

from __future__ import annotations

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class TbreportError(Exception):
    """An error caused by the input or the invocation; shown to the user as one clear message."""

    exit_code = EXIT_USAGE


class InputError(TbreportError):
    """The given path or data cannot be read at all (missing, unreadable, no event files)."""


class ConfigError(TbreportError):
    """A configuration file or option is invalid."""
