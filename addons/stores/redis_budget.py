"""Budgets shared through Redis: one hash per ledger (spend sums, the largest call, and `since`, when it
began), one sorted set per scope of the leases of its calls in flight (scored by when each lapses), and
one counter per scope that every settled call moves on.

Admission reads the ledgers, the live leases and the counter in one script, decides in Python (the rule
lives in addons/budgets/rule.py only), then takes a lease in a second script only if the counter has not
moved and the scope still has room: a call that ended meanwhile makes it read again. A ledger expires
at its window's reset (a session's after `idle_ttl` without calls); leases and counters after LEASE_TTL.

While Redis is away the store answers from a local MemoryBudgets, which each read mirrors; the spend of
calls that end meanwhile is pushed when Redis is back. The spend of a call that holds no lease (no budget
applies to it: nobody waits for it) goes the same way, in the link's next flush: one pipeline for many
calls instead of a script per call on the loop that serves requests.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from addons.budgets.ledger import Admission, LedgerKey, Scope, Spend, Spent
from addons.stores.budget_memory import LEASE_TTL, MemoryBudgets, Seed, Slots
from addons.stores.redis_link import Down, RedisLink

log = logging.getLogger(__name__)
MAX_TRIES = 4  # admission reads again when a call ended between its read and its lease
MAX_UNSENT = 10_000  # spends kept for Redis while it is away (or until the next flush)
BATCH = 500  # settles per pipeline

# KEYS: leases, counter, ledgers...; ARGV: now. -> counter, live leases, each ledger's fields.
_READ = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {redis.call('GET', KEYS[2]) or '0', redis.call('ZCARD', KEYS[1])}
for i = 3, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
return out
"""

# KEYS: ledger, counter; ARGV: since, expire-at (ms). -> 1 when this call began the ledger.
_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'since', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""

# KEYS: ledger, counter; ARGV: usd, tokens, unpriced, lease ttl (ms). The history's part of a new ledger.
_SEED = """
redis.call('HINCRBYFLOAT', KEYS[1], 'usd', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'unpriced', ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
"""

# KEYS: leases, counter; ARGV: now, counter as read, slots (-1: no bound), lease, lapses, ttl (ms).
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
local slots = tonumber(ARGV[3])
if slots >= 0 and redis.call('ZCARD', KEYS[1]) >= slots then return 0 end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

# KEYS: n ledgers, then leases and counter of each scope; ARGV: n, ended, usd ('' unknown), tokens
# ('' none), lease ('' none), ttl (ms), then each ledger's expire-at (ms). Mirrors Spent.add; the counters
# move only when a ledger did (a scope without a budget leaves no key behind).
_SETTLE = """
local n, ended, usd, tokens, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local changed = false
local function grow(key, field, value)
  local cur = redis.call('HGET', key, field)
  if not cur or tonumber(value) > tonumber(cur) then redis.call('HSET', key, field, value) end
end
for i = 1, n do
  local since = redis.call('HGET', KEYS[i], 'since')
  if since and tonumber(since) <= ended and (usd ~= '' or tokens ~= '') then
    changed = true
    if usd ~= '' then
      redis.call('HINCRBYFLOAT', KEYS[i], 'usd', usd)
      grow(KEYS[i], 'largest_usd', usd)
    elseif tokens ~= '' then
      redis.call('HINCRBY', KEYS[i], 'unpriced', 1)
    end
    if tokens ~= '' then
      redis.call('HINCRBY', KEYS[i], 'tokens', tokens)
      grow(KEYS[i], 'largest_tokens', tokens)
    end
    redis.call('PEXPIREAT', KEYS[i], ARGV[6 + i])
  end
end
for j = n + 1, #KEYS, 2 do
  if lease ~= '' then redis.call('ZREM', KEYS[j], lease) end
  if changed then
    redis.call('INCR', KEYS[j + 1])
    redis.call('PEXPIRE', KEYS[j + 1], ARGV[6])
  end
end
"""


@dataclass(frozen=True, slots=True)
class _Settled:
    scopes: tuple[Scope, ...]
    keys: tuple[LedgerKey, ...]
    spend: Spend
    ended: float


