"""The two wire formats the bench speaks: OpenAI chat completions and Gemini generateContent.

Shared by the load client (the requests it sends, how it recognises a complete answer or stream) and
the fast upstream (paths, model names, the failover marker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bench.payloads import SHORT_MESSAGES, agent_messages

Api = Literal["openai", "gemini"]
Payload = Literal["short", "agent"]

OPENAI_MODEL = "openai/gpt-4o-mini"
GEMINI_MODEL = "gemini-2.5-flash"
PROXY_GEMINI_MODEL = f"gemini:{GEMINI_MODEL}"
OPENROUTER_CHAT = "/api/v1/chat/completions"
OPENROUTER_MODELS = "/api/v1/models"
GEMINI_MODELS = "/v1beta/models"
GEMINI_MODEL_PATH = f"{GEMINI_MODELS}/{GEMINI_MODEL}"
PROXY_CHAT = "/v1/chat/completions"
PROXY_MODELS = "/v1/models"
# A request whose `user` starts with this gets 429 (Retry-After: 0) on its first attempt, whatever the
# key; the proxy's retry of the same body on its next key is answered normally.
FAILOVER_USER = "bench-429-once:"


@dataclass(frozen=True, slots=True)
class Wire:
    """How a response in this format looks when it is complete."""

    event_sep: bytes  # between SSE events
    done_event: bytes | None  # the event that closes a stream (OpenAI's [DONE]) ...
    final_marker: bytes | None  # ... or, without one, what the last data event carries
    complete_marker: bytes  # in a complete non-streaming answer


WIRES: dict[str, Wire] = {
    "openai": Wire(b"\n\n", b"data: [DONE]", None, b'"chat.completion"'),
    "gemini": Wire(b"\r\n\r\n", None, b'"finishReason"', b'"candidates"'),
}


def chat_path(api: Api, base: str, stream: bool) -> str:
    """OpenAI: the chat path as is. Gemini: the model's path plus the method (SSE for streams)."""
    if api == "openai":
        return base
    return base + (":streamGenerateContent?alt=sse" if stream else ":generateContent")


def request_body(
    api: Api,
    model: str,
    stream: bool,
    payload: Payload = "short",
    max_tokens: int | None = None,
    user: str | None = None,
) -> bytes:
    if api == "gemini":
        return _dumps(_gemini_body(max_tokens))
    body: dict[str, Any] = {"model": model, "stream": stream}
    if payload == "agent":
        body["messages"], body["tools"] = agent_messages()
    else:
        body["messages"] = SHORT_MESSAGES
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if user is not None:
        body["user"] = user
    return _dumps(body)


def _gemini_body(max_tokens: int | None) -> dict[str, Any]:
    system, *turns = SHORT_MESSAGES
    body: dict[str, Any] = {
        "systemInstruction": {"parts": [{"text": system["content"]}]},
        "contents": [{"role": "user", "parts": [{"text": m["content"]}]} for m in turns],
    }
    if max_tokens is not None:
        body["generationConfig"] = {"maxOutputTokens": max_tokens}
    return body


def http_request(
    host: str, port: int, path: str, body: bytes, stream: bool, session: str | None = None
) -> bytes:
    """A complete HTTP/1.1 POST; the credentials are dummies (the fake upstream takes any)."""
    accept = "text/event-stream" if stream else "application/json"
    extra = f"X-Session-ID: {session}\r\n" if session else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: {accept}\r\nAuthorization: Bearer bench-client\r\nx-goog-api-key: bench-client\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
