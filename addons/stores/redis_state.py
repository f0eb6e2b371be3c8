"""Sessions, cooldowns and key rotation shared through Redis, each over a local store of the same kind.

The local store is both the fallback while Redis is away and the view the request path answers from
without waiting: `all()`, `count()`, `remaining()` and `active()` always (mitmproxy's synchronous commands
need that, and the failover loop asks `remaining()` for every key of every attempt), and `get()` for every
session the view holds. Other instances' changes reach the view through the link's change messages
(a session's carries its fields) and its periodic refresh. What the request path would otherwise write
on every call goes to Redis in the background: sessions' last use in batches, key rotation positions
claimed in blocks (redis_rotation.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from addons.stores.base import Session
from addons.stores.memory import MemoryCooldowns, MemorySessions
from addons.stores.redis_link import Change, Down, RedisLink
from addons.stores.redis_rotation import RedisRotation
from translators import json_codec

SESSION_FIELDS = ("model", "backend", "project", "interactive", "greeted", "budget", "loop_guard")
SESSION = "session"  # the kind of a session's change message
BATCH = 500  # last uses per flush script: one script holds Redis for a bounded time

# Drop idle sessions and those beyond the cap (the least recently used), with their fields.
_KEEP = """
local function keep(zset, prefix, now, ttl, cap)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. (now - ttl), 'LIMIT', 0, 500)
  for _, id in ipairs(old) do redis.call('ZREM', zset, id); redis.call('DEL', prefix .. id) end
  local over = redis.call('ZCARD', zset) - cap
  if over > 0 then
    local gone = redis.call('ZPOPMIN', zset, over)
    for i = 1, #gone, 2 do redis.call('DEL', prefix .. gone[i]) end
  end
end
"""

# One session: mark it used now, set the given fields, publish them all (when a sender is given), return
# its fields and the receivers PUBLISH counted. In one script, so messages leave in the order of the writes.
_SET = (
    _KEEP
    + """
local now, ttl, cap, id, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
redis.call('ZADD', KEYS[1], now, id)
keep(KEYS[1], prefix, now, ttl, cap)
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], math.max(1, math.floor(ttl * 1000)))
local flat = redis.call('HGETALL', KEYS[2])
local receivers = 0
if ARGV[6] ~= '' then
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  local message = {kind = 'session', from = ARGV[6], subject = id, fields = fields}
  if ARGV[7] ~= '' then message.ack = ARGV[7] end
  receivers = redis.call('PUBLISH', KEYS[3], cjson.encode(message))
end
return {flat, receivers}
"""
)

# Last uses (id, wall-clock time) recorded by an instance: the later use wins, the fields live `ttl` on.
_USED = (
    _KEEP
    + """
local now, ttl, cap, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local ms = math.max(1, math.floor(ttl * 1000))
for i = 5, #ARGV, 2 do
  local id, at = ARGV[i], tonumber(ARGV[i + 1])
  local seen = redis.call('ZSCORE', KEYS[1], id)
  if not seen or tonumber(seen) < at then redis.call('ZADD', KEYS[1], at, id) end
  redis.call('PEXPIRE', prefix .. id, ms)
