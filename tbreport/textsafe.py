"""Untrusted text made safe for a terminal.

Run names, tags, messages and paths come from event files and archives. Printed raw, a control
character could clear the screen, move the cursor to forge lines, set the window title or write
to the clipboard (OSC 52). Every piece of such text the commands print goes through
:func:`term_safe`, which shows control characters as escapes instead.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, DEL, and the Unicode controls that reorder or hide text (bidi overrides and
# isolates, zero-width joiners are left alone: they are part of ordinary names in some scripts).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def term_safe(value: Any) -> str:
    """``str(value)`` with control characters (newlines and tabs too) shown as ``\\xNN`` escapes.

    Args:
        value: Anything; converted with ``str``.

    Returns:
        Text that prints as one line and cannot drive the terminal.
    """
    text = str(value)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
