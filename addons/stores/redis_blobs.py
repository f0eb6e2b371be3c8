"""Thought signatures and kept Responses answers in Redis, with expiry, for every instance to read.

Each put also goes to a local memory store: it answers while Redis is away, and for what was put here
during an outage (those entries are not pushed to Redis later: the other instances treat them as the
misses the interfaces already allow).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from redis.asyncio import Redis

from addons.stores.base import SIGNATURE_TTL, StoredResponse
from addons.stores.redis_link import Down, RedisLink
from addons.stores.responses import EncodedResponse, Link, encode, walk
from addons.stores.responses_memory import MemoryResponses
from addons.stores.signatures_memory import MemorySignatures
from translators import json_codec

RESPONSE_TTL = 30 * 86400  # seconds a kept response lives in Redis (the history database keeps them longer)


class RedisSignatures:
    """One string key per tool call id, expiring after `ttl` seconds."""

    def __init__(self, link: RedisLink, ttl: float = SIGNATURE_TTL) -> None:
        self.link = link
        self.ttl = ttl
        self.local = MemorySignatures(ttl=ttl)

    async def put_many(self, items: Mapping[str, str]) -> None:
        await self.local.put_many(items)
        if not items:
            return
        ms = max(1, int(self.ttl * 1000))

        async def send(r: Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for call_id, value in items.items():
                pipe.set(self.link.key("sig", call_id), value, px=ms)
            await pipe.execute()

        try:
            await self.link.call(send)
        except Down:
            return

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        found = await self.local.get_many(ids)
        wanted = [i for i in ids if i not in found]
        if not wanted:
            return found
        try:
            values = await self.link.call(lambda r: r.mget([self.link.key("sig", i) for i in wanted]))
        except Down:
            return found
        return found | {i: v.decode() for i, v in zip(wanted, values, strict=True) if v is not None}

    async def flush(self) -> None:
        """Nothing to wait for: a put has reached Redis when it returns."""


class RedisResponses:
    """A hash per response (its encoded parts), expiring after RESPONSE_TTL seconds."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.local = MemoryResponses()

    async def put(self, item: StoredResponse) -> None:
        await self.local.put(item)
        enc = encode(item)
        if enc is None:
            return
        fields = {
            "session": enc.session,
            "previous_id": enc.previous_id or "",
            "created_at": repr(enc.created_at),
            "response": enc.response,
            "input_items": enc.input_items,
            "messages": enc.messages,
        }

        async def send(r: Redis) -> None:
            await (
                r.pipeline(transaction=True)
                .hset(self._key(item.id), mapping=fields)
                .expire(self._key(item.id), RESPONSE_TTL)
                .execute()
            )

        try:
            await self.link.call(send)
        except Down:
            return

    async def get(self, response_id: str) -> StoredResponse | None:
        try:
            stored = await self.link.call(lambda r: r.hgetall(self._key(response_id)))
        except Down:
            stored = {}
        if not stored:
            return await self.local.get(response_id)
        f = {k.decode(): v for k, v in stored.items()}
        return EncodedResponse(
            id=response_id,
            session=f["session"].decode(),
            previous_id=f["previous_id"].decode() or None,
            created_at=float(f["created_at"]),
            response=f["response"],
            input_items=f["input_items"],
            messages=f["messages"],
        ).decode()

    async def delete(self, response_id: str) -> bool:
        here = await self.local.delete(response_id)
        try:
            gone = await self.link.call(lambda r: r.delete(self._key(response_id)))
        except Down:
            gone = 0
        return here or gone > 0

    async def conversation(self, response_id: str, limit: int = 1000) -> list[dict[str, Any]] | None:
        """The chain's links are fetched first (one round trip each), then walked as every store does."""
        links: dict[str, Link] = {}
        current: str | None = response_id
        while current is not None and current not in links and len(links) <= limit:
            link = await self._link(current)
            if link is None:
                break
            links[current] = link
            current = link[0]
        return walk(links.get, response_id, limit)

    async def flush(self) -> None:
        """Nothing to wait for: a put has reached Redis when it returns."""

    async def aclose(self) -> None:
        """The connection pool is the link's, closed with it."""

    async def _link(self, response_id: str) -> Link | None:
        try:
            previous, messages = await self.link.call(
                lambda r: r.hmget(self._key(response_id), ["previous_id", "messages"])
            )
        except Down:
            previous = messages = None
        if messages is None:
            item = await self.local.get(response_id)
            return None if item is None else (item.previous_id, json_codec.dumps(item.messages))
        return previous.decode() or None, messages

    def _key(self, response_id: str) -> str:
        return self.link.key("response", response_id)
