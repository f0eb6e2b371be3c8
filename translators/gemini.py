"""OpenAI chat.completions <-> Gemini generateContent (Generative Language API v1beta).

Pure functions plus one incremental stream translator; the backend glue does the HTTP. Gemini-side
field names are proto-JSON camelCase. The mapping follows Google's API reference and LiteLLM's
(see /work/shared/notes/mitmproxy-and-wire-formats.md, sections 2a, 2b and 2d).

Things worth knowing before changing anything here:
- Gemini 3 answers tool calls with an opaque `thoughtSignature` and rejects the next turn unless it
  comes back on the same functionCall part. OpenAI clients know nothing of it, so it rides inside the
  tool call id we hand out (`<id>__ts__<urlsafe base64>`) and is restored when that id comes back.
- Tool call ids are never sent to Gemini: older models reject unknown `functionCall.id` values, and
  Gemini pairs calls with results by order and name anyway.
- Streams: after an error event nothing more is sent (no `[DONE]`), as OpenAI itself does; the openai
  SDK raises on the error event. A stream that ends with no valid event, or before any finishReason
  (the upstream connection was cut), ends with an error event too, never with a fake "stop".
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

from translators import json_codec
from translators.sse import DONE, SSEDecoder, SSEEvent, encode_data
from translators.synthetic import chunk, completion_id, error_body, sse_error_event, usage_chunk

__all__ = [
    "GeminiFormatError",
    "GeminiStreamTranslator",
    "TranslationError",
    "clean_schema",
    "decode_tool_call_id",
    "encode_tool_call_id",
    "from_gemini_response",
    "gemini_error_to_openai",
    "gemini_path",
    "parse_model_page",
    "retry_info",
    "to_gemini_request",
    "usage_from_metadata",
]

log = logging.getLogger(__name__)

API_VERSION = "v1beta"
SIGNATURE_SEPARATOR = "__ts__"
# Google's documented placeholder for history Gemini did not produce itself (another provider's turns,
# hand-built transcripts): Gemini 3 otherwise answers 400 "Function call is missing a thought_signature".
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

IdFactory = Callable[[str], str]
"""Makes a fresh id from a prefix ("chatcmpl-" or "call_"); injectable so tests are deterministic."""


def _random_id(prefix: str) -> str:
    return completion_id() if prefix == "chatcmpl-" else prefix + uuid.uuid4().hex[:24]


class TranslationError(ValueError):
    """The client's request cannot be expressed for Gemini; answer 400 with this message and `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class GeminiFormatError(ValueError):
    """A 2xx Gemini answer that is not a GenerateContentResponse (the glue should answer 502)."""


# ---------------------------------------------------------------------------------------------------
# Tool call ids carrying thought signatures
# ---------------------------------------------------------------------------------------------------


def encode_tool_call_id(base: str, signature: str | None) -> str:
    """`base` plus the signature, urlsafe so the id survives clients that put ids in URLs or logs."""
    if not signature:
        return base
    enc = base64.urlsafe_b64encode(signature.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{base}{SIGNATURE_SEPARATOR}{enc}"


def decode_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """(base id, thought signature or None). A mangled suffix is ignored rather than failing the turn."""
    base, sep, enc = call_id.partition(SIGNATURE_SEPARATOR)
    if not sep or not enc:
        return call_id, None
    try:
        raw = base64.b64decode(enc + "=" * (-len(enc) % 4), altchars=b"-_", validate=True)
        if not raw:
            raise ValueError("empty signature")
        return base, raw.decode("utf-8")
    except (binascii.Error, ValueError):
        log.debug("tool call id %r has an undecodable thought signature suffix; sending none", base)
        return base, None


# ---------------------------------------------------------------------------------------------------
# JSON Schema -> Gemini Schema (the OpenAPI 3.0 subset Gemini accepts)
# ---------------------------------------------------------------------------------------------------

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
        cleaned = [_with_type(_clean(v, ctx, refs, depth + 1)) for v in real]
        if len(cleaned) == 1:
            out.update(cleaned[0])
            nullable = nullable or cleaned[0].get("nullable") is True
        elif cleaned:
            out["anyOf"] = cleaned
    elif len(types) > 1:
        out["anyOf"] = [{"type": t} for t in types]
    elif types:
        out["type"] = types[0]

    all_of = node.get("allOf")
    if isinstance(all_of, list):
        for sub in all_of:
            _merge_into(out, _clean(sub, ctx, refs, depth + 1))

    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]

    props = node.get("properties")
    if isinstance(props, dict):
        cleaned_props = {str(k): _with_type(_clean(v, ctx, refs, depth + 1)) for k, v in props.items()}
        if cleaned_props:
            out["properties"] = cleaned_props
            required = node.get("required")
            if isinstance(required, list):
                # Gemini rejects names in `required` that are not among the properties.
                req = [r for r in required if isinstance(r, str) and r in cleaned_props]
                if req:
                    out["required"] = req
            if ctx.ordered:
                out["propertyOrdering"] = list(cleaned_props)
        if "anyOf" not in out:
            out.setdefault("type", "object")

    items = node.get("items", node.get("prefixItems"))
    if isinstance(items, dict):
        out["items"] = _with_type(_clean(items, ctx, refs, depth + 1))
    elif isinstance(items, list) and items:
        tuple_items = [_with_type(_clean(i, ctx, refs, depth + 1)) for i in items]
        out["items"] = tuple_items[0] if len(tuple_items) == 1 else {"anyOf": tuple_items}
    if "items" in out and "anyOf" not in out:
        out.setdefault("type", "array")
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}  # Gemini requires `items` on arrays

    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if isinstance(enum, list):
        if None in enum:
            nullable = True
        values = [v for v in enum if v is not None]
        # Gemini's enum is string-only; dropping it on other types beats a 400.
        if values and all(isinstance(v, str) for v in values) and out.get("type", "string") == "string":
            values = [v for v in values if v != ""]
            if values:
                out["type"] = "string"
                out["enum"] = values
        elif values and "type" not in out and "anyOf" not in out:
            out["type"] = _json_type(values)  # keep at least the value type the enum implied

    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt
    for key in _CONSTRAINTS.get(out.get("type", ""), ()):
        value = node.get(key)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out[key] = value

    if nullable:
        out["nullable"] = True
    return out


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


