"""Names say what a thing is: no module, class, function or variable is named "seed"."""

from __future__ import annotations

import ast
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
