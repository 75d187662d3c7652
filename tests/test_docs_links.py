"""The product cites only documents inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _product_files() -> list[Path]:
    files = [*ROOT.joinpath("src").rglob("*.py"), ROOT / ".ci" / "run", ROOT / "README.md"]
    return files + list(ROOT.joinpath("docs").glob("*.md"))


def test_no_document_outside_the_repository_is_cited() -> None:
    outside = ("DESIGN.md", "STYLE.md")
    cited = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _product_files()
        for name in outside
        if name in path.read_text()
    ]
    assert cited == []


def test_every_docs_path_cited_in_the_code_exists() -> None:
    missing = sorted(
        {
            f"{path.relative_to(ROOT)}: {cited}"
            for path in _product_files()
            for cited in re.findall(r"docs/[\w.-]+\.md", path.read_text())
            if not (ROOT / cited).is_file()
        }
    )
    assert missing == []
