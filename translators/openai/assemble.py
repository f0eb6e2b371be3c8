"""Rebuild the chat.completion an OpenAI SSE stream amounts to (for mitmweb, saved flows and history)."""

from __future__ import annotations

from typing import Any

from translators import json_codec
from translators.sse import SSEDecoder


def assemble_completion(sse: bytes) -> dict[str, Any]:
    dec = SSEDecoder()  # a whole stream's one-line events take its bytes-only way in one feed
    result: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
    errors: list[Any] = []
    for data in (ev.data for ev in [*dec.feed(sse), *dec.finish()]):
        if data.startswith("[DONE]"):
            continue
        try:
            obj = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("error"):
            errors.append(obj["error"])
            continue
        for k in ("id", "created", "model", "system_fingerprint"):
            if obj.get(k) is not None:
                result.setdefault(k, obj[k])
        if obj.get("usage"):
            result["usage"] = obj["usage"]
        for ch in obj.get("choices") or []:
            _merge_choice(choices, ch)
    result["choices"] = [choices[i] for i in sorted(choices)]
    if errors:
        result["error"] = errors[-1]
    return result


def _merge_choice(choices: dict[int, dict[str, Any]], ch: dict[str, Any]) -> None:
    idx = ch.get("index", 0)
    c = choices.setdefault(
        idx, {"index": idx, "message": {"role": "assistant", "content": None}, "finish_reason": None}
    )
    msg = c["message"]
    delta = ch.get("delta") or {}
    for field in ("content", "reasoning_content", "reasoning", "refusal"):
        if isinstance(delta.get(field), str):
            msg[field] = (msg.get(field) or "") + delta[field]
    if isinstance(delta.get("reasoning_signature"), str) and "reasoning_signature" not in msg:
        msg["reasoning_signature"] = delta["reasoning_signature"]  # the first one, as in a whole answer
    for tc in delta.get("tool_calls") or []:
        calls = msg.setdefault("tool_calls", [])
        i = tc.get("index", len(calls))
        while len(calls) <= i:
            calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[i]
        if tc.get("id"):
            call["id"] = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            call["function"]["arguments"] += fn["arguments"]
    if ch.get("finish_reason"):
        c["finish_reason"] = ch["finish_reason"]
