"""Regular expressions from users, matched against tags from files, in bounded time.

Python's ``re`` backtracks: a pattern such as ``(a+)+$`` or ``(?:.*/)?.*x`` can take minutes on a
tag of a few thousand characters, and tags are untrusted. :func:`compile_pattern` compiles with
RE2 (``google-re2``), whose matching time is linear in the text, whenever RE2 supports the
pattern. Patterns that need Python-only features (backreferences, lookaround) fall back to the
``regex`` module with a per-match time limit when it is installed, else to ``re``.

Patterns are always validated with ``re`` first, so error messages and the accepted syntax stay
Python's. RE2's ``\\d``, ``\\w`` and ``\\b`` are ASCII-only, and its ``$`` matches only at the end.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from tbreport.errors import InputError

#: Seconds one match may take with the backtracking fallback.
MATCH_TIMEOUT = 1.0


class Pattern(Protocol):
    """What callers use of a compiled pattern (a subset of ``re.Pattern``)."""

    @property
    def pattern(self) -> str: ...

    def search(self, string: str) -> Any: ...

    def fullmatch(self, string: str) -> Any: ...


class _Timed:
    """A ``regex`` pattern whose matches give up after :data:`MATCH_TIMEOUT` seconds."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self.pattern = compiled.pattern

    def _run(self, method: str, string: str) -> Any:
        try:
            return getattr(self._compiled, method)(string, timeout=MATCH_TIMEOUT)
        except TimeoutError:
            raise InputError(
                f"regular expression {self.pattern!r} took more than {MATCH_TIMEOUT:g} s on a "
                f"tag of {len(string):,} characters; simplify it (avoid nested repeats)"
            ) from None

    def search(self, string: str) -> Any:
        return self._run("search", string)

    def fullmatch(self, string: str) -> Any:
        return self._run("fullmatch", string)


def _re2(pattern: str, ignore_case: bool) -> Pattern | None:
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # unsupported syntax is expected: we fall back
    try:
        compiled: Pattern = re2.compile(pattern, options)
    except (re2.error, TypeError, ValueError):
        return None
    return compiled


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """Compile a user's regular expression for matching untrusted text in bounded time.

    Args:
        pattern: Python regular-expression syntax.
        ignore_case: Match without regard to case (``re.IGNORECASE``).

    Returns:
        An object with ``search``, ``fullmatch`` and ``pattern`` like ``re.Pattern``.

    Raises:
        re.error: The pattern is not a valid Python regular expression.
    """
    flags = re.IGNORECASE if ignore_case else 0
    python = re.compile(pattern, flags)  # Python's syntax and error messages
    linear = _re2(pattern, ignore_case)
    if linear is not None:
        return linear
    try:
        import regex
    except ImportError:
        return python
    try:
        return _Timed(regex.compile(pattern, regex.IGNORECASE if ignore_case else 0))
    except regex.error:
        return python
