"""JSON Schema -> Gemini Schema (the OpenAPI 3.0 subset Gemini accepts), for tools and structured output.

Gemini's Schema has these fields and no others (https://ai.google.dev/api/caching#Schema): type, format,
title, description, nullable, enum, maxItems, minItems, properties, required, minProperties,
maxProperties, minLength, maxLength, pattern, example, anyOf, propertyOrdering, default, items, minimum,
maximum. What JSON Schema says beyond them is translated where Google documents a way:

- Enums: Gemini's `enum` holds strings, on a STRING schema "with enum format" (same page). Integer,
  number and boolean enums therefore become `{type: string, format: enum, enum: ["1", "2"]}`: the model
  answers with one of those strings rather than the number.
- Objects without properties (a free-form map, `additionalProperties` only, a recursion cut short) are
  refused as `{"type": "object"}` ("properties: should be non-empty for OBJECT type", at any depth). A
  nested one loses its `type` and says "Any JSON object." in its description, so the model still writes
  an object: what LiteLLM does (BerriAI/litellm#18237); Google's SDK has no answer (it refuses
  `additionalProperties` on this API). `STRING` would hand the client a string where its schema promises
  an object. At the root the callers decide: a function takes no `parameters`, structured output falls
  back to JSON mode (`is_free_form`).
- anyOf/oneOf variants that only list `required` fields (no type, no properties: "a or b must be given")
  say which fields go together, not what the value is: the object keeps its type and properties, and
  fields every variant requires become required.
- An explicit `propertyOrdering` is kept (its names that are properties). Structured output also lists
  the remaining properties after it, in their own order (Gemini otherwise orders keys alphabetically).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from translators import json_codec
from translators.gemini.exceptions import TranslationError

FREE_FORM_NOTE = "Any JSON object."
_SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
# Gemini answers 400 on any other `format` ("only 'enum' and 'date-time' are supported for STRING").
_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
_CONSTRAINTS = {
    "number": ("minimum", "maximum"),
    "integer": ("minimum", "maximum"),
    "string": ("minLength", "maxLength", "pattern"),
    "array": ("minItems", "maxItems"),
    "object": ("minProperties", "maxProperties"),
}
_MAX_SCHEMA_DEPTH = 64
# Keywords that say what a value is; an anyOf/oneOf variant without any of them only constrains.
_SHAPE_KEYWORDS = frozenset(
    {"type", "properties", "items", "prefixItems", "enum", "const", "$ref", "anyOf", "oneOf", "allOf",
     "additionalProperties", "format"}
)  # fmt: skip

_Cleaner = Callable[[Any], dict[str, Any]]
"""Cleans a nested schema one level deeper (same root, same $ref chain)."""


@dataclass(slots=True)
class _SchemaCtx:
    root: dict[str, Any]
    ordered: bool
    where: str


def clean_schema(schema: Any, *, ordered: bool = False, where: str = "schema") -> dict[str, Any]:
    """A JSON Schema reduced to what Gemini's Schema takes (see the module docstring).

    $ref/$defs are inlined (recursion is cut to a free-form object), anyOf[X, null] becomes X + nullable,
    and keywords Gemini rejects (additionalProperties, $schema, strict, default, examples, title, const,
    ...) are dropped. `ordered` adds propertyOrdering where the schema has none, which structured output
    needs. The root may come out free-form (`is_free_form`): the caller decides what to send then.
    """
    if not isinstance(schema, dict):
        raise TranslationError(f"{where}: a JSON Schema object is required", param=where)
    out = _clean(schema, _SchemaCtx(schema, ordered, where), (), 0)
    if "type" not in out and "anyOf" not in out:
        out["type"] = "object"
    for sub in _subschemas(out):
        _open_free_form(sub)
    return out


def is_free_form(schema: dict[str, Any]) -> bool:
    """An object schema without properties: Gemini refuses it as it is."""
    return schema.get("type") == "object" and not schema.get("properties")


def _subschemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    items = schema.get("items")
    return [*schema.get("properties", {}).values(), *([items] if items else []), *schema.get("anyOf", [])]


def _open_free_form(schema: dict[str, Any]) -> None:
    """Below the root, a free-form object goes without `type` (module docstring), innermost first."""
    for sub in _subschemas(schema):
        _open_free_form(sub)
    if not is_free_form(schema):
        return
    for key in ("type", "properties", "required", "minProperties", "maxProperties", "propertyOrdering"):
        schema.pop(key, None)
    described = schema.get("description")
    schema["description"] = f"{described} ({FREE_FORM_NOTE})" if described else FREE_FORM_NOTE


def _resolve_ref(ref: str, ctx: _SchemaCtx) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise TranslationError(
            f"{ctx.where}: only local $ref values are supported, got {ref!r}", param=ctx.where
        )
    node: Any = ctx.root
    for token in ref[1:].split("/")[1:] if ref != "#" else []:
        token = unquote_to_bytes(token).decode().replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            raise TranslationError(f"{ctx.where}: $ref {ref!r} points nowhere", param=ctx.where)
        node = node[token]
    if not isinstance(node, dict):
        raise TranslationError(f"{ctx.where}: $ref {ref!r} is not a schema", param=ctx.where)
    return node


def _is_null_schema(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node) <= 2


def _clean(node: Any, ctx: _SchemaCtx, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
    if depth > _MAX_SCHEMA_DEPTH:
        raise TranslationError(f"{ctx.where}: schema is nested too deeply", param=ctx.where)
    if not isinstance(node, dict):
        return {}  # `true` / `{}`-like schemas: anything goes; the caller picks a fallback type
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in refs:
            return {"type": "object"}  # no recursion in Gemini's Schema: cut to a free-form object
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**_resolve_ref(ref, ctx), **siblings}, ctx, (*refs, ref), depth + 1)
    node = _fold_required_variants(node)

    def child(sub: Any) -> dict[str, Any]:
        return _clean(sub, ctx, refs, depth + 1)

    out, nullable = _type_or_union(node, child)
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        for sub in all_of:
            _merge_into(out, child(sub))
    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]
    _add_properties(node, out, child, ctx.ordered)
    _add_items(node, out, child)
    nullable = _add_enum(node, out) or nullable
    _add_format_and_constraints(node, out)
    if nullable:
        out["nullable"] = True
    return out


def _fold_required_variants(node: dict[str, Any]) -> dict[str, Any]:
    """anyOf/oneOf whose variants only constrain (`required` lists, no type) are dropped from the node;
    names every such variant requires join `required`, and a null variant makes the node nullable."""
    for key in ("anyOf", "oneOf"):
        variants = node.get(key)
        if not isinstance(variants, list):
            continue
        real = [v for v in variants if not _is_null_schema(v)]
        if not real or not all(isinstance(v, dict) and _SHAPE_KEYWORDS.isdisjoint(v) for v in real):
            continue
        node = {k: v for k, v in node.items() if k != key}
        if len(real) < len(variants):
            node["nullable"] = True
        lists = [_names(v.get("required")) for v in real]
        required = _names(node.get("required"))
        node["required"] = [
            *required,
            *(n for n in lists[0] if n not in required and all(n in r for r in lists)),
        ]
    return node


def _names(value: Any) -> list[str]:
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else []


def _type_or_union(node: dict[str, Any], child: _Cleaner) -> tuple[dict[str, Any], bool]:
    """`type` (a list of types becomes anyOf) or anyOf/oneOf; null types and variants become `nullable`."""
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True

    raw_type = node.get("type")
    types = [raw_type] if isinstance(raw_type, str) else list(raw_type) if isinstance(raw_type, list) else []
    if "null" in types:
        nullable = True
    types = [t for t in types if t in _SCHEMA_TYPES]

    variants = node.get("anyOf", node.get("oneOf"))
    if isinstance(variants, list):
        real = [v for v in variants if not _is_null_schema(v)]
        nullable = nullable or len(real) < len(variants)
        cleaned = [_with_type(child(v)) for v in real]
        if len(cleaned) == 1:
            out.update(cleaned[0])
            nullable = nullable or cleaned[0].get("nullable") is True
        elif cleaned:
            out["anyOf"] = cleaned
    elif len(types) > 1:
        # Gemini requires `items` on every array, a variant too.
        out["anyOf"] = [
            {"type": t, "items": {"type": "string"}} if t == "array" else {"type": t} for t in types
        ]
    elif types:
        out["type"] = types[0]
    return out, nullable


def _add_properties(node: dict[str, Any], out: dict[str, Any], child: _Cleaner, ordered: bool) -> None:
    """The node's properties joined to those allOf brought; `required` and `propertyOrdering` name only
    properties (Gemini refuses others), an explicit order first, then (`ordered`) the rest in key order."""
    props = node.get("properties")
    if not isinstance(props, dict):
        return
    merged = {**out.get("properties", {}), **{str(k): _with_type(child(v)) for k, v in props.items()}}
    if merged:
        out["properties"] = merged
        required = dict.fromkeys([*out.get("required", []), *_names(node.get("required"))])
        out["required"] = [n for n in required if n in merged]
        order = [*out.get("propertyOrdering", []), *_names(node.get("propertyOrdering"))]
        order = [n for n in dict.fromkeys([*order, *(merged if ordered else ())]) if n in merged]
        out["propertyOrdering"] = order
        for key in ("required", "propertyOrdering"):
            if not out[key]:
                del out[key]
    if "anyOf" not in out:
        out.setdefault("type", "object")


def _add_items(node: dict[str, Any], out: dict[str, Any], child: _Cleaner) -> None:
    items = node.get("items", node.get("prefixItems"))
    if isinstance(items, dict):
        out["items"] = _with_type(child(items))
    elif isinstance(items, list) and items:
        tuple_items = [_with_type(child(i)) for i in items]
        out["items"] = tuple_items[0] if len(tuple_items) == 1 else {"anyOf": tuple_items}
    if "items" in out and "anyOf" not in out:
        out.setdefault("type", "array")
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}  # Gemini requires `items` on arrays


def _add_enum(node: dict[str, Any], out: dict[str, Any]) -> bool:
    """Copies an enum (or const): strings as they are, other scalars as their JSON text on a STRING schema
    with `format: enum` (module docstring). Returns whether it allowed null."""
    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if not isinstance(enum, list):
        return False
    values = [v for v in enum if v is not None]
    if not values or "anyOf" in out or out.get("type") in ("array", "object"):
        return None in enum
    if all(isinstance(v, str) for v in values) and out.get("type", "string") == "string":
        texts = [v for v in values if v]  # Gemini refuses empty enum values
        if texts:
            out["type"], out["enum"] = "string", texts
    elif all(isinstance(v, str | int | float) for v in values):
        texts = [v if isinstance(v, str) else json_codec.dumps(v).decode() for v in values]
        texts = list(dict.fromkeys(t for t in texts if t))
        out.update({"type": "string", "format": "enum", "enum": texts} if texts else {})
    elif "type" not in out:
        out["type"] = _json_type(values)  # keep at least the value type the enum implied
    return None in enum


def _add_format_and_constraints(node: dict[str, Any], out: dict[str, Any]) -> None:
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()) and "format" not in out:
        out["format"] = fmt
    for key in _CONSTRAINTS.get(out.get("type", ""), ()):
        value = node.get(key)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out[key] = value


def _json_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def _with_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Nested schemas need a type; an unconstrained value is offered to the model as a string."""
    if "type" not in schema and "anyOf" not in schema:
        schema["type"] = "string"
    return schema


def _merge_into(out: dict[str, Any], sub: dict[str, Any]) -> None:
    if out.get("type", sub.get("type")) != sub.get("type", out.get("type")):
        return  # allOf branches of different types: nothing satisfies both; the first one stands
    for key, value in sub.items():
        if key == "properties":
            out.setdefault("properties", {}).update(value)
        elif key == "required":
            out["required"] = [
                *out.get("required", []),
                *(r for r in value if r not in out.get("required", [])),
            ]
        elif key == "propertyOrdering":
            out["propertyOrdering"] = list(dict.fromkeys([*out.get("propertyOrdering", []), *value]))
        else:
            out.setdefault(key, value)
