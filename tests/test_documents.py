"""The bounded YAML and JSON reader every outside document goes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollguard import documents, textfile
from rollguard.documents import DocumentError
from rollguard.errors import InputError


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [65, 400, 100_000])
def test_json_nested_past_the_limit_is_one_error(depth: int) -> None:
    # 100,000 makes the C decoder itself give up (RecursionError); 400 parses, then is refused.
    with pytest.raises(DocumentError, match="nests mappings or lists more than 64 deep"):
        documents.load_json(nested_json(depth), source="r.json", what="report")


def test_json_at_the_limit_is_read() -> None:
    value = documents.load_json(nested_json(64), source="r.json")
    for _ in range(63):
        (value,) = value
    assert value == []


@pytest.mark.parametrize("depth", [65, 400, 5_000])
def test_yaml_nested_past_the_limit_is_refused_before_composing(depth: int) -> None:
    text = "key: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(DocumentError) as caught:
        documents.load_yaml(text, source="p.yaml", what="policy")
    # The mapping is the first level, so the 64th bracket (column 5 + 64) is the 65th;
    # far deeper, the 257th bracket is refused before ruamel's scanner reads ahead.
    assert (caught.value.line, caught.value.column) == (1, 5 + (64 if depth < 256 else 257))
    assert "more than 64 deep" in str(caught.value)


def test_yaml_block_nesting_counts_too() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(80)) + "  " * 80 + "v: 1\n"
    with pytest.raises(DocumentError, match="more than 64 deep"):
        documents.load_yaml(text, source="p.yaml")


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    with pytest.raises(DocumentError, match="expands to more than 200,000"):
        documents.load_yaml("\n".join(lines) + "\n", source="p.yaml")


def test_aliases_that_deepen_are_counted_as_deep() -> None:
    # Each line is one level deep in the text, but the value nests through the aliases.
    lines = ["a0: &a0 [1]"] + [f"a{n}: &a{n} [*a{n - 1}]" for n in range(1, 70)]
    with pytest.raises(DocumentError, match="more than 64 deep"):
        documents.load_yaml("\n".join(lines) + "\n", source="p.yaml")


@pytest.mark.parametrize("number", ["1" * 20, "-" + "9" * 25, "1" * 5000])
def test_integers_past_64_bits_are_refused(number: str) -> None:
    # float() of a 400-digit int raises OverflowError; int() of 5,000 digits raises ValueError.
    with pytest.raises(DocumentError, match="more than 19 digits"):
        documents.load_json(f'{{"count": {number}}}', source="r.json")


def test_a_control_character_in_yaml_is_located() -> None:
    with pytest.raises(DocumentError) as caught:
        documents.load_yaml("name: ok\ntitle: \x1b]0;pwned\x07\n", source="p.yaml")
    assert str(caught.value) == "p.yaml:2:8: not valid YAML: character U+001B is not allowed"


def test_size_limits_stop_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(InputError, match=r"big\.json: cannot read report: larger than 1,024 bytes"):
        textfile.read_text(big, "report", max_bytes=1024)
    with pytest.raises(DocumentError, match="larger than 1,024 bytes"):
        documents.load_json("[" + "1," * 1000 + "1]", source="x", what="report", max_bytes=1024)


def test_an_endless_file_is_read_no_further_than_the_limit() -> None:
    with pytest.raises(InputError, match="cannot read policy: larger than 1 MiB; refused"):
        textfile.read_text("/dev/zero", "policy", max_bytes=1024 * 1024)


def test_messages_are_one_line() -> None:
    for bad in ("a: [1,\n", "a: b: c\n", "\t- x\n", "%YAML 9.9\n---\na: 1\n"):
        with pytest.raises(DocumentError) as caught:
            documents.load_yaml(bad, source="p.yaml")
        assert "\n" not in str(caught.value), bad
