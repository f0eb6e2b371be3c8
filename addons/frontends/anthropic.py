"""The Anthropic Messages dialect: `/v1/messages`, `/v1/messages/count_tokens`, and the Anthropic shape of
`/v1/models`. Requests become internal chat requests and answers become Messages, by the pure
translators in translators/anthropic; this module adds only what touches a `Reply`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from addons.frontends.base import JSON, Inbound, Rendering, Reply, loads_or_none, render_answer
from translators import json_codec
from translators.anthropic import MessagesStream, from_openai, model_list, parse, to_message

log = logging.getLogger(__name__)

MESSAGES_PATHS = frozenset({"/v1/messages", "/messages"})
COUNT_PATHS = frozenset({"/v1/messages/count_tokens", "/messages/count_tokens"})
# Headers of an error reply worth keeping when it is reshaped (the body and its type change).
KEPT = ("retry-after", "x-should-retry", "x-llm-intercept-model")


def wants_anthropic(headers: Mapping[str, str]) -> bool:
    """Anthropic's SDKs and Claude Code send this on every request; OpenAI's never do."""
    return "anthropic-version" in headers


def models_reply(listing: list[tuple[str, str]]) -> Reply:
    return Reply(200, json_codec.dumps(model_list([model_id for model_id, _ in listing])))


class AnthropicMessages:
    name = "anthropic"

    def session_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-session-id") or headers.get("x-claude-code-session-id")

    async def parse(self, raw: bytes, headers: Mapping[str, str]) -> Inbound:
        request = parse(raw)
        if request.ignored:
            # Claude Code adds top-level fields every release; none of them is worth a 400.
            log.debug("Messages request: ignored %s", ", ".join(request.ignored))
        return Inbound(request.chat, request.model, request.stream, request)

    def error(self, reply: Reply) -> Reply:
        status, body = from_openai(reply.status, loads_or_none(reply.body))
        headers = dict(JSON) | {k: v for k, v in reply.headers.items() if k.lower() in KEPT}
        return Reply(status, body, headers, upstream=reply.upstream, record=reply.record)

    async def answer(self, reply: Reply, inbound: Inbound) -> Reply:
        model, stops = inbound.model, inbound.state.stop_sequences
        return await render_answer(reply, Rendering(
            lambda: MessagesStream(model, stops), lambda completion: to_message(completion, model, stops)
        ))  # fmt: skip


FRONTEND = AnthropicMessages()
