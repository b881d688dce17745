"""Where the jinja2 templates are, without importing jinja2.

Templates live in ``templates/`` at the top of the source tree and are shipped in the wheel as
``tbreport/templates``. The audit's output cache needs their fingerprint on a path that renders
nothing, so this module stays free of the report's imports.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from pathlib import Path


def template_dirs() -> list[Path]:
    """Where templates may be: inside the installed package, or at the top of the source tree."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir / "templates", package_dir.parent / "templates"]
    return [p for p in candidates if (p / "report.html.j2").is_file()]


@functools.lru_cache(maxsize=1)
def templates_fingerprint() -> str:
    """Changes whenever a template or asset changes (every file's name, size and mtime)."""
    digest = hashlib.sha256()
    for directory in template_dirs():
        for path in sorted(directory.rglob("*")):
            with contextlib.suppress(OSError):
                st = path.stat()
                digest.update(
                    f"{path.relative_to(directory)}:{st.st_size}:{st.st_mtime_ns};".encode()
                )
    return digest.hexdigest()[:16]
