"""A query is batched only when each expression asked alone has its own shape.

The expressions asked alone and their shapes pair up by position; lists of
different lengths would pair an expression with another's shape, so such a
query is asked per deployment, with the reason, rather than batched wrongly.
"""

from __future__ import annotations

import pytest

from rollguard.metrics.shapes import Batchable, Keyed, Shape, paired
from rollguard.promql import Ask

ALONE: list[Ask] = [('sum(errors{d="a"})', False), ('requests{d="a"}[1m]', True)]
SHAPED: list[Ask] = [("sum by (d) (errors{\x00})", False), ("requests{\x00}[1m]", True)]


def test_lists_of_one_length_pair_each_expression_with_its_shape() -> None:
    found = paired(ALONE, SHAPED, labels=("d",), key=("a",))
    assert found == Batchable(
        {
            'sum(errors{d="a"})': Keyed(Shape("sum by (d) (errors{\x00})", ("d",), False), ("a",)),
            'requests{d="a"}[1m]': Keyed(Shape("requests{\x00}[1m]", ("d",), True), ("a",)),
        }
    )


@pytest.mark.parametrize(
    ("alone", "shaped"),
    [(ALONE, SHAPED[:1]), (ALONE[:1], SHAPED), ([], SHAPED)],
    ids=["fewer-shapes", "fewer-alone", "none-alone"],
)
def test_lists_of_different_lengths_are_not_batchable(alone: list[Ask], shaped: list[Ask]) -> None:
    found = paired(alone, shaped, labels=("d",), key=("a",))
    assert found == (
        f"the query needs {len(alone)} expression(s) asked alone but {len(shaped)} "
        "batched; it is asked per deployment"
    )
