"""translators/gemini/schema.py: JSON Schema -> Gemini Schema."""

from __future__ import annotations

import pytest

from tests.fakes.fake_gemini import validate_request
from translators.gemini import TranslationError, clean_schema


def test_schema_refs_defs_and_recursion_are_inlined() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "Point": {
                "type": "object",
                "title": "Point",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            },
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/Node"}, "v": {"type": "integer"}},
            },
        },
        "definitions": {"Tag": {"type": "string", "enum": ["a", "b"]}},
        "properties": {
            "p": {"$ref": "#/$defs/Point", "description": "where"},
            "tree": {"$ref": "#/$defs/Node"},
            "tag": {"$ref": "#/definitions/Tag"},
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "p": {
                "type": "object",
                "description": "where",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            },
            "tree": {
                "type": "object",
                "properties": {"child": {"description": "Any JSON object."}, "v": {"type": "integer"}},
            },
            "tag": {"type": "string", "enum": ["a", "b"]},
        },
    }


def test_schema_nullable_unions_enums_and_dropped_keywords() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "maybe": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}], "default": None},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer", "exclusiveMinimum": 0}]},
            "typelist": {"type": ["integer", "null"], "minimum": 1, "maximum": 9, "examples": [3]},
            "multi": {"type": ["string", "boolean"]},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "inferred": {"enum": [1, 2]},
            "color": {"type": "string", "enum": ["red", "", None]},
            "when": {"type": "string", "format": "date-time", "pattern": "^2", "minLength": 1},
            "const": {"const": "fixed"},
            "list": {"type": "array", "minItems": 1, "uniqueItems": True},
            "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
            "anything": {},
        },
        "required": ["maybe", "ghost"],
    }
    out = clean_schema(schema)
    props = out["properties"]
    assert props["maybe"] == {"type": "string", "nullable": True}  # "email" is not a format Gemini takes
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["typelist"] == {"type": "integer", "minimum": 1, "maximum": 9, "nullable": True}
    assert props["multi"] == {"anyOf": [{"type": "string"}, {"type": "boolean"}]}
    assert props["level"] == {"type": "string", "format": "enum", "enum": ["1", "2", "3"]}
    assert props["inferred"] == {"type": "string", "format": "enum", "enum": ["1", "2"]}
    assert props["color"] == {"type": "string", "enum": ["red"], "nullable": True}
    assert props["when"] == {"type": "string", "format": "date-time", "pattern": "^2", "minLength": 1}
    assert props["const"] == {"type": "string", "enum": ["fixed"]}
    assert props["list"] == {"type": "array", "minItems": 1, "items": {"type": "string"}}
    assert props["tuple"] == {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}}
    assert props["anything"] == {"type": "string"}
    assert out["required"] == ["maybe"]
    assert "additionalProperties" not in out and "propertyOrdering" not in out
    validate_request(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": out}]}],
        }
    )


def test_schema_all_of_merges_and_external_refs_fail() -> None:
    out = clean_schema(
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ]
        }
    )
    assert out == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
        "required": ["a", "b"],
    }
    with pytest.raises(TranslationError, match="local"):
        clean_schema({"$ref": "https://example.test/schema.json"})
    with pytest.raises(TranslationError, match="points nowhere"):
        clean_schema({"properties": {"a": {"$ref": "#/$defs/Missing"}}})
