"""JSON Schema idioms Gemini refuses or misreads, and the property that nothing outside Gemini's Schema
fields ever reaches it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import FAST, translate
from translators.gemini import TranslationError, clean_schema
from translators.gemini.schema import FREE_FORM_NOTE

SCHEMA_PAGE = "https://ai.google.dev/api/caching#Schema"
# The fields of Gemini's Schema object, as that page lists them.
DOCUMENTED = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example",
    "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
TYPES = {"string", "number", "integer", "boolean", "array", "object"}
# Same page, `format`: float/double for NUMBER, int32/int64 for INTEGER, enum/date-time for STRING.
FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
USER = {"role": "user", "content": "x"}


def _tool(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": params}}]


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


def test_nested_free_form_objects_keep_no_object_type() -> None:
    """https://ai.google.dev/api/caching#Schema: `properties` belongs to an OBJECT, and the API refuses an
    OBJECT without any ("properties: should be non-empty for OBJECT type") at every depth. A free-form map
    goes without a type and says it is a JSON object, so the model still writes one (LiteLLM's answer to
    the same refusal, BerriAI/litellm#18237)."""
    params = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Variables"},
            "meta": {"type": ["object", "null"], "minProperties": 1},
            "rows": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["path", "env"],
    }
    out = translate([USER], tools=_tool(params))
    props = out["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]
    assert props["env"] == {"description": f"Variables ({FREE_FORM_NOTE})"}
    assert props["meta"] == {"description": FREE_FORM_NOTE, "nullable": True}
    assert props["rows"] == {"type": "array", "items": {"description": FREE_FORM_NOTE}}
    assert out["tools"][0]["functionDeclarations"][0]["parameters"]["required"] == ["path", "env"]
    validate_request(out)


def test_a_recursive_reference_is_cut_to_a_free_form_object() -> None:
    """https://ai.google.dev/api/caching#Schema has no `$ref`: recursion cannot be written, so the node
    where it would repeat becomes a free-form object instead of a bare, refused OBJECT."""
    node = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
    out = clean_schema({"$defs": {"Node": node}, "$ref": "#/$defs/Node"})
    assert out == {
        "type": "object",
        "properties": {"kids": {"type": "array", "items": {"description": FREE_FORM_NOTE}}},
    }
    validate_request(translate([USER], tools=_tool({"$defs": {"Node": node}, "$ref": "#/$defs/Node"})))


def test_free_form_roots_are_decided_by_the_caller() -> None:
    """https://ai.google.dev/api/generate-content#FunctionDeclaration: `parameters` is optional (a function
    without arguments has none); https://ai.google.dev/gemini-api/docs/structured-output: JSON mode is
    responseMimeType application/json without a schema, which is what "any JSON object" asks for."""
    free = {"type": "object", "additionalProperties": True}
    out = translate([USER], tools=_tool(free), response_format=_json_schema(free))
    assert out["tools"][0]["functionDeclarations"][0] == {"name": "f"}
    assert out["generationConfig"] == {"responseMimeType": "application/json"}
    validate_request(out)


def test_required_only_variants_keep_the_object() -> None:
    """https://ai.google.dev/api/caching#Schema: anyOf lists alternative schemas. Variants that carry only
    `required` ("give a or b") are no alternative shapes: the object keeps its type and properties, and
    what every variant requires becomes required."""
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "org": {"type": "string"}},
        "oneOf": [{"required": ["org", "id"]}, {"required": ["org", "name"], "description": "by name"}],
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "org": {"type": "string"}},
        "required": ["org"],
    }
    nullable = {"properties": {"a": {"type": "integer"}}, "anyOf": [{"required": ["a"]}, {"type": "null"}]}
    assert clean_schema(nullable) == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "nullable": True,
    }
    validate_request(translate([USER], tools=_tool(schema)))


def test_non_string_enums_are_string_enums_with_enum_format() -> None:
    """https://ai.google.dev/api/caching#Schema: `enum` holds "possible values of the element of
    Type.STRING with enum format", e.g. {type:STRING, format:enum, enum:["EAST", ...]}. Integer, number
    and boolean enums travel that way, their values as JSON text, instead of being dropped."""
    schema = {
        "type": "object",
        "properties": {
            "level": {"type": "integer", "enum": [1, 2, 3], "description": "how loud"},
            "ratio": {"enum": [0.5, 1, 2.5]},
            "flag": {"type": ["boolean", "null"], "enum": [True, False, None]},
            "mixed": {"enum": ["auto", 0]},
            "one": {"const": 7},
            "word": {"type": "string", "enum": ["a", "b"]},
        },
    }
    props = clean_schema(schema)["properties"]
    assert props["level"] == {
        "type": "string",
        "format": "enum",
        "enum": ["1", "2", "3"],
        "description": "how loud",
    }
    assert props["ratio"] == {"type": "string", "format": "enum", "enum": ["0.5", "1", "2.5"]}
    assert props["flag"] == {"type": "string", "format": "enum", "enum": ["true", "false"], "nullable": True}
    assert props["mixed"] == {"type": "string", "format": "enum", "enum": ["auto", "0"]}
    assert props["one"] == {"type": "string", "format": "enum", "enum": ["7"]}
    assert props["word"] == {"type": "string", "enum": ["a", "b"]}
    validate_request(translate([USER], tools=_tool(schema), response_format=_json_schema(schema)))


