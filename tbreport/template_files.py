"""Where the jinja2 templates are, without importing jinja2.

Templates live in ``templates/`` at the top of the source tree and are shipped in the wheel as
``tbreport/templates``. The audit's output cache fingerprints them on a path that renders
nothing, so this module stays free of the report's imports.
"""

from __future__ import annotations

from pathlib import Path


def template_dirs() -> list[Path]:
    """Where templates may be: inside the installed package, or at the top of the source tree."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir / "templates", package_dir.parent / "templates"]
    return [p for p in candidates if (p / "report.html.j2").is_file()]
