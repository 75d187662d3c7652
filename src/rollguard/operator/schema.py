"""The Kubernetes schema of a ``RollbackPolicy``'s spec, generated from the policy model.

The policy file and the custom resource share one model
(:class:`~rollguard.policy.model.Policy`). Its JSON schema (pydantic) is turned
into a *structural* OpenAPI v3 schema the API server accepts, so ``kubectl
apply`` refuses what ``rollguard policy check`` refuses, naming the field:

- ``$ref`` is inlined; ``X | None`` becomes ``nullable``; ``const`` an ``enum``;
- a field a parser reads from a number or a string (``5m``, ``5%``) becomes
  ``x-kubernetes-int-or-string`` with the parser's own grammar as its pattern
  (a fraction is then written as a string: ``"2.5"``, ``"500ms"``);
- a tagged union (``executor.type``, ``metrics.provider``, channel ``type``)
  becomes one object with every variant's fields, and CEL rules
  (``x-kubernetes-validations``) refusing a field its variant does not have and
  requiring the ones it needs, each at that field's path;
- a field two variants shape differently (``router``: a URL for ``local``, an
  object for ``kubernetes``) is left open in the schema and checked by the
  controller;
- maps and lists hold at most ``MAX_ENTRIES``, rule-checked text at most
  ``MAX_RULE_TEXT`` characters: the API server must bound a rule's cost;
- defaults are left out: the controller applies the model's own, so a spec
  read back is what was written.

What a schema cannot say (a threshold beyond what its signal can take, the
cross-field rules of the model) the controller checks with the model itself and
reports on the resource: condition ``SpecValid`` false, with the field path.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

#: CEL's reserved words: a property named so is written ``__word__`` in a rule.
_CEL_RESERVED = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
#: Bounds the API server needs to cost CEL rules (the file format has none; no real
#: policy comes near them): entries of a map or list, characters of a rule-checked text.
MAX_ENTRIES = 64
MAX_RULE_TEXT = 128
#: Keywords the API server's schemas take as they are.
_KEPT = (
    "type",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "enum",
    "required",
)


def structural(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of ``model`` (validation mode)."""
    raw = model.model_json_schema(mode="validation")
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions)