class RedisBudgets:
    def __init__(self, link: RedisLink, idle_ttl: float, seed: Seed | None = None) -> None:
        self.link = link
        self.idle_ttl = idle_ttl
        self.seed = seed
        self.local = MemoryBudgets(seed)
        self._scripts = {
            name: link.client.register_script(text)
            for name, text in (("read", _READ), ("begin", _BEGIN), ("seed", _SEED), ("take", _TAKE),
                               ("settle", _SETTLE))
        }  # fmt: skip
        self._unsent: deque[_Settled] = deque(maxlen=MAX_UNSENT)
        link.on_resync(self._push)
        link.on_flush(self._push)

    async def admit(self, scope: Scope, keys: Sequence[LedgerKey], slots: Slots, lease: str) -> Admission:
        try:
            for _ in range(MAX_TRIES):
                counter, in_flight, spent = await self._read(scope, keys)
                allowed = slots(spent)
                if allowed is not None and in_flight >= allowed:
                    return Admission(False, spent)
                now = self.local.clock()
                args = [
                    now,
                    counter,
                    -1 if allowed is None else allowed,
                    lease,
                    now + LEASE_TTL,
                    _ms(LEASE_TTL),
                ]
                if await self._run("take", [self._leases(scope), self._counter(scope)], args):
                    return Admission(True, spent)
            return Admission(False, spent)  # calls keep ending under it: wait like a full scope
        except Down:
            return await self.local.admit(scope, keys, slots, lease)

    async def settle(
        self,
        scopes: Sequence[Scope],
        keys: Sequence[LedgerKey],
        spend: Spend,
        ended: float,
        lease: str | None,
    ) -> None:
        await self.local.settle(scopes, keys, spend, ended, lease)
        done = _Settled(tuple(scopes), tuple(keys), spend, ended)
        if lease is None:
            if not spend.nothing:
                self._unsent.append(done)
            return
        try:
            await self.link.call(lambda r: self._settle(r, done, lease))
        except Down:
            if not spend.nothing:
                self._unsent.append(done)

    async def spent(self, keys: Sequence[LedgerKey]) -> list[Spent]:
        if not keys:
            return []
        try:
            return (await self._read(keys[0].scope, keys))[2]
        except Down:
            return await self.local.spent(keys)

    async def _read(self, scope: Scope, keys: Sequence[LedgerKey]) -> tuple[str, int, list[Spent]]:
        """(counter, calls in flight, spend) of the scope, beginning the ledgers Redis lacks."""
        for _ in range(2):
            names = [self._leases(scope), self._counter(scope), *(self._ledger(k) for k in keys)]
            raw = await self._run("read", names, [self.local.clock()])
            fields = [_pairs(h) for h in raw[2:]]
            missing = [k for k, f in zip(keys, fields, strict=True) if b"since" not in f]
            if not missing:
                break
            for key in missing:
                await self._begin(scope, key)
        spent = [_spent(f) for f in fields]
        for key, f, s in zip(keys, fields, spent, strict=True):
            self.local.mirror(key, s, float(f.get(b"since", b"0")))
        return _text(raw[0]), int(raw[1]), spent

    async def _begin(self, scope: Scope, key: LedgerKey) -> None:
        """A new ledger: `since` now; the history's spend up to then follows (only from the instance that
        began it). Calls that end meanwhile are counted, as their end is after `since`."""
        since = self.local.clock()
        if not await self._run(
            "begin", [self._ledger(key), self._counter(scope)], [since, self._expiry(key)]
        ):
            return
        if self.seed is None:
            return
        try:
            found = await self.seed(key, since)
        except Exception as e:  # the history is away: the ledger counts from now on
            log.warning("budget %s: the usage history did not answer (%s); counting from now", key.path, e)
            return
        args = [repr(found.usd), found.tokens, found.unpriced, _ms(LEASE_TTL)]
        await self._run("seed", [self._ledger(key), self._counter(scope)], args)

    def _settle(self, r: Any, done: _Settled, lease: str | None) -> Any:
        spend = done.spend
        names = [self._ledger(k) for k in done.keys]
        for scope in done.scopes:
            names += [self._leases(scope), self._counter(scope)]
        args: list[Any] = [
            len(done.keys),
            repr(done.ended),
            "" if spend.usd is None else repr(spend.usd),
            "" if spend.tokens is None else spend.tokens,
            lease or "",
            _ms(LEASE_TTL),
            *(self._expiry(k) for k in done.keys),
        ]
        return self._scripts["settle"](names, args, client=r)

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self.link.call(lambda r: self._scripts[script](keys, args, client=r))

    async def _push(self) -> None:
        """Push the spend of calls that ended while Redis was away or without a lease, in pipelines."""
        while self._unsent:
            batch = [self._unsent[i] for i in range(min(BATCH, len(self._unsent)))]
            await self.link.raw(lambda r, b=batch: self._settle_all(r, b))  # type: ignore[misc]
            for _ in batch:
                self._unsent.popleft()

    async def _settle_all(self, r: Any, batch: list[_Settled]) -> None:
        pipe = r.pipeline(transaction=False)
        for done in batch:
            await self._settle(pipe, done, None)
        await pipe.execute()

    def _expiry(self, key: LedgerKey) -> int:
        """When a ledger expires (epoch ms): an hour after its window's reset; a session's when idle."""
        if key.resets is None:
            return _ms(self.local.clock() + self.idle_ttl)
        return _ms(key.resets.timestamp() + 3600)

    def _ledger(self, key: LedgerKey) -> str:
        return self.link.key("budget", "spent", key.path)

    def _leases(self, scope: Scope) -> str:
        return self.link.key("budget", "leases", scope.path)

    def _counter(self, scope: Scope) -> str:
        return self.link.key("budget", "settled", scope.path)


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _spent(f: dict[bytes, bytes]) -> Spent:
    largest_usd, largest_tokens = f.get(b"largest_usd"), f.get(b"largest_tokens")
    return Spent(
        usd=float(f.get(b"usd", b"0")),
        tokens=int(f.get(b"tokens", b"0")),
        unpriced=int(f.get(b"unpriced", b"0")),
        largest_usd=None if largest_usd is None else float(largest_usd),
        largest_tokens=None if largest_tokens is None else int(largest_tokens),
    )
