"""An Anthropic Messages request -> the internal chat request (OpenAI chat plus the pivot's extensions).

Field by field:
- `system` (string or text blocks, cache_control kept) -> one system message first; `messages` ->
  messages.py; `tools`, `tool_choice` -> tools.py.
- `max_tokens` (required, a positive integer), `temperature`, `top_p`, `top_k` -> the same names;
  `stop_sequences` -> `stop`; `metadata.user_id` (a string) -> `user`; `model` unchanged.
- `stream: true` -> `stream` plus `stream_options.include_usage` (the usage closes the Anthropic stream).
- Reasoning, as the internal `reasoning` object:
  `thinking: {"type": "enabled", "budget_tokens": N}` -> `{"max_tokens": N}`;
  `thinking: {"type": "adaptive"}` -> `{"effort": E}` with E from `output_config.effort`, else "high"
  (Anthropic's default effort); `thinking: {"type": "disabled"}` -> `{"enabled": false}`;
  no `thinking` -> `{"effort": E}` when `output_config.effort` is given, else nothing (backend default).
  Efforts beyond "high" (`xhigh`, `max`) map to "high". `thinking.display` is not acted on (thought text
  is always asked for: the signatures that come with it are needed on the next turn), and an effort
  next to an explicit budget or disabled thinking is unused; both are listed in `ignored`.
- `output_config.format` (`{"type": "json_schema", "schema": ...}`) -> `response_format` json_schema.
- Anything else (`context_management`, `service_tier`, `container`, `mcp_servers`, ...) is not
  forwarded and is named in `ignored`, for a debug line: top-level names as they are, sub-fields dotted,
  dropped blocks as `block:<type>`, skipped server tools as `tool:<type>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from translators.anthropic.checks import block_list, fail, text_field
from translators.anthropic.messages import to_chat_messages
from translators.anthropic.tools import to_chat_tool_choice, to_chat_tools
from translators.openai.types import RequestError, decode_object

_HANDLED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
    }
)
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
MAX_MODEL_LENGTH = 512  # as the chat front-end allows


@dataclass(slots=True)
class ChatRequest:
    chat: dict[str, Any]
    model: str
    stream: bool
    stop_sequences: list[str]
    ignored: list[str]


def parse(raw: bytes) -> ChatRequest:
    """Decode and translate a request body; raises RequestError (400) for anything unusable."""
    return to_chat(decode_object(raw, "Messages"))


def to_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestError("Request body must be a JSON object.")
    ignored = [key for key in body if key not in _HANDLED]
    model = _model(body.get("model"))
    max_tokens = _number(body, "max_tokens", integer=True)
    if max_tokens is None or max_tokens <= 0:
        raise fail("max_tokens", "Field required" if max_tokens is None else "must be a positive integer")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise fail("stream", "Input should be a valid boolean")
    stops = _stop_sequences(body.get("stop_sequences"))
    chat: dict[str, Any] = {
        "model": model,
        "messages": [*_system(body.get("system")), *to_chat_messages(body.get("messages"), ignored)],
        "max_tokens": max_tokens,
    }
    for key in ("temperature", "top_p", "top_k"):
        value = _number(body, key, integer=key == "top_k")
        if value is not None:
            chat[key] = value
    if stops:
        chat["stop"] = stops
    tools = to_chat_tools(body.get("tools"), ignored)
    if tools:
        chat["tools"] = tools
    chat.update(to_chat_tool_choice(body.get("tool_choice"), bool(tools), ignored))
    chat.update(_output_config(body.get("output_config"), body.get("thinking"), ignored))
    user = body.get("metadata", {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user, str):
        chat["user"] = user
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return ChatRequest(chat, model, bool(stream), stops, list(dict.fromkeys(ignored)))


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise fail("model", "Field required" if model is None else "Input should be a non-empty string")
    if len(model) > MAX_MODEL_LENGTH:
        raise fail("model", f"at most {MAX_MODEL_LENGTH} characters")
    return model


def _number(obj: dict[str, Any], key: str, *, integer: bool = False, where: str = "") -> int | float | None:
    value = obj.get(key)
    if value is None:
        return None
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise fail(where + key, f"Input should be a valid {'integer' if integer else 'number'}")
    return value


def _stop_sequences(stops: Any) -> list[str]:
    if stops is None:
        return []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise fail("stop_sequences", "Input should be a valid list of strings")
    return [s for s in stops if s]


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(block_list(system, "system")):
        if block["type"] != "text":
            raise fail(f"system.{i}.type", "system blocks must be text blocks")
        part: dict[str, Any] = {"type": "text", "text": text_field(block, "text", f"system.{i}")}
        if isinstance(block.get("cache_control"), dict):
            part["cache_control"] = block["cache_control"]
        parts.append(part)
    return [{"role": "system", "content": parts}]


def _output_config(config: Any, thinking: Any, ignored: list[str]) -> dict[str, Any]:
    """`reasoning` from `thinking` and `output_config.effort`; `response_format` from its format."""
    if config is not None and not isinstance(config, dict):
        raise fail("output_config", "Input should be a valid object")
    config = config or {}
    ignored.extend(f"output_config.{k}" for k in config if k not in ("effort", "format"))
    effort = _EFFORTS.get(config["effort"]) if isinstance(config.get("effort"), str) else None
    if config.get("effort") is not None and effort is None:
        ignored.append("output_config.effort")
    out: dict[str, Any] = {}
    reasoning = _reasoning(thinking, effort, ignored)
    if reasoning:
        out["reasoning"] = reasoning
    fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True},
        }
    elif fmt is not None:
        ignored.append("output_config.format")
    return out


def _reasoning(thinking: Any, effort: str | None, ignored: list[str]) -> dict[str, Any] | None:
    if thinking is None:
        return {"effort": effort} if effort else None
    if not isinstance(thinking, dict):
        raise fail("thinking", "Input should be a valid object")
    if "display" in thinking:
        ignored.append("thinking.display")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = _number(thinking, "budget_tokens", integer=True, where="thinking.")
        if budget is None or budget <= 0:
            raise fail("thinking.budget_tokens", "must be a positive integer")
        if effort:
            ignored.append("output_config.effort")
        return {"max_tokens": budget}
    if kind == "adaptive":
        return {"effort": effort or "high"}
    if kind == "disabled":
        if effort:
            ignored.append("output_config.effort")
        return {"enabled": False}
    ignored.append("thinking")
    return {"effort": effort} if effort else None
