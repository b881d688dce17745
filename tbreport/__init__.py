"""tbreport: TensorBoard event files into DataFrames, diagnoses and reports.

Public API:
    read(logdir, *, jobs=None, tags=None, engine="fast") -> ReadResult
    diagnose(logdir_or_read_result, *, config=None) -> Diagnosis
    write_html(read, diagnosis, path, *, force=False, **options) -> Path   (the HTML report)
    Monitor(logdir, *, fail_on=None, config=None).poll() -> list[Finding]  (runs still training)
"""

import typing as _typing

from tbreport._version import __version__
from tbreport.diagnosis import Diagnosis, diagnose
from tbreport.model import Finding, ReadWarning, Severity
from tbreport.monitor import Monitor
from tbreport.reading import ReadResult, read

__all__ = [
    "Diagnosis",
    "Finding",
    "Monitor",
    "ReadResult",
    "ReadWarning",
    "Severity",
    "__version__",
    "diagnose",
    "read",
    "write_html",
]


def __getattr__(name: str) -> _typing.Any:
    # The report writer pulls in jinja2 and plotly: imported on first use only.
    if name == "write_html":
        from tbreport.report import write_html

        return write_html
    raise AttributeError(f"module 'tbreport' has no attribute {name!r}")


# Notebook display is presentation: wired here, so that the reading and diagnosis layers and the
# shared model import none of it (and `import tbreport` loads the report package only on use).
def _read_result_html(self: ReadResult) -> str:
    from tbreport.report.notebook import read_result_html

    return read_result_html(self)


def _diagnosis_html(self: Diagnosis) -> str:
    from tbreport.report.notebook import diagnosis_html

    return diagnosis_html(self)


def _finding_html(self: Finding) -> str:
    from tbreport.report.notebook import finding_html

    return finding_html(self)


def _wire_html_reprs() -> None:
    reprs: dict[type[_typing.Any], _typing.Callable[[_typing.Any], str]] = {
        ReadResult: _read_result_html,
        Diagnosis: _diagnosis_html,
        Finding: _finding_html,
    }
    for cls, html in reprs.items():
        cls._repr_html_ = html


_wire_html_reprs()
del _wire_html_reprs


def _notebook_display() -> None:
    # Inside IPython only: a Diagnosis then shows as a table with status badges.
    import sys

    if "IPython" in sys.modules:
        from tbreport.report.notebook import register_notebook_display

        register_notebook_display()


_notebook_display()
del _notebook_display