end
keep(KEYS[1], prefix, now, ttl, cap)
return 0
"""
)

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


def _session(session_id: str, stored: Mapping[str, bytes | str]) -> Session:
    """The session as Redis has it (each field JSON-encoded; those never set keep their defaults)."""
    values = {k: json_codec.loads(v) for k, v in stored.items() if k in SESSION_FIELDS}
    return Session(session_id, **values)


class _View(MemorySessions):
    """The local view of the shared sessions: it also tells whether it holds a live session, and hands it
    out without marking it used."""

    def holds(self, session_id: str) -> bool:
        s = self._sessions.get(session_id)
        return s is not None and time.monotonic() - s.last_seen <= self.idle_ttl

    def peek(self, session_id: str) -> Session | None:
        s = self._sessions.get(session_id)
        return None if s is None else dataclasses.replace(s)


class RedisSessions:
    """A sorted set of session ids by last use (wall clock, shared by the instances) and a hash of the
    fields of each session that expires after `idle_ttl` idle seconds.

    `get()` answers from the local view when it holds the session (a session it does not hold is read
    once), and records the use; the uses reach Redis every FLUSH_EVERY seconds, in batches, so that a
    session in use through any instance stays alive on all. `update()` writes through to Redis and
    publishes the session's fields; it returns once every other instance has applied them (or after
    ACK_TIMEOUT), so the session's next request is served with them wherever it goes."""

    def __init__(self, link: RedisLink, idle_ttl: float = 24 * 3600, max_sessions: int = 10_000) -> None:
        self.link = link
        self.local = _View(idle_ttl, max_sessions)
        self._ids, self._prefix = link.key("sessions"), link.key("session", "")  # the set; each one's hash
        self._set = link.client.register_script(_SET)
        self._used_script = link.client.register_script(_USED)
        self._used: dict[str, float] = {}  # session id -> last use (wall clock) Redis has not seen yet
        self._dirty: set[str] = set()  # changed while Redis was away: pushed on resync
        self._recent: dict[str, Session] | None = None  # written while a refresh reads Redis
        link.on_change(SESSION, self._apply)
        link.on_resync(self._resync)
        link.on_flush(self._flush)
        link.on_refresh(self._refresh)

    @property
    def idle_ttl(self) -> float:
        return self.local.idle_ttl

    @idle_ttl.setter
    def idle_ttl(self, value: float) -> None:
        self.local.idle_ttl = value

    async def get(self, session_id: str) -> Session:
        self.link.start()
        self._mark_used(session_id)
        if self.link.degraded or self.local.holds(session_id):
            return await self.local.get(session_id)
        return await self._write(session_id, {}) or await self.local.get(session_id)

    async def update(self, session_id: str, fields: Mapping[str, Any]) -> None:
        if await self._write(session_id, fields, announce=True) is None:
            await self.local.update(session_id, fields)
            self._dirty.add(session_id)

    async def all(self) -> list[Session]:
        return await self.local.all()

    async def count(self) -> int:
        return await self.local.count()

    def _mark_used(self, session_id: str) -> None:
        self._used.pop(session_id, None)  # re-inserted: the dict stays in order of use
        self._used[session_id] = time.time()
        if len(self._used) > self.local.max_sessions:  # beyond the cap the oldest are evicted anyway
            del self._used[next(iter(self._used))]

    async def _write(
        self, session_id: str, fields: Mapping[str, Any], announce: bool = False
    ) -> Session | None:
        """The session as Redis has it after setting `fields`, mirrored locally; None when Redis is away.
        `announce`: publish it, and wait for the other instances to apply it."""
        token = self.link.ack_token() if announce else None
        try:
            stored, receivers = await self.link.call(
                lambda r: self._run_set(r, session_id, fields, announce, token or "")
            )
        except Down:
            stored, receivers = None, 0
        if token is not None:
            await self.link.acknowledged(token, receivers)
        if stored is None:
            return None
        session = _session(session_id, _pairs(stored))
        await self._mirror(session)
        if self._recent is not None:
            self._recent[session_id] = session
        return session

    async def _mirror(self, session: Session) -> None:
        # Touch first (at the cap, every touch makes room), then set the fields without touching again.
        await self.local.get(session.id)
        await self.local.update(session.id, {f: getattr(session, f) for f in SESSION_FIELDS})

    def _run_set(
        self, r: Redis, session_id: str, fields: Mapping[str, Any], announce: bool, ack: str = ""
    ) -> Any:
        args: list[Any] = [time.time(), self.idle_ttl, self.local.max_sessions, session_id, self._prefix]
        args += [self.link.instance if announce else "", ack]
        for name, value in fields.items():
            args += [name, json_codec.dumps(value)]
        keys = [self._ids, self._prefix + session_id, self.link.channel]
        return self._set(keys, args, client=r)

    async def _apply(self, change: Change) -> None:
        """Another instance changed a session: its message carries every field."""
        if change.subject is not None:
            await self._mirror(_session(change.subject, change.fields))

    async def _flush(self) -> None:
        """Push sessions changed while Redis was away, then the last uses recorded since the last flush."""
        for session_id in list(self._dirty):
            s = await self.local.get(session_id)
            fields = {f: getattr(s, f) for f in SESSION_FIELDS}
            await self.link.raw(lambda r, i=session_id, f=fields: self._run_set(r, i, f, True))  # type: ignore[misc]
            self._dirty.discard(session_id)
        while self._used:
            batch = {i: self._used.pop(i) for i in list(itertools.islice(self._used, BATCH))}
            args: list[Any] = [time.time(), self.idle_ttl, self.local.max_sessions, self._prefix]
            for session_id, at in batch.items():
                args += [session_id, repr(at)]
            try:
                await self.link.raw(lambda r, a=args: self._used_script([self._ids], a, client=r))  # type: ignore[misc]
            except BaseException:
                self._used = batch | self._used  # uses recorded meanwhile are the later ones
                raise

    async def _resync(self) -> None:
        """Push what changed here while Redis was away, then mirror what Redis has."""
        await self._flush()
        await self._refresh()

    async def _refresh(self) -> None:
        """Mirror what Redis has. Sessions written meanwhile, and those used since the last flush but not
        in Redis (a write that timed out; the flush adds them), keep what this instance has."""
        now, mono = time.time(), time.monotonic()
        self._recent = {}
        try:
            ranked = await self.link.raw(lambda r: self._ranked(r, now))
            # Uses not flushed yet are later than Redis's: the view orders by the later of the two.
            ranked = sorted(
                ((i, max(at, self._used.get(i, at)), f) for i, at, f in ranked), key=lambda e: e[1]
            )
            fresh = _View(self.idle_ttl, self.local.max_sessions)
            for session_id, at, stored in ranked:
                s = _session(session_id, _pairs(stored))
                await fresh.update(
                    session_id, {f: getattr(s, f) for f in SESSION_FIELDS} | {"last_seen": mono - (now - at)}
                )
            shared = {i for i, _, _ in ranked}
            unshared = (self.local.peek(i) for i in self._used if i not in shared)
            for s in (*(s for s in unshared if s is not None), *self._recent.values()):
                await fresh.update(s.id, {f: getattr(s, f) for f in (*SESSION_FIELDS, "last_seen")})
            self.local = fresh
        finally:
            self._recent = None

    async def _ranked(self, r: Redis, now: float) -> list[tuple[str, float, dict[bytes, bytes]]]:
        """The live sessions, least recently used first, with their fields."""
        ids = await r.zrangebyscore(
            self._ids, now - self.idle_ttl, "+inf", withscores=True, start=0, num=self.local.max_sessions,
        )  # fmt: skip
        pipe = r.pipeline(transaction=False)
        for raw_id, _ in ids:
            pipe.hgetall(self._prefix + raw_id.decode())
        fields = await pipe.execute()
        return [(raw_id.decode(), score, f) for (raw_id, score), f in zip(ids, fields, strict=True)]


class RedisCooldowns:
    """Two hashes (cooldowns by backend, model and key; retirements by backend and key), "until|reason" by
    wall-clock time; key rotation in blocks of positions claimed from a counter per ring (redis_rotation)."""

    def __init__(self, link: RedisLink, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        self.local = MemoryCooldowns(clock)
        self._by_model, self._retired = link.key("cooldowns"), link.key("retired")
        self.rotation = RedisRotation(link, self.local)
        self._cool = link.client.register_script(_COOL)
        link.on_change("cooldowns", lambda _: self._reload())
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
        return await self.rotation.next_turn(ring, size)

    async def set_turn(self, ring: str, position: int) -> None:
        await self.rotation.set_turn(ring, position)

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
