"""The pieces of a Responses `response` object: output items, usage, status, and the envelope that echoes
the request's settings (with the API's defaults where the client sent none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from translators import json_codec
from translators.responses.request import ResponsesRequest
from translators.responses.tools import CUSTOM_ARGUMENT, ToolRef

Seal = Callable[[dict[str, Any]], str]

# finish_reason -> (status, incomplete_details.reason)
_STATUS = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    status, reason = _STATUS.get(finish_reason or "stop", ("completed", None))
    return status, ({"reason": reason} if reason else None)


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    content = [] if text is None else [text_part(text)]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(
    item_id: str, text: str | None, signature: str | None, seal: Seal | None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if signature and seal is not None:
        item["encrypted_content"] = seal({"signature": signature})
    return item


def custom_input(arguments: str) -> str:
    """The freeform input inside the `{"input": ...}` arguments of a custom tool's function call."""
    try:
        value = json_codec.loads(arguments)
    except (ValueError, UnicodeDecodeError):
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_ARGUMENT), str):
        return value[CUSTOM_ARGUMENT]
    return arguments


def call_item(
    item_id: str, call_id: str, ref: ToolRef, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """A function_call, or a custom_tool_call for a custom tool (its input taken out of the arguments)."""
    if ref.custom:
        item: dict[str, Any] = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "arguments": arguments,
        }
    if ref.namespace is not None:
        item["namespace"] = ref.namespace
    return item


def usage_of(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _int(prompt_details.get("cached_tokens")),
            "cache_write_tokens": _int(prompt_details.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _int(completion_details.get("reasoning_tokens"))},
        "total_tokens": _int(usage.get("total_tokens")) or prompt + completion,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def envelope(
    req: ResponsesRequest,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    **outcome: Any,
) -> dict[str, Any]:
    """The response object; `outcome` may set usage, error and incomplete_details."""
    body = req.body
    reasoning = body.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": outcome.get("error"),
        "incomplete_details": outcome.get("incomplete_details"),
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": outcome.get("usage"),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
