"""Names and text say what a thing is: nothing is named "seed" or spoken of as one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rollguard

PACKAGE = Path(rollguard.__file__).parent


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    return []


def test_no_name_in_the_package_says_seed() -> None:
    found = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*seed*")]
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            found += [
                f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', 0)}: {name}"
                for name in _names(node)
                if "seed" in name.lower()
            ]
    assert found == []


#: "The seed" as what the project came from (a random generator's seed is fine).
SPEC_SEED = re.compile(
    r"\b(the seed|seed's|seed[ -](form|block|rule|name|duration|style)s?)\b", re.IGNORECASE
)


def test_no_text_says_seed() -> None:
    """The project speaks of itself: docstrings, messages and docs say what a thing is."""
    root = PACKAGE.parents[1]
    texts = [*PACKAGE.rglob("*.py"), *(root / "docs").rglob("*.md"), root / "README.md"]
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in texts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SPEC_SEED.search(line)
    ]
    assert found == []
