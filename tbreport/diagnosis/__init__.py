"""The diagnosis layer: tag meanings, the per-run view, detectors and the engine that runs them.

Reads what the reading layer produced (DataFrames) and returns plain records (findings); it
never formats anything beyond a finding's one-line message.
"""

from tbreport.diagnosis.engine import (
    FINDING_COLUMNS,
    MEANING_COLUMNS,
    SCHEMA_VERSION,
    Diagnosis,
    RunDiagnosis,
    SkippedDetector,
    describe_meanings,
    diagnose,
    diagnose_run,
    iter_run_data,
    logical_runs,
)

__all__ = [
    "FINDING_COLUMNS",
    "MEANING_COLUMNS",
    "SCHEMA_VERSION",
    "Diagnosis",
    "RunDiagnosis",
    "SkippedDetector",
    "describe_meanings",
    "diagnose",
    "diagnose_run",
    "iter_run_data",
    "logical_runs",
]