def test_an_explicit_property_ordering_is_kept() -> None:
    """https://ai.google.dev/gemini-api/docs/structured-output: propertyOrdering sets the order in which
    the model writes the keys (https://ai.google.dev/api/caching#Schema lists it). The client's own order
    comes first, names that are no property left out, then the other properties in their own order;
    without one, the properties' order is used."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        "propertyOrdering": ["c", "ghost", "a", "c"],
    }
    out = translate([USER], response_format=_json_schema(schema))
    assert out["generationConfig"]["responseSchema"]["propertyOrdering"] == ["c", "a", "b"]
    plain = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    assert clean_schema(plain, ordered=True)["propertyOrdering"] == ["b", "a"]
    assert "propertyOrdering" not in clean_schema(plain)
    assert clean_schema(schema)["propertyOrdering"] == ["c", "a"]  # a tool's own order, as given
    validate_request(out)


# -- the property: only documented Schema fields, in shapes the page allows -----------------------------

_NAMES = st.sampled_from(["a", "b", "c", "d"])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2, allow_nan=False), st.text("xy", max_size=2)
)
_TYPE = st.sampled_from(["string", "number", "integer", "boolean", "array", "object", "null", "bogus"])
_KEYWORDS = {
    "type": _TYPE | st.lists(_TYPE, max_size=3),
    "enum": st.lists(_SCALARS, max_size=4),
    "const": _SCALARS,
    "format": st.sampled_from(["email", "uri", "date-time", "enum", "int32", "float", "uuid"]),
    "description": st.text(max_size=3),
    "title": st.text(max_size=3),
    "default": _SCALARS,
    "examples": st.lists(_SCALARS, max_size=2),
    "minimum": st.integers(-5, 5),
    "exclusiveMaximum": st.integers(-5, 5),
    "minLength": st.integers(0, 3),
    "pattern": st.just("^x"),
    "uniqueItems": st.booleans(),
    "nullable": st.booleans(),
    "required": st.lists(_NAMES, max_size=3),
    "propertyOrdering": st.lists(_NAMES, max_size=3),
    "additionalProperties": st.booleans(),
    "$ref": st.sampled_from(["#", "#/$defs/A"]),
    "$comment": st.just("c"),
    "$schema": st.just("https://json-schema.org/draft/2020-12/schema"),
    "strict": st.booleans(),
}


def _nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            **_KEYWORDS,
            "properties": st.dictionaries(_NAMES, children, max_size=3),
            "items": children | st.lists(children, max_size=2),
            "prefixItems": st.lists(children, max_size=2),
            "anyOf": st.lists(children, max_size=3),
            "oneOf": st.lists(children, max_size=3),
            "allOf": st.lists(children, max_size=2),
            "additionalProperties": children,
            "not": children,
        },
    )


_SCHEMAS = st.recursive(st.fixed_dictionaries({}, optional=_KEYWORDS) | st.booleans(), _nested, max_leaves=12)
_ROOTS = st.builds(lambda root, a: {**root, "$defs": {"A": a}}, _nested(_SCHEMAS), _SCHEMAS)


def _problems(node: Any, where: str, root: bool) -> list[str]:
    """What https://ai.google.dev/api/caching#Schema does not allow in a translated schema."""
    if not isinstance(node, dict):
        return [f"{where}: not an object"]
    found = [f"{where}: unknown field {k!r}" for k in node if k not in DOCUMENTED]
    kind = node.get("type")
    if kind is not None and kind not in TYPES:
        found.append(f"{where}: type {kind!r}")
    if "enum" in node and (kind != "string" or not all(isinstance(v, str) and v for v in node["enum"])):
        found.append(f"{where}: enum {node['enum']!r} on {kind!r}")
    if "format" in node and node["format"] not in FORMATS.get(kind or "", ()):
        found.append(f"{where}: format {node['format']!r} on {kind!r}")
    if kind == "array" and "items" not in node:
        found.append(f"{where}: array without items")
    if kind == "object" and not node.get("properties") and not root:
        found.append(f"{where}: object without properties")
    names = list(node.get("properties") or {})
    for key in ("required", "propertyOrdering"):
        listed = node.get(key, [])
        if any(n not in names for n in listed) or len(set(listed)) < len(listed):
            found.append(f"{where}: {key} {listed!r} for properties {names!r}")
    for name, sub in (node.get("properties") or {}).items():
        found += _problems(sub, f"{where}.properties.{name}", False)
    if "items" in node:
        found += _problems(node["items"], f"{where}.items", False)
    for k, sub in enumerate(node.get("anyOf") or []):
        found += _problems(sub, f"{where}.anyOf[{k}]", False)
    if "anyOf" in node and not node["anyOf"]:
        found.append(f"{where}: empty anyOf")
    return found


@FAST
@given(_ROOTS)
def test_translated_schemas_hold_only_documented_fields(schema: dict[str, Any]) -> None:
    """https://ai.google.dev/api/caching#Schema: whatever JSON Schema a client sends, a tool's parameters
    and a response schema reach Gemini with only the Schema fields that page lists, with the types,
    formats and enums it allows, and never an object without properties below the root."""
    for ordered in (False, True):
        try:
            out = clean_schema(schema, ordered=ordered)
        except TranslationError:
            continue  # a $ref that points nowhere, or nesting too deep: a clear 400, never a translation
        assert _problems(out, "schema", True) == []
    try:
        request = translate([USER], tools=_tool(schema), response_format=_json_schema(schema))
    except TranslationError:
        return
    validate_request(request)
