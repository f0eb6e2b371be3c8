"""`POST /v1/messages/count_tokens`: the backend's own count where it has one (Gemini's countTokens, on
the translated request), else a local estimate that grows with the prompt. Never a 404: Claude Code
counts before it compacts, and a failed count must not stop it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply, too_large
from addons.pipeline.core import Core
from addons.routing.models import EmptyRoute, ModelNotFound, resolve
from addons.stores.base import DEFAULT_SESSION, valid_session_id
from addons.upstream import UpstreamError
from translators import json_codec
from translators.anthropic import estimate, to_chat
from translators.openai.types import RequestError, decode_object

log = logging.getLogger(__name__)


async def count_tokens(core: Core, raw: bytes, headers: Mapping[str, str]) -> Reply:
    fe = core.frontends["anthropic"]
    if len(raw) > core.settings.max_request_bytes:
        return fe.error(too_large(len(raw), core.settings.max_request_bytes))
    try:
        body = decode_object(raw, "count_tokens")
        body.setdefault("max_tokens", 1)  # a count has no answer, so no answer length either
        request = to_chat(body)
    except RequestError as e:
        return fe.error(error_reply(str(e), e.status, param=e.param))
    session = await core.stores.sessions.get(valid_session_id(fe.session_id(headers)) or DEFAULT_SESSION)
    runtime = await core.stores.config.get()
    # The prompt leaves the proxy here too: with the same redaction as a model call.
    chat = core.redactor.redact_json(request.chat) if runtime.redact else request.chat
    try:
        target = resolve(
            request.model, session_model=session.model, backend=session.backend or runtime.default_backend,
            routes=runtime.routes, catalog=core.catalog, model_map=core.model_map,
        )  # fmt: skip
    except ModelNotFound as e:
        return fe.error(error_reply(e.message(), 404, param="model", code="model_not_found"))
    except EmptyRoute as e:
        return fe.error(error_reply(str(e), 400, param="model"))
    tokens = await _backend_count(core, target.elements[0], chat)
    if tokens is None:
        tokens = estimate(chat)
    return Reply(200, json_codec.dumps({"input_tokens": tokens}))


async def _backend_count(core: Core, element: tuple[str, str], chat: dict[str, Any]) -> int | None:
    """The first key that answers; None when the backend cannot count or no key could."""
    backend = core.backends[element[0]]
    plan = await core.router.plan([element], "k")
    for at in plan.attempts[:3]:
        call = backend.count_call(chat, at.model, core.router.secret(at.backend, at.key))
        if call is None:
            return None
        try:
            answer = await core.upstream.open(call)
            try:
                body = await answer.read()
            finally:
                answer.close()
        except UpstreamError as e:
            log.info("count_tokens on %s:%s: %s", at.backend, at.model, e.message)
            continue
        if 200 <= answer.status < 300 and (tokens := backend.read_count(body)) is not None:
            return tokens
        log.info("count_tokens on %s:%s answered HTTP %d", at.backend, at.model, answer.status)
    return None
