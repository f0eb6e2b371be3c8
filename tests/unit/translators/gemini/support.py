"""Helpers shared by the Gemini translator tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from translators.gemini import GeminiStreamTranslator, to_gemini_request

MODEL = "gemini-2.5-flash"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def translate(messages: list[dict[str, Any]], model: str = MODEL, **params: Any) -> dict[str, Any]:
    return to_gemini_request({"model": "client-name", "messages": messages, **params}, model=model)


def counter_ids() -> Callable[[str], str]:
    n = itertools.count(1)
    return lambda prefix: f"{prefix}{next(n)}"


def gemini_sse(*events: dict[str, Any] | bytes, eol: bytes = b"\r\n") -> bytes:
    """Gemini's framing; a bytes item is a raw line (e.g. a comment) followed by the blank line."""
    out = b""
    for ev in events:
        line = ev if isinstance(ev, bytes) else b"data: " + json.dumps(ev, ensure_ascii=False).encode()
        out += line + eol + eol
    return out


def parse_sse(chunks: list[bytes]) -> list[Any]:
    """OpenAI SSE bytes -> list of parsed JSON payloads ("[DONE]" kept as the string)."""
    text = b"".join(chunks).decode()
    assert text.endswith("\n\n") or not text
    out = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def run_stream(raw: bytes, *, splits: list[int] | None = None, **kw: Any) -> list[Any]:
    t = GeminiStreamTranslator(model="client-model", id_factory=counter_ids(), **kw)
    bounds = [0, *(splits or []), len(raw)]
    out: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        out += t.feed(raw[a:b])
    out += t.finish()
    return parse_sse(out)


def cand(parts: list[dict[str, Any]], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    c: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish:
        c["finishReason"] = finish
    return c


def tool_call(cid: str, name: str, args: str) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
