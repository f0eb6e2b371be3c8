"""Which endpoint a request is for, the access token, and the guarantee that nothing raises out:
every failure a client can see is an error reply in its dialect."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qs

from addons.frontends import admin, anthropic, completions, openai_chat, responses
from addons.frontends.base import Frontend, Reply
from addons.frontends.openai_chat import error_reply, unauthorised
from addons.metrics import registry as metrics
from addons.pipeline import bodies, count, embeddings
from addons.pipeline.chat import serve
from addons.pipeline.core import Core
from addons.security import access
from addons.stores.base import StoreUnavailable
from translators.openai.types import TOO_DEEP

log = logging.getLogger(__name__)


# What route() answers, for the 404 of a path it does not.
SERVED = (
    "/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses (and /v1/responses/{id}, "
    "/v1/responses/{id}/input_items), /v1/messages, /v1/messages/count_tokens, /v1/models, "
    "/v1/models/{model}, /v1/sessions/{id}/history, /v1/usage and /metrics"
)
# Endpoints that take a model call, by the dialect they speak.
CALLS = {
    "chat": "openai_chat",
    "completions": "openai_completions",
    "messages": "anthropic",
    "responses": "responses",
}
# Kept responses: (method, kind).
KEPT = {"GET": "response_get", "DELETE": "response_delete"}


def route(method: str, path: str) -> str | None:
    """Name of the endpoint a request is for, or None when it is not ours to handle. `path` is canonical
    (addons.security.paths.canonical_path): decoded, dot segments resolved; matched case-insensitively."""
    path = path.split("?", 1)[0].rstrip("/").lower() or "/"
    if path in openai_chat.CHAT_PATHS:
        return "chat" if method == "POST" else "method"
    if path in completions.COMPLETIONS_PATHS:
        return "completions" if method == "POST" else "method"
    if path in embeddings.EMBEDDINGS_PATHS:
        return "embeddings" if method == "POST" else "method"
    if path in anthropic.MESSAGES_PATHS:
        return "messages" if method == "POST" else "method"
    if path in anthropic.COUNT_PATHS:
        return "count_tokens" if method == "POST" else "method"
    if path in responses.RESPONSES_PATHS:
        return "responses" if method == "POST" else "method"
    if path.startswith(responses.ITEM_PREFIXES):
        if path.endswith("/input_items"):
            return "input_items" if method == "GET" else "method"
        return KEPT.get(method, "method")
    if path in openai_chat.MODELS_PATHS:
        return "models" if method == "GET" else "method"
    if any(path.startswith(p + "/") for p in openai_chat.MODELS_PATHS):
        return "model" if method == "GET" else "method"
    if path.startswith(admin.SESSIONS_PREFIXES) and path.endswith("/history"):
        return "history" if method == "GET" else "method"
    if path in admin.USAGE_PATHS:
        return "usage" if method == "GET" else "method"
    if path == metrics.PATH:
        return "metrics" if method == "GET" else "method"
    return None


async def handle(core: Core, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
    kind = route(method, path)
    if kind is None:
        return None
    reply = await _guarded(core, kind, method, path, headers, body)
    _scrub(core, reply)
    return reply


def dialect(core: Core, path: str) -> Frontend:
    """The front-end whose error shape a refusal of a request to `path` takes (OpenAI's by default)."""
    path = path.split("?", 1)[0].rstrip("/").lower()
    if path in anthropic.MESSAGES_PATHS or path in anthropic.COUNT_PATHS:
        return core.frontends["anthropic"]
    if path in responses.RESPONSES_PATHS or path.startswith(responses.ITEM_PREFIXES):
        return core.frontends["responses"]
    return core.frontends["openai_chat"]


def _scrub(core: Core, reply: Reply) -> None:
    """Whatever produced a reply, its headers (some copied from the provider) and a complete body
    (an error quoting a model name, an answer repeating a prompt sent with redaction off) carry no
    key: the client, mitmweb and saved flows all see them. A key-free reply costs one scan."""
    redactor = core.redactor
    for name, value in reply.headers.items():
        reply.headers[name] = redactor.redact_text(value)
    reply.body = redactor.redact_bytes(reply.body)


async def _guarded(
    core: Core, kind: str, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> Reply:
    fe = dialect(core, path)
    if not access.authorised(headers, access.token(core.settings)):
        return fe.error(unauthorised())
    try:
        if "content-encoding" in headers:
            body = bodies.decoded(body, headers, core.settings.max_request_bytes)
        return await _serve(core, kind, method, path, headers, body)
    except bodies.BodyError as e:
        return fe.error(error_reply(str(e), e.status))
    except StoreUnavailable as e:
        # Only a shared store knows the answer (a kept response on PostgreSQL) and it is away.
        return fe.error(error_reply(f"A shared store does not answer: {e}", 503, code="store_unavailable"))
    except RecursionError:
        # Any walk over a pathologically deep (but small) body: the client's input, not our bug.
        return fe.error(error_reply(TOO_DEEP, 400))
    except UnicodeEncodeError as e:
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 text can carry onwards.
        return fe.error(error_reply(
            f"Request text is not valid Unicode: {e.reason} at {e.object[e.start : e.end]!r}.", 400
        ))  # fmt: skip
    except Exception:
        log.exception("internal error while handling %s %s", method, path.split("?", 1)[0])
        return fe.error(openai_chat.internal_error())


async def _serve(
    core: Core, kind: str, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> Reply:
    clean = path.split("?", 1)[0].rstrip("/")
    if kind in CALLS:
        return await serve(core, core.frontends[CALLS[kind]], body, headers)
    if kind == "count_tokens":
        return await count.count_tokens(core, body, headers)
    if kind == "embeddings":
        return await embeddings.serve(core, body, headers)
    if kind == "metrics":
        exposition = core.metrics.exposition(await core.stores.cooldowns.active())
        return Reply(200, exposition, {"content-type": metrics.CONTENT_TYPE})
    if kind == "usage":  # `group_by=` (blank) asks for no grouping
        query = parse_qs(path.partition("?")[2], keep_blank_values=True)
        return await admin.usage_reply(core.stores.usage, query)
    if kind == "models":
        return await list_models(core, anthropic.wants_anthropic(headers))
    if kind in ("response_get", "response_delete", "input_items"):
        return await _kept(core, kind, clean, parse_qs(path.partition("?")[2]))
    # The path is already decoded (canonical): its parameters are taken as they stand.
    lower = clean.lower()
    if kind == "model":
        return await get_model(core, clean[lower.index("/models/") + len("/models/") :])
    if kind == "history":
        session_id = clean[lower.index("/sessions/") + len("/sessions/") : -len("/history")]
        return await session_history(core, session_id, parse_qs(path.partition("?")[2]))
    posted = lower.endswith(("completions", "messages", "count_tokens", "responses", "embeddings"))
    if headers.get("upgrade", "").lower() == "websocket":
        # Codex tries a WebSocket first; 426 makes it fall back to HTTP at once (a 404/405 costs retries).
        message = "WebSocket is not offered here; send the request as an HTTP POST."
        return dialect(core, path).error(error_reply(message, 426, code="websocket_not_supported"))
    allowed = "POST" if posted else "GET"
    return dialect(core, path).error(error_reply(f"Method {method} is not allowed here; use {allowed}.", 405))


async def _kept(core: Core, kind: str, clean: str, query: dict[str, list[str]]) -> Reply:
    fe = core.frontends["responses"]
    assert isinstance(fe, responses.ResponsesFrontend)  # the only Responses front-end app.py builds
    rest = clean[clean.lower().index("/responses/") + len("/responses/") :]
    if kind == "input_items":
        return await fe.input_items(rest[: -len("/input_items")], query)
    return await (fe.retrieve(rest) if kind == "response_get" else fe.delete(rest))


async def list_models(core: Core, anthropic_shape: bool = False) -> Reply:
    await core.catalog.wait_ready(core.settings.discovery_timeout)
    runtime = await core.stores.config.get()
    listing = core.catalog.listing(runtime.default_backend)
    return anthropic.models_reply(listing) if anthropic_shape else openai_chat.models_reply(listing)


async def get_model(core: Core, model_id: str) -> Reply:
    await core.catalog.wait_ready(core.settings.discovery_timeout)
    default = (await core.stores.config.get()).default_backend
    backend, model = core.catalog.split(model_id, default)
    if backend in core.backends and core.catalog.entry(backend).knows(model):
        return openai_chat.model_reply(model if backend == default else f"{backend}:{model}", backend)
    return openai_chat.model_not_found(model_id)


async def session_history(core: Core, session_id: str, query: dict[str, list[str]]) -> Reply:
    history = core.stores.history
    if not history.enabled:
        return admin.history_off()
    limit = admin.history_limit(query)
    if isinstance(limit, Reply):
        return limit
    await history.flush()
    rows = await history.read(session_id, limit)
    return admin.history_reply(session_id, rows, query)
