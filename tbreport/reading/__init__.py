"""The reading layer: event files -> ``ReadResult`` (DataFrames + warnings).

It imports only the shared modules (``model``, ``errors``, ``safe_regex``), never diagnosis or
presentation; ``tests/test_layers.py`` checks this. See ``docs/architecture.md`` for the module
map.
"""

from tbreport.reading.reader import read
from tbreport.reading.result import ReadResult

__all__ = ["ReadResult", "read"]
