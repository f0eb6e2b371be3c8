"""Fake OpenRouter: OpenAI-format /api/v1/chat/completions and /api/v1/models, scripted faults.

Without a script it answers `echo: <last user text>` (split into `chunks` stream events with `delay`
seconds between them), with OpenRouter's `: OPENROUTER PROCESSING` keep-alive comment first.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import FakeServer, Recorded

DEFAULT_MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "meta-llama/llama-3.3-70b-instruct:free",
)


class FakeOpenRouter(FakeServer):
    def __init__(self, keys: tuple[str, ...], models: tuple[str, ...] = DEFAULT_MODELS) -> None:
        super().__init__()
        self.keys = set(keys)
        self.models = list(models)
        self.chunks = 5
        self.delay = 0.0
        self.models_status = 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        path = rec.path.split("?")[0]
        if not self._authorised(rec):
            self.send_json(h, 401, {"error": {"code": 401, "message": "No auth credentials found"}})
            return
        if rec.method == "GET" and path == "/api/v1/models":
            if self.models_status != 200:
                self.send_json(
                    h, self.models_status, {"error": {"code": self.models_status, "message": "down"}}
                )
                return
            self.send_json(
                h, 200, {"data": [{"id": m, "name": m, "context_length": 8192} for m in self.models]}
            )
            return
        if rec.method == "POST" and path == "/api/v1/chat/completions":
            script = self._next_script()
            if script is not None:
                self.play(h, script, key=rec.headers.get("authorization", "")[7:])
                return
            self._echo(h, rec.json())
            return
        self.send_json(h, 404, {"error": {"code": 404, "message": f"no route {path}"}})

    def _authorised(self, rec: Recorded) -> bool:
        auth = rec.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.keys

    def _echo(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        text = "echo: " + last_user_text(body)
        model = body.get("model", "")
        if body.get("stream"):
            events = [b": OPENROUTER PROCESSING\n\n", *stream_events(text, model, self.chunks, body)]
            self.send_stream(h, events, self.delay)
        else:
            self.send_json(h, 200, completion(text, model))


def last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return content or ""
    return ""


def completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "gen-fake-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": "FakeProvider",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


def stream_events(
    text: str | list[str], model: str, chunks: int = 5, body: dict[str, Any] | None = None
) -> list[bytes]:
    """OpenAI chunk events for `text` (split into about `chunks` pieces, or given as pieces),
    then a finish chunk (with usage when the request asked for it) and [DONE]."""
    created = int(time.time())
    if isinstance(text, list):
        pieces = text
    else:
        size = max(1, -(-len(text) // max(1, chunks)))
        pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]

    def ev(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        obj: dict[str, Any] = {
            "id": "gen-fake-1",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    out = [ev({"role": "assistant", "content": pieces[0]})]
    out += [ev({"content": p}) for p in pieces[1:]]
    usage = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
    want_usage = bool(((body or {}).get("stream_options") or {}).get("include_usage"))
    out.append(ev({}, "stop", usage if want_usage else None))
    out.append(b"data: [DONE]\n\n")
    return out
