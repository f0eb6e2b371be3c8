"""Helpers shared by the Anthropic translator tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, settings

from translators.anthropic import MessagesStream

MODEL = "test-model"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **choice: Any) -> dict[str, Any]:
    """One chat.completion.chunk with choice 0."""
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}],
    }


def usage_chunk(prompt: int = 10, completion: int = 5, **details: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, **details}
    return {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def chat_sse(*events: dict[str, Any] | bytes, done: bool = True) -> bytes:
    """OpenAI framing; a bytes item is a raw line (a comment) followed by the blank line."""
    out = b"".join(
        (ev if isinstance(ev, bytes) else b"data: " + json.dumps(ev, ensure_ascii=False).encode()) + b"\n\n"
        for ev in events
    )
    return out + (b"data: [DONE]\n\n" if done else b"")


def parse_events(chunks: list[bytes] | bytes) -> list[dict[str, Any]]:
    """Anthropic SSE bytes -> payloads, checking each `event:` line names the payload's type."""
    text = (chunks if isinstance(chunks, bytes) else b"".join(chunks)).decode()
    assert text.endswith("\n\n") or not text
    out = []
    for block in text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), block
        payload = json.loads(data_line[len("data: ") :])
        assert payload["type"] == event_line[len("event: ") :]
        out.append(payload)
    return out


def run_stream(
    raw: bytes, *, splits: list[int] | None = None, stops: list[str] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    s = MessagesStream(MODEL, stops or [], **kw)
    bounds = [0, *(splits or []), len(raw)]
    out: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        out += s.feed(raw[a:b])
    out += s.finish()
    assert all(e.count(b"\n\n") == 1 and e.endswith(b"\n\n") for e in out), "one event per item"
    return parse_events(out)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def claude_code_body() -> dict[str, Any]:
    """Shaped like what Claude Code 2.1 sends (see /work/shared/notes/agents-on-the-wire.md)."""
    schema = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
    tools: list[dict[str, Any]] = [
        {"name": name, "description": f"The {name} tool.", "input_schema": schema}
        for name in ("Agent", "Bash", "Edit", "Read", "Skill", "ToolSearch", "Write")
    ]
    tools.append(
        {
            "name": "DeferredToolPlaceholder",
            "description": "Later.",
            "input_schema": schema,
            "defer_loading": True,
        }
    )
    return {
        "model": "claude-opus-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
        "tools": tools,
        "metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "s"})},
        "thinking": {"type": "enabled", "budget_tokens": 31999, "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
    }
