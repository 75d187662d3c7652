"""The import-linter contracts cover the whole package, and the product never imports testing."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import rollguard

PACKAGE = Path(rollguard.__file__).parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"


def _top_level_modules() -> set[str]:
    """``rollguard.X`` for every module and subpackage directly under the package."""
    names = {f"rollguard.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    names |= {f"rollguard.{path.parent.name}" for path in PACKAGE.glob("*/__init__.py")}
    return names


def _contract(name: str) -> dict[str, object]:
    config = tomllib.loads(PYPROJECT.read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    found: dict[str, object] = next(c for c in contracts if c["name"] == name)
    return found


def test_every_module_but_testing_is_forbidden_to_import_testing() -> None:
    contract = _contract("The product never imports rollguard.testing")
    assert contract["forbidden_modules"] == ["rollguard.testing"]
    assert set(contract["source_modules"]) == _top_level_modules() - {"rollguard.testing"}


def test_no_module_of_the_product_imports_testing() -> None:
    """The same rule read straight from the sources, lazy imports inside functions included."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "testing.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n == "rollguard.testing" for n in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
