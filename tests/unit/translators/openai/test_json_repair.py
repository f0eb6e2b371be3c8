"""Tool-call argument repair: each rule on the mistakes weak models make, and properties over any JSON
(valid JSON is never touched, a repair is final, a cut text never repairs into a value it did not hold,
and sloppy renderings of a value repair to exactly that value)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.openai import json_repair as jr
from translators.openai.json_repair import repair


@pytest.mark.parametrize(
    ("text", "value", "rules"),
    [
        ('{"a": 1,}', {"a": 1}, [jr.TRAILING_COMMA]),
        ('{"a": [1, 2,],}', {"a": [1, 2]}, [jr.TRAILING_COMMA]),
        ("{'path': 'a \"b\"', 'n': 1}", {"path": 'a "b"', "n": 1}, [jr.SINGLE_QUOTES]),
        ("{'it': 'don\\'t'}", {"it": "don't"}, [jr.SINGLE_QUOTES]),
        ('{"ok": True, "v": None, "f": False}', {"ok": True, "v": None, "f": False}, [jr.PYTHON_LITERALS]),
        ('{city: "Paris", $x_1: 2}', {"city": "Paris", "$x_1": 2}, [jr.UNQUOTED_KEYS]),
        ('```json\n{"a": 1}\n```', {"a": 1}, [jr.FENCE]),
        ('```\n{"a": 1,}\n```', {"a": 1}, [jr.FENCE, jr.TRAILING_COMMA]),
        ('```json\n{"a": "b"}', {"a": "b"}, [jr.FENCE]),  # cut before the closing fence
        ('{"text": "line one\nline\ttwo"}', {"text": "line one\nline\ttwo"}, [jr.RAW_CONTROL]),
        (
            '{"path": "C:\\Users\\me", "re": "\\d+"}',
            {"path": "C:\\Users\\me", "re": "\\d+"},
            [jr.BAD_ESCAPES],
        ),
        ('{"a": {"b": [1, 2]', {"a": {"b": [1, 2]}}, [jr.UNCLOSED]),
        ('{"a": 1, "b": "unfinish', {"a": 1}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": 1, "b":', {"a": 1}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": 1, "b"', {"a": 1}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": 1, "n": 12', {"a": 1}, [jr.TRUNCATED, jr.UNCLOSED]),  # `12` may be `125`, cut
        ('{"a": "x", "ok": tr', {"a": "x"}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": "x", "s": "\\u00', {"a": "x"}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": ["x", "y', {"a": ["x"]}, [jr.TRUNCATED, jr.UNCLOSED]),
        ('{"a": 1}}', {"a": 1}, [jr.EXTRA_CLOSERS]),
        ('{"e": "\\ud83d\\ude00", "x": [', {"e": "😀", "x": []}, [jr.UNCLOSED]),
        ("", {}, [jr.EMPTY]),
        ("  \n", {}, [jr.EMPTY]),
    ],
)
def test_each_rule_repairs_its_mistake(text: str, value: Any, rules: list[str]) -> None:
    fixed = repair(text)
    assert fixed is not None
    assert json.loads(fixed.text) == value
    assert list(fixed.rules) == rules


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1} {"b": 2}',  # two objects: which one was meant?
        'Here you go: {"a": 1}',  # prose around it
        '{"a": 1 "b": 2}',  # a missing comma
        '{"a" 1}',  # a missing colon
        '{"a": undefined}',
        '{"a": NaN}',
        "{,}",
        '{"a": "\\ud800"}',  # a lone surrogate has no UTF-8 form
        "[" * (jr.MAX_DEPTH + 5),
        '{"a": "' + "x" * jr.MAX_CHARS + '"',  # too long to parse here
    ],
)
def test_what_no_rule_reads_is_left_alone(text: str) -> None:
    assert repair(text) is None


@pytest.mark.parametrize(
    "text", ['{"a": 1}', "[]", '"just a string"', "12", "null", ' {"a": [1, {"b": null}]} ']
)
def test_valid_json_is_not_repaired(text: str) -> None:
    assert repair(text) is None


SCALARS = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=12)
JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
OBJECTS = st.dictionaries(st.text(max_size=6), JSON, max_size=5)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_valid_json_passes_unchanged(value: Any) -> None:
    assert repair(json.dumps(value)) is None
    assert repair(json.dumps(value, indent=2, ensure_ascii=False)) is None


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60) | st.builds(lambda v, cut: json.dumps(v)[:cut], OBJECTS, st.integers(0, 80)))
def test_a_repair_is_valid_json_and_final(text: str) -> None:
    fixed = repair(text)
    if fixed is not None:
        json.loads(fixed.text)
        assert repair(fixed.text) is None


def within(got: Any, original: Any) -> bool:
    """`got` holds nothing `original` did not: members and items dropped at most, no value changed."""
    if isinstance(original, dict):
        return isinstance(got, dict) and all(k in original and within(v, original[k]) for k, v in got.items())
    if isinstance(original, list):
        return (
            isinstance(got, list)
            and len(got) <= len(original)
            and all(within(g, o) for g, o in zip(got, original, strict=False))
        )
    return got == original and type(got) is type(original)


@settings(max_examples=400, deadline=None)
@given(OBJECTS, st.data())
def test_a_cut_object_repairs_to_what_it_held_or_not_at_all(
    value: dict[str, Any], data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=data.draw(st.booleans()))
    cut = data.draw(st.integers(0, len(text) - 1))
    fixed = repair(text[:cut])
    if fixed is not None:
        assert within(json.loads(fixed.text), value), (text[:cut], fixed)


def sloppy(value: Any, draw: Any) -> str:
    """`value` as a weak model may write it: trailing commas, single quotes, Python literals."""
    if isinstance(value, dict):
        members = [f"{sloppy(k, draw)}: {sloppy(v, draw)}" for k, v in value.items()]
        return "{" + ", ".join(members) + ("," if members and draw(st.booleans()) else "") + "}"
    if isinstance(value, list):
        items = [sloppy(v, draw) for v in value]
        return "[" + ", ".join(items) + ("," if items and draw(st.booleans()) else "") + "]"
    if isinstance(value, bool) or value is None:
        return (
            {True: "True", False: "False", None: "None"}[value] if draw(st.booleans()) else json.dumps(value)
        )
    if isinstance(value, str) and draw(st.booleans()) and "\\" not in value:
        return "'" + json.dumps(value)[1:-1].replace('\\"', '"').replace("'", "\\'") + "'"
    return json.dumps(value)


@settings(max_examples=300, deadline=None)
@given(OBJECTS, st.data(), st.booleans())
def test_sloppy_json_repairs_to_its_value(value: dict[str, Any], data: st.DataObject, fenced: bool) -> None:
    text = sloppy(value, data.draw)
    if fenced:
        text = f"```json\n{text}\n```"
    fixed = repair(text)
    if text == json.dumps(value) or fixed is None:
        assert fixed is None and json.loads(text) == value
    else:
        assert json.loads(fixed.text) == value