# ---------------------------------------------------------------------------------------------------
# Request: OpenAI chat.completions -> GenerateContentRequest
# ---------------------------------------------------------------------------------------------------

# Extension -> MIME type for remote media. A fixed table: the `mimetypes` module reads the host's
# /etc/mime.types, so its answers differ between machines.
_MIME_BY_EXT = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp",
    "pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "html": "text/html",
    "csv": "text/csv", "xml": "text/xml", "json": "application/json",
    "wav": "audio/wav", "mp3": "audio/mp3", "aiff": "audio/aiff", "aac": "audio/aac",
    "ogg": "audio/ogg", "flac": "audio/flac", "m4a": "audio/m4a", "opus": "audio/opus",
    "mp4": "video/mp4", "mpeg": "video/mpeg", "mpg": "video/mpeg", "mov": "video/mov",
    "avi": "video/avi", "flv": "video/x-flv", "webm": "video/webm", "wmv": "video/wmv", "3gp": "video/3gpp",
}  # fmt: skip
_FILES_API = re.compile(r"^https://generativelanguage\.googleapis\.com/(v1beta|v1)/files/", re.I)

# Parameters read below; anything else is dropped with a debug line.
_HANDLED = frozenset(
    {
        "messages", "model", "stream", "stream_options", "tools", "tool_choice", "temperature", "top_p",
        "top_k", "max_tokens", "max_completion_tokens", "stop", "n", "seed", "presence_penalty",
        "frequency_penalty", "response_format", "reasoning_effort",
    }
)  # fmt: skip
_BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 8192, "high": 24576}
_LEVELS_FLASH = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "high", "high": "high"}


