"""Query shapes: which deployments' PromQL can be asked of Prometheus as one query.

Two deployments' expressions for one signal and window differ only in the values
of their selectors' equality matchers (``namespace="shop"``, ``deployment="cart"``,
``version="canary"``). Those matchers are the *key*; the expression with the key's
labels kept through every aggregation (``sum by (deployment, namespace, version)``)
and the key's values left open is the *shape*. Deployments of one shape are
measured by one query that matches their values (``deployment=~"cart|shop"``, each
value escaped so it only ever matches itself) and each reads its own series back:
a deployment with no series in the answer has no data, like its own query would.

Only what is certain to mean the same batched as alone is batched: the built-in
signals, whose PromQL rollguard writes. A trigger's or custom signal's own PromQL,
or a selector that is not a plain list of label matchers, is asked per deployment
(:func:`batchable` says why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rollguard import promql
from rollguard.policy.model import PrometheusSource
from rollguard.signals import CustomSignal, Query, Signal

#: Where the key's matchers go in a shape's template (never in PromQL text).
_SLOT = "\x00"
#: Labels an equality matcher may name without becoming part of the key: the series
#: name, and ``le``, which the latency queries aggregate by themselves.
_NOT_KEYS = frozenset({"__name__", "le"})
_MATCHER = re.compile(
    r"""\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)\s*(?:,|$)"""
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
#: What RE2 gives a meaning to (Go's regexp.QuoteMeta escapes exactly these).
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector, and its text as written."""

    label: str
    op: str
    value: str
    text: str


@dataclass(frozen=True)
class Shape:
    """What deployments measured by one query share: the expression, values left open."""

    template: str
    labels: tuple[str, ...]  # the key's labels, sorted; the answer's series carry them
    ranged: bool = False  # a range selector: the answer is every raw sample

    def expression(self, keys: Iterable[tuple[str, ...]]) -> str:
        """The one query for every key in ``keys``."""
        if not self.labels:
            return self.template
        columns = [sorted(set(values)) for values in zip(*keys, strict=True)]
        matchers = ",".join(
            f"{label}={quote(values[0])}"
            if len(values) == 1
            else f"{label}=~{quote('|'.join(re2_escape(v) for v in values))}"
            for label, values in zip(self.labels, columns, strict=True)
        )
        return self.template.replace(_SLOT, matchers)

    @property
    def shown(self) -> str:
        """The template fit for a message: ``...`` where the key's values go."""
        return self.template.replace(_SLOT, "...")


@dataclass(frozen=True)
class Keyed:
    """One deployment's place in a shape: its values of the shape's labels."""

    shape: Shape
    key: tuple[str, ...]


@dataclass(frozen=True)
class Batchable:
    """The shapes answering one query, by the expression a deployment would ask alone."""

    asked: Mapping[str, Keyed]


def batchable(query: Query, source: PrometheusSource) -> Batchable | str:
    """``query``'s shapes, or why it must be asked on its own."""
    if query.promql is not None or isinstance(query.signal, CustomSignal):
        # a user's PromQL may aggregate, join or compare in ways "by (labels)" changes
        return "the query's PromQL is the policy's own; it is asked per deployment"
    selector = promql.version_selector(source, query.version)
    parsed = parse_selector(selector)
    if parsed is None:
        return f"the selector {selector!r} is not a list of label matchers rollguard can read"
    keys = sorted(
        (m for m in parsed if m.op == "=" and m.value and m.label not in _NOT_KEYS),
        key=lambda m: m.label,
    )
    labels = tuple(m.label for m in keys)
    if len(set(labels)) != len(labels):
        return f"the selector {selector!r} matches one label twice"
    rest = [m.text for m in parsed if m not in keys]
    signal, window = query.signal, query.window_seconds
    alone = _expressions(signal, window, source, selector, by=())
    shaped = _expressions(
        signal, window, source, ",".join([*rest, _SLOT] if labels else rest), by=labels
    )
    return paired(alone, shaped, labels=labels, key=tuple(m.value for m in keys))


def paired(
    alone: list[promql.Ask],
    shaped: list[promql.Ask],
    *,
    labels: tuple[str, ...],
    key: tuple[str, ...],
) -> Batchable | str:
    """Each expression asked alone with the shape answering it, or why they cannot be paired.

    The two lists are built the same way and pair up by position; lists of different
    lengths (``promql.asks`` drops a repeated expression, which one selector may repeat
    and the other not) would pair an expression with another's shape, so the query is
    then asked on its own, never batched wrongly.
    """
    if len(alone) != len(shaped):
        return (
            f"the query needs {len(alone)} expression(s) asked alone but {len(shaped)} "
            "batched; it is asked per deployment"
        )
    return Batchable(
        {
            expression: Keyed(Shape(template, labels, ranged), key)
            for (expression, ranged), (template, _) in zip(alone, shaped, strict=True)
        }
    )


def _expressions(
    signal: Signal,
    window: float,
    source: PrometheusSource,
    selector: str,
    *,
    by: tuple[str, ...],
) -> list[promql.Ask]:
    """What the provider asks for ``signal`` with ``selector`` (:func:`rollguard.promql.asks`)."""
    built = promql.counted(signal, names=source.names, selector=selector) or promql.for_signal(
        signal, names=source.names, selector=selector, window_seconds=window, by=by
    )
    return promql.asks(built, window)


def parse_selector(selector: str) -> list[Matcher] | None:
    """The matchers of a selector (braces optional), or None where it is anything else."""
    text = promql.bare(selector)
    found: list[Matcher] = []
    at = 0
    while at < len(text):
        match = _MATCHER.match(text, at)
        if match is None or match.end() == at:
            return None
        value = _unquote(match["value"])
        if value is None:
            return None
        found.append(Matcher(match["label"], match["op"], value, match.group().strip(" \t,")))
        at = match.end()
    return found


def _unquote(literal: str) -> str | None:
    """A PromQL string literal's value; None for escapes not read here (``\\x41``...)."""
    if literal[0] == "`":
        return literal[1:-1]
    out: list[str] = []
    chars = iter(literal[1:-1])
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = _ESCAPES.get(next(chars, ""))
        if escaped is None:
            return None
        out.append(escaped)
    return "".join(out)


def re2_escape(value: str) -> str:
    """``value`` as an RE2 pattern matching only itself."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in value)


def quote(value: str) -> str:
    """A PromQL double-quoted string literal holding ``value`` exactly."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'
