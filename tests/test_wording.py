"""Counted nouns read as people write them."""

from __future__ import annotations

from rollguard.wording import counted


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert counted(1, "evaluation") == "1 evaluation"
    assert counted(0, "evaluation") == "0 evaluations"
    assert counted(2, "watch", "watches") == "2 watches"
    assert counted(1, "watch", "watches") == "1 watch"
