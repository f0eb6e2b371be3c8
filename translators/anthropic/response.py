"""An internal chat.completion -> an Anthropic Messages `message` object.

Content blocks come in the order a Claude model writes them: `thinking` (thought text, and our wrapped
signature or ""; a signature alone still makes a thinking block, with empty thinking), `text` (when not
empty), then one `tool_use` per tool call. Stop reason and usage: answer.py.

Tool arguments are parsed leniently: an object inside a markdown code fence or inside a JSON string
(double-encoded) is still the object, and empty arguments are `{}`. Arguments that still are not a JSON
object are kept recoverable as `{"_raw": "<arguments as sent>"}` rather than dropped.
"""

from __future__ import annotations

from typing import Any

from translators import json_codec
from translators.anthropic.answer import (
    answer_text,
    first_choice,
    matched_stop,
    message_id,
    stop_reason,
    thought_text,
    tool_use_id,
    usage,
)
from translators.anthropic.signatures import encode_signature


def to_message(completion: dict[str, Any], model: str, stop_sequences: list[str]) -> dict[str, Any]:
    choice = first_choice(completion.get("choices"))
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[dict[str, Any]] = []
    thought = thought_text(msg)
    signature = msg.get("reasoning_signature")
    if thought or signature:
        sig = encode_signature(signature) if isinstance(signature, str) and signature else ""
        content.append({"type": "thinking", "thinking": thought, "signature": sig})
    text = answer_text(msg)
    if text:
        content.append({"type": "text", "text": text})
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        content.extend(_tool_use(call) for call in calls if isinstance(call, dict))
    has_tools = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_reason(
        choice.get("finish_reason"), has_tools, matched_stop(choice, stop_sequences)
    )
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(completion.get("usage")),
    }


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else tool_use_id(),
        "name": fn.get("name") if isinstance(fn.get("name"), str) else "",
        "input": tool_input(fn.get("arguments")),
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    text = arguments.strip()
    if text.startswith("```"):  # a model that fenced its JSON
        text = text.strip("`").removeprefix("json").strip()
    value = _loads(text)
    if isinstance(value, str):  # double-encoded: a JSON string holding the object
        value = _loads(value)
    return value if isinstance(value, dict) else {"_raw": arguments}


def _loads(text: str) -> Any:
    try:
        return json_codec.loads(text)
    except (json_codec.JSONDecodeError, RecursionError):
        return None
