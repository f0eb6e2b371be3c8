"""What the proxy does with one OpenAI API call, independent of mitmproxy.

The addon turns a flow into (method, path, headers, body), awaits a `Reply` and applies it to the flow.
A Reply is either complete (`body`) or streamed (`stream`, an async iterator of SSE bytes that the
addon hands to the relay). Every failure a client can see is an OpenAI error; nothing raises out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from addons.backends.base import Backend, StreamTranslator, UpstreamCall
from addons.catalog import ModelCatalog
from addons.routing import KeyRotation
from addons.settings import KEY_ENV, Settings
from addons.upstream import UpstreamClient, UpstreamError
from translators.openai_types import RequestError, parse_chat_request
from translators.synthetic import PROXY_OWNER, error_json, model_list, sse_error_event

log = logging.getLogger(__name__)

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
JSON = {"content-type": "application/json"}


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    stream: AsyncIterator[bytes] | None = None
    upstream: UpstreamCall | None = None  # what really left the proxy (carries the key: mask before display)
    transcript: bytearray | None = None  # streamed bytes as sent, for reassembly after the stream ends
    info: dict[str, Any] = field(default_factory=dict)  # plain data for flow metadata and history


def error_reply(message: str, status: int, **kw: Any) -> Reply:
    headers = dict(JSON)
    if status >= 500 or status == 429:
        # The proxy already did what retrying could do; don't let SDKs multiply the load.
        headers["x-should-retry"] = "false"
    return Reply(status, error_json(message, status, **kw), headers)


def route(method: str, path: str) -> str | None:
    """Name of the endpoint a request is for, or None when it is not ours to handle."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    if path in CHAT_PATHS:
        return "chat" if method == "POST" else "method"
    if path in MODELS_PATHS:
        return "models" if method == "GET" else "method"
    if any(path.startswith(p + "/") for p in MODELS_PATHS):
        return "model" if method == "GET" else "method"
    return None


