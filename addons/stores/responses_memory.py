"""Responses kept in process memory (history off): bounded by count and by JSON size, lost on restart."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from addons.stores.base import StoredResponse
from addons.stores.responses import EncodedResponse, Link, encode, walk

log = logging.getLogger(__name__)


class MemoryResponses:
    """LRU: a put or a read makes a response the newest; the least recently used go first once there are
    more than `max_items` or their JSON exceeds `max_bytes`."""

    def __init__(self, max_items: int = 1000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, EncodedResponse] = OrderedDict()
        self._bytes = 0

    async def put(self, item: StoredResponse) -> None:
        self._drop(item.id)
        enc = encode(item)
        if enc is None:
            return
        if enc.size > self.max_bytes:  # it would push out every other response, then itself
            log.warning("responses: %s not stored: %d bytes of JSON exceed the limit", item.id, enc.size)
            return
        self._items[item.id] = enc
        self._bytes += enc.size
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            _, gone = self._items.popitem(last=False)
            self._bytes -= gone.size

    async def get(self, response_id: str) -> StoredResponse | None:
        enc = self._touch(response_id)
        return None if enc is None else enc.decode()

    async def delete(self, response_id: str) -> bool:
        return self._drop(response_id)

    async def conversation(self, response_id: str, limit: int = 1000) -> list[dict[str, Any]] | None:
        return walk(self._link, response_id, limit)

    async def flush(self) -> None:
        """Nothing to wait for: memory is where the responses are stored."""

    async def aclose(self) -> None:
        """Nothing to release, nothing cleared: an option change may carry this store into the next core."""

    def _touch(self, response_id: str) -> EncodedResponse | None:
        enc = self._items.get(response_id)
        if enc is not None:
            self._items.move_to_end(response_id)
        return enc

    def _link(self, response_id: str) -> Link | None:
        enc = self._touch(response_id)
        return None if enc is None else (enc.previous_id, enc.messages)

    def _drop(self, response_id: str) -> bool:
        enc = self._items.pop(response_id, None)
        if enc is None:
            return False
        self._bytes -= enc.size
        return True
