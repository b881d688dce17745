"""The layers import one way: reading <- diagnosis <- presentation, never back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tbreport"
# What each part of the diagnosis layer may import from the package (besides itself).
DIAGNOSIS_MAY_IMPORT = {
    "tbreport.model",
    "tbreport.errors",
    "tbreport.safe_regex",
}
PRESENTATION = ("tbreport.report", "tbreport.audit", "tbreport.commands", "tbreport.cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "tbreport" or n.startswith("tbreport.")}


def test_diagnosis_imports_only_the_reading_layer_and_shared_records():
    for path in sorted((PACKAGE / "diagnosis").rglob("*.py")):
        for name in _imports(path):
            if name.startswith(("tbreport.diagnosis", "tbreport.reading")):
                continue
            assert name in DIAGNOSIS_MAY_IMPORT, f"{path.relative_to(PACKAGE)} imports {name}"


def test_reading_never_imports_diagnosis_or_presentation():
    for file in sorted((PACKAGE / "reading").glob("*.py")):
        for name in _imports(file):
            assert not name.startswith(("tbreport.diagnosis", *PRESENTATION)), (file, name)
