"""Budget ledgers and calls in flight in memory: one proxy's own, and the Redis store's local view.

A ledger begins the first time a budget asks for it, from what the usage history holds up to that moment
(so a restart on the history file does not forget the day's spend, and a session budget set late still
covers the session's earlier calls); calls that end later are added as they end. A ledger nobody asks for
is never made: the history has its calls when one is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from addons.budgets.ledger import Admission, LedgerKey, Scope, Spend, Spent
from addons.stores.usage import UsageQuery, UsageStore

log = logging.getLogger(__name__)
LEASE_TTL = 900.0  # seconds a call counts as in flight at most: an instance that died ends its calls so
MAX_LEDGERS = 20_000  # the least recently used go first; the history can begin them again

# What the usage history holds for a ledger's window up to `until` (epoch seconds).
type Seed = Callable[[LedgerKey, float], Awaitable[Spent]]
# How many calls of a scope may be in flight, given what its ledgers spent (None: no bound).
type Slots = Callable[[list[Spent]], int | None]


def history_seed(usage: UsageStore) -> Seed:
    async def seed(key: LedgerKey, until: float) -> Spent:
        scope = key.scope
        query = UsageQuery(
            session=scope.name if scope.kind == "session" else None,
            project=scope.name if scope.kind == "project" else None,
            since=key.start,
            until=datetime.fromtimestamp(until, UTC),
        )
        out = Spent()
        for total in await usage.totals(query):
            out.usd += total.cost_usd
            out.tokens += total.prompt_tokens + total.completion_tokens
            out.unpriced += total.unknown_cost
        return out

    return seed


@dataclass(slots=True)
class _Ledger:
    spent: Spent
    since: float  # epoch seconds: calls that ended before are in the seed, later ones are added
    seeding: asyncio.Task[None] | None = None


class MemoryBudgets:
    def __init__(self, seed: Seed | None = None, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self._ledgers: OrderedDict[str, _Ledger] = OrderedDict()
        self._leases: dict[str, dict[str, float]] = {}  # scope path -> lease -> when it lapses

    async def admit(self, scope: Scope, keys: Sequence[LedgerKey], slots: Slots, lease: str) -> Admission:
        ledgers = [await self._ledger(k) for k in keys]
        # From here on nothing awaits: reading the spend and taking the lease are one step.
        spent = [dataclasses.replace(led.spent) for led in ledgers]
        now = self.clock()
        held = self._live(scope, now)
        allowed = slots(spent)
        if allowed is not None and len(held) >= allowed:
            return Admission(False, spent)
        held[lease] = now + LEASE_TTL
        self._leases[scope.path] = held
        return Admission(True, spent)

    async def settle(
        self,
        scopes: Sequence[Scope],
        keys: Sequence[LedgerKey],
        spend: Spend,
        ended: float,
        lease: str | None,
    ) -> None:
        if not spend.nothing:
            for key in keys:
                led = self._ledgers.get(key.path)
                if led is not None and ended >= led.since:
                    led.spent.add(spend)
        if lease is not None:
            for scope in scopes:
                held = self._leases.get(scope.path)
                if held is not None:
                    held.pop(lease, None)
                    if not held:
                        del self._leases[scope.path]

    async def spent(self, keys: Sequence[LedgerKey]) -> list[Spent]:
        ledgers = [await self._ledger(k) for k in keys]
        return [dataclasses.replace(led.spent) for led in ledgers]

    def mirror(self, key: LedgerKey, spent: Spent, since: float) -> None:
        """Take a ledger as a shared store has it (the local view a Redis outage falls back on)."""
        self._ledgers[key.path] = _Ledger(dataclasses.replace(spent), since)
        self._ledgers.move_to_end(key.path)
        self._evict()

    async def _ledger(self, key: LedgerKey) -> _Ledger:
        led = self._ledgers.get(key.path)
        if led is None:
            led = self._ledgers[key.path] = _Ledger(Spent(), self.clock())
            if self.seed is not None:
                led.seeding = asyncio.get_running_loop().create_task(self._seed(key, led))
            self._evict()
        else:
            self._ledgers.move_to_end(key.path)
        if led.seeding is not None:
            # Shielded: a caller that goes away (a client hung up) must not cancel everyone's seed.
            await asyncio.shield(led.seeding)
        return led

    async def _seed(self, key: LedgerKey, led: _Ledger) -> None:
        assert self.seed is not None
        try:
            found = await self.seed(key, led.since)
        except Exception as e:  # the history is away: the ledger counts from now on
            log.warning("budget %s: the usage history did not answer (%s); counting from now", key.path, e)
        else:
            led.spent.usd += found.usd
            led.spent.tokens += found.tokens
            led.spent.unpriced += found.unpriced
        finally:
            led.seeding = None

    def _live(self, scope: Scope, now: float) -> dict[str, float]:
        held = self._leases.get(scope.path, {})
        for lease in [k for k, lapses in held.items() if lapses <= now]:
            del held[lease]
        return held

    def _evict(self) -> None:
        while len(self._ledgers) > MAX_LEDGERS:
            self._ledgers.popitem(last=False)
