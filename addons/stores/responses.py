"""What every response store shares: a stored response as encoded JSON, and the walk along its chain.

Stores keep the JSON encoding rather than the caller's objects: it is what SQLite writes anyway, its
length is what a memory bound counts, and decoding hands every reader a fresh copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

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


class Unwritten[Op: PendingOp]:
    """Puts and deletes handed to a writer thread but not yet written, by response id, so that a read
    right after sees them (a put and a delete of one id exclude each other). The writer settles each op on
    its own thread once written: hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._puts: dict[str, Op] = {}
        self._deletes: dict[str, Op] = {}

    def submit[R](self, op: Op, send: Callable[[Op], R]) -> R:
        """`send(op)` to the writer and, unless it refused (None or False), track `op` until settled.
        Under the lock: the writer may finish the op before this returns, and settles it only after."""
        with self._lock:
            sent = send(op)
            if sent is None or sent is False:
                return sent
            mine, other = (self._puts, self._deletes) if op.enc is not None else (self._deletes, self._puts)
            other.pop(op.id, None)
            mine[op.id] = op
            return sent

    def settle(self, op: Op) -> None:
        """The writer is done with `op`: reads go to the store from now on, unless a later op waits."""
        with self._lock:
            waiting = self._puts if op.enc is not None else self._deletes
            if waiting.get(op.id) is op:
                del waiting[op.id]

    def find(self, response_id: str) -> tuple[bool, EncodedResponse | None]:
        """(True, what a read returns) when a put or delete of the id is waiting; (False, None) if not."""
        with self._lock:
            if response_id in self._deletes:
                return True, None
            put = self._puts.get(response_id)
            return (True, put.enc) if put else (False, None)


class PendingOp(Protocol):
    id: str
    enc: EncodedResponse | None  # None: a delete


class HistoryWritten:
    """What the response stores written by their history sink's writer thread (SQLite, PostgreSQL)
    share: their ops go through that writer, and reads see them until written."""

    history: Any  # the history sink: owns the writer (`submit`) and its flushing
    _unwritten: Unwritten[Any]

    async def flush(self) -> None:
        await self.history.flush()

    async def aclose(self) -> None:
        """The history sink owns the writer and closes it; what is queued gets written."""
        await self.flush()

    def _submit(self, op: PendingOp) -> Any:
        return self._unwritten.submit(op, self.history.submit)

    def settle(self, op: PendingOp) -> None:
        self._unwritten.settle(op)
