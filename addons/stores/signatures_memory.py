"""Signatures kept in process memory (history off): bounded by count and size, expiring, lost on restart."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping

from addons.stores.base import SIGNATURE_TTL

log = logging.getLogger(__name__)


class MemorySignatures:
    """Oldest put first out: once there are more than `max_items` entries or their ids and values exceed
    `max_chars`, and when an entry is older than `ttl` seconds. A put of a known id renews it."""

    def __init__(
        self,
        max_items: int = 100_000,
        max_chars: int = 64 * 1024 * 1024,
        ttl: float = SIGNATURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_items = max_items
        self.max_chars = max_chars
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()  # id -> (put at, value)
        self._chars = 0

    async def put_many(self, items: Mapping[str, str]) -> None:
        now = self._clock()
        for call_id, value in items.items():
            self._drop(call_id)
            size = len(call_id) + len(value)
            if size > self.max_chars:  # it would push out every other entry, then itself
                log.warning("signatures: one of %d characters exceeds the limit; not kept", size)
                continue
            self._items[call_id] = (now, value)
            self._chars += size
        self._expire(now)
        while len(self._items) > self.max_items or self._chars > self.max_chars:
            self._drop(next(iter(self._items)))

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        self._expire(self._clock())
        return {i: self._items[i][1] for i in ids if i in self._items}

    async def flush(self) -> None:
        """Nothing to wait for: memory is where the entries are kept."""

    def _expire(self, now: float) -> None:
        """Puts are in time order, so the expired ones are at the front."""
        while self._items:
            call_id, (put_at, _) = next(iter(self._items.items()))
            if now - put_at < self.ttl:
                return
            self._drop(call_id)

    def _drop(self, call_id: str) -> None:
        entry = self._items.pop(call_id, None)
        if entry is not None:
            self._chars -= len(call_id) + len(entry[1])
