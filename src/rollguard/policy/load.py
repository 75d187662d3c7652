"""Load a policy file and report every problem at its line in the YAML source.

ruamel.yaml keeps each key's position; pydantic reports each error's path.
Walking the path through the parsed document gives ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from rollguard import documents
from rollguard.errors import PolicyError, PolicyProblem
from rollguard.policy.model import Policy
from rollguard.policy.triggers import FieldError
from rollguard.textfile import UnreadableFileError, read_text


def load_policy(path: str | Path) -> Policy:
    """Read, parse and validate one policy file; raise :class:`PolicyError`."""
    name = str(path)
    try:
        text = read_text(path, max_bytes=documents.MAX_CONFIG_BYTES)
    except UnreadableFileError as exc:
        problem = PolicyProblem(name, 1, 1, "(file)", f"cannot read: {exc.reason}")
        raise PolicyError([problem]) from exc
    return parse_policy(text, source=name)


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML held in memory (tests, API uploads)."""
    document = _parse_yaml(text, source)
    if not isinstance(document, CommentedMap):
        raise PolicyError(
            [PolicyProblem(source, 1, 1, "(document)", "expected a mapping of sections")]
        )
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        problems = [_locate(document, error, source) for error in exc.errors()]
        raise PolicyError(_deduplicate(problems)) from None


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return documents.load_yaml(text, source=source, what="policy")
    except documents.DocumentError as exc:
        problem = PolicyProblem(source, exc.line or 1, exc.column or 1, "(yaml)", exc.reason)
        raise PolicyError([problem]) from None


def _locate(document: CommentedMap, error: Any, source: str) -> PolicyProblem:
    """Follow the error's path through the document to the deepest node that exists."""
    node: Any = document
    line, column = 1, 1
    path: list[str] = []
    raised = error.get("ctx", {}).get("error")
    # a FieldError names the field below the model whose validator raised it
    loc = (*error["loc"], *raised.loc) if isinstance(raised, FieldError) else error["loc"]
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_column = node.lc.key(part)
            line, column = key_line + 1, key_column + 1
            node = node[part]
            path.append(str(part))
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            item_line, item_column = node.lc.item(part)
            line, column = item_line + 1, item_column + 1
            node = node[part]
            path.append(str(part))
        elif error["type"] in ("missing", "extra_forbidden") and part == loc[-1]:
            # the key named; a union's tag pydantic puts in the path is no key of the file
            path.append(str(part))
    message = _message(error)
    return PolicyProblem(source, line, column, ".".join(path) or "(policy)", message)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/policy.md for the keys)"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        found = error.get("ctx", {}).get("tag", "")
        return f"unknown type {found!r}; expected one of {expected}"
    if kind == "union_tag_not_found":
        return "missing its type field (" + str(error.get("ctx", {}).get("discriminator", "")) + ")"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _deduplicate(problems: Sequence[PolicyProblem]) -> list[PolicyProblem]:
    seen: set[tuple[int, int, str, str]] = set()
    unique = []
    for problem in problems:
        key = (problem.line, problem.column, problem.field, problem.message)
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return sorted(unique, key=lambda p: (p.line, p.column))
