"""The wire formats the bench speaks: OpenAI chat completions and Gemini generateContent (what the
upstream serves and the proxy's chat path), Anthropic Messages and OpenAI Responses (the proxy's other
front-ends).

Shared by the load client (the requests it sends, how it recognises a complete answer or stream) and
the fast upstream (paths, model names, the failover marker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bench.payloads import SHORT_MESSAGES, agent_messages

Api = Literal["openai", "gemini", "messages", "responses"]
Payload = Literal["short", "agent"]

OPENAI_MODEL = "openai/gpt-4o-mini"
GEMINI_MODEL = "gemini-2.5-flash"
PROXY_GEMINI_MODEL = f"gemini:{GEMINI_MODEL}"
PROXY_OPENROUTER_MODEL = f"openrouter:{OPENAI_MODEL}"
OPENROUTER_CHAT = "/api/v1/chat/completions"
OPENROUTER_MODELS = "/api/v1/models"
GEMINI_MODELS = "/v1beta/models"
GEMINI_MODEL_PATH = f"{GEMINI_MODELS}/{GEMINI_MODEL}"
PROXY_CHAT = "/v1/chat/completions"
PROXY_MODELS = "/v1/models"
PROXY_MESSAGES = "/v1/messages"
PROXY_RESPONSES = "/v1/responses"
ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires max_tokens; above the upstream's stream length, so it does not shorten the stream.
MESSAGES_MAX_TOKENS = 4096
# A request whose `user` starts with this gets 429 (Retry-After: 0) on its first attempt, whatever the
# key; the proxy's retry of the same body on its next key is answered normally.
FAILOVER_USER = "bench-429-once:"


@dataclass(frozen=True, slots=True)
class Frontend:
    """One of the proxy's other front-ends on one backend path, as the bench measures it."""

    name: str  # phase and figure prefix
    label: str
    api: Api
    path: str
    model: str
    gemini: bool  # on the Gemini path (direct = the fake Gemini) rather than the OpenRouter one
    first_event: str  # the event that carries the first text, in the table's words


FRONTENDS = (
    Frontend("messages", "Messages, OpenRouter path", "messages", PROXY_MESSAGES, PROXY_OPENROUTER_MODEL,
             False, "`text_delta`"),
    Frontend("messages_gemini", "Messages, Gemini path", "messages", PROXY_MESSAGES, PROXY_GEMINI_MODEL,
             True, "`text_delta`"),
    Frontend("responses", "Responses, OpenRouter path", "responses", PROXY_RESPONSES, PROXY_OPENROUTER_MODEL,
             False, "`output_text.delta`"),
    Frontend("responses_gemini", "Responses, Gemini path", "responses", PROXY_RESPONSES, PROXY_GEMINI_MODEL,
             True, "`output_text.delta`"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Wire:
    """How a response in this format looks when it is complete, and which stream events carry content."""

    event_sep: bytes  # between SSE events
    done_event: bytes | None  # the event that closes a stream (OpenAI's [DONE], message_stop) ...
    final_marker: bytes | None  # ... or, without one, what the last data event carries
    complete_marker: bytes  # in a complete non-streaming answer
    content_prefix: bytes = b"data: "  # a content event (one upstream chunk's text) starts with this
    content_marker: bytes = b""  # ... and contains this


WIRES: dict[str, Wire] = {
    "openai": Wire(b"\n\n", b"data: [DONE]", None, b'"chat.completion"'),
    "gemini": Wire(b"\r\n\r\n", None, b'"finishReason"', b'"candidates"'),
    "messages": Wire(
        b"\n\n",
        b"event: message_stop\n",
        None,
        b'"stop_reason"',
        b"event: content_block_delta\n",
        b'"text_delta"',
    ),
    "responses": Wire(
        b"\n\n",
        b"event: response.completed\n",
        None,
        b'"status":"completed"',
        b"event: response.output_text.delta\n",
    ),
}


def chat_path(api: Api, base: str, stream: bool) -> str:
    """Gemini: the model's path plus the method (SSE for streams). The others: the path as is."""
    if api != "gemini":
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
    if api == "messages":
        return _dumps(_messages_body(model, stream, max_tokens))
    if api == "responses":
        return _dumps(_responses_body(model, stream, max_tokens))
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


def _messages_body(model: str, stream: bool, max_tokens: int | None) -> dict[str, Any]:
    system, *turns = SHORT_MESSAGES
    return {
        "model": model,
        "max_tokens": max_tokens or MESSAGES_MAX_TOKENS,
        "system": system["content"],
        "messages": [{"role": "user", "content": m["content"]} for m in turns],
        "stream": stream,
    }


def _responses_body(model: str, stream: bool, max_tokens: int | None) -> dict[str, Any]:
    """As Codex sends it: `store: false` (nothing kept by the proxy's response store)."""
    system, *turns = SHORT_MESSAGES
    body: dict[str, Any] = {
        "model": model,
        "instructions": system["content"],
        "input": [{"role": "user", "content": [{"type": "input_text", "text": m["content"]}]} for m in turns],
        "stream": stream,
        "store": False,
    }
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    return body


def http_request(
    host: str,
    port: int,
    path: str,
    body: bytes,
    stream: bool,
    session: str | None = None,
    api: Api = "openai",
) -> bytes:
    """A complete HTTP/1.1 POST; the credentials are dummies (the fake upstream takes any)."""
    accept = "text/event-stream" if stream else "application/json"
    extra = f"X-Session-ID: {session}\r\n" if session else ""
    if api == "messages":  # as Anthropic's SDKs send it on every request
        extra += f"anthropic-version: {ANTHROPIC_VERSION}\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: {accept}\r\nAuthorization: Bearer bench-client\r\nx-goog-api-key: bench-client\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