class ProxyService:
    def __init__(
        self,
        settings: Settings,
        backends: Mapping[str, Backend],
        upstream: UpstreamClient,
    ) -> None:
        self.settings = settings
        self.backends = dict(backends)
        self.upstream = upstream
        self.catalog = ModelCatalog(tuple(self.backends))
        self.keys = KeyRotation({b: settings.keyring(b) for b in self.backends})
        self.default_backend = settings.llm_backend

    # -- endpoints ---------------------------------------------------------------------------------

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        kind = route(method, path)
        if kind is None:
            return None
        try:
            if kind == "chat":
                return await self.chat(body)
            if kind == "models":
                return await self.list_models()
            if kind == "model":
                model_id = unquote(path.split("?", 1)[0].split("/models/", 1)[1])
                return await self.get_model(model_id)
            allowed = "POST" if path.split("?")[0].rstrip("/").endswith("completions") else "GET"
            return error_reply(f"Method {method} is not allowed here; use {allowed}.", 405)
        except Exception:
            log.exception("internal error while handling %s %s", method, path.split("?")[0])
            return error_reply(
                "Internal proxy error; the proxy log has the details.", 500, code="proxy_error"
            )

    async def chat(self, raw: bytes) -> Reply:
        if len(raw) > self.settings.max_request_bytes:
            return too_large(len(raw), self.settings.max_request_bytes)
        try:
            request = parse_chat_request(raw)
        except RequestError as e:
            return error_reply(str(e), e.status, param=e.param)
        stream = bool(request.get("stream"))
        requested = request.get("model") or ""
        if not requested:
            return error_reply("Missing required parameter: 'model'.", 400, param="model")
        backend_name, model = self.catalog.split(requested, self.default_backend)
        backend = self.backends.get(backend_name)
        if backend is None:
            return error_reply(f"Backend '{backend_name}' is not enabled.", 400, param="model")
        picked = self.keys.pick(backend_name)
        if picked is None:
            env = KEY_ENV[backend_name]
            return error_reply(
                f"No API key configured for backend '{backend_name}': set {env} "
                f"(or {env}_1 .. {env}_20) and restart the proxy.",
                503,
                code="no_api_key",
            )
        key_name, key = picked
        call = backend.build_call(request, model, key, stream)
        info = {"backend": backend_name, "model": model, "key": key_name, "stream": stream}
        started = time.monotonic()
        try:
            resp = await self.upstream.open(call)
        except UpstreamError as e:
            info.update(status=e.status, error=e.code)
            reply = error_reply(e.message, e.status, code=e.code)
            reply.upstream, reply.info = call, info
            return reply
        info["status"] = resp.status_code
        if stream and 200 <= resp.status_code < 300:
            transcript = bytearray()
            translator = backend.stream_translator(request, model)
            source = _relay_stream(resp, translator, transcript, self.upstream.timeout)
            return Reply(
                200,
                headers={"content-type": "text/event-stream"},
                stream=source,
                upstream=call,
                transcript=transcript,
                info=info,
            )
        try:
            body = await resp.aread()
        except httpx.HTTPError as e:
            info["error"] = "upstream_broken"
            reply = error_reply(f"Upstream {resp.url.host} broke off its answer: {e!s:.200}.", 502)
            reply.upstream, reply.info = call, info
            return reply
        finally:
            await resp.aclose()
        info["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        translated = backend.translate_response(resp.status_code, resp.headers, body, model)
        return Reply(translated.status, translated.body, translated.headers, upstream=call, info=info)

    async def list_models(self) -> Reply:
        await self.catalog.wait_ready(self.settings.discovery_timeout)
        return Reply(200, _dumps(model_list(self.catalog.listing(self.default_backend))))

    async def get_model(self, model_id: str) -> Reply:
        await self.catalog.wait_ready(self.settings.discovery_timeout)
        backend, model = self.catalog.split(model_id, self.default_backend)
        if backend in self.backends and self.catalog.entry(backend).knows(model):
            shown = model if backend == self.default_backend else f"{backend}:{model}"
            return Reply(200, _dumps(model_list([(shown, backend)])["data"][0]))
        return error_reply(
            f"The model '{model_id}' does not exist.", 404, param="model", code="model_not_found"
        )

    # -- start-up ----------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Ask each backend for its models, concurrently; failures mark the backend unavailable."""
        await asyncio.gather(*(self._discover_one(name) for name in self.backends))
        self.catalog.mark_ready()

    async def _discover_one(self, name: str) -> None:
        backend = self.backends[name]
        picked = self.keys.pick(name)
        if picked is None:
            env = KEY_ENV[name]
            self.catalog.set_unavailable(name, f"no API key (set {env} or {env}_1..{env}_20)")
            log.warning(
                "%s: no API key configured (set %s or %s_1..%s_20); backend unavailable", name, env, env, env
            )
            return
        try:
            models = await asyncio.wait_for(
                backend.discover_models(self.upstream.client, picked[1]), self.settings.discovery_timeout
            )
        except Exception as e:
            reason = _describe(e, self.settings.discovery_timeout)
            self.catalog.set_unavailable(name, reason)
            log.error("%s: model discovery failed (%s); backend marked unavailable", name, reason)
            return
        self.catalog.set_models(name, models)
        log.info("%s: %d models, %d key(s)", name, len(models), self.keys.count(name))


async def _relay_stream(
    resp: httpx.Response, translator: StreamTranslator, transcript: bytearray, timeout: float
) -> AsyncIterator[bytes]:
    """Upstream bytes -> translated SSE, as they arrive. A failure mid-way ends with an SSE error event."""
    host = resp.url.host
    try:
        async for raw in resp.aiter_bytes():
            for out in translator.feed(raw):
                transcript += out
                yield out
        tail = translator.finish()
    except httpx.TimeoutException:
        tail = [
            sse_error_event(
                f"Upstream {host} stalled: no data for {timeout:g} s.", 504, code="upstream_timeout"
            )
        ]
    except httpx.HTTPError as e:
        tail = [
            sse_error_event(f"Upstream {host} broke off the stream: {e!s:.200}.", 502, code="upstream_error")
        ]
    except Exception:
        log.exception("stream translation failed")
        tail = [sse_error_event("Internal proxy error while streaming; the proxy log has the details.", 500)]
    finally:
        await resp.aclose()
    for out in tail:
        transcript += out
        yield out


def too_large(size: int, limit: int) -> Reply:
    return error_reply(
        f"Request body is {size} bytes; this proxy accepts at most {limit} bytes (LLM_MAX_REQUEST_BYTES).",
        413,
        code="request_too_large",
    )


def _describe(e: Exception, timeout: float) -> str:
    if isinstance(e, (TimeoutError, httpx.TimeoutException)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code}"
    return (str(e) or type(e).__name__).splitlines()[0][:200]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


__all__ = ["PROXY_OWNER", "ProxyService", "Reply", "route"]
