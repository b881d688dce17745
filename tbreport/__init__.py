"""tbreport: TensorBoard event files into DataFrames, diagnoses and reports.

Public API:
    read(logdir, *, jobs=None, tags=None, engine="fast") -> ReadResult
    diagnose(logdir_or_read_result, *, config=None) -> Diagnosis
    Monitor(logdir, *, fail_on=None, config=None).poll() -> list[Finding]  (runs still training)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from tbreport.diagnosis import Diagnosis, diagnose
from tbreport.model import Finding, ReadWarning, Severity
from tbreport.monitor import Monitor
from tbreport.reader import ReadResult, read

try:
    __version__ = version("tbreport")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

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
]
