"""The signature store around one call: what it holds for the request's tool call ids before the first
attempt, and what the answer's tool calls leave, stored before the client can send them back.

A store that fails costs the signatures, never the call: the backend then treats the history as it treats
history from elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from addons.backends.base import SavedCalls
from addons.stores.base import SignatureStore

log = logging.getLogger(__name__)


def tool_call_ids(request: Mapping[str, Any]) -> list[str]:
    """The ids of the assistant turns' tool calls, each once, in order."""
    ids: dict[str, None] = {}
    messages = request.get("messages")
    for msg in messages if isinstance(messages, list) else []:
        calls = msg.get("tool_calls") if isinstance(msg, dict) and msg.get("role") == "assistant" else None
        for call in calls if isinstance(calls, list) else []:
            call_id = call.get("id") if isinstance(call, dict) else None
            if isinstance(call_id, str) and call_id:
                ids[call_id] = None
    return list(ids)


async def recall(store: SignatureStore, request: Mapping[str, Any]) -> SavedCalls:
    """What the store holds for the request's tool calls; pass it to every attempt of the call."""
    ids = tool_call_ids(request)
    if not ids:
        return SavedCalls()
    try:
        return SavedCalls(known=await store.get_many(ids))
    except Exception as e:  # any store, any failure: the call goes on without
        log.warning("signature store: could not read %d tool call ids: %s", len(ids), e)
        return SavedCalls()


async def keep(store: SignatureStore, saved: SavedCalls) -> None:
    """Stores what the answers added and empties `saved.minted` (the translators keep writing into it)."""
    if not saved.minted:
        return
    batch = dict(saved.minted)
    saved.minted.clear()
    try:
        await store.put_many(batch)
    except Exception as e:
        log.warning("signature store: could not keep %d tool calls: %s", len(batch), e)
