"""The OpenAI chat dialect: `/v1/chat/completions` and `/v1/models`. The internal pivot is this very
shape, so requests pass through after validation and answers need no rendering; what this module adds is
the proxy's own answers and errors in OpenAI's shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from addons.frontends.base import JSON, SSE, Inbound, Reply, is_event_stream
from translators import json_codec
from translators.openai.synthetic import completion, error_json, model_list, stream_completion
from translators.openai.types import parse_chat_request
from translators.openai.unasked import without_usage

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
PROXY_MODEL = "llm-intercept"


class OpenAIChat:
    """The pivot's own dialect: nothing to translate either way."""

    name = "openai_chat"

    def session_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-session-id")

    async def parse(self, raw: bytes, headers: Mapping[str, str]) -> Inbound:
        body = parse_chat_request(raw)
        stream = bool(body.get("stream"))
        options = body.get("stream_options") or {}
        asked = bool(options.get("include_usage"))
        if stream and not asked:  # every stream carries usage inside the proxy: it accounts the call
            body = {**body, "stream_options": {**options, "include_usage": True}}
        return Inbound(body, body.get("model") or "", stream, state=ChatAsked(usage=asked or not stream))

    def error(self, reply: Reply) -> Reply:
        return reply

    async def answer(self, reply: Reply, inbound: Inbound) -> Reply:
        """The reply as it is, but for a stream whose client did not ask for usage: without it."""
        if isinstance(inbound.state, ChatAsked) and not inbound.state.usage:
            if reply.stream is not None:
                reply.stream = _without_usage(reply.stream)
            elif is_event_stream(reply):
                reply.body = without_usage(reply.body)
        return reply


@dataclass(frozen=True, slots=True)
class ChatAsked:
    """What the client asked to see that the pipeline always has."""

    usage: bool  # a stream's usage chunk (`stream_options.include_usage`); a complete answer has it


async def _without_usage(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for data in source:  # keep-alives pass by identity: they hold no usage
        if out := without_usage(data):
            yield out


FRONTEND = OpenAIChat()


def error_reply(message: str, status: int, **kw: Any) -> Reply:
    headers = dict(JSON)
    if status >= 500 or status == 429:
        # The proxy already did what retrying could do; don't let SDKs multiply the load.
        headers["x-should-retry"] = "false"
    return Reply(status, error_json(message, status, **kw), headers)


def unauthorised() -> Reply:
    return error_reply(
        "Missing or wrong proxy access token: send it as 'Authorization: Bearer <token>' or as 'x-api-key'.",
        401,
        code="invalid_proxy_token",
    )


def internal_error() -> Reply:
    """A bug of the proxy's own: the client learns only that, the log has the traceback."""
    return error_reply("Internal proxy error; the proxy log has the details.", 500, code="proxy_error")


def too_large(size: int, limit: int) -> Reply:
    return error_reply(
        f"Request body is {size} bytes; this proxy accepts at most {limit} bytes (LLM_MAX_REQUEST_BYTES).",
        413,
        code="request_too_large",
    )


def proxy_answer(text: str, request: dict[str, Any]) -> tuple[Reply, dict[str, Any]]:
    """The proxy's own answer (command replies, banners) as the client asked for it, and the completion
    it amounts to (for history)."""
    answer = completion(text, PROXY_MODEL)
    if request.get("stream"):
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        body = stream_completion(text, PROXY_MODEL, include_usage=include_usage)
        return Reply(200, body, dict(SSE)), answer
    return Reply(200, json_codec.dumps(answer)), answer


def models_reply(listing: list[tuple[str, str]]) -> Reply:
    return Reply(200, json_codec.dumps(model_list(listing)))


def model_reply(model_id: str, owner: str) -> Reply:
    return Reply(200, json_codec.dumps(model_list([(model_id, owner)])["data"][0]))


def model_not_found(model_id: str) -> Reply:
    return error_reply(f"The model '{model_id}' does not exist.", 404, param="model", code="model_not_found")


def is_completion(result: Any) -> bool:
    return isinstance(result, dict) and isinstance(result.get("choices"), list)


def prepend_text(result: dict[str, Any], prelude: str) -> None:
    """Interactive mode: the proxy's text before the model's answer, in the same message."""
    choices = result.get("choices") or []
    if choices and isinstance(choices[0].get("message"), dict):
        msg = choices[0]["message"]
        msg["content"] = prelude + "\n\n" + (msg.get("content") or "")
