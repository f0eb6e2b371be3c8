"""A Responses request (`POST /v1/responses`) -> the internal chat request.

`instructions` becomes the first system message, then the conversation of `previous_response_id` (the
caller's history), then this request's `input`. Fields that only shape the answer object (metadata,
store, include, truncation, user, prompt_cache_key, ...) are accepted and echoed, never sent upstream;
fields this proxy does not know are listed in `ignored`. `reasoning.summary` is echoed only: whatever
thought text the upstream returns is rendered as the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from translators.openai.types import RequestError, decode_object
from translators.responses.ids import IdFactory, random_id
from translators.responses.items import Unseal, item_type, items_as_chat
from translators.responses.tools import ToolNames, map_tool_choice, map_tools

_ACCEPTED = frozenset(
    {
        "model", "input", "instructions", "stream", "stream_options", "tools", "tool_choice",
        "parallel_tool_calls", "max_output_tokens", "temperature", "top_p", "reasoning", "text",
        "metadata", "user", "prompt_cache_key", "store", "include", "truncation", "previous_response_id",
        "client_metadata", "service_tier", "safety_identifier", "prompt_cache_retention", "background",
    }
)  # fmt: skip
_UNSUPPORTED = {
    "conversation": "conversation objects are not supported by this proxy; use previous_response_id",
    "prompt": "stored prompt templates are not supported by this proxy; send instructions and input",
}
_EFFORTS: dict[str, dict[str, Any]] = {
    "none": {"enabled": False},
    "minimal": {"effort": "minimal"},
    "low": {"effort": "low"},
    "medium": {"effort": "medium"},
    "high": {"effort": "high"},
    "xhigh": {"effort": "high"},
}
_ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "instructions": (str,),
    "temperature": (int, float),
    "top_p": (int, float),
    "max_output_tokens": (int,),
    "parallel_tool_calls": (bool,),
    "metadata": (dict,),
    "store": (bool,),
    "include": (list,),
    "user": (str,),
    "prompt_cache_key": (str,),
    "previous_response_id": (str,),
    "reasoning": (dict,),
    "text": (dict,),
    "stream": (bool,),
}


@dataclass(slots=True)
class ResponsesRequest:
    chat: dict[str, Any]  # the internal chat request
    body: dict[str, Any]  # the client's request, for echoing
    model: str
    stream: bool
    input_items: list[dict[str, Any]]  # this request's input as items with ids (GET .../input_items)
    dropped_tools: list[str]
    ignored: list[str]  # unknown fields, and input items no upstream here can read (hosted tools' traces)
    names: ToolNames = field(default_factory=ToolNames)
    # this request's input as chat messages (no history, no instructions): what the store keeps per turn
    input_messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def custom_tools(self) -> frozenset[str]:
        return self.names.custom


def parse(raw: bytes) -> dict[str, Any]:
    """Decode and check the request body. The caller reads `previous_response_id` from it, fetches
    that conversation, then calls to_chat()."""
    body = decode_object(raw, "Responses")
    _check(body)
    return body


def _check(body: dict[str, Any]) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestError("Missing required parameter: 'model'.", param="model")
    for key, types in _TYPES.items():
        value = body.get(key)
        # bool is an int to Python, not to JSON Schema: `"temperature": true` is refused
        if value is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        ):
            raise RequestError(f"Invalid type for '{key}'.", param=key)
    for key, why in _UNSUPPORTED.items():
        if body.get(key) is not None:
            raise RequestError(f"'{key}': {why}.", param=key)
    if body.get("background") is True:
        raise RequestError(
            "'background': background responses are not supported by this proxy.", "background"
        )


def to_chat(
    body: dict[str, Any],
    history: list[dict[str, Any]] | None,
    unseal: Unseal,
    *,
    ids: IdFactory = random_id,
) -> ResponsesRequest:
    """The internal chat request for a parsed body; `history` is the previous_response_id conversation."""
    _check(body)
    model, stream = body["model"], bool(body.get("stream"))
    raw_input = body.get("input")
    items = [_easy(raw_input)] if isinstance(raw_input, str) else raw_input
    if items is None:
        items = []
    if not isinstance(items, list):
        raise RequestError("'input' must be a string or an array of items.", param="input")
    chat_tools, names, dropped = map_tools(body.get("tools"))
    messages, skipped = items_as_chat(items, names, unseal)
    system = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    chat: dict[str, Any] = {
        "model": model,
        "messages": [*system, *(history or []), *messages],
        "stream": stream,
    }
    if stream:
        chat["stream_options"] = {"include_usage": True}
    chat.update(_options(body))
    chat.update(_tool_fields(body, chat_tools, names))
    return ResponsesRequest(
        chat=chat,
        body=body,
        model=model,
        stream=stream,
        input_items=[_with_id(item, ids) for item in items if isinstance(item, dict)],
        dropped_tools=dropped,
        ignored=sorted(k for k in body if k not in _ACCEPTED) + skipped,
        names=names,
        input_messages=messages,
    )


def _easy(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def _with_id(item: dict[str, Any], ids: IdFactory) -> dict[str, Any]:
    """The item as GET .../input_items lists it: typed, with an id and a status, message content as parts."""
    kind = item_type(item) or "item"
    out = {
        "status": "completed",
        **item,
        "type": kind,
        "id": item.get("id") or ids(_ID_PREFIXES.get(kind, "item_")),
    }
    content = item.get("content")
    if kind == "message" and isinstance(content, (str, list)):
        parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content
        if item.get("role") == "assistant":
            parts = [_output_part(p) for p in parts]
        out["content"] = parts
    return out


def _output_part(part: Any) -> Any:
    if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text"):
        return part
    return {"annotations": [], **part, "type": "output_text"}


def _options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: body[k] for k in ("temperature", "top_p") if body.get(k) is not None}
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise RequestError(
                f"'reasoning.effort' must be one of {', '.join(_EFFORTS)}.", "reasoning.effort"
            )
        out["reasoning"] = dict(_EFFORTS[effort])
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None:
        response_format = _response_format(fmt)
        if response_format is not None:
            out["response_format"] = response_format
    return out


def _response_format(fmt: Any) -> dict[str, Any] | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise RequestError("'text.format' of type json_schema needs a name and a schema.", "text.format")
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise RequestError("'text.format.type' must be text, json_object or json_schema.", "text.format.type")


def _tool_fields(body: dict[str, Any], chat_tools: list[dict[str, Any]], names: ToolNames) -> dict[str, Any]:
    if not chat_tools:
        return {}  # every tool was a built-in: a chat request takes no tool_choice without tools
    out: dict[str, Any] = {"tools": chat_tools}
    choice = map_tool_choice(body.get("tool_choice"), names, chat_tools)
    if choice is not None:
        out["tool_choice"] = choice
    if isinstance(body.get("parallel_tool_calls"), bool):
        out["parallel_tool_calls"] = body["parallel_tool_calls"]
    return out
