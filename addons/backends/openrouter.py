"""OpenRouter: OpenAI wire format, so requests and answers pass through with little change.

A history may hold another backend's artefacts (a conversation moves between backends): the assistant
turns' `reasoning_content` and `reasoning_signature` are removed, and tool call ids longer than OpenAI's
40 characters (the previous version's Gemini ids carried thought signatures) are shortened, the same way
on the call and on its result. OpenRouter's own `reasoning` and `reasoning_details` go back as they came,
so its reasoning models keep their reasoning across tool calls.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from addons.backends.base import Failure, SavedCalls, Translated
from addons.backends.errors import classify_status, context_failure, normalise_error
from addons.upstream import Upstream, UpstreamCall
from translators import json_codec
from translators.gemini.signatures import SIGNATURE_SEPARATOR
from translators.openai.roles import RoleOnce
from translators.openai.synthetic import sse_error_event
from translators.sse import EventAligner


class OpenRouterBackend:
    name = "openrouter"
    reads_saved_calls = False

    def __init__(self, base_url: str, site_url: str, title: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._static_headers = {
            "content-type": "application/json",
            "http-referer": site_url,
            "x-title": title,
        }

    def build_call(
        self,
        request: dict[str, Any],
        model: str,
        key: str,
        stream: bool,
        project: str | None = None,
        saved: SavedCalls | None = None,
    ) -> UpstreamCall:
        body = dict(request)
        body["model"] = model
        messages = _portable(request.get("messages"))
        if messages is not None:
            body["messages"] = messages
        if project:  # OpenRouter groups usage by it
            body["project"] = project
        # Every call is accounted: the cost in the usage object, and a stream's usage chunk, asked for
        # whatever the client asked (its front-end decides what the client sees).
        body["usage"] = {"include": True}
        if stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return self._post("/chat/completions", body, key, stream)

    def embeddings_call(self, request: dict[str, Any], model: str, key: str) -> UpstreamCall:
        """OpenAI's request as is: OpenRouter's embeddings endpoint speaks it (token arrays included)."""
        return self._post("/embeddings", {**request, "model": model}, key)

    def _post(self, path: str, body: dict[str, Any], key: str, stream: bool = False) -> UpstreamCall:
        headers = {
            **self._static_headers,
            "authorization": f"Bearer {key}",
            "accept": "text/event-stream" if stream else "application/json",
        }
        return UpstreamCall("POST", self.base_url + path, headers, _dumps(body), stream, ("authorization",))

    def translate_response(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        model: str,
        saved: SavedCalls | None = None,
    ) -> Translated:
        if 200 <= status < 300:
            return Translated(status, body, {"content-type": "application/json"})
        return normalise_error("OpenRouter", status, headers, body)

    def translate_embeddings(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str, request: dict[str, Any]
    ) -> Translated:
        return self.translate_response(status, headers, body, model)  # already OpenAI's shape

    def count_call(self, request: dict[str, Any], model: str, key: str) -> None:
        return None  # OpenRouter has no token count endpoint

    def read_count(self, body: bytes) -> int | None:
        return None

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> Failure:
        if status == 402:
            return Failure(True, retire=True, reason="credits exhausted (402)")
        context = context_failure(status, body)
        if context is not None:
            return context
        verdict = classify_status(status, headers)
        if status == 429 and verdict.cooldown is None:
            # OpenRouter's own limiter says when the window resets (epoch milliseconds).
            reset = headers.get("x-ratelimit-reset", "")
            if reset.isdigit():
                return Failure(True, max(0.0, int(reset) / 1000 - time.time()), True, reason=verdict.reason)
        return verdict

    async def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        return request  # OpenRouter fetches remote media itself

    def request_notes(self, request: dict[str, Any], model: str) -> list[str]:
        return []

    def stream_translator(
        self, request: dict[str, Any], model: str, saved: SavedCalls | None = None
    ) -> CheckedPassthrough:
        return CheckedPassthrough()

    async def discover_models(self, upstream: Upstream, key: str) -> list[str]:
        answer = await upstream.get_json(f"{self.base_url}/models", {"authorization": f"Bearer {key}"})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise ValueError("answer has no 'data' list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


class CheckedPassthrough:
    """OpenRouter's SSE as is, whole events only, but with `role` on a choice's first chunk alone (OpenRouter
    repeats it in every chunk). A stream that ends without `[DONE]` (or an error event) was cut off
    upstream, and the client is told so instead of seeing a silent end."""

    def __init__(self) -> None:
        self._aligner = EventAligner()
        self._roles = RoleOnce()
        self._ended = False

    def feed(self, data: bytes) -> list[bytes]:
        out = [self._roles.feed(events) for events in self._aligner.feed(data)]
        if out and (b"[DONE]" in out[-1] or b'"error"' in out[-1]):
            self._ended = True
        return out

    def finish(self) -> list[bytes]:
        out = [self._roles.feed(events) for events in self._aligner.finish()]
        if self._ended or (out and b"[DONE]" in out[-1]):
            return out
        return [
            *out,
            sse_error_event(
                "OpenRouter ended the stream before it was complete.", 502, code="upstream_truncated"
            ),
        ]


_dumps = json_codec.dumps
# Gemini's thought text and signature on the internal request's assistant messages; OpenRouter's own
# `reasoning` and `reasoning_details` pass as they are.
_EXTENSIONS = ("reasoning_content", "reasoning_signature")
MAX_CALL_ID = 40  # OpenAI's limit; OpenAI-compatible providers refuse longer ids (some at 64)


def _portable(messages: Any) -> list[Any] | None:
    """A copy of `messages` any OpenAI-compatible model takes (see the module docstring), or None when
    nothing needs changing: the request is the caller's and stays untouched, and one without artefacts
    costs only this scan."""
    if not isinstance(messages, list):
        return None
    out: list[Any] | None = None
    for i, msg in enumerate(messages):
        fixed = _portable_message(msg) if isinstance(msg, dict) else msg
        if fixed is not msg:
            if out is None:
                out = list(messages)
            out[i] = fixed
    return out


def _portable_message(msg: dict[str, Any]) -> dict[str, Any]:
    """`msg` itself when it is fine as it is, else a fixed copy."""
    # Plain tests and loops, no generator expressions: an agent's history runs this hundreds of times
    # per request (a third of the cost of building a 200 KB call).
    fixed = msg
    for k in _EXTENSIONS:
        if k in msg:
            fixed = {k: v for k, v in msg.items() if k not in _EXTENSIONS}
            break
    call_id = msg.get("tool_call_id")
    if isinstance(call_id, str) and len(call_id) > MAX_CALL_ID:
        fixed = {**fixed, "tool_call_id": short_call_id(call_id)}
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        for c in calls:
            if _long_id(c):
                calls = [{**c, "id": short_call_id(c["id"])} if _long_id(c) else c for c in calls]
                fixed = {**fixed, "tool_calls": calls}
                break
    return fixed


def _long_id(call: Any) -> bool:
    return isinstance(call, dict) and isinstance(call.get("id"), str) and len(call["id"]) > MAX_CALL_ID


def short_call_id(call_id: str) -> str:
    """A tool call id of at most MAX_CALL_ID characters, the same for the same id. A signature suffix of
    the previous version is dropped (some clients strip it from the tool result's id only, and the call
    and its result must still match); an id long without one becomes a digest."""
    base = call_id.partition(SIGNATURE_SEPARATOR)[0]
    if base and len(base) <= MAX_CALL_ID:
        return base
    return "call_" + hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
