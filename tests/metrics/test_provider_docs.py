"""Each provider's documented example passes `policy check`; each has a row in docs/metrics.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rollguard.metrics.factory import QUERY_PROVIDERS
from rollguard.policy.load import parse_policy

DOCS = Path(__file__).parent.parent.parent / "docs"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", (DOCS / "providers.md").read_text(), re.S)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda text: text.split("provider: ")[1][:12])
def test_each_example_is_a_valid_policy(example: str) -> None:
    parse_policy(example, source="docs/providers.md")


def test_every_query_provider_has_an_example_and_a_row() -> None:
    documented = {parse_policy(text).metrics.provider for text in EXAMPLES}
    assert documented - {"prometheus"} == set(QUERY_PROVIDERS)
    rows = re.findall(r"^\| `(\w+)` \|", (DOCS / "metrics.md").read_text(), re.M)
    assert set(QUERY_PROVIDERS) <= set(rows)
