"""OpenAI's legacy completions (`/v1/completions`) on the chat pipeline: the prompt is one user message
(commands in it run as in chat), the answer a `text_completion`. Errors are OpenAI's already."""

from __future__ import annotations

from collections.abc import Mapping

from addons.frontends.base import Inbound, Rendering, Reply, render_answer
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
        return await render_answer(
            reply,
            Rendering(lambda: CompletionsStream(model, include_usage), lambda c: text_completion(c, model)),
        )


FRONTEND = LegacyCompletions()
