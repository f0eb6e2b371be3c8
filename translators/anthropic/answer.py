"""Reading the internal chat answer the Anthropic way: ids, thought text, stop reason, usage.

Shared by the whole-message renderer (response.py) and the stream renderer (stream.py), so both report
the same stop reason and the same token arithmetic.

Stop reasons: stop -> end_turn, length -> max_tokens, tool_calls -> tool_use, content_filter -> refusal;
any answer holding tool calls is tool_use unless it was cut (max_tokens) or refused, and one holding
none is never tool_use (the client would wait for calls that are not there). `stop_sequence` is
reported only when known: the choice names the matched sequence (`stop_reason`, as vLLM-style upstreams
send it) or says a stop sequence ended it while the request had exactly one. Otherwise end_turn: no
backend here says which stop sequence matched, and the matched text is not in the answer to look for.

Usage has Anthropic's meaning: `input_tokens` excludes cache reads and writes (chat's prompt_tokens
includes them), `output_tokens` includes reasoning.
"""

from __future__ import annotations

import uuid
from typing import Any

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_CHAT_ID_PREFIX = "chatcmpl-"


def message_id(completion_id: Any) -> str:
    if isinstance(completion_id, str) and completion_id:
        return "msg_" + completion_id.removeprefix(_CHAT_ID_PREFIX)
    return "msg_" + uuid.uuid4().hex[:24]


def tool_use_id() -> str:
    """For an upstream tool call that came without an id: the client must be able to answer it."""
    return "toolu_" + uuid.uuid4().hex[:24]


def first_choice(choices: Any) -> dict[str, Any]:
    """Choice 0 of a completion or chunk ({} when absent): a Messages answer has one."""
    if not isinstance(choices, list):
        return {}
    return next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), {})


def thought_text(obj: dict[str, Any]) -> str:
    """Thought text of a message or delta: our `reasoning_content`, or OpenRouter's `reasoning`."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(obj.get(key), str) and obj[key]:
            return obj[key]
    return ""


def answer_text(obj: dict[str, Any]) -> str:
    """Text of a message or delta; a refusal is text too (a Messages answer has no refusal field)."""
    content = obj.get("content")
    if isinstance(content, list):  # content parts, as a few upstreams answer
        content = "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    if isinstance(content, str) and content:
        return content
    refusal = obj.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def matched_stop(choice: dict[str, Any], stop_sequences: list[str]) -> str | None:
    named = choice.get("stop_reason")
    if isinstance(named, str) and named in stop_sequences:
        return named
    if choice.get("native_finish_reason") == "stop_sequence" and len(stop_sequences) == 1:
        return stop_sequences[0]
    return None


def stop_reason(finish: Any, has_tools: bool, matched: str | None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for a chat finish_reason."""
    reason = _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if has_tools and reason not in ("max_tokens", "refusal"):
        return "tool_use", None
    if reason == "tool_use":  # the upstream said tool_calls but sent none: nothing for the client to run
        reason = "end_turn"
    if reason == "end_turn" and matched is not None:
        return "stop_sequence", matched
    return reason, None


def usage(chat_usage: Any, fallback_input: int = 0) -> dict[str, Any]:
    u = chat_usage if isinstance(chat_usage, dict) else {}
    prompt_details = (
        u.get("prompt_tokens_details") if isinstance(u.get("prompt_tokens_details"), dict) else {}
    )
    cached = _int(prompt_details.get("cached_tokens"))
    written = _int(prompt_details.get("cache_write_tokens"))
    prompt = _int(u.get("prompt_tokens")) if "prompt_tokens" in u else fallback_input + cached + written
    out: dict[str, Any] = {
        "input_tokens": max(prompt - cached - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": _int(u.get("completion_tokens")),
    }
    out_details = u.get("completion_tokens_details")
    if isinstance(out_details, dict) and isinstance(out_details.get("reasoning_tokens"), int):
        out["output_tokens_details"] = {"thinking_tokens": out_details["reasoning_tokens"]}
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
