"""CONTRIBUTING.md's module map names every module of the package, as its docstring does."""

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "CONTRIBUTING.md"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"


def module_map() -> list[str]:
    """One line per module: its path in the package and its docstring's summary."""
    package = ROOT / "tap_amplemarket"
    lines = []
    for path in sorted(package.rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if path.name == "__init__.py" and path.parent == package:
            continue  # the package's face: its one line is the project's description
        lines.append(f"- `{path.relative_to(package)}`: {docstring.splitlines()[0]}")
    return lines


def test_every_module_has_a_one_line_summary():
    assert all(line.split(": ", 1)[1].strip() for line in module_map())


def test_contributing_lists_every_module_with_its_summary():
    text = DOC.read_text()
    before, rest = text.split(START, 1)
    quoted, after = rest.split(END, 1)
    lines = module_map()
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(before + START + "\n" + "\n".join(lines) + "\n" + END + after)
        return
    assert quoted.strip().splitlines() == lines, (
        "CONTRIBUTING.md's module map is stale: UPDATE_DOCS=1 pytest tests/test_contributing.py"
    )
