"""Shared test settings."""

from __future__ import annotations

import pytest

from tbreport.reading import parsing


@pytest.fixture(autouse=True)
def _template_every_file(monkeypatch):
    """Decode even tiny test files with the templated fast path, so the tests compare it with the
    per-record protobuf decoding (real reads take it only for files of many records)."""
    monkeypatch.setattr(parsing, "_FAST_MIN_RECORDS", 0)
