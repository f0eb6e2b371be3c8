"""Which endpoint a request is for, the access token, and the guarantee that nothing raises out:
every failure a client can see is an error reply in its dialect."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qs

from addons.frontends import admin, openai_chat
from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply, unauthorised
from addons.pipeline.chat import chat
from addons.pipeline.core import Core
from addons.security import access
from translators.openai.types import TOO_DEEP

log = logging.getLogger(__name__)


# What route() answers, for the 404 of a path it does not.
SERVED = "/v1/chat/completions, /v1/models, /v1/models/{model} and /v1/sessions/{id}/history"


def route(method: str, path: str) -> str | None:
    """Name of the endpoint a request is for, or None when it is not ours to handle. `path` is canonical
    (addons.security.paths.canonical_path): decoded, dot segments resolved; matched case-insensitively."""
    path = path.split("?", 1)[0].rstrip("/").lower() or "/"
    if path in openai_chat.CHAT_PATHS:
        return "chat" if method == "POST" else "method"
    if path in openai_chat.MODELS_PATHS:
        return "models" if method == "GET" else "method"
    if any(path.startswith(p + "/") for p in openai_chat.MODELS_PATHS):
        return "model" if method == "GET" else "method"
    if path.startswith(admin.SESSIONS_PREFIXES) and path.endswith("/history"):
        return "history" if method == "GET" else "method"
    return None


async def handle(core: Core, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
    kind = route(method, path)
    if kind is None:
        return None
    reply = await _guarded(core, kind, method, path, headers, body)
    _scrub(core, reply)
    return reply


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
    if not access.authorised(headers, access.token(core.settings)):
        return unauthorised()
    try:
        return await _serve(core, kind, method, path, headers, body)
    except RecursionError:
        # Any walk over a pathologically deep (but small) body: the client's input, not our bug.
        return error_reply(TOO_DEEP, 400)
    except UnicodeEncodeError as e:
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 text can carry onwards.
        return error_reply(
            f"Request text is not valid Unicode: {e.reason} at {e.object[e.start : e.end]!r}.", 400
        )
    except Exception:
        log.exception("internal error while handling %s %s", method, path.split("?", 1)[0])
        return openai_chat.internal_error()


async def _serve(
    core: Core, kind: str, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> Reply:
    clean = path.split("?", 1)[0].rstrip("/")
    if kind == "chat":
        return await chat(core, body, headers)
    if kind == "models":
        return await list_models(core)
    # The path is already decoded (canonical): its parameters are taken as they stand.
    lower = clean.lower()
    if kind == "model":
        return await get_model(core, clean[lower.index("/models/") + len("/models/") :])
    if kind == "history":
        session_id = clean[lower.index("/sessions/") + len("/sessions/") : -len("/history")]
        return await session_history(core, session_id, parse_qs(path.partition("?")[2]))
    allowed = "POST" if lower.endswith("completions") else "GET"
    return error_reply(f"Method {method} is not allowed here; use {allowed}.", 405)


async def list_models(core: Core) -> Reply:
    await core.catalog.wait_ready(core.settings.discovery_timeout)
    runtime = await core.stores.config.get()
    return openai_chat.models_reply(core.catalog.listing(runtime.default_backend))


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
