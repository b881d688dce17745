"""The import contract: layers import one way, and the package has no import cycle.

    shared (model, errors, safe_regex, textsafe, _version)
      <- reading/          event files -> ReadResult
      <- diagnosis/        ReadResult -> Diagnosis
      <- monitor           incremental reading + diagnosis of live runs
      <- report/, audit/, outputs, template_files   presentation: HTML, CSV, JSON files
      <- cli/              the command line; only __main__ imports it

Every import counts for the layers (module-level or inside a function: both are dependencies).
The cycle check looks at module-level imports only (``if TYPE_CHECKING:`` blocks excluded):
those run when a module is imported, so a cycle among them breaks depending on import order.
``docs/architecture.md`` documents the same table; keep the two in step.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "tbreport"

SHARED = {"tbreport.model", "tbreport.errors", "tbreport.safe_regex", "tbreport.textsafe"}
SHARED |= {"tbreport._version"}

# What each layer may import, besides itself.
MAY_IMPORT: dict[str, set[str]] = {
    "shared": set(),
    "reading": {"shared"},
    "testing": {"shared", "reading"},
    "diagnosis": {"shared", "reading"},
    "monitor": {"shared", "reading", "diagnosis"},
    "integrations": {"shared", "reading", "diagnosis", "monitor"},
    "presentation": {"shared", "reading", "diagnosis"},
    "cli": {"shared", "reading", "diagnosis", "monitor", "presentation"},
    "api": {"shared", "reading", "diagnosis", "monitor", "presentation"},
    "main": {"cli"},
}

# Known exceptions, each with its reason. The test fails when one no longer occurs.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> str:
    """The layer a module of the package belongs to."""
    if module in SHARED:
        return "shared"
    if module == "tbreport":
        return "api"
    if module == "tbreport.__main__":
        return "main"
    for prefix, name in (
        ("tbreport.reading", "reading"),
        ("tbreport.diagnosis", "diagnosis"),
        ("tbreport.monitor", "monitor"),
        ("tbreport.integrations", "integrations"),
        ("tbreport.report", "presentation"),
        ("tbreport.audit", "presentation"),
        ("tbreport.outputs", "presentation"),
        ("tbreport.template_files", "presentation"),
        ("tbreport.cli", "cli"),
        ("tbreport.testing", "testing"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return name
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layers.py")


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package rooted at ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, modules: dict[str, Path], *, module_level: bool) -> set[tuple[str, int]]:
    """``(module imported, line)`` of the package's own modules that ``path`` imports.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``.
    With ``module_level``, imports inside functions and ``if TYPE_CHECKING:`` are left out.
    """
    root = next(iter(modules)).split(".")[0]

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[tuple[str, int]] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested = True
        if _is_type_checking_block(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, nested)
            return
        if not (module_level and nested):
            found.update(_imported(node, root, resolve))
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(ast.parse(path.read_text()), False)
    return found


def _is_type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, (ast.Name, ast.Attribute))
        and (getattr(node.test, "id", None) or getattr(node.test, "attr", None)) == "TYPE_CHECKING"
    )


def _imported(node: ast.AST, root: str, resolve) -> set[tuple[str, int]]:
    """``(module, line)`` of the package's own modules that the import ``node`` names."""
    found = set()
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module.split(".")[0] == root:
            for alias in node.names:
                target = resolve(f"{node.module}.{alias.name}")
                if target != f"{node.module}.{alias.name}":
                    target = resolve(node.module)
                found.add((target, node.lineno))
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == root:
                found.add((resolve(alias.name), node.lineno))
    return found


def layer_violations(package: Path) -> tuple[list[str], set[tuple[str, str]]]:
    """Imports that go the wrong way (``file:line: a (layer) imports b (layer)``), and the
    exceptions seen."""
    modules = module_names(package)
    problems, excused = [], set()
    for module, path in modules.items():
        here = layer_of(module)
        for target, line in sorted(imports(path, modules, module_level=False)):
            there = layer_of(target)
            if there == here or there in MAY_IMPORT[here]:
                continue
            if (module, target) in EXCEPTIONS:
                excused.add((module, target))
                continue
            problems.append(
                f"{path.relative_to(package.parent)}:{line}: {module} ({here}) imports "
                f"{target} ({there})"
            )
    return problems, excused


def import_cycles(package: Path) -> list[list[str]]:
    """Cycles of the module-level import graph, each as ``[a, b, ..., a]``."""
    modules = module_names(package)
    graph = {
        module: sorted({t for t, _ in imports(path, modules, module_level=True)} - {module})
        for module, path in modules.items()
    }
    cycles, state, stack = [], {}, []

    def walk(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in graph[module]:
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = "done"

    for module in graph:
        if module not in state:
            walk(module)
    return cycles


def test_every_import_follows_the_layers():
    problems, excused = layer_violations(PACKAGE)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)
    stale = set(EXCEPTIONS) - excused
    assert not stale, f"exceptions that no longer occur (remove them from EXCEPTIONS): {stale}"


def test_module_level_imports_have_no_cycle():
    cycles = import_cycles(PACKAGE)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_main_imports_the_cli():
    modules = module_names(PACKAGE)
    importers = sorted(
        module
        for module, path in modules.items()
        if layer_of(module) != "cli"
        and any(layer_of(t) == "cli" for t, _ in imports(path, modules, module_level=False))
    )
    assert importers == ["tbreport.__main__"]


# -- the checks themselves can fail ------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "tbreport"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_reading_module_importing_diagnosis_is_reported(tmp_path):
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "reading/__init__.py": "",
            "reading/parsing.py": "def f():\n    from tbreport.diagnosis import engine\n",
            "diagnosis/__init__.py": "",
            "diagnosis/engine.py": "from tbreport.reading import parsing\n",
        },
    )
    problems, _ = layer_violations(package)
    assert problems == [
        "tbreport/reading/parsing.py:2: tbreport.reading.parsing (reading) imports "
        "tbreport.diagnosis.engine (diagnosis)"
    ]


def test_a_module_level_cycle_is_reported_but_not_a_local_or_type_checking_one(tmp_path):
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "reading/__init__.py": "",
            "reading/a.py": "from tbreport.reading.b import x\n",
            "reading/b.py": "from tbreport.reading import a\nx = 1\n",
            "reading/c.py": "from tbreport.reading.d import y\n",
            "reading/d.py": "def f():\n    from tbreport.reading import c\ny = 1\n",
            "reading/e.py": "from typing import TYPE_CHECKING\nfrom tbreport.reading.f import z\n",
            "reading/f.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from tbreport.reading import e\nz = 1\n",
        },
    )
    assert import_cycles(package) == [
        ["tbreport.reading.a", "tbreport.reading.b", "tbreport.reading.a"]
    ]


@pytest.mark.parametrize("module", ["tbreport.reading.x", "tbreport.cli.x", "tbreport.model"])
def test_every_module_has_a_layer(module):
    assert layer_of(module)
