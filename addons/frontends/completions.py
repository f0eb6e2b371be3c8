"""OpenAI's legacy completions (`/v1/completions`) on the chat pipeline: the prompt is one user message
(commands in it run as in chat), the answer a `text_completion`. Errors are OpenAI's already."""

from __future__ import annotations

from collections.abc import Mapping

from addons.frontends.base import (
    SSE,
    Inbound,
    Reply,
    StreamTranscript,
    is_event_stream,
    loads_or_none,
    render_whole,
    rendered,
)
from translators import json_codec
from translators.openai.completions import CompletionsStream, parse, text_completion

COMPLETIONS_PATHS = frozenset({"/v1/completions", "/completions"})


class LegacyCompletions:
    name = "openai_completions"

    def session_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-session-id")

    async def parse(self, raw: bytes, headers: Mapping[str, str]) -> Inbound:
        request = parse(raw)
        return Inbound(request.chat, request.model, request.stream, request)

    def error(self, reply: Reply) -> Reply:
        return reply

    async def answer(self, reply: Reply, inbound: Inbound) -> Reply:
        model, include_usage = inbound.model, inbound.state.include_usage
        if reply.stream is not None:
            transcript = reply.transcript or StreamTranscript()

            async def done() -> None:  # mitmweb shows the whole text_completion
                if transcript.completion is not None:
                    transcript.shown = text_completion(transcript.completion, model)

            reply.stream = rendered(reply.stream, CompletionsStream(model, include_usage), done)
            return reply
        if is_event_stream(reply):  # the proxy's own answer to a streaming request
            reply.body = render_whole(reply.body, CompletionsStream(model, include_usage))
            reply.headers.update(SSE)
            return reply
        reply.body = json_codec.dumps(text_completion(loads_or_none(reply.body) or {}, model))
        return reply


FRONTEND = LegacyCompletions()