def to_gemini_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """OpenAI chat.completions request -> Gemini GenerateContentRequest. Raises TranslationError."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", param="messages")

    system, contents = _convert_messages(messages, model)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise TranslationError("'tools' must be an array", param="tools")
        decls = _function_declarations(tools)
        tool_config = _tool_config(body.get("tool_choice"), decls)
        if decls:
            out["tools"] = [{"functionDeclarations": decls}]
            if tool_config:
                out["toolConfig"] = {"functionCallingConfig": tool_config}
    elif body.get("tool_choice") is not None:
        log.debug("dropping tool_choice: the request has no tools")

    gen = _generation_config(body, model)
    if gen:
        out["generationConfig"] = gen

    for key in body:
        if key not in _HANDLED:
            log.debug("dropping OpenAI parameter %r: Gemini has no equivalent", key)
    return out


def _convert_messages(messages: list[Any], model: str) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return  # Gemini rejects empty turns; dropping one keeps alternation (merge below)
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})

    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise TranslationError(f"{where} must be an object", param=where)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_only(content, f"{where}.content")
            if text:
                system.append(text)
        elif role == "user":
            add("user", _user_parts(content, f"{where}.content"))
        elif role == "assistant":
            add("model", _assistant_parts(msg, where, call_names))
        elif role == "tool":
            add("user", _tool_result_parts(msg, where, call_names))
        elif role == "function":  # legacy OpenAI function calling
            name = msg.get("name")
            if not isinstance(name, str) or not name:
                raise TranslationError(f"{where}: a function message needs a 'name'", param=f"{where}.name")
            text = _text_only(content, f"{where}.content")
            add("user", [{"functionResponse": {"name": name, "response": _response_object(text)}}])
        else:
            raise TranslationError(f"{where}: unsupported role {role!r}", param=f"{where}.role")

    if not turns:
        # Gemini needs at least one turn; a system-only conversation gets a minimal user turn.
        turns.append({"role": "user", "parts": [{"text": "."}]})
    if _is_gemini3(model):
        _add_dummy_signatures(turns)
    return system, turns


def _is_gemini3(model: str) -> bool:
    return _bare_model(model).startswith("gemini-3")


def _bare_model(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


def _add_dummy_signatures(turns: list[dict[str, Any]]) -> None:
    """Gemini 3 validates the first functionCall of each model turn; history from elsewhere has none."""
    for turn in turns:
        if turn["role"] != "model":
            continue
        calls = [p for p in turn["parts"] if "functionCall" in p]
        if calls and not calls[0].get("thoughtSignature"):
            calls[0]["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE


def _text_only(content: Any, where: str) -> str:
    """Content that may only hold text (system, tool results): parts joined with newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or an array of text parts", param=where)
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") in ("text", "refusal", None):
            value = part.get("text", part.get("refusal"))
            if not isinstance(value, str):
                raise TranslationError(f"{where}[{j}] has no text", param=f"{where}[{j}]")
            texts.append(value)
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise TranslationError(
                f"{where}[{j}]: only text parts are allowed here, got {kind!r}", param=f"{where}[{j}]"
            )
    return "\n".join(t for t in texts if t)


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []  # Gemini rejects empty text parts
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or an array of content parts", param=where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p_where = f"{where}[{j}]"
        if isinstance(part, str):
            if part:
                parts.append({"text": part})
            continue
        if not isinstance(part, dict):
            raise TranslationError(f"{p_where} must be an object", param=p_where)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise TranslationError(f"{p_where} has no 'text' string", param=f"{p_where}.text")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise TranslationError(f"{p_where} has no image URL", param=f"{p_where}.image_url")
            parts.append(_media_part(url, f"{p_where}.image_url"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not data or not isinstance(fmt, str) or not fmt:
                raise TranslationError(
                    f"{p_where} needs input_audio.data and .format", param=f"{p_where}.input_audio"
                )
            parts.append({"inlineData": {"mimeType": f"audio/{fmt.lower()}", "data": data}})
        elif kind == "file":
            parts.append(_file_part(part.get("file"), p_where))
        else:
            raise TranslationError(
                f"{p_where}: content part type {kind!r} is not supported", param=f"{p_where}.type"
            )
    return parts


def _media_part(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        return {"inlineData": _data_url(url, where)}
    split = urlsplit(url)
    if split.scheme.lower() not in ("http", "https", "gs"):
        raise TranslationError(
            f"{where}: unsupported URL scheme {split.scheme!r}; use http(s) or a data URL", param=where
        )
    mime = _mime_from_path(split.path)
    if mime is None:
        if _FILES_API.match(url):
            return {"fileData": {"fileUri": url}}  # Gemini knows its own files' types
        raise TranslationError(
            f"{where}: cannot tell the media type of {_short(url)}; Gemini needs it for remote files. "
            "Use a URL ending in a known extension (.png, .jpg, .pdf, ...) or send a data: URL",
            param=where,
        )
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _mime_from_path(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MIME_BY_EXT.get(ext)


def _data_url(url: str, where: str) -> dict[str, str]:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise TranslationError(f"{where}: malformed data URL (no comma)", param=where)
    fields = header.split(";")
    mime = fields[0].strip().lower()
    if not mime or "/" not in mime:
        raise TranslationError(
            f"{where}: the data URL has no media type (e.g. data:image/png;base64,...)", param=where
        )
    if "base64" in (f.strip().lower() for f in fields[1:]):
        data = "".join(payload.split())
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
    if not data:
        raise TranslationError(f"{where}: the data URL is empty", param=where)
    return {"mimeType": mime, "data": data}


def _file_part(file: Any, where: str) -> dict[str, Any]:
    if not isinstance(file, dict):
        raise TranslationError(f"{where}: a file part needs a 'file' object", param=f"{where}.file")
    data = file.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return {"inlineData": _data_url(data, f"{where}.file.file_data")}
        mime = _mime_from_path(str(file.get("filename") or ""))
        if mime is None:
            raise TranslationError(
                f"{where}: send file_data as a data: URL, or give a filename with a known extension",
                param=f"{where}.file.file_data",
            )
        return {"inlineData": {"mimeType": mime, "data": "".join(data.split())}}
    file_id = file.get("file_id")
    if isinstance(file_id, str) and urlsplit(file_id).scheme.lower() in ("http", "https", "gs"):
        return _media_part(file_id, f"{where}.file.file_id")
    raise TranslationError(
        f"{where}: Gemini cannot read OpenAI file ids; send the file inline as file_data",
        param=f"{where}.file",
    )


def _assistant_parts(msg: dict[str, Any], where: str, call_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = _text_only(msg.get("content"), f"{where}.content")
    if text:
        parts.append({"text": text})
    tool_calls = msg.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise TranslationError(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    for k, call in enumerate(tool_calls or []):
        c_where = f"{where}.tool_calls[{k}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise TranslationError(f"{c_where}: only function tool calls are supported", param=c_where)
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError(f"{c_where}: function.name is required", param=f"{c_where}.function.name")
        part: dict[str, Any] = {
            "functionCall": {
                "name": name,
                "args": _parse_args(fn.get("arguments"), f"{c_where}.function.arguments"),
            }
        }
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            call_names[call_id] = name
            _, signature = decode_tool_call_id(call_id)
            if signature:
                part["thoughtSignature"] = signature
        parts.append(part)
    legacy = msg.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        args = _parse_args(legacy.get("arguments"), f"{where}.function_call.arguments")
        parts.append({"functionCall": {"name": legacy["name"], "args": args}})
    return parts


def _parse_args(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw  # already parsed by a lenient client
    if not isinstance(raw, str):
        raise TranslationError(f"{where} must be a JSON string", param=where)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TranslationError(
            f"{where} is not valid JSON ({exc.msg} at char {exc.pos})", param=where
        ) from None
    if not isinstance(value, dict):
        raise TranslationError(f"{where} must encode a JSON object, got {type(value).__name__}", param=where)
    return value


def _tool_result_parts(msg: dict[str, Any], where: str, call_names: dict[str, str]) -> list[dict[str, Any]]:
    call_id = msg.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None and isinstance(call_id, str):
        # Some clients strip our signature suffix; the base id still identifies the call.
        base = decode_tool_call_id(call_id)[0]
        name = next((n for cid, n in call_names.items() if decode_tool_call_id(cid)[0] == base), None)
    if name is None and isinstance(msg.get("name"), str) and msg["name"]:
        name = msg["name"]
    if name is None:
        raise TranslationError(
            f"{where}: tool_call_id {call_id!r} matches no tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    content = msg.get("content")
    media: list[dict[str, Any]] = []
    if isinstance(content, list):
        # Tool results may carry images; Gemini takes them as parts beside the functionResponse.
        is_text = [not isinstance(p, dict) or p.get("type") in ("text", None) for p in content]
        media = _user_parts([p for p, t in zip(content, is_text, strict=True) if not t], f"{where}.content")
        content = [p for p, t in zip(content, is_text, strict=True) if t]
    text = _text_only(content, f"{where}.content")
    return [{"functionResponse": {"name": name, "response": _response_object(text)}}, *media]


def _response_object(text: str) -> dict[str, Any]:
    """functionResponse.response must be an object: a JSON object passes as is, anything else is wrapped."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return {"content": text}
    return value if isinstance(value, dict) else {"content": text}


def _function_declarations(tools: list[Any]) -> list[dict[str, Any]]:
    decls: list[dict[str, Any]] = []
    for k, tool in enumerate(tools):
        where = f"tools[{k}]"
        if not isinstance(tool, dict):
            raise TranslationError(f"{where} must be an object", param=where)
        if tool.get("type", "function") != "function":
            raise TranslationError(
                f"{where}: tool type {tool.get('type')!r} is not supported; Gemini takes function tools only",
                param=f"{where}.type",
            )
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError(f"{where}: function.name is required", param=f"{where}.function.name")
        decl: dict[str, Any] = {"name": name}
        if isinstance(fn.get("description"), str) and fn["description"]:
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if params is not None:
            cleaned = clean_schema(params, where=f"{where}.function.parameters")
            # An object without properties is a 400 ("properties: should be non-empty for OBJECT type");
            # a function without arguments simply has no `parameters`.
            if cleaned.get("type") != "object" or cleaned.get("properties"):
                decl["parameters"] = cleaned
        decls.append(decl)
    return decls


def _tool_config(choice: Any, decls: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice is None:
        return None
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str):
        if choice not in modes:
            raise TranslationError(
                f"tool_choice {choice!r} is not one of none, auto, required", param="tool_choice"
            )
        return {"mode": modes[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice.function.name is required", param="tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [
            t["function"]["name"]
            for t in allowed.get("tools") or []
            if isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        if allowed.get("mode") == "required":
            return {"mode": "ANY", "allowedFunctionNames": names}
        # allowedFunctionNames is only valid with ANY; for auto, offer just the allowed declarations.
        decls[:] = [d for d in decls if d["name"] in names]
        return {"mode": "AUTO"}
    raise TranslationError("unsupported tool_choice value", param="tool_choice")


def _number(body: dict[str, Any], key: str, *, integer: bool = False) -> int | float | None:
    value = body.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not float(value).is_integer())
    ):
        raise TranslationError(f"{key} must be {'an integer' if integer else 'a number'}", param=key)
    return int(value) if integer else value


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    for key, target, integer in (
        ("temperature", "temperature", False),
        ("top_p", "topP", False),
        ("top_k", "topK", True),
        ("n", "candidateCount", True),
        ("seed", "seed", True),
        ("presence_penalty", "presencePenalty", False),
        ("frequency_penalty", "frequencyPenalty", False),
    ):
        value = _number(body, key, integer=integer)
        if value is not None:
            gen[target] = value
    max_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, max_key, integer=True)
    if max_tokens is not None:
        gen["maxOutputTokens"] = max_tokens

    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise TranslationError("stop must be a string or an array of strings", param="stop")
        if [s for s in stop if s]:
            gen["stopSequences"] = [s for s in stop if s]

    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_object":
            gen["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            gen["responseMimeType"] = "application/json"
            if schema is not None:
                gen["responseSchema"] = clean_schema(
                    schema, ordered=True, where="response_format.json_schema.schema"
                )
        elif kind != "text":
            raise TranslationError(f"response_format type {kind!r} is not supported", param="response_format")
    elif fmt is not None:
        raise TranslationError("response_format must be an object", param="response_format")

    effort = body.get("reasoning_effort")
    if effort is not None:
        thinking = _thinking_config(effort, model)
        if thinking:
            gen["thinkingConfig"] = thinking
    return gen


def _thinking_config(effort: Any, model: str) -> dict[str, Any] | None:
    level = effort.lower() if isinstance(effort, str) else None
    if level == "xhigh":
        level = "high"
    if level not in _BUDGETS:
        raise TranslationError(
            f"reasoning_effort {effort!r} is not one of {', '.join(_BUDGETS)}", param="reasoning_effort"
        )
    bare = _bare_model(model)
    if bare.startswith(("gemini-1", "gemini-2.0", "gemma")):
        log.debug("dropping reasoning_effort: %s does not think", model)
        return None
    # Exactly one of thinkingLevel / thinkingBudget: Gemini answers 400 to both.
    if bare.startswith("gemini-3"):
        table = _LEVELS_FLASH if "flash" in bare else _LEVELS
        return {"thinkingLevel": table[level], "includeThoughts": level != "none"}
    budget = _BUDGETS[level]
    if "flash-lite" in bare and 0 < budget < 512:
        budget = 512  # Flash-Lite's budget range is 512..24576 (or 0)
    elif "pro" in bare and budget < 128:
        budget = 128  # 2.5 Pro cannot switch thinking off; 128 is its floor
    return {"thinkingBudget": budget, "includeThoughts": budget > 0 and level != "none"}


# ---------------------------------------------------------------------------------------------------
# Response: GenerateContentResponse -> chat.completion
# ---------------------------------------------------------------------------------------------------

_FILTER_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER", "NO_IMAGE"}
)
_STOP_REASONS = frozenset(
    {
        "STOP", "FINISH_REASON_UNSPECIFIED", "MALFORMED_FUNCTION_CALL", "TOO_MANY_TOOL_CALLS",
        "UNEXPECTED_TOOL_CALL", "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE",
    }
)  # fmt: skip


def _finish_reason(raw: Any) -> str:
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTER_REASONS or (isinstance(raw, str) and raw.startswith("IMAGE_")):
        return "content_filter"
    if raw not in _STOP_REASONS:
        log.debug("unknown Gemini finishReason %r mapped to 'stop'", raw)
    return "stop"


@dataclass(slots=True)
class _Parts:
    texts: list[str]
    thoughts: list[str]
    calls: list[dict[str, Any]]  # OpenAI tool_call objects (without index)


def _read_candidate(cand: dict[str, Any], ids: IdFactory) -> _Parts:
    out = _Parts([], [], [])
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            fc = part["functionCall"]
            native = fc.get("id") if isinstance(fc.get("id"), str) and fc.get("id") else None
            signature = (
                part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
            )
            args = fc.get("args") if isinstance(fc.get("args"), dict) else {}
            out.calls.append(
                {
                    "id": encode_tool_call_id(native or ids("call_"), signature),
                    "type": "function",
                    "function": {
                        "name": str(fc.get("name") or ""),
                        "arguments": json.dumps(args, ensure_ascii=False),
                    },
                }
            )
        elif isinstance(part.get("text"), str):
            (out.thoughts if part.get("thought") is True else out.texts).append(part["text"])
        else:
            log.debug("ignoring Gemini part with keys %s", sorted(part))
    return out


def usage_from_metadata(meta: Any) -> dict[str, Any]:
    """OpenAI usage from usageMetadata. Thoughts count as completion tokens (billed as output)."""
    meta = meta if isinstance(meta, dict) else {}

    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, tool_use = count("promptTokenCount"), count("toolUsePromptTokenCount")
    candidates, thoughts = count("candidatesTokenCount"), count("thoughtsTokenCount")
    total = count("totalTokenCount") or prompt + tool_use + candidates + thoughts
    completion = candidates
    # Whether candidatesTokenCount already includes thoughts varies by model; the total tells.
    if thoughts and prompt + candidates + tool_use != total:
        completion += thoughts
    return {
        "prompt_tokens": prompt + tool_use,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def from_gemini_response(
    data: dict[str, Any], *, model: str, id_factory: IdFactory | None = None
) -> dict[str, Any]:
    """Gemini GenerateContentResponse -> OpenAI chat.completion. Raises GeminiFormatError on other JSON."""
    ids = id_factory or _random_id
    if not isinstance(data, dict):
        raise GeminiFormatError(f"Gemini answered with {type(data).__name__}, not a GenerateContentResponse")
    if "error" in data:
        raise GeminiFormatError(
            "Gemini answered with an error object; translate it with gemini_error_to_openai"
        )
    cands = data.get("candidates")
    if cands is not None and not isinstance(cands, list):
        raise GeminiFormatError("Gemini's 'candidates' is not an array")
    rid = data.get("responseId")
    choices: list[dict[str, Any]] = []
    for pos, cand in enumerate(c for c in cands or [] if isinstance(c, dict)):
        parts = _read_candidate(cand, ids)
        finish = "tool_calls" if parts.calls else _finish_reason(cand.get("finishReason"))
        if parts.texts:
            content: str | None = "".join(parts.texts)
        else:
            content = None if parts.calls or finish == "content_filter" else ""
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if parts.thoughts:
            message["reasoning_content"] = "".join(parts.thoughts)
        if parts.calls:
            message["tool_calls"] = parts.calls
        index = cand.get("index") if isinstance(cand.get("index"), int) else pos
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish})
    if not choices:
        blocked = isinstance(data.get("promptFeedback"), dict) and data["promptFeedback"].get("blockReason")
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None if blocked else "", "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter" if blocked else "stop",
            }
        )
    choices.sort(key=lambda c: c["index"])
    return {
        "id": f"chatcmpl-{rid}" if isinstance(rid, str) and rid else ids("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage_from_metadata(data.get("usageMetadata")),
    }


# ---------------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _ChoiceState:
    role_sent: bool = False
    tool_calls: int = 0  # also the next tool call index: indexes are cumulative over the stream
    finish: str | None = None


class GeminiStreamTranslator:
    """Gemini `streamGenerateContent?alt=sse` bytes -> OpenAI chat.completion.chunk SSE bytes.

    Each Gemini event is translated as soon as it is complete. finish_reason chunks, the usage chunk
    and `[DONE]` are held for finish(): Gemini may send a functionCall and then STOP in a later event,
    and the reason must still be "tool_calls". feed() and finish() never raise; a failure becomes one
    OpenAI error event, after which the translator emits nothing more.
    """

    def __init__(
        self, *, model: str, include_usage: bool = False, id_factory: IdFactory | None = None
    ) -> None:
        self._model = model
        self._include_usage = include_usage
        self._ids = id_factory or _random_id
        self._decoder = SSEDecoder()
        self._cid: str | None = None
        self._created = int(time.time())
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: Any = None
        self._finish_seen = False
        self._state = "open"  # open -> closed (clean end) | failed (error event sent)

    @property
    def failed(self) -> bool:
        """True once an error event was emitted (the glue may want to log or count it)."""
        return self._state == "failed"

    def feed(self, data: bytes) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            return self._handle(self._decoder.feed(data))
        except Exception as exc:  # the stream must go on with an error event, whatever broke
            log.exception("Gemini stream translation failed")
            return self._fail(f"could not translate the Gemini stream: {exc}")

    def finish(self) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            out = self._handle(self._decoder.finish())
            if self._state != "open":
                return out
            if self._cid is None:
                return [*out, *self._fail("Gemini closed the stream without sending any response")]
            if not self._finish_seen:
                return [
                    *out,
                    *self._fail(
                        "the Gemini stream ended before it finished; the upstream connection was cut off"
                    ),
                ]
            self._state = "closed"
            for index in sorted(self._choices):
                st = self._choices[index]
                delta: dict[str, Any] = {}
                if not st.role_sent:
                    delta = {"role": "assistant", "content": None if st.finish == "content_filter" else ""}
                reason = "tool_calls" if st.tool_calls else st.finish or "stop"
                out.append(self._encode(chunk(self._cid, self._model, self._created, delta, reason, index)))
            if self._include_usage:
                usage = usage_from_metadata(self._usage)
                out.append(encode_data(usage_chunk(self._cid, self._model, self._created, usage)))
            out.append(DONE)
            return out
        except Exception as exc:
            log.exception("Gemini stream translation failed at the end of the stream")
            return self._fail(f"could not translate the Gemini stream: {exc}")

    # -- internals ---------------------------------------------------------------------------------

    def _fail(
        self, message: str, status: int = 502, code: str | None = "upstream_stream_error", **kw: Any
    ) -> list[bytes]:
        self._state = "failed"
        return [sse_error_event(message, status, code=code, **kw)]

    def _encode(self, obj: dict[str, Any]) -> bytes:
        if self._include_usage:
            obj["usage"] = None  # with include_usage, every chunk but the last carries usage: null
        return encode_data(obj)

    def _handle(self, events: list[SSEEvent]) -> list[bytes]:
        out: list[bytes] = []
        for ev in events:
            out.extend(self._event(ev))
            if self._state != "open":
                break
        return out

    def _event(self, ev: SSEEvent) -> list[bytes]:
        data = ev.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            return self._fail(f"Gemini sent an undecodable stream event: {_short(data)}")
        if isinstance(obj, list):  # the non-SSE stream form is a JSON array of responses
            out: list[bytes] = []
            for item in obj:
                out.extend(self._response(item))
                if self._state != "open":
                    break
            return out
        return self._response(obj)

    def _response(self, obj: Any) -> list[bytes]:
        if not isinstance(obj, dict):
            return self._fail(f"Gemini sent a stream event that is not an object: {_short(json.dumps(obj))}")
        if "error" in obj:
            err = obj["error"] if isinstance(obj["error"], dict) else {}
            code = err.get("code")
            status = code if isinstance(code, int) and 400 <= code <= 599 else 502
            status, body, _ = gemini_error_to_openai(status, json.dumps(obj).encode("utf-8"))
            e = body["error"]
            return self._fail(e["message"], status, e["code"], type_=e["type"])

        if self._cid is None:
            rid = obj.get("responseId")
            self._cid = f"chatcmpl-{rid}" if isinstance(rid, str) and rid else self._ids("chatcmpl-")
        if isinstance(obj.get("usageMetadata"), dict):
            self._usage = obj["usageMetadata"]  # cumulative: the last one wins

        cands = obj.get("candidates")
        feedback = obj.get("promptFeedback")
        if not cands and isinstance(feedback, dict) and feedback.get("blockReason"):
            self._choices.setdefault(0, _ChoiceState()).finish = "content_filter"
            self._finish_seen = True
            return []

        out: list[bytes] = []
        for pos, cand in enumerate(cands if isinstance(cands, list) else []):
            if not isinstance(cand, dict):
                continue
            index = cand.get("index") if isinstance(cand.get("index"), int) else pos
            st = self._choices.setdefault(index, _ChoiceState())
            parts = _read_candidate(cand, self._ids)
            delta: dict[str, Any] = {}
            text, thought = "".join(parts.texts), "".join(parts.thoughts)
            if text:
                delta["content"] = text
            if thought:
                delta["reasoning_content"] = thought
            if parts.calls:
                delta["tool_calls"] = [
                    {"index": st.tool_calls + k, **call} for k, call in enumerate(parts.calls)
                ]
                st.tool_calls += len(parts.calls)
            if cand.get("finishReason"):
                st.finish = _finish_reason(cand["finishReason"])
                self._finish_seen = True
            if not delta:
                continue  # e.g. the trailing `text: ""` + finishReason event
            if not st.role_sent:
                delta = {"role": "assistant", "content": delta.pop("content", None), **delta}
                st.role_sent = True
            out.append(self._encode(chunk(self._cid, self._model, self._created, delta, None, index)))
        return out


# ---------------------------------------------------------------------------------------------------
# Errors, quotas, models, paths
# ---------------------------------------------------------------------------------------------------

_KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|(?<=key=)[^&\s\"']+")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s?\s*$")
_INVALID_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})


def _short(text: str, limit: int = 200) -> str:
    text = _KEY_PATTERN.sub("[redacted]", text.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError, ValueError):
        return None


def _error_object(data: Any) -> dict[str, Any] | None:
    if isinstance(data, list) and data:  # non-SSE stream endpoints wrap errors in an array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = err.get("details")
    return (
        [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]
        if isinstance(details, list)
        else []
    )


def _duration_seconds(value: Any) -> float | None:
    if isinstance(value, dict):  # {"seconds": "45", "nanos": 830000000}, seen from some proto encoders
        try:
            return float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9
        except (TypeError, ValueError):
            return None
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def retry_info(body: bytes) -> tuple[float | None, bool]:
    """(seconds to wait from RetryInfo.retryDelay or the "Please retry in Ns." text, is_per_day_quota).

    A per-day quota resets at midnight Pacific time: waiting retryDelay will not help, so key
    cooldowns should treat the key as spent for the day.
    """
    data = _loads(body)
    err = _error_object(data)
    delay: float | None = None
    per_day = False
    message = ""
    if err is not None:
        for info in _details(err, "google.rpc.RetryInfo"):
            delay = _duration_seconds(info.get("retryDelay"))
        for failure in _details(err, "google.rpc.QuotaFailure"):
            for v in failure.get("violations") or []:
                if isinstance(v, dict):
                    names = (
                        f"{v.get('quotaId', '')} {v.get('quotaMetric', '')}".lower()
                        .replace("_", "")
                        .replace("-", "")
                    )
                    per_day = per_day or "perday" in names
        message = str(err.get("message") or "")
    elif data is None:
        message = body[:2000].decode("utf-8", errors="replace")
    if delay is None and message:
        match = _RETRY_IN.search(message)
        if match:
            delay = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
    return delay, per_day


def gemini_error_to_openai(status: int, body: bytes) -> tuple[int, dict[str, Any], float | None]:
    """Gemini error body -> (HTTP status for the client, OpenAI error dict, retry-after seconds or None).

    The status is kept (the openai SDK picks its exception class from it); `code` is Gemini's status
    string such as "RESOURCE_EXHAUSTED". Nothing that looks like an API key is ever echoed.
    """
    err = _error_object(_loads(body))
    retry_after, per_day = retry_info(body)
    if err is None:
        out_status = status if status >= 400 else 502
        excerpt = _short(body[:400].decode("utf-8", errors="replace"))
        message = (
            f"Gemini returned HTTP {status} with an unreadable error body: {excerpt}"
            if excerpt
            else f"Gemini returned HTTP {status} with an empty body"
        )
        return out_status, error_body(message, out_status), retry_after

    code_num = err.get("code")
    if status >= 400:
        out_status = status
    else:  # an error inside a 200 (mid-stream): the embedded code is the real status
        out_status = code_num if isinstance(code_num, int) and 400 <= code_num <= 599 else 502
    google_status = err.get("status") if isinstance(err.get("status"), str) else None
    message = _short(str(err.get("message") or ""), 2000) or f"Gemini returned HTTP {out_status}"
    code = google_status

    reasons = {d.get("reason") for d in _details(err, "google.rpc.ErrorInfo")}
    if _rejects_key(reasons, message):
        code = next(iter(reasons & _INVALID_KEY_REASONS), "API_KEY_INVALID")
        message = f"Google rejected the Gemini API key configured in the proxy ({code}): {message}"
    elif out_status == 429 and per_day:
        message += " (This is a per-day quota; it resets at midnight Pacific time.)"
    return out_status, error_body(message, out_status, code=code), retry_after


def _rejects_key(reasons: set[Any], message: str) -> bool:
    return bool(reasons & _INVALID_KEY_REASONS) or "api key not valid" in message.lower()


def key_rejected(body: bytes) -> bool:
    """True when a Gemini error says the API key itself is invalid or expired."""
    err = _error_object(_loads(body))
    if err is None:
        return False
    reasons = {d.get("reason") for d in _details(err, "google.rpc.ErrorInfo")}
    return _rejects_key(reasons, str(err.get("message") or ""))


def parse_model_page(data: dict[str, Any]) -> tuple[list[str], str | None]:
    """One models.list page -> (ids usable with generateContent, without "models/"; next page token)."""
    if not isinstance(data, dict):
        raise GeminiFormatError("models.list answer is not an object")
    models = data.get("models") or []
    if not isinstance(models, list):
        raise GeminiFormatError("models.list answer has no 'models' array")
    ids: list[str] = []
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            continue
        methods = m.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" in methods:
            ids.append(m["name"].removeprefix("models/"))
    token = data.get("nextPageToken")
    return ids, token if isinstance(token, str) and token else None


def gemini_path(model: str, stream: bool) -> str:
    """Request path for a model; the name is URL-quoted so it cannot add path segments or a method."""
    name = model.strip() if isinstance(model, str) else ""
    collection = "models"
    for prefix in ("models/", "tunedModels/"):
        if name.startswith(prefix):
            collection, name = prefix[:-1], name[len(prefix) :]
    if not name:
        raise TranslationError("the Gemini model name is empty", param="model")
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/{API_VERSION}/{collection}/{quote(name, safe='')}:{method}"
