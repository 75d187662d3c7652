"""Launch the system's headless Chromium (Debian ``chromium``) through Playwright.

Never downloads a browser: Playwright drives ``/usr/bin/chromium`` (or
``$CHROMIUM``) with the flags that work as root in a container. Use
:func:`chromium_context` in a test, or :func:`chromium_page` as a context
manager; screenshots go to ``test-artifacts/`` (git-ignored) or
``$ROLLGUARD_ARTIFACTS`` via :func:`artifact_path` (from :mod:`artifacts`).

    from chromium import artifact_path, chromium_page

    def test_report(tmp_path):
        with chromium_page(tmp_path) as page:
            page.goto(url)
            page.screenshot(path=artifact_path("report.png"))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from artifacts import artifact_path
from support import require_binary

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

__all__ = [
    "artifact_path",
    "band_problems",
    "chromium_context",
    "chromium_page",
    "layout_problems",
    "low_contrast",
]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_binary() -> Path:
    """The system Chromium; skips locally and fails under CI=true when it is missing."""
    configured = os.environ.get("CHROMIUM")
    if configured:  # checked too: a wrong path is a clear skip/failure, not a launch error
        return require_binary(configured, hint="$CHROMIUM names no executable")
    return require_binary(
        "chromium", hint="apt-get install chromium", extra_paths=("/usr/bin", "/usr/lib/chromium")
    )


@contextmanager
def chromium_context(
    profile_dir: Path, *, width: int = 1400, height: int = 1000
) -> Iterator[BrowserContext]:
    """A fresh browser profile in ``profile_dir`` (must be new and empty), closed afterwards."""
    from playwright.sync_api import sync_playwright

    binary = chromium_binary()
    profile_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(binary),
            headless=True,
            args=list(FLAGS),
            viewport={"width": width, "height": height},
            timeout=60_000,
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def chromium_page(tmp_path: Path, **size: int) -> Iterator[Page]:
    """One page in a fresh profile under ``tmp_path``."""
    with chromium_context(tmp_path / "chromium-profile", **size) as context:
        page = context.pages[0] if context.pages else context.new_page()
        yield page


def _script(name: str) -> str:
    """A function from tests/page_checks/ (plain JavaScript, evaluated in the page)."""
    text = (Path(__file__).parent / "page_checks" / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("//"))


def layout_problems(page: Page) -> list[str]:
    """Elements a person at the page's viewport could not see whole (empty when none).

    The page must not scroll sideways, no element may reach past the viewport's
    edges (unless inside a container that scrolls), no container may need
    sideways scrolling, and no element that hides its overflow may be cutting
    off its content.
    """
    problems: list[str] = page.evaluate(_script("layout.js"))
    return problems


def low_contrast(page: Page, minimum: float = 4.5) -> list[str]:
    """Visible text whose colour against its background is below ``minimum`` (WCAG AA: 4.5)."""
    found: list[str] = page.evaluate(_script("contrast.js"), minimum)
    return found


def band_problems(page: Page) -> list[str]:
    """Charts whose fault-free band is missing, drawn over a line, or not exactly the
    values from the axis up to the limit line (empty when every chart is right)."""
    found: list[str] = page.evaluate(_script("bands.js"))
    return found
