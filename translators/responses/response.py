"""A whole internal answer -> the Responses `response` object, and a response's output -> chat messages.

The object is the one the stream renderer ends with (stream.py), so a buffered answer and a streamed one
never differ.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from translators.responses.ids import IdFactory, random_id
from translators.responses.items import Unseal, items_as_chat
from translators.responses.output import Seal
from translators.responses.request import ResponsesRequest
from translators.responses.stream import ResponsesStream, rendered


def to_response(
    completion: dict[str, Any],
    req: ResponsesRequest,
    response_id: str,
    created_at: int,
    seal: Seal | None,
    custom_tools: Collection[str] | None = None,
    *,
    ids: IdFactory = random_id,
) -> dict[str, Any]:
    """`completion` is an internal chat.completion (an `error` key makes it a failed response)."""
    stream = ResponsesStream(req, response_id, created_at, seal, custom_tools, ids=ids)
    rendered(completion, stream)
    assert stream.response is not None  # rendering a whole answer always reaches a terminal event
    return stream.response


def output_as_chat(
    output: list[dict[str, Any]], req: ResponsesRequest, unseal: Unseal | None = None
) -> list[dict[str, Any]]:
    """The assistant chat message(s) a response's output amounts to, for the conversation store.

    Tool names map back through `req`'s tools; a reasoning signature survives only if the output carries
    it sealed and `unseal` is given (signatures on tool calls ride in the call ids either way).
    """
    messages, _ = items_as_chat(output, req.names, unseal or _no_unseal, where="output")
    return messages


def _no_unseal(_token: str) -> None:
    return None
