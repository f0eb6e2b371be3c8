"""`POST /v1/embeddings` on every backend: the model resolved as for chat, keys rotated and rested as for
chat (the attempts are chat's `Failover` with another request per attempt), errors in OpenAI's shape.

What differs from chat: no commands and no history row (the input is no conversation; the flow comment
shows the call record and the usage store counts it), and a session's `!/set(model=...)` is not applied
(it names a chat model), its backend is. Catalogs list the models that generate, not the ones that embed,
so a name no catalog lists goes to the session's or default backend unchecked, whose own 404 then names it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from addons.conversation.prepare import Prepared
from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply, too_large
from addons.pipeline import budget
from addons.pipeline.chat import MODEL_HEADER, nothing_usable
from addons.pipeline.core import Core
from addons.pipeline.failover import Failover, excerpt
from addons.pipeline.record import log_attempt
from addons.records import CallRecord
from addons.routing.models import EmptyRoute, ModelNotFound, Target, resolve
from addons.routing.planner import Attempt
from addons.stores.base import Route, valid_session_id
from addons.upstream import Answer, UpstreamCall, UpstreamError
from translators import json_codec
from translators.openai.types import RequestError, decode_object

EMBEDDINGS_PATHS = frozenset({"/v1/embeddings", "/embeddings"})
NAME = "embeddings"  # in the call record, where a model call names its front-end


async def serve(core: Core, raw: bytes, headers: Mapping[str, str]) -> Reply:
    limit = core.settings.max_request_bytes
    if len(raw) > limit:
        return too_large(len(raw), limit)
    try:
        request = decode_object(raw, "embeddings")
    except RequestError as e:
        return error_reply(str(e), e.status, param=e.param)
    asked = request.get("model")
    if not isinstance(asked, str) or not asked:
        return error_reply("Missing required parameter: 'model'.", 400, param="model")
    if "input" not in request:
        return error_reply("Missing required parameter: 'input'.", 400, param="input")
    session_id = valid_session_id(headers.get("x-session-id"))
    if session_id is None:
        return error_reply("X-Session-ID must be 1-128 printable characters.", 400, code="invalid_session_id")
    session, runtime = await core.stores.sessions.get(session_id), await core.stores.config.get()
    # The input leaves the proxy: with the same redaction as a chat prompt.
    if runtime.redact and core.redactor.body_holds_secret(raw):
        request = core.redactor.redact_json(request)
    backend = session.backend or runtime.default_backend
    try:
        target = _target(core, asked, backend, runtime.routes)
    except EmptyRoute as e:
        return error_reply(str(e), 400, param="model")
    record = CallRecord(session=session.id, stream=False, frontend=NAME, route=target.route)
    plan = await core.router.plan(list(target.elements), target.policy)
    if not plan.attempts:
        return nothing_usable(core, list(target.elements), plan)
    prep = Prepared(request, session, runtime, interactive=False)
    ticket = await budget.admit(core, session, record)  # embeddings spend too
    if isinstance(ticket, Reply):
        return ticket
    try:
        reply = await EmbeddingAttempts(core, prep, record, _unrecorded).run(plan.attempts)
        ticket.settle(record)  # charged by now, if a backend answered
    finally:
        await ticket.finish()
    if reply.status < 400 and record.model:
        reply.headers[MODEL_HEADER] = f"{record.backend}:{record.model}"
    return reply


def _target(core: Core, asked: str, backend: str, routes: Mapping[str, Route]) -> Target:
    try:
        return resolve(
            asked, session_model=None, backend=backend, routes=routes, catalog=core.catalog,
            model_map=core.model_map,
        )  # fmt: skip
    except ModelNotFound as e:
        return Target((core.catalog.split(e.looked_up, backend),))


def _unrecorded(status: int, result: Any, error_body: Any, error: str | None) -> None:
    """Failover's recorder, for a call that writes no history row."""


class EmbeddingAttempts(Failover):
    """Chat's attempts (rotation, rests, the 429 summary, redacted errors) with an embeddings call each."""

    async def _try(self, at: Attempt) -> tuple[bool, Reply]:
        backend = self.core.backends[at.backend]
        request = self.prep.request
        try:
            call = backend.embeddings_call(request, at.model, self.core.router.secret(at.backend, at.key))
        except RequestError as e:
            return True, error_reply(str(e), e.status, param=e.param)
        rec = self.record
        rec.backend, rec.model, rec.key, rec.project = at.backend, at.model, at.key, self.prep.session.project
        started = time.monotonic()
        try:
            resp = await self.core.upstream.open(call)
            try:
                body = await resp.read()
            finally:
                resp.close()
        except UpstreamError as e:
            return False, self._broken(at, call, started, e)
        status = resp.status
        translated = backend.translate_embeddings(status, resp.headers, body, at.model, request)
        reply = Reply(translated.status, translated.body, translated.headers, upstream=call)
        if status >= 400:
            verdict = backend.failure(status, resp.headers, body)
            await self._rest(at, verdict)
            log_attempt(rec, at, started, status, verdict.reason)
            if verdict.retry:
                return False, reply
            reply.body = self._redact_error(reply.body)
        elif translated.status >= 400 or (result := _embeddings(translated.body)) is None:
            log_attempt(rec, at, started, 502, "upstream_bad_response")
            return False, reply if translated.status >= 400 else self._not_embeddings(call, resp, body)
        else:
            log_attempt(rec, at, started, status, None)
            self.core.meter.charge(rec, result.get("usage"))
        rec.status = reply.status
        reply.record = rec
        return True, reply

    def _not_embeddings(self, call: UpstreamCall, resp: Answer, raw: bytes) -> Reply:
        failed = error_reply(
            f"Upstream {resp.host} answered HTTP {resp.status} with something not an embeddings list: "
            f"{excerpt(raw, self.core.redactor)}",
            502,
            code="upstream_bad_response",
        )
        failed.upstream = call
        return failed


def _embeddings(body: bytes) -> dict[str, Any] | None:
    """The answer when it is OpenAI's embeddings list (an object with a `data` array)."""
    try:
        data = json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("data"), list) else None
