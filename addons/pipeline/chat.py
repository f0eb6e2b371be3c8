"""One chat call: session, commands and redaction, the plan, then failover across the attempts."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping

from addons.backends.registry import key_env
from addons.conversation.prepare import Prepared, prepare
from addons.frontends import openai_chat
from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply
from addons.pipeline import changes, status
from addons.pipeline.core import Core
from addons.pipeline.failover import Failover
from addons.pipeline.record import Recorder
from addons.records import CallRecord
from addons.routing.planner import Plan
from addons.stores.base import valid_session_id
from translators.openai.types import RequestError


async def chat(core: Core, raw: bytes, headers: Mapping[str, str]) -> Reply:
    started = time.monotonic()
    limit = core.settings.max_request_bytes
    if len(raw) > limit:
        return openai_chat.too_large(len(raw), limit)
    try:
        request = openai_chat.parse(raw)
    except RequestError as e:
        return error_reply(str(e), e.status, param=e.param)
    session_id = valid_session_id(headers.get("x-session-id"))
    if session_id is None:
        return error_reply("X-Session-ID must be 1-128 printable characters.", 400, code="invalid_session_id")
    stores = core.stores
    session, runtime = await stores.sessions.get(session_id), await stores.config.get()
    prep = await prepare(
        request, raw, session, runtime, core.catalog, core.key_counts(), core.settings.command_prefix,
        core.redactor, functools.partial(status.banner, core), functools.partial(status.status_text, core),
        commands=core.settings.commands,
    )  # fmt: skip
    await changes.apply(stores, session.id, prep.changes, core.redactor)
    # Whatever the redaction toggle says, flow comments and metadata never carry a key.
    commands = [core.redactor.redact(c) for c in prep.commands]
    record = CallRecord(session=session.id, stream=bool(request.get("stream")), commands=commands)
    recorder = Recorder(stores.history, prep, record, started)
    if prep.reply_text is not None:
        return _proxy_answer(core, prep, record, recorder)
    return await _forward(core, prep, record, recorder)


async def _forward(core: Core, prep: Prepared, record: CallRecord, recorder: Recorder) -> Reply:
    session, runtime = prep.session, prep.runtime
    requested = session.model or prep.request.get("model") or ""
    if not requested:
        return error_reply("Missing required parameter: 'model'.", 400, param="model")
    route = runtime.routes.get(requested)
    if route is not None:
        if not route.elements:
            return error_reply(f"Failover route '{route.name}' has no elements yet.", 400, param="model")
        elements, policy = route.elements, route.policy
        record.route = route.name
    else:
        elements = [core.catalog.split(requested, session.backend or runtime.default_backend)]
        policy = "k"
    plan = await core.router.plan(elements, policy)
    if not plan.attempts:
        return _nothing_usable(core, elements, plan)
    return await Failover(core, prep, record, recorder).run(plan.attempts)


def _proxy_answer(core: Core, prep: Prepared, record: CallRecord, recorder: Recorder) -> Reply:
    # The proxy's own answers are shown in mitmweb and saved with flows: never echo a key.
    text = core.redactor.redact(prep.reply_text or "")
    record.answered_by, record.status = "proxy", 200
    reply, answer = openai_chat.proxy_answer(text, prep.request)
    recorder(200, answer, None, None)
    reply.record = record
    return reply


def _nothing_usable(core: Core, elements: list[tuple[str, str]], plan: Plan) -> Reply:
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


__all__ = ["chat"]
