"""OpenRouter: OpenAI wire format, so requests and answers pass through with little change."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from addons.backends.base import Failure, Translated
from addons.backends.errors import classify_status, context_failure, normalise_error
from addons.upstream import Upstream, UpstreamCall
from translators import json_codec
from translators.openai.synthetic import sse_error_event
from translators.sse import EventAligner


class OpenRouterBackend:
    name = "openrouter"

    def __init__(self, base_url: str, site_url: str, title: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._static_headers = {
            "content-type": "application/json",
            "http-referer": site_url,
            "x-title": title,
        }

    def build_call(
        self, request: dict[str, Any], model: str, key: str, stream: bool, project: str | None = None
    ) -> UpstreamCall:
        body = dict(request)
        body["model"] = model
        messages = _without_extensions(request.get("messages"))
        if messages is not None:
            body["messages"] = messages
        if project:  # OpenRouter groups usage by it
            body["project"] = project
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
        self, status: int, headers: Mapping[str, str], body: bytes, model: str
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

    def stream_translator(self, request: dict[str, Any], model: str) -> CheckedPassthrough:
        return CheckedPassthrough()

    async def discover_models(self, upstream: Upstream, key: str) -> list[str]:
        answer = await upstream.get_json(f"{self.base_url}/models", {"authorization": f"Bearer {key}"})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise ValueError("answer has no 'data' list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


class CheckedPassthrough:
    """OpenRouter's SSE as is, whole events only; a stream that ends without `[DONE]` (or an error
    event) was cut off upstream, and the client is told so instead of seeing a silent end."""

    def __init__(self) -> None:
        self._aligner = EventAligner()
        self._ended = False

    def feed(self, data: bytes) -> list[bytes]:
        out = self._aligner.feed(data)
        if out and (b"[DONE]" in out[-1] or b'"error"' in out[-1]):
            self._ended = True
        return out

    def finish(self) -> list[bytes]:
        out = self._aligner.finish()
        if self._ended or (out and b"[DONE]" in out[-1]):
            return out
        return [
            *out,
            sse_error_event(
                "OpenRouter ended the stream before it was complete.", 502, code="upstream_truncated"
            ),
        ]


_dumps = json_codec.dumps
# The internal request's assistant-message fields for Gemini; OpenRouter's own field is `reasoning`, and
# without the reasoning_details we do not carry it has no use for the text back.
_EXTENSIONS = ("reasoning_content", "reasoning_signature")


def _without_extensions(messages: Any) -> list[Any] | None:
    """A copy of `messages` with the extension fields removed, or None when none has any: the request
    is the caller's and stays untouched, and one without extensions costs only this scan."""
    if not isinstance(messages, list):
        return None
    out: list[Any] | None = None
    for i, msg in enumerate(messages):
        if isinstance(msg, dict) and any(k in msg for k in _EXTENSIONS):
            if out is None:
                out = list(messages)
            out[i] = {k: v for k, v in msg.items() if k not in _EXTENSIONS}
    return out
