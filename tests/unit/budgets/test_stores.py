"""The budget stores, memory and Redis (a real one, under a prefix of the test's own), held to one
contract: ledgers begin from the usage history and count later calls once, a scope's calls in flight are
bounded by the rule's slots, leases end with their call or lapse; and through Redis, two instances share
all of it, and an outage serves on local state and pushes the spend when Redis is back."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import redis

from addons.budgets.ledger import Budget, LedgerKey, Scope, Spend, ledger_key
from addons.budgets.limits import Limit
from addons.budgets.rule import scope_slots
from addons.records import Usage
from addons.stores.base import BudgetStore
from addons.stores.budget_memory import LEASE_TTL, MemoryBudgets, Seed, history_seed
from addons.stores.redis_budget import RedisBudgets
from addons.stores.redis_link import RedisLink
from addons.stores.usage import MemoryUsage, UsageEntry
from tests import stores_servers

SESSION = Scope("session", "s1")
PROJECT = Scope("project", "acme")
KINDS = ("memory", "redis")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from stores_servers.redis_for_tests()


@pytest.fixture
def prefix(server: str) -> Iterator[str]:
    yield from stores_servers.scratch_prefix(server, "llm-test-budget")


@asynccontextmanager
async def stores(
    kind: str, url: str, prefix: str, n: int = 1, seed: Seed | None = None
) -> AsyncIterator[list]:
    """`n` stores of `kind`: memory ones are separate proxies, Redis ones instances sharing `prefix`."""
    if kind == "memory":
        yield [MemoryBudgets(seed) for _ in range(n)]
        return
    links = [RedisLink(url, prefix) for _ in range(n)]
    try:
        for link in links:
            await link.synced()
        yield [RedisBudgets(link, 3600, seed) for link in links]
    finally:
        for link in links:
            await link.aclose()


def usd(limit: float, scope: Scope = SESSION, period: str = "session") -> Budget:
    return Budget(ledger_key(scope, period, datetime.now(UTC)), Limit(limit, "usd"))  # type: ignore[arg-type]


async def admit(store: BudgetStore, budget: Budget, lease: str) -> bool:
    rule = functools.partial(scope_slots, [budget])
    return (await store.admit(budget.key.scope, [budget.key], rule, lease)).admitted


async def settle(store: BudgetStore, keys: list[LedgerKey], spend: Spend, lease: str | None) -> None:
    await store.settle(list(dict.fromkeys(k.scope for k in keys)), keys, spend, time.time(), lease)


def run(kind: str, server: str, prefix: str, test: Callable[..., object], **kw: object) -> None:
    async def go() -> None:
        async with stores(kind, server, prefix, **kw) as made:  # type: ignore[arg-type]
            await test(*made)  # type: ignore[misc]

    asyncio.run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_spend_adds_up_and_calls_in_flight_follow_the_rule(kind: str, server: str, prefix: str) -> None:
    budget = usd(1.0)

    async def test(store: BudgetStore) -> None:
        # No call's size known yet: one at a time.
        assert await admit(store, budget, "a")
        assert not await admit(store, budget, "b")
        await settle(store, [budget.key], Spend(0.2, 1000), "a")
        (spent,) = await store.spent([budget.key])
        assert (spent.usd, spent.tokens, spent.largest_usd, spent.largest_tokens) == (0.2, 1000, 0.2, 1000)
        # $0.80 left fits four calls of $0.20.
        assert [await admit(store, budget, lease) for lease in "bcdef"] == [True] * 4 + [False]
        for lease in "bcde":
            await settle(store, [budget.key], Spend(0.2, 10), lease)
        assert not await admit(store, budget, "g")  # spent: $1.00 of $1.00
        (spent,) = await store.spent([budget.key])
        assert spent.usd == pytest.approx(1.0) and spent.tokens == 1040

    run(kind, server, prefix, test)


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_without_a_price_counts_its_tokens_and_is_counted_as_unpriced(
    kind: str, server: str, prefix: str
) -> None:
    budget = usd(1.0)

    async def test(store: BudgetStore) -> None:
        assert await admit(store, budget, "a")
        await settle(store, [budget.key], Spend(None, 700), "a")
        await settle(store, [budget.key], Spend(None, None), None)  # a failed call: nothing
        (spent,) = await store.spent([budget.key])
        assert (spent.usd, spent.tokens, spent.unpriced, spent.largest_usd) == (0.0, 700, 1, None)

    run(kind, server, prefix, test)


@pytest.mark.parametrize("kind", KINDS)
def test_a_ledger_begins_from_the_usage_history_and_counts_each_call_once(
    kind: str, server: str, prefix: str
) -> None:
    usage = MemoryUsage()
    today = ledger_key(PROJECT, "daily", datetime.now(UTC))
    assert today.start is not None
    yesterday = today.start.timestamp() - 60
    for session, project, cost, ts in (
        ("s1", "acme", 0.5, time.time()), ("s1", "acme", None, time.time()),
        ("s1", "acme", 0.25, yesterday), ("s2", "acme", 1.0, time.time()), ("s2", "other", 9.0, time.time()),
    ):  # fmt: skip
        usage.add(UsageEntry(session, project, "b", "m", "K", "openai_chat", Usage(100, 10), cost, ts=ts))
    session_key = ledger_key(SESSION, "session", datetime.now(UTC))

    async def test(store: BudgetStore) -> None:
        whole, day = await store.spent([session_key, today])
        assert (whole.usd, whole.tokens, whole.unpriced) == (0.75, 330, 1)  # yesterday's call too
        assert (day.usd, day.tokens) == (1.5, 330)  # acme today: s1 and s2
        assert whole.largest_usd is None  # a total tells no call's size
        # A call that ended before the ledger began is in the history already; one that ends later is not.
        await settle(store, [session_key, today], Spend(0.1, 5), None)
        await store.settle([SESSION, PROJECT], [session_key, today], Spend(7.0, 1), time.time() - 3600, None)
        # Calls without a lease (no budget applied to them) reach Redis with the link's next flush.
        deadline = time.monotonic() + 5
        while True:
            whole, day = await store.spent([session_key, today])
            if (whole.usd, day.usd) != (0.75, 1.5) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (whole.usd, day.usd) == (pytest.approx(0.85), pytest.approx(1.6))

    run(kind, server, prefix, test, seed=history_seed(usage))


@pytest.mark.parametrize("kind", KINDS)
def test_calls_whose_ledger_nobody_asked_for_are_left_to_the_history(
    kind: str, server: str, prefix: str
) -> None:
    key = ledger_key(SESSION, "session", datetime.now(UTC))

    async def test(store: BudgetStore) -> None:
        await settle(store, [key], Spend(3.0, 30), None)  # no budget asked yet: no ledger is made
        with redis.Redis.from_url(server) as r:
            assert not list(r.scan_iter(match=f"{prefix}:*"))  # nor any other key
        (spent,) = await store.spent([key])  # begins now, from the (empty) history
        assert spent.usd == 0.0

    run(kind, server, prefix, test)


@pytest.mark.parametrize("kind", KINDS)
def test_a_lease_ends_with_its_call_in_its_own_scope_only(kind: str, server: str, prefix: str) -> None:
    mine, theirs = usd(5.0), usd(5.0, Scope("session", "s2"))

    async def test(store: BudgetStore) -> None:
        assert await admit(store, mine, "a") and await admit(store, theirs, "x")
        assert not await admit(store, mine, "b")
        await store.settle([SESSION], [], Spend(None, None), time.time(), "a")  # ended without spend
        assert await admit(store, mine, "b")
        assert not await admit(store, theirs, "y")

    run(kind, server, prefix, test)


@pytest.mark.parametrize("kind", KINDS)
def test_calls_asking_at_once_get_no_more_places_than_the_rule_gives(
    kind: str, server: str, prefix: str
) -> None:
    budget = usd(1.0)

    async def test(a: BudgetStore, b: BudgetStore) -> None:
        # Two instances (for Redis; two proxies of their own for memory), twenty calls at once.
        asked = [admit(store, budget, f"call-{n}") for n in range(10) for store in (a, b)]
        got = await asyncio.gather(*asked)
        assert sum(got) == (1 if kind == "redis" else 2)  # no call's size known: one per scope

    run(kind, server, prefix, test, n=2)


def test_a_lease_of_a_call_that_never_ends_lapses() -> None:
    now = [1000.0]
    store = MemoryBudgets(clock=lambda: now[0])
    budget = usd(5.0)

    async def test() -> None:
        assert await admit(store, budget, "stuck")
        assert not await admit(store, budget, "next")
        now[0] += LEASE_TTL
        assert await admit(store, budget, "next")

    asyncio.run(test())


def test_two_instances_share_spend_and_calls_in_flight(server: str, prefix: str) -> None:
    budget = usd(1.0)

    async def test(a: BudgetStore, b: BudgetStore) -> None:
        assert await admit(a, budget, "first")
        assert not await admit(b, budget, "second")  # one in flight, on the other instance
        await settle(a, [budget.key], Spend(0.4, 1), "first")
        assert (await b.spent([budget.key]))[0].usd == pytest.approx(0.4)
        assert await admit(b, budget, "second")  # $0.60 left fits one more of $0.40
        assert not await admit(a, budget, "third")
        await settle(b, [budget.key], Spend(0.7, 1), "second")
        assert not await admit(a, budget, "third")  # $1.10 spent
        with redis.Redis.from_url(server) as r:
            keys = sorted(k.decode() for k in r.scan_iter(match=f"{prefix}:*"))
        assert keys == [
            f"{prefix}:budget:leases:session:s1", f"{prefix}:budget:settled:session:s1",
            f"{prefix}:budget:spent:session:s1",
        ] or keys == [f"{prefix}:budget:settled:session:s1", f"{prefix}:budget:spent:session:s1"]  # fmt: skip

    run("redis", server, prefix, test, n=2)


def test_a_redis_outage_serves_on_local_state_and_pushes_the_spend_when_redis_is_back() -> None:
    redis_server = stores_servers.ThrowawayRedis().start()
    budget = usd(1.0)
    try:

        async def go() -> None:
            async with stores("redis", redis_server.url, "outage", n=2) as (a, b):
                assert await admit(a, budget, "one")
                await settle(a, [budget.key], Spend(0.3, 1), "one")
                with redis.Redis.from_url(redis_server.url) as r:
                    r.save()  # the server comes back with what it had
                redis_server.stop()
                started = time.monotonic()
                assert await admit(a, budget, "two")  # the local view: $0.70 left
                await settle(a, [budget.key], Spend(0.5, 1), "two")
                assert await admit(a, budget, "three")
                await settle(a, [budget.key], Spend(0.5, 1), "three")
                assert not await admit(a, budget, "four")  # spent, as far as this instance knows
                assert time.monotonic() - started < 2.0 and a.link.degraded
                redis_server.start()
                deadline = time.monotonic() + 10
                while a.link.degraded or b.link.degraded:
                    assert time.monotonic() < deadline, "Redis did not come back within 10 s"
                    await asyncio.sleep(0.05)
                assert (await b.spent([budget.key]))[0].usd == pytest.approx(1.3)
                assert not await admit(b, budget, "four")

        asyncio.run(go())
    finally:
        redis_server.close()
