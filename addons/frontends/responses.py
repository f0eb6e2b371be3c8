"""The OpenAI Responses dialect: `POST /v1/responses` (what Codex speaks), and the kept responses behind
`GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`. Requests become internal
chat requests and answers become `response` objects, by the pure translators in translators/responses;
this module adds the response store and the sealing key."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from addons.frontends.base import Inbound, Rendering, Reply, render_answer
from addons.frontends.openai_chat import error_reply
from addons.security.redaction import Redactor
from addons.stores.base import DEFAULT_SESSION, ResponseStore, StoredResponse, valid_session_id
from translators import json_codec
from translators.openai.types import RequestError
from translators.responses import (
    ResponsesRequest,
    ResponsesStream,
    Sealer,
    from_openai,
    output_as_chat,
    parse,
    to_chat,
    to_response,
)

log = logging.getLogger(__name__)

RESPONSES_PATHS = frozenset({"/v1/responses", "/responses"})
ITEM_PREFIXES = ("/v1/responses/", "/responses/")
MAX_ITEMS_PAGE = 100


@dataclass(slots=True)
class Turn:
    """One Responses call as the front-end renders and keeps it."""

    request: ResponsesRequest
    response_id: str
    created_at: int
    session: str


class ResponsesFrontend:
    name = "responses"

    def __init__(self, store: ResponseStore, sealer: Sealer, redactor: Redactor) -> None:
        self.store = store
        self.sealer = sealer
        self.redactor = redactor

    def session_id(self, headers: Mapping[str, str]) -> str | None:
        # Codex sends its own session id on every request of a conversation (as `session_id` in its
        # source; `session-id` seen on the wire through some transports).
        return headers.get("x-session-id") or headers.get("session-id") or headers.get("session_id")

    async def parse(self, raw: bytes, headers: Mapping[str, str]) -> Inbound:
        body = parse(raw)
        previous = body.get("previous_response_id")
        history = None
        if previous:
            history = await self.store.conversation(previous)
            if history is None:
                raise RequestError(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    status=404,
                )
        request = to_chat(body, history, self._unseal)
        if request.ignored:
            log.debug("Responses request: ignored %s", ", ".join(request.ignored))
        notes = [f"tools left out (the backend cannot run them): {', '.join(request.dropped_tools)}"]
        if request.dropped_tools:
            log.info("Responses request: %s", notes[0])
        session = valid_session_id(self.session_id(headers)) or DEFAULT_SESSION
        turn = Turn(request, "resp_" + uuid.uuid4().hex, int(time.time()), session)
        return Inbound(
            request.chat, request.model, request.stream, turn, notes if request.dropped_tools else []
        )

    def error(self, reply: Reply) -> Reply:
        reply.status, reply.body = from_openai(reply.status, reply.body)
        return reply

    async def answer(self, reply: Reply, inbound: Inbound) -> Reply:
        turn: Turn = inbound.state

        async def keep(response: dict[str, Any]) -> None:
            await self._keep(turn, response)

        return await render_answer(reply, Rendering(
            lambda: self._renderer(turn),
            lambda completion: to_response(completion, turn.request, turn.response_id, turn.created_at,
                                           self.sealer.seal),
            final=lambda renderer, _: renderer.response,  # type: ignore[attr-defined]
            keep=keep,
        ))  # fmt: skip

    # -- the kept responses ------------------------------------------------------------------------

    async def retrieve(self, response_id: str) -> Reply:
        item = await self.store.get(response_id)
        if item is None:
            return _not_found(response_id)
        return Reply(200, json_codec.dumps(item.response))

    async def delete(self, response_id: str) -> Reply:
        if not await self.store.delete(response_id):
            return _not_found(response_id)
        return Reply(
            200, json_codec.dumps({"id": response_id, "object": "response.deleted", "deleted": True})
        )

    async def input_items(self, response_id: str, query: Mapping[str, list[str]]) -> Reply:
        item = await self.store.get(response_id)
        if item is None:
            return _not_found(response_id)
        page = _page(item.input_items, query)
        return page if isinstance(page, Reply) else Reply(200, json_codec.dumps(page))

    def _renderer(self, turn: Turn) -> ResponsesStream:
        # Always sealed: what the backend needs back (a thought signature) must survive both a stateless
        # round trip (`store: false`) and the kept conversation.
        return ResponsesStream(turn.request, turn.response_id, turn.created_at, self.sealer.seal)

    def _unseal(self, token: str) -> dict[str, Any]:
        return self.sealer.open(token, "encrypted_content")

    async def _keep(self, turn: Turn, response: dict[str, Any]) -> None:
        if turn.request.body.get("store") is False:
            return
        messages = turn.request.input_messages + output_as_chat(
            response["output"], turn.request, self._unseal
        )
        # Kept items are shown again and saved to disk: no key in them, whatever redaction is set to.
        redact = self.redactor.redact_json
        previous = turn.request.body.get("previous_response_id")
        await self.store.put(StoredResponse(
            id=turn.response_id, session=turn.session, previous_id=previous, response=redact(response),
            input_items=redact(turn.request.input_items), messages=redact(messages),
        ))  # fmt: skip


def _page(items: list[dict[str, Any]], query: Mapping[str, list[str]]) -> dict[str, Any] | Reply:
    """OpenAI's list page: `order` (desc by default), `limit` (1-100, default 20), `after` an item id."""
    order = (query.get("order") or ["desc"])[0]
    raw_limit = (query.get("limit") or ["20"])[0]
    if order not in ("asc", "desc") or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_ITEMS_PAGE:
        return error_reply("order must be asc or desc, and limit an integer from 1 to 100.", 400)
    ordered = items if order == "asc" else items[::-1]
    after = (query.get("after") or [None])[0]
    if after is not None:
        ids = [i.get("id") for i in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    data = ordered[: int(raw_limit)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(ordered) > len(data),
    }


def _not_found(response_id: str) -> Reply:
    return error_reply(f"Response with id '{response_id}' not found.", 404, param="response_id")
