"""Sessions, cooldowns and key rotation shared through Redis, each over a local store of the same kind.

The local store is both the fallback while Redis is away and the view that `all()`, `count()`,
`remaining()` and `active()` answer from without waiting (mitmproxy's synchronous commands need that, and
the failover loop asks `remaining()` for every key of every attempt). Other instances' changes reach the
view through the link's change messages and its periodic refresh.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from addons.stores.base import Session
from addons.stores.memory import MemoryCooldowns, MemorySessions
from addons.stores.redis_link import Down, RedisLink
from translators import json_codec

SESSION_FIELDS = ("model", "backend", "project", "interactive", "greeted", "budget", "loop_guard")

# Expire idle sessions, keep at most `cap`, mark this one used, set the given fields, return its fields.
_TOUCH = """
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl), 'LIMIT', 0, 500)
for _, id in ipairs(old) do redis.call('ZREM', KEYS[1], id); redis.call('DEL', ARGV[5] .. id) end
redis.call('ZADD', KEYS[1], now, ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - cap
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #gone, 2 do redis.call('DEL', ARGV[5] .. gone[i]) end
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], math.max(1, math.floor(ttl * 1000)))
return redis.call('HGETALL', KEYS[2])
"""

# A cooldown "until|reason": the later `until` wins.
_COOL = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(string.match(cur, '^[^|]*')) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""


def _pairs(flat: list[bytes] | dict[bytes, bytes]) -> dict[str, bytes]:
    items = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    return {k.decode(): v for k, v in items}


class RedisSessions:
    """A sorted set of session ids by last use (wall clock, shared by the instances) and a hash of the
    fields of each session that expires after `idle_ttl` idle seconds."""

    def __init__(self, link: RedisLink, idle_ttl: float = 24 * 3600, max_sessions: int = 10_000) -> None:
        self.link = link
        self.local = MemorySessions(idle_ttl, max_sessions)
        self._touch = link.client.register_script(_TOUCH)
        self._dirty: set[str] = set()  # changed while Redis was away: pushed on resync
        self._recent: dict[str, Session] | None = None  # used while a refresh reads Redis
        link.on_resync(self._resync)
        link.on_refresh(self._refresh)

    @property
    def idle_ttl(self) -> float:
        return self.local.idle_ttl

    @idle_ttl.setter
    def idle_ttl(self, value: float) -> None:
        self.local.idle_ttl = value

    async def get(self, session_id: str) -> Session:
        return await self._write(session_id, {}) or await self.local.get(session_id)

    async def update(self, session_id: str, fields: Mapping[str, Any]) -> None:
        if await self._write(session_id, fields) is None:
            await self.local.update(session_id, fields)
            self._dirty.add(session_id)

    async def all(self) -> list[Session]:
        return await self.local.all()

    async def count(self) -> int:
        return await self.local.count()

    async def _write(self, session_id: str, fields: Mapping[str, Any]) -> Session | None:
        """The session as Redis has it after setting `fields`, mirrored locally; None when Redis is away."""
        try:
            stored = await self.link.call(lambda r: self._run_touch(r, session_id, fields))
        except Down:
            return None
        values = {k: json_codec.loads(v) for k, v in _pairs(stored).items() if k in SESSION_FIELDS}
        session = Session(session_id, **values)
        # Touch first (at the cap, every touch makes room), then set the fields without touching again.
        await self.local.get(session_id)
        await self.local.update(session_id, {f: getattr(session, f) for f in SESSION_FIELDS})
        if self._recent is not None:
            self._recent[session_id] = session
        return session

    def _run_touch(self, r: Redis, session_id: str, fields: Mapping[str, Any]) -> Any:
        args: list[Any] = [time.time(), self.idle_ttl, self.local.max_sessions, session_id, self._prefix]
        for name, value in fields.items():
            args += [name, json_codec.dumps(value)]
        return self._touch([self.link.key("sessions"), self._prefix + session_id], args, client=r)

    @property
    def _prefix(self) -> str:
        return self.link.key("session", "")

    async def _resync(self) -> None:
        """Push sessions changed while Redis was away, then mirror what Redis has."""
        for session_id in list(self._dirty):
            s = await self.local.get(session_id)
            fields = {f: getattr(s, f) for f in SESSION_FIELDS}
            await self.link.raw(lambda r, i=session_id, f=fields: self._run_touch(r, i, f))  # type: ignore[misc]
            self._dirty.discard(session_id)
        await self._refresh()

    async def _refresh(self) -> None:
        """Mirror what Redis has; sessions used meanwhile stay the most recent."""
        now, mono = time.time(), time.monotonic()
        self._recent = {}
        try:
            ranked = await self.link.raw(lambda r: self._ranked(r, now))
            fresh = MemorySessions(self.idle_ttl, self.local.max_sessions)
            for session_id, score, stored in ranked:
                values = {k: json_codec.loads(v) for k, v in _pairs(stored).items() if k in SESSION_FIELDS}
                await fresh.update(session_id, {**values, "last_seen": mono - (now - score)})
            for s in self._recent.values():
                await fresh.update(s.id, {f: getattr(s, f) for f in (*SESSION_FIELDS, "last_seen")})
            self.local = fresh
        finally:
            self._recent = None

    async def _ranked(self, r: Redis, now: float) -> list[tuple[str, float, dict[bytes, bytes]]]:
        """The live sessions, least recently used first, with their fields."""
        ids = await r.zrangebyscore(
            self.link.key("sessions"), now - self.idle_ttl, "+inf", withscores=True,
            start=0, num=self.local.max_sessions,
        )  # fmt: skip
        pipe = r.pipeline(transaction=False)
        for raw_id, _ in ids:
            pipe.hgetall(self._prefix + raw_id.decode())
        fields = await pipe.execute()
        return [(raw_id.decode(), score, f) for (raw_id, score), f in zip(ids, fields, strict=True)]


class RedisCooldowns:
    """Two hashes (cooldowns by backend, model and key; retirements by backend and key), "until|reason" by
    wall-clock time, and a counter per key ring: INCR hands each instance the next position."""

    def __init__(self, link: RedisLink, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        self.local = MemoryCooldowns(clock)
        self._turns: dict[str, tuple[int, int]] = {}  # ring -> (counter, ring size) its latest INCR gave
        self._cool = link.client.register_script(_COOL)
        link.on_change("cooldowns", self._reload)
        link.on_resync(self._resync)
        link.on_refresh(self._reload)

    async def cool(self, backend: str, model: str, key: str, seconds: float, reason: str) -> None:
        await self.local.cool(backend, model, key, seconds, reason)
        until = self.local.clock() + max(0.0, seconds)
        field = json_codec.dumps([backend, model, key])
        try:
            await self.link.call(
                lambda r: self._cool([self._by_model], [field, repr(until), reason], client=r)
            )
        except Down:
            return
        await self.link.publish("cooldowns")

    async def retire(self, backend: str, key: str, seconds: float | None, reason: str) -> None:
        await self.local.retire(backend, key, seconds, reason)
        until = math.inf if seconds is None else self.local.clock() + seconds
        field, value = json_codec.dumps([backend, key]), f"{until!r}|{reason}"
        try:
            await self.link.call(lambda r: r.hset(self._retired, field, value))
        except Down:
            return
        await self.link.publish("cooldowns")

    async def remaining(self, backend: str, model: str, key: str) -> float:
        return await self.local.remaining(backend, model, key)

    async def active(self) -> list[Any]:
        return await self.local.active()

    async def next_turn(self, ring: str, size: int) -> int:
        try:
            n = await self.link.call(lambda r: r.incr(self.link.key("turn", ring)))
        except Down:
            return await self.local.next_turn(ring, size)
        await self.local.set_turn(ring, n)
        self._turns[ring] = (n, size)
        return (n - 1) % size

    async def set_turn(self, ring: str, position: int) -> None:
        last = self._turns.pop(ring, None)
        if last is not None and (last[0] - position) % last[1] == 0:
            return  # the usual case: the request starts where next_turn already moved (a round trip saved)
        await self.local.set_turn(ring, position)
        try:
            await self.link.call(lambda r: r.set(self.link.key("turn", ring), position))
        except Down:
            return

    @property
    def _by_model(self) -> str:
        return self.link.key("cooldowns")

    @property
    def _retired(self) -> str:
        return self.link.key("retired")

    async def _reload(self) -> None:
        """Merge Redis's cooldowns into the local view (the longer one wins); drop expired ones."""
        now = self.local.clock()
        for name in (self._by_model, self._retired):
            stored = _pairs(await self.link.raw(lambda r, n=name: r.hgetall(n)))  # type: ignore[misc]
            expired = []
            for field, value in stored.items():
                until_text, _, reason = value.decode().partition("|")
                until, parts = float(until_text), json_codec.loads(field)
                if until <= now:
                    expired.append(field)
                elif name == self._retired:
                    await self.local.retire(
                        parts[0], parts[1], None if until == math.inf else until - now, reason
                    )
                else:
                    await self.local.cool(parts[0], parts[1], parts[2], until - now, reason)
            if expired:
                await self.link.raw(lambda r, n=name, e=expired: r.hdel(n, *e))  # type: ignore[misc]

    async def _resync(self) -> None:
        """Push the local cooldowns (some may date from the outage), then merge Redis's."""
        now = self.local.clock()
        for cd in await self.local.active():
            if cd.model == "*":
                value = f"{now + cd.left!r}|{cd.reason}"
                field = json_codec.dumps([cd.backend, cd.key])
                await self.link.raw(lambda r, f=field, v=value: r.hset(self._retired, f, v))  # type: ignore[misc]
            else:
                args = [json_codec.dumps([cd.backend, cd.model, cd.key]), repr(now + cd.left), cd.reason]
                await self.link.raw(lambda r, a=args: self._cool([self._by_model], a, client=r))  # type: ignore[misc]
        await self._reload()
