"""OpenRouter: OpenAI wire format, so requests and answers pass through with little change."""

from __future__ import annotations

import json
from typing import Any

import httpx

from addons.backends.base import Translated, UpstreamCall
from addons.backends.errors import normalise_error
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

    def build_call(self, request: dict[str, Any], model: str, key: str, stream: bool) -> UpstreamCall:
        body = dict(request)
        body["model"] = model
        headers = {
            **self._static_headers,
            "authorization": f"Bearer {key}",
            "accept": "text/event-stream" if stream else "application/json",
        }
        return UpstreamCall(
            "POST", f"{self.base_url}/chat/completions", headers, _dumps(body), stream, ("authorization",)
        )

    def translate_response(self, status: int, headers: httpx.Headers, body: bytes, model: str) -> Translated:
        if 200 <= status < 300:
            return Translated(status, body, {"content-type": "application/json"})
        return normalise_error("OpenRouter", status, headers, body)

    def stream_translator(self, request: dict[str, Any], model: str) -> EventAligner:
        return EventAligner()

    async def discover_models(self, client: httpx.AsyncClient, key: str) -> list[str]:
        resp = await client.get(f"{self.base_url}/models", headers={"authorization": f"Bearer {key}"})
        resp.raise_for_status()
        data = resp.json().get("data")
        if not isinstance(data, list):
            raise ValueError("answer has no 'data' list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
