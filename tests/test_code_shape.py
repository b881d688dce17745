"""The shape of the code that ruff and mypy do not check: short functions, a typed package.

Complexity is ruff's C901 (``[tool.ruff.lint.mccabe]`` in pyproject.toml); types are mypy's
(``[tool.mypy]``). Both run in ``.ci/run`` before the tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "tbreport"

#: The longest a function of the package may be, from its ``def`` line to its last line
#: (decorators aside; docstring and comments included). Longer ones are split into named steps.
MAX_FUNCTION_LINES = 80


def long_functions(package: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (N lines)`` of every function or method longer than ``limit`` lines."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(package.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_longer_than_80_lines():
    found = long_functions(PACKAGE)
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n" + "\n".join(
        found
    )


def test_the_length_check_can_fail(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    lines = [f"        x{i} = {i}" for i in range(78)]
    # An 80-line method (def, 78 statements, return) and an 81-line one.
    source = "class C:\n    def fits(self):\n" + "\n".join([*lines, "        return 1"])
    source += "\n\n    def too_long(self):\n" + "\n".join(
        [*lines, "        x = 1", "        return x"]
    )
    (package / "m.py").write_text(source + "\n")
    assert long_functions(package) == ["pkg/m.py:83 too_long (81 lines)"]


def test_the_package_says_it_is_typed():
    # PEP 561: type checkers use tbreport's annotations only when py.typed ships with it. Every
    # file of the package goes into the wheel (no include list to keep py.typed out).
    assert (PACKAGE / "py.typed").is_file()
    assert 'packages = ["tbreport"]' in (ROOT / "pyproject.toml").read_text()
