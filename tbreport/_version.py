"""``tbreport.__version__``, importable by any module without importing the whole package."""

import importlib.metadata as _metadata

try:
    __version__ = _metadata.version("tbreport")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