def _convert(node: Schema, definitions: dict[str, Schema]) -> Schema:
    node = _resolved(node, definitions)
    if "oneOf" in node and "discriminator" in node:
        return _tagged_union(node, definitions)
    if "anyOf" in node:
        return _any_of(node, definitions)
    out: Schema = {}
    if "description" in node:
        out["description"] = _first_paragraph(node["description"])
    if "const" in node:
        value = node["const"]
        out["type"] = _json_type(value)
        out["enum"] = [value]
        return out
    for key in _KEPT:
        if key in node:
            out[key] = copy.deepcopy(node[key])
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node:  # JSON schema's number form -> OpenAPI 3.0's boolean form
            out["minimum" if bound == "exclusiveMinimum" else "maximum"] = node[bound]
            out[bound] = True
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    kind = out.get("type")
    if kind == "object" or "properties" in node:
        out.update(_object(node, definitions))
    elif kind == "array":
        out["items"] = _convert(node.get("items", {}), definitions)
        out.setdefault("maxItems", MAX_ENTRIES)
    elif kind is None:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _object(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """An object's schema: its properties, or a map's values (bounded), or anything."""
    out: Schema = {"type": "object"}
    properties = node.get("properties", {})
    if properties:
        out["properties"] = {
            name: _convert(value, definitions) for name, value in properties.items()
        }
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _convert(extra, definitions)
        out["maxProperties"] = MAX_ENTRIES
    elif not properties and extra is not False:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _resolved(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """``node`` with its ``$ref`` replaced by the definition (its own keys win)."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    merged = {**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolved(merged, definitions)


def _any_of(node: Schema, definitions: dict[str, Schema]) -> Schema:
    options = [_resolved(option, definitions) for option in node["anyOf"]]
    nullable = any(option.get("type") == "null" for option in options)
    options = [option for option in options if option.get("type") != "null"]
    if len(options) == 1:
        out = _convert({**options[0], **_outer(node)}, definitions)
    elif {option.get("type") for option in options} == {"number", "string"}:
        out = _number_or_string(options, node)
    elif all(option.get("type") == "string" for option in options):
        # a name from a list or any other text (a built-in signal or a custom one):
        # the loosest option says what the field takes; the model checks the rest
        loosest = min(options, key=len)
        out = _convert({**loosest, **_outer(node)}, definitions)
    else:  # pragma: no cover - the policy model has no other union
        raise ValueError(f"no Kubernetes schema for the union {node['anyOf']!r}")
    if nullable:
        out["nullable"] = True
    return out


def _merge(properties: dict[str, Schema], name: str, converted: Schema) -> bool:
    """Add one variant's field; False when another variant gave the name another shape.
    Optional in one variant and defaulted in another is the same shape, nullable."""
    known = properties.setdefault(name, converted)
    if _without_null(known) != _without_null(converted):
        return False
    known.update(converted)
    return True


def _without_null(node: Schema) -> Schema:
    return {key: value for key, value in node.items() if key != "nullable"}


def _outer(node: Schema) -> Schema:
    """The keys of a union node that describe the whole field."""
    return {k: v for k, v in node.items() if k in ("description", "title")}


def _number_or_string(options: list[Schema], node: Schema) -> Schema:
    """A number-or-text field: ``x-kubernetes-int-or-string``, its limits in one CEL rule
    (a structural schema allows no types inside ``anyOf``)."""
    number = next(option for option in options if option["type"] == "number")
    text = next(option for option in options if option["type"] == "string")
    least = number.get("minimum")
    if "exclusiveMinimum" in number:  # whole numbers: > 0 is >= 1
        least = int(number["exclusiveMinimum"]) + 1
    number_rule = "true" if least is None else f"self >= {least}"
    text_rule = "true" if "pattern" not in text else f"self.matches(r'{text['pattern']}')"
    examples = " or ".join(f"'{example}'" for example in node.get("examples", []))
    message = "expected a whole number" + (f" >= {least}" if least is not None else "")
    message += f" or text such as {examples}" if examples else " or text"
    message += " (write a fraction as text, e.g. '2.5')"
    out: Schema = {
        "x-kubernetes-int-or-string": True,
        "maxLength": MAX_RULE_TEXT,
        "x-kubernetes-validations": [
            {"rule": f"type(self) == string ? {text_rule} : {number_rule}", "message": message}
        ],
    }
    if "description" in node:
        out["description"] = _first_paragraph(node["description"])
    return out


def _tagged_union(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """One object holding every variant's fields, with CEL rules per variant."""
    tag = node["discriminator"]["propertyName"]
    variants = [_resolved(option, definitions) for option in node["oneOf"]]
    properties: dict[str, Schema] = {}
    tags: list[str] = []
    rules: list[Schema] = []
    conflicting: set[str] = set()
    for variant in variants:
        for name, value in variant.get("properties", {}).items():
            if name == tag:
                continue
            if not _merge(properties, name, _convert(value, definitions)):
                conflicting.add(name)
        tags.append(variant["properties"][tag]["const"])
    for name in conflicting:  # one name, two shapes (a URL here, an object there)
        properties[name] = {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "Its shape depends on the type; the controller checks it.",
        }
    for variant, value in zip(variants, tags, strict=True):
        own = set(variant.get("properties", {}))
        needed = set(variant.get("required", [])) - {tag}
        for name in sorted(properties):
            if name in conflicting:
                continue  # CEL cannot see an open field; the controller checks it
            if name not in own:
                rules.append(
                    _rule(
                        f"self.{_cel(tag)} != '{value}' || !has(self.{_cel(name)})",
                        f"{name} is not a field of {tag} {value}",
                        name,
                    )
                )
            elif name in needed:
                rules.append(
                    _rule(
                        f"self.{_cel(tag)} != '{value}' || has(self.{_cel(name)})",
                        f"{tag} {value} needs {name}",
                        name,
                        reason="FieldValueRequired",
                    )
                )
    out: Schema = {
        "type": "object",
        "required": [tag],
        "properties": {tag: {"type": "string", "enum": tags}, **properties},
    }
    if "description" in node:
        out["description"] = _first_paragraph(node["description"])
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def _rule(
    expression: str, message: str, field: str, *, reason: str = "FieldValueForbidden"
) -> Schema:
    return {
        "rule": expression,
        "message": message,
        "fieldPath": f".{field}",
        "reason": reason,
    }


def _cel(name: str) -> str:
    """A property name as a CEL rule writes it."""
    return f"__{name}__" if name in _CEL_RESERVED else name


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n", 1)[0].split())
