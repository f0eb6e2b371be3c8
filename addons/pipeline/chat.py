"""One model call, whatever the client's dialect: the front-end's request as an internal chat request,
session, commands and redaction, the model it means, the plan, failover, and the answer rendered back."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping

from addons.backends.registry import key_env
from addons.conversation.prepare import Prepared, prepare
from addons.frontends import openai_chat
from addons.frontends.base import Frontend, Inbound, Reply
from addons.frontends.openai_chat import error_reply
from addons.guards.call import TOOL_LOOP_REFUSED, TOOL_LOOP_STEERED, CallGuards
from addons.guards.tool_loop import steered
from addons.pipeline import budget, changes, status
from addons.pipeline.core import Core
from addons.pipeline.failover import Failover
from addons.pipeline.record import Recorder
from addons.records import CallRecord
from addons.routing.models import EmptyRoute, ModelNotFound, resolve
from addons.routing.planner import Plan
from addons.stores.base import valid_session_id
from translators.openai.types import RequestError

MODEL_HEADER = "x-llm-intercept-model"
log = logging.getLogger(__name__)


async def serve(core: Core, fe: Frontend, raw: bytes, headers: Mapping[str, str]) -> Reply:
    """The client's answer in its own dialect; every error the pipeline makes is OpenAI-shaped until
    the front-end reshapes it here."""
    limit = core.settings.max_request_bytes
    if len(raw) > limit:
        return fe.error(openai_chat.too_large(len(raw), limit))
    try:
        inbound = await fe.parse(raw, headers)
    except RequestError as e:
        return fe.error(error_reply(str(e), e.status, param=e.param))
    reply = await _call(core, fe, inbound, raw, headers)
    if reply.record is not None and reply.record.answered_by == "backend" and reply.record.model:
        reply.headers[MODEL_HEADER] = f"{reply.record.backend}:{reply.record.model}"
    return await fe.answer(reply, inbound) if reply.status < 400 else fe.error(reply)


async def _call(core: Core, fe: Frontend, inbound: Inbound, raw: bytes, headers: Mapping[str, str]) -> Reply:
    started = time.monotonic()
    request = inbound.chat
    session_id = valid_session_id(fe.session_id(headers))
    if session_id is None:
        return error_reply("X-Session-ID must be 1-128 printable characters.", 400, code="invalid_session_id")
    stores = core.stores
    session, runtime = await stores.sessions.get(session_id), await stores.config.get()
    prep = await prepare(
        request, raw, session, runtime, core.catalog, core.key_counts(), core.settings.command_prefix,
        core.redactor, functools.partial(status.banner, core), functools.partial(status.status_text, core),
        commands=core.settings.commands, usage=functools.partial(status.usage_text, core),
    )  # fmt: skip
    await changes.apply(stores, session.id, prep.changes, core.redactor)
    # Whatever the redaction toggle says, flow comments and metadata never carry a key.
    commands = [core.redactor.redact(c) for c in prep.commands]
    record = CallRecord(
        session=session.id, stream=inbound.stream, commands=commands, frontend=fe.name, notes=inbound.notes
    )
    recorder = Recorder(stores.history, prep, record, started, core.meter)
    if prep.reply_text is not None:
        return _proxy_answer(core, prep, record, recorder)
    # After the commands (a `!/set(budget=...)` counts at once), before any provider is called.
    ticket = await budget.admit(core, prep.session, record)
    if isinstance(ticket, Reply):
        return ticket
    recorder.settled = ticket.settle
    return await ticket.around(_forward(core, prep, record, recorder))


async def _forward(core: Core, prep: Prepared, record: CallRecord, recorder: Recorder) -> Reply:
    guards = CallGuards.of(core.settings, prep.session, prep.request, record)
    if (refused := _tool_loop(core, prep, guards, recorder)) is not None:
        return refused
    session, runtime = prep.session, prep.runtime
    asked = prep.request.get("model") or ""
    if not (session.model or asked):
        return error_reply("Missing required parameter: 'model'.", 400, param="model")
    try:
        target = resolve(
            asked, session_model=session.model, backend=session.backend or runtime.default_backend,
            routes=runtime.routes, catalog=core.catalog, model_map=core.model_map,
        )  # fmt: skip
    except EmptyRoute as e:
        return error_reply(str(e), 400, param="model")
    except ModelNotFound as e:
        return error_reply(e.message(), 404, param="model", code="model_not_found")
    record.route = target.route
    elements = list(target.elements)
    plan = await core.router.plan(elements, target.policy)
    if not plan.attempts:
        return nothing_usable(core, elements, plan)
    return await Failover(core, prep, record, recorder, guards).run(plan.attempts)


def _tool_loop(core: Core, prep: Prepared, guards: CallGuards, recorder: Recorder) -> Reply | None:
    """An agent repeating a tool call that keeps returning the same: the model is told so in the latest
    result at the limit (history keeps the request as forwarded, note included; the client's own copy
    never has it), and past the limit the request is refused before any provider is called."""
    loop = guards.tool_loop(prep.request)
    if loop is None:
        return None
    record = recorder.record
    log.warning("session %s: %s called %d times, same result", record.session, loop.name, loop.times)
    if loop.times <= guards.tool_loop_repeats:
        prep.request = steered(prep.request, guards.steering_note(loop))
        record.guards.append(TOOL_LOOP_STEERED)
        return None
    message = core.redactor.redact(guards.refusal(loop))
    reply = error_reply(message, 400, param="messages", code="tool_call_loop")
    record.guards.append(TOOL_LOOP_REFUSED)
    record.answered_by, record.status = "proxy", 400
    recorder(400, None, None, message)
    reply.record = record
    return reply


def _proxy_answer(core: Core, prep: Prepared, record: CallRecord, recorder: Recorder) -> Reply:
    # The proxy's own answers are shown in mitmweb and saved with flows: never echo a key.
    text = core.redactor.redact(prep.reply_text or "")
    record.answered_by, record.status = "proxy", 200
    reply, answer = openai_chat.proxy_answer(text, prep.request)
    recorder(200, answer, None, None)
    reply.record = record
    return reply


def nothing_usable(core: Core, elements: list[tuple[str, str]], plan: Plan) -> Reply:
    if plan.exhausted:
        reply = error_reply(
            "Every candidate is cooling down: " + "; ".join(plan.exhausted) + ".",
            429,
            code="all_keys_cooling_down",
        )
        reply.headers["retry-after"] = str(math.ceil(plan.retry_after or 1))
        return reply
    missing = sorted({b for b, _ in elements if not core.router.count(b)})
    envs = " / ".join(f"{key_env(b)} (or {key_env(b)}_1 .. _20)" for b in missing)
    return error_reply(
        f"No API key configured for backend {', '.join(repr(b) for b in missing)}: set {envs} "
        "and restart the proxy.",
        503,
        code="no_api_key",
    )


__all__ = ["MODEL_HEADER", "serve"]
