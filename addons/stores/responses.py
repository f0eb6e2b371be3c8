"""What every response store shares: a stored response as encoded JSON, and the walk along its chain.

Stores keep the JSON encoding rather than the caller's objects: it is what SQLite writes anyway, its
length is what a memory bound counts, and decoding hands every reader a fresh copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.stores.base import StoredResponse
from translators import json_codec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    id: str
    session: str
    previous_id: str | None
    created_at: float
    response: bytes
    input_items: bytes
    messages: bytes

    @property
    def size(self) -> int:
        return len(self.response) + len(self.input_items) + len(self.messages)

    def decode(self) -> StoredResponse:
        return StoredResponse(
            id=self.id,
            session=self.session,
            previous_id=self.previous_id,
            response=json_codec.loads(self.response),
            input_items=json_codec.loads(self.input_items),
            messages=json_codec.loads(self.messages),
            created_at=self.created_at,
        )


def encode(item: StoredResponse) -> EncodedResponse | None:
    """None, with a warning, for what is not JSON (lone surrogates a client sent, nesting too deep)."""
    try:
        return EncodedResponse(
            id=item.id,
            session=item.session,
            previous_id=item.previous_id,
            created_at=item.created_at,
            response=json_codec.dumps(item.response),
            input_items=json_codec.dumps(item.input_items),
            messages=json_codec.dumps(item.messages),
        )
    except (TypeError, ValueError, RecursionError) as e:
        log.warning("responses: %s not stored: %s", item.id, e)
        return None


# A link of a chain: (previous_id, the link's messages as JSON), or None when the store lacks it.
Link = tuple[str | None, bytes | str]


def walk(lookup: Callable[[str], Link | None], response_id: str, limit: int) -> list[dict[str, Any]] | None:
    """ResponseStore.conversation over `lookup`: follows previous_id back, then concatenates oldest first."""
    first = lookup(response_id)
    if first is None:
        return None
    turns = [first[1]]
    seen = {response_id}
    previous = first[0]
    while previous is not None:
        if len(turns) >= limit or previous in seen:  # seen: a cycle only a corrupt store could hold
            log.warning("responses: chain of %s cut after %d responses", response_id, len(turns))
            break
        link = lookup(previous)
        if link is None:
            log.warning("responses: the chain of %s breaks at %s, no longer stored", response_id, previous)
            break
        seen.add(previous)
        turns.append(link[1])
        previous = link[0]
    return [m for turn in reversed(turns) for m in json_codec.loads(turn)]
