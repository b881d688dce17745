"""The report layer: self-contained HTML (jinja2 + plotly) and CSV bundles.

Typical use::

    import tbreport
    from tbreport.report import write_html

    read = tbreport.read("runs/")
    write_html(read, tbreport.diagnose(read), "report.html")
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from tbreport._version import __version__
from tbreport.outputs import atomic_write_text, check_output_file
from tbreport.report.bundle import write_bundle
from tbreport.report.collect import ReportData, collect
from tbreport.report.html import PlotlyMode, render_html
from tbreport.report.smoothing import DEFAULT_SMOOTHING
from tbreport.report.thinning import DEFAULT_MAX_POINTS

__all__ = [
    "ReportData",
    "collect",
    "render_report",
    "write_csv_bundle",
    "write_html",
]


def render_report(
    read: Any,
    diagnosis: Any | None = None,
    *,
    title: str | None = None,
    logdir: str = "",
    plotly: PlotlyMode = "inline",
    smoothing: float = DEFAULT_SMOOTHING,
    max_points: int = DEFAULT_MAX_POINTS,
) -> str:
    """The HTML report of a ReadResult and its Diagnosis, as a string.

    Args:
        read: What ``tbreport.read()`` returned.
        diagnosis: What ``tbreport.diagnose(read)`` returned; None shows the data without
            findings.
        title: Report title (default: ``tbreport: <logdir>``).
        logdir: The LOGDIR as the user gave it, shown in the header.
        plotly: ``"inline"`` embeds plotly.js once (works offline); ``"cdn"`` loads it from
            the plotly CDN (a small file that needs network access to draw charts).
        smoothing: Initial smoothing weight, in ``[0, 1)`` (TensorBoard's default 0.6).
        max_points: Curves with more points are thinned for display (CSV keeps every point).

    Returns:
        One HTML document.
    """
    if plotly not in ("inline", "cdn"):
        raise ValueError(f"plotly must be 'inline' or 'cdn', not {plotly!r}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if max_points < 10:
        raise ValueError(f"max_points must be at least 10, got {max_points!r}")
    data = collect(read, diagnosis)
    return render_html(
        data,
        title=title or (f"tbreport: {logdir}" if logdir else "tbreport report"),
        logdir=logdir,
        plotly=plotly,
        smoothing=smoothing,
        max_points=max_points,
    )


def write_html(
    read: Any,
    diagnosis: Any | None,
    path: str | PathLike[str],
    *,
    force: bool = False,
    **options: Any,
) -> Path:
    """Write the HTML report to ``path`` atomically.

    Args:
        read: What ``tbreport.read()`` returned.
        diagnosis: Its Diagnosis, or None.
        path: The HTML file.
        force: Overwrite ``path`` even when it is not a tbreport report.
        **options: As for :func:`render_report`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` is a directory, or a file tbreport did not write and ``force`` is
            not set.
    """
    target = check_output_file(path, force=force)
    return atomic_write_text(target, render_report(read, diagnosis, **options))


def write_csv_bundle(
    read: Any,
    diagnosis: Any | None,
    directory: str | PathLike[str],
    *,
    force: bool = False,
) -> list[Path]:
    """Write ``summary.csv``, ``findings.csv`` and the export tables into ``directory``.

    Args:
        read: What ``tbreport.read()`` returned.
        diagnosis: Its Diagnosis, or None.
        directory: The output directory.
        force: Write into a directory holding files tbreport did not write.

    Returns:
        The files written.
    """

    return write_bundle(
        collect(read, diagnosis),
        read,
        directory,
        force=force,
        findings=(
            diagnosis.to_frame(as_text=True)
            if diagnosis is not None and hasattr(diagnosis, "to_frame")
            else None
        ),
        generator=f"tbreport {__version__} report --format csv",
    )
