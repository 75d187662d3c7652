"""Hypothesis strategies for hostile input: nested, huge, NaN/Inf, overflowing and
control-character values, and ways to plant them in otherwise real documents.

Sizes are bounded here (lists of at most a few items, strings of at most a few
hundred characters, nesting of at most a few thousand levels), so each example
is bounded in time and memory by construction; the code under test must then
refuse what is too deep or too big on its own.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: One profile for every property: no deadline (the machine is shared), no health
#: check that would fail a test for generating large examples on purpose.
HOSTILE = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the CLI runs in one scratch folder per test
    ],
)

#: Characters that break terminals, lines, YAML and JSON.
CONTROL = "\x00\x07\x08\x1b\x7f\x85\u2028\u2029\r\n\t\ufeff\ud7ff"
hostile_text = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(CONTROL), max_size=60
)
#: Strings that mean something to a parser of numbers, times or units.
TRICKY = [
    "NaN",
    "nan",
    "-nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "-1e400",
    "1e18",
    "-0",
    "9" * 30,
    "0x10",
    "1_000",
    "",
    " ",
    "5%",
    "200%",
    "-5%",
    "500ms",
    "1e-400",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "99999999d",
    "1e400s",
    "5 minutes",
    "\x1b[2J",
    "<img src=x onerror=alert(1)>",
    "a;b",
    "$(id)",
    "'\"",
]
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.sampled_from(TRICKY),
)
hostile_value = st.recursive(
    hostile_scalar,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=24,
)
deep_json = st.integers(min_value=60, max_value=3000).map(lambda depth: "[" * depth + "]" * depth)


def dumps(value: Any) -> str:
    """JSON text of a generated value (Python's: NaN and Infinity written bare)."""
    return json.dumps(value, allow_nan=True)


_TOKEN = "__rollguard_hostile_value__"
#: JSON text that no JSON value can stand for: bare NaN and Infinity, 400 digits, nesting.
raw_json = st.one_of(
    hostile_value.map(lambda value: json.dumps(value, allow_nan=True)),
    deep_json,
    st.sampled_from(["NaN", "-Infinity", "1" + "0" * 400, "1e400", '"\\u0000"', '"\\ud800"']),
)


@st.composite
def planted(draw: st.DrawFn, document: Any) -> str:
    """JSON text of ``document`` with one value somewhere inside replaced by hostile JSON.

    Works on text (the hostile part is spliced in last), so a replacement thousands of
    levels deep never goes through Python's recursive JSON encoder.
    """
    copied = copy.deepcopy(document)
    holder: Any = None
    key: Any = None
    node: Any = copied
    while isinstance(node, dict | list) and node and (holder is None or draw(st.booleans())):
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        holder, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if holder is None:
        return str(draw(raw_json))
    holder[key] = _TOKEN
    return json.dumps(copied).replace(json.dumps(_TOKEN), draw(raw_json), 1)


def assert_one_line(message: str) -> None:
    assert message, "an empty message"
    assert "\n" not in message, message
    assert len(message) < 2000, f"a message of {len(message)} characters"
