"""Thought signatures and kept Responses answers in Redis, with expiry, for every instance to read.

Each put also goes to a local memory store: it answers while Redis is away. What could not be written
to Redis (or deleted there) meanwhile is remembered, by id and bounded, and pushed from the local store
once Redis answers again, so the other instances find it too.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from addons.stores.base import SIGNATURE_TTL, StoredResponse
from addons.stores.redis_link import Down, RedisLink
from addons.stores.responses import EncodedResponse, Link, encode, walk
from addons.stores.responses_memory import MemoryResponses
from addons.stores.signatures_memory import MemorySignatures
from translators import json_codec

log = logging.getLogger(__name__)
RESPONSE_TTL = 30 * 86400  # seconds a kept response lives in Redis (the history database keeps them longer)
MAX_UNSENT = 10_000  # ids remembered for pushing after an outage; beyond, the oldest stay on this instance


class Unsent:
    """Ids whose put (True) or delete (False) has not reached Redis, oldest first, at most `limit`;
    those pushed out are counted, and said in one log line when the rest is pushed."""

    def __init__(self, what: str, limit: int = MAX_UNSENT) -> None:
        self.what = what
        self.limit = limit
        self.ids: OrderedDict[str, bool] = OrderedDict()
        self.overflow = 0

    def add(self, ids: Iterable[str], put: bool = True) -> None:
        for i in ids:
            self.ids.pop(i, None)
            self.ids[i] = put
        while len(self.ids) > self.limit:
            self.ids.popitem(last=False)
            self.overflow += 1

    def sent(self, ids: Iterable[str], lost: int = 0) -> None:
        """`ids` reached Redis; `lost` more could not be pushed (gone from the local store meanwhile)."""
        for i in ids:
            self.ids.pop(i, None)
        if self.overflow or lost:
            log.warning(
                "redis: %d %s written during the outage stayed on this instance (at most %d are kept for "
                "pushing, and those still in its memory are pushed)",
                self.overflow + lost,
                self.what,
                self.limit,
            )
            self.overflow = 0


class RedisSignatures:
    """One string key per tool call id, expiring after `ttl` seconds."""

    def __init__(self, link: RedisLink, ttl: float = SIGNATURE_TTL, max_unsent: int = MAX_UNSENT) -> None:
        self.link = link
        self.ttl = ttl
        self.local = MemorySignatures(ttl=ttl)
        self.unsent = Unsent("thought signature(s)", max_unsent)
        link.on_flush(self._push)  # after every resync too

    async def put_many(self, items: Mapping[str, str]) -> None:
        await self.local.put_many(items)
        if not items:
            return
        try:
            await self.link.call(lambda r: self._send(r, items))
        except Down:
            self.unsent.add(items)

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
        """Nothing to wait for: a put has reached Redis when it returns (or waits for it in `unsent`)."""

    async def _send(self, r: Redis, items: Mapping[str, str]) -> None:
        ms = max(1, int(self.ttl * 1000))
        pipe = r.pipeline(transaction=False)
        for call_id, value in items.items():
            pipe.set(self.link.key("sig", call_id), value, px=ms)
        await pipe.execute()

    async def _push(self) -> None:
        """What was put while Redis did not answer, from the local store (one it has evicted or expired
        meanwhile is lost to the others)."""
        if not self.unsent.ids and not self.unsent.overflow:
            return
        ids = list(self.unsent.ids)
        items = await self.local.get_many(ids)
        if items:
            await self.link.raw(lambda r: self._send(r, items))
        self.unsent.sent(ids, len(ids) - len(items))


class RedisResponses:
    """A hash per response (its encoded parts), expiring after RESPONSE_TTL seconds."""

    def __init__(self, link: RedisLink, max_unsent: int = MAX_UNSENT) -> None:
        self.link = link
        self.local = MemoryResponses()
        self.unsent = Unsent("kept response(s)", max_unsent)
        link.on_flush(self._push)  # after every resync too

    async def put(self, item: StoredResponse) -> None:
        await self.local.put(item)
        enc = encode(item)
        if enc is None:
            return
        try:
            await self.link.call(lambda r: self._put(r.pipeline(transaction=True), enc).execute())
        except Down:
            self.unsent.add([item.id])

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
            self.unsent.add([response_id], put=False)
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
        """Nothing to wait for: a put has reached Redis when it returns (or waits for it in `unsent`)."""

    async def aclose(self) -> None:
        """The connection pool is the link's, closed with it."""

    def _put(self, pipe: Pipeline, enc: EncodedResponse) -> Pipeline:
        fields = {
            "session": enc.session,
            "previous_id": enc.previous_id or "",
            "created_at": repr(enc.created_at),
            "response": enc.response,
            "input_items": enc.input_items,
            "messages": enc.messages,
        }
        return pipe.hset(self._key(enc.id), mapping=fields).expire(self._key(enc.id), RESPONSE_TTL)

    async def _push(self) -> None:
        """What was put or deleted while Redis did not answer; a put from the local store (one it has
        evicted meanwhile is lost to the others)."""
        if not self.unsent.ids and not self.unsent.overflow:
            return
        pending = list(self.unsent.ids.items())
        pipe, lost = self.link.client.pipeline(transaction=False), 0
        for response_id, put in pending:
            item = await self.local.get(response_id) if put else None
            enc = encode(item) if item is not None else None
            if enc is not None:
                self._put(pipe, enc)
            elif put:
                lost += 1
            else:
                pipe.delete(self._key(response_id))
        await self.link.raw(lambda _: pipe.execute())
        self.unsent.sent([i for i, _ in pending], lost)

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
