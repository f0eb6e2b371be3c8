"""OpenAI messages -> Gemini systemInstruction texts and strictly alternating user/model turns.

Our tool call ids are never sent to Gemini: older models reject unknown `functionCall.id` values, and
Gemini pairs calls with results by order and name anyway. Only an id Gemini minted itself (kept in the
signature store, see signatures.py) goes back, on the functionCall and on its functionResponse. Client ids
serve to find the function name of a tool result and what the store kept for the call.
"""

from __future__ import annotations

import json
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.media import user_parts
from translators.gemini.models import is_gemini3
from translators.gemini.signatures import (
    add_dummy_signatures,
    attach_signature,
    decode_tool_call_id,
    saved_call,
)


def convert_messages(messages: list[Any], model: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, contents). Raises TranslationError naming the offending message as `param`."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    # tool_call_id -> (function name, Gemini's own id or None), from earlier assistant turns
    call_names: dict[str, tuple[str, str | None]] = {}

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
            add("user", user_parts(content, f"{where}.content"))
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
    if is_gemini3(model):
        add_dummy_signatures(turns)
    return system, turns


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


def _assistant_parts(
    msg: dict[str, Any], where: str, call_names: dict[str, tuple[str, str | None]]
) -> list[dict[str, Any]]:
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
        saved = saved_call(call)
        function_call: dict[str, Any] = {
            "name": name,
            "args": _parse_args(fn.get("arguments"), f"{c_where}.function.arguments"),
        }
        if saved.native_id:
            function_call["id"] = saved.native_id
        part: dict[str, Any] = {"functionCall": function_call}
        if saved.signature:
            part["thoughtSignature"] = saved.signature
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            call_names[call_id] = (name, saved.native_id)
        parts.append(part)
    legacy = msg.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        args = _parse_args(legacy.get("arguments"), f"{where}.function_call.arguments")
        parts.append({"functionCall": {"name": legacy["name"], "args": args}})
    # reasoning_content is not sent back: Gemini takes no thought text in history, only signatures.
    signature = msg.get("reasoning_signature")
    if isinstance(signature, str) and signature:
        attach_signature(parts, signature)
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


def _tool_result_parts(
    msg: dict[str, Any], where: str, call_names: dict[str, tuple[str, str | None]]
) -> list[dict[str, Any]]:
    call_id = msg.get("tool_call_id")
    found = call_names.get(call_id) if isinstance(call_id, str) else None
    if found is None and isinstance(call_id, str):
        # Some clients strip the signature suffix of the previous version's ids; the base still matches.
        base = decode_tool_call_id(call_id)[0]
        found = next((v for cid, v in call_names.items() if decode_tool_call_id(cid)[0] == base), None)
    if found is None and isinstance(msg.get("name"), str) and msg["name"]:
        found = (msg["name"], None)
    if found is None:
        raise TranslationError(
            f"{where}: tool_call_id {call_id!r} matches no tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    name, native_id = found
    content = msg.get("content")
    media: list[dict[str, Any]] = []
    if isinstance(content, list):
        # Tool results may carry images; Gemini takes them as parts beside the functionResponse.
        is_text = [not isinstance(p, dict) or p.get("type") in ("text", None) for p in content]
        media = user_parts([p for p, t in zip(content, is_text, strict=True) if not t], f"{where}.content")
        content = [p for p, t in zip(content, is_text, strict=True) if t]
    text = _text_only(content, f"{where}.content")
    response: dict[str, Any] = {"name": name, "response": _response_object(text)}
    if native_id:
        response["id"] = native_id
    return [{"functionResponse": response}, *media]


def _response_object(text: str) -> dict[str, Any]:
    """functionResponse.response must be an object: a JSON object passes as is, anything else is wrapped."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return {"content": text}
    return value if isinstance(value, dict) else {"content": text}
