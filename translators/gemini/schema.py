"""JSON Schema -> Gemini Schema (the OpenAPI 3.0 subset Gemini accepts), for tools and structured output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from translators.gemini.exceptions import TranslationError

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

_Cleaner = Callable[[Any], dict[str, Any]]
"""Cleans a nested schema one level deeper (same root, same $ref chain)."""


@dataclass(slots=True)
class _SchemaCtx:
    root: dict[str, Any]
    ordered: bool
    where: str


def clean_schema(schema: Any, *, ordered: bool = False, where: str = "schema") -> dict[str, Any]:
    """A JSON Schema reduced to what Gemini's Schema takes.

    $ref/$defs are inlined (recursion is cut to a bare object), anyOf[X, null] becomes X + nullable,
    enums survive on strings only, and keywords Gemini rejects (additionalProperties, $schema, strict,
    default, examples, title, const, ...) are dropped. `ordered` adds propertyOrdering, which structured
    output needs: Gemini otherwise emits keys alphabetically.
    """
    if not isinstance(schema, dict):
        raise TranslationError(f"{where}: a JSON Schema object is required", param=where)
    out = _clean(schema, _SchemaCtx(schema, ordered, where), (), 0)
    if "type" not in out and "anyOf" not in out:
        out["type"] = "object"
    return out


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
            return {"type": "object"}  # Gemini's Schema cannot express recursion
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**_resolve_ref(ref, ctx), **siblings}, ctx, (*refs, ref), depth + 1)

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
        out["anyOf"] = [{"type": t} for t in types]
    elif types:
        out["type"] = types[0]
    return out, nullable


def _add_properties(node: dict[str, Any], out: dict[str, Any], child: _Cleaner, ordered: bool) -> None:
    props = node.get("properties")
    if not isinstance(props, dict):
        return
    cleaned_props = {str(k): _with_type(child(v)) for k, v in props.items()}
    if cleaned_props:
        out["properties"] = cleaned_props
        required = node.get("required")
        if isinstance(required, list):
            # Gemini rejects names in `required` that are not among the properties.
            req = [r for r in required if isinstance(r, str) and r in cleaned_props]
            if req:
                out["required"] = req
        if ordered:
            out["propertyOrdering"] = list(cleaned_props)
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
    """Copies a string enum (or const); returns whether it allowed null."""
    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if not isinstance(enum, list):
        return False
    values = [v for v in enum if v is not None]
    # Gemini's enum is string-only; dropping it on other types beats a 400.
    if values and all(isinstance(v, str) for v in values) and out.get("type", "string") == "string":
        values = [v for v in values if v != ""]
        if values:
            out["type"] = "string"
            out["enum"] = values
    elif values and "type" not in out and "anyOf" not in out:
        out["type"] = _json_type(values)  # keep at least the value type the enum implied
    return None in enum


def _add_format_and_constraints(node: dict[str, Any], out: dict[str, Any]) -> None:
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
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
    for key, value in sub.items():
        if key == "properties":
            out.setdefault("properties", {}).update(value)
        elif key == "required":
            out["required"] = [
                *out.get("required", []),
                *(r for r in value if r not in out.get("required", [])),
            ]
        elif key == "propertyOrdering":
            out["propertyOrdering"] = [*out.get("propertyOrdering", []), *value]
        else:
            out.setdefault(key, value)
