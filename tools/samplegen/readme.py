"""``sample_runs/README.md`` and ``labels.json``, rendered from the catalogue (no torch needed).

The README's prose is written by hand; its generated blocks sit between markers::

    <!-- runs-table: generated from tools/samplegen/catalogue.py ... -->
    ...
    <!-- /runs-table -->

``render_readme`` replaces what is between the markers of every block in ``BLOCKS`` and leaves
the rest alone. ``labels.json`` is generated whole. ``python3 -m tools.samplegen --readme``
rewrites both; ``tests/test_samplegen.py`` fails when the committed files drift from the
catalogue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from tools.samplegen.catalogue import LAYOUTS, PROBLEMS, RUNS, SCHEMA_VERSION, RunSpec

SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"
REFRESH = "python3 -m tools.samplegen --readme"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _expected(spec: RunSpec) -> str:
    return ", ".join(f"`{p}`" for p in spec.problems) if spec.problems else "none (healthy)"


def render_problems() -> str:
    return "Problem names: " + ", ".join(f"`{p}`" for p in PROBLEMS) + "."


def render_layouts() -> str:
    return "\n".join(f"- **{layout.name}** - {layout.note}" for layout in LAYOUTS)


def render_runs_table(runs: Iterable[RunSpec] = RUNS) -> str:
    lines = [
        "| run | layout | what was done | what it shows | expected findings |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| `{r.path}` | {r.layout} | {_cell(r.done)} | {_cell(r.shows)} | {_expected(r)} |"
        )
    return "\n".join(lines)


# Block name -> renderer of the runs. Every block appears exactly once in the README.
BLOCKS: dict[str, Callable[[list[RunSpec]], str]] = {
    "problems": lambda _runs: render_problems(),
    "layouts": lambda _runs: render_layouts(),
    "runs-table": render_runs_table,
}


def _block_re(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"^<!-- {re.escape(name)}\b[^\n]*-->\n.*?^<!-- /{re.escape(name)} -->$",
        re.MULTILINE | re.DOTALL,
    )


def render_readme(text: str, runs: Iterable[RunSpec] = RUNS) -> str:
    """``text`` (a README) with every generated block re-rendered from ``runs``."""
    runs = list(runs)
    for name, render in BLOCKS.items():
        pattern = _block_re(name)
        found = len(pattern.findall(text))
        if found != 1:
            raise ValueError(
                f"README.md needs exactly one '<!-- {name} -->' ... '<!-- /{name} -->' block, "
                f"found {found}"
            )
        block = (
            f"<!-- {name}: generated from tools/samplegen/catalogue.py by `{REFRESH}`; edit "
            f"the catalogue, not this block -->\n\n{render(runs)}\n\n<!-- /{name} -->"
        )
        text = pattern.sub(lambda _m, block=block: block, text)
    return text


def render_labels(runs: Iterable[RunSpec] = RUNS) -> str:
    """``labels.json``: the problems (and debatable ``allowed`` ones) of every run, by path."""
    labels = {
        "schema_version": SCHEMA_VERSION,
        "runs": {
            r.path: {
                "layout": r.layout,
                "problems": list(r.problems),
                **({"allowed": list(r.allowed)} if r.allowed else {}),
                "description": r.description,
            }
            for r in runs
        },
    }
    return json.dumps(labels, indent=2) + "\n"


def rendered_docs(directory: Path = SAMPLE_RUNS) -> dict[Path, str]:
    """What README.md and labels.json in ``directory`` should hold. A directory without a README
    yet gets the prose of the project's ``sample_runs/README.md``."""
    readme = directory / "README.md"
    base = readme if readme.is_file() else SAMPLE_RUNS / "README.md"
    return {readme: render_readme(base.read_text()), directory / "labels.json": render_labels()}


def stale_docs(directory: Path = SAMPLE_RUNS) -> list[Path]:
    """The files of ``directory`` that differ from what the catalogue renders."""
    return [
        path
        for path, text in rendered_docs(directory).items()
        if not path.is_file() or path.read_text() != text
    ]


def write_docs(directory: Path = SAMPLE_RUNS) -> list[Path]:
    """Rewrite README.md's generated blocks and labels.json; returns the files that changed."""
    changed = []
    for path, text in rendered_docs(directory).items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
