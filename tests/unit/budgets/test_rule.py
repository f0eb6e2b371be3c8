"""The spend and limit arithmetic: windows in UTC, what a call adds, how many calls may run at once, and
the promise that a budget is overshot by at most the one call in flight."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.budgets.ledger import Budget, Scope, Spend, Spent, applicable, ledger_key
from addons.budgets.limits import Limit, ProjectBudget
from addons.budgets.rule import left_text, over, refusal, scope_slots, slots, tightest
from addons.stores.budget_memory import MemoryBudgets

SESSION = Scope("session", "s1")
PROJECT = Scope("project", "acme")
NOW = datetime(2025, 6, 30, 23, 59, 30, tzinfo=UTC)


def usd(limit: float, period: str = "session") -> Budget:
    scope = SESSION if period == "session" else PROJECT
    return Budget(ledger_key(scope, period, NOW), Limit(limit, "usd"))  # type: ignore[arg-type]


def test_daily_and_monthly_windows_are_utc_days_and_months() -> None:
    day = ledger_key(PROJECT, "daily", NOW)
    assert (day.window, day.start, day.resets) == (
        "2025-06-30",
        datetime(2025, 6, 30, tzinfo=UTC),
        datetime(2025, 7, 1, tzinfo=UTC),
    )
    month = ledger_key(PROJECT, "monthly", datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    assert (month.window, month.resets) == ("2025-12", datetime(2026, 1, 1, tzinfo=UTC))
    # 01:30 in UTC+2 is still the previous day in UTC.
    local = datetime(2025, 7, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert ledger_key(PROJECT, "daily", local).window == "2025-06-30"
    session = ledger_key(SESSION, "session", NOW)
    assert (session.resets, session.path) == (None, "session:s1")
    assert day.path == "project:daily:2025-06-30:acme" and month.path == "project:monthly:2025-12:acme"


def test_which_budgets_apply() -> None:
    projects = {"acme": ProjectBudget(daily=5, monthly=50), "other": ProjectBudget(monthly=1)}
    found = applicable("s1", "$2.50", "acme", projects, NOW)
    assert [(b.key.period, b.limit) for b in found] == [
        ("session", Limit(2.5, "usd")), ("daily", Limit(5, "usd")), ("monthly", Limit(50, "usd"))
    ]  # fmt: skip
    assert applicable("s1", None, "unbudgeted", projects, NOW) == []
    assert applicable("s1", "not a budget", None, projects, NOW) == []  # logged, never a crash


def test_a_call_adds_its_cost_and_tokens_and_grows_the_largest() -> None:
    spent = Spent()
    spent.add(Spend(0.25, 1000))
    spent.add(Spend(0.05, 3000))
    spent.add(Spend(None, 500))  # no price: tokens count, USD cannot
    assert (spent.usd, spent.tokens, spent.unpriced) == (pytest.approx(0.30), 4500, 1)
    assert (spent.largest_usd, spent.largest_tokens) == (0.25, 3000)


@pytest.mark.parametrize(
    ("limit", "spent", "expected"),
    [
        (1.0, Spent(usd=1.0, largest_usd=0.1), 0),  # spent: refused
        (1.0, Spent(usd=1.2, largest_usd=0.1), 0),
        (1.0, Spent(usd=0.5), 1),  # no call's size known yet (a total from history): one at a time
        (1.0, Spent(usd=0.0, largest_usd=0.0), None),  # every call was free: no bound
        (1.0, Spent(usd=0.1, largest_usd=0.3), 3),  # 0.9 left fits three calls of 0.3
        (1.0, Spent(usd=0.8, largest_usd=0.3), 1),  # less than one: still the one call in flight
    ],
)
def test_how_many_calls_may_run_at_once(limit: float, spent: Spent, expected: int | None) -> None:
    assert slots(usd(limit), spent) == expected


def test_the_tightest_budget_of_a_scope_decides() -> None:
    budgets = [usd(10, "daily"), usd(100, "monthly")]
    spent = [Spent(usd=9, largest_usd=0.5), Spent(usd=9, largest_usd=0.5)]
    assert scope_slots(budgets, spent) == 2
    assert tightest(budgets, spent)[0] is budgets[0]
    assert over(budgets, spent) is None
    assert over(budgets, [Spent(usd=10), spent[1]]) == (budgets[0], Spent(usd=10))


def test_a_refusal_says_which_budget_its_limit_its_spend_and_when_it_resets() -> None:
    day = refusal(usd(5, "daily"), Spent(usd=5.0123), "!/")
    assert day == (
        "Budget exceeded: project 'acme' daily budget is $5.00; spent today (UTC): $5.01. "
        "It resets at 2025-07-01T00:00:00Z; raise it under budgets: in the settings file."
    )
    tokens = Budget(ledger_key(SESSION, "session", NOW), Limit(200_000, "tokens"))
    assert refusal(tokens, Spent(tokens=200_100), "#") == (
        "Budget exceeded: this session's budget is 200,000 tokens; spent so far: 200,100 tokens. A session "
        "budget does not reset: raise it with #set(budget=...) or remove it with #unset(budget)."
    )
    assert left_text(usd(2.5), Spent(usd=3, unpriced=2)) == (
        "this session's budget: $0.00 of $2.50 left ($3.00 spent); "
        "2 call(s) without a known price not counted"
    )


# -- the promise, model-checked: random arrivals, ends and costs against the memory store ----------------


@st.composite
def runs(draw: st.DrawFn) -> tuple[float, list[float], list[int]]:
    """A limit, the calls' costs (the first is the largest: the rule sizes calls by the largest so far),
    and a schedule: at each step start the next call (0) or end the in-flight call at that index (>0)."""
    largest = draw(st.floats(min_value=0.01, max_value=2.0))
    rest = draw(st.lists(st.floats(min_value=0.0, max_value=largest), max_size=40))
    limit = largest * draw(st.floats(min_value=0.05, max_value=12.0))  # a few calls' worth: where it bites
    schedule = draw(st.lists(st.sampled_from([0, 0, 0, 1, 2, 3, 4]), min_size=1, max_size=200))
    return limit, [largest, *rest], schedule


@given(runs())
@settings(max_examples=400, deadline=None)
def test_a_budget_is_overshot_by_at_most_one_call(run: tuple[float, list[float], list[int]]) -> None:
    limit, costs, schedule = run
    asyncio.run(_simulate(limit, costs, schedule))


async def _simulate(limit: float, costs: list[float], schedule: list[int]) -> None:
    store = MemoryBudgets(clock=lambda: 0.0)  # one moment: no lease lapses, every end counts
    budget = usd(limit)
    keys = [budget.key]
    rule = functools.partial(scope_slots, [budget])
    pending = list(costs)
    flight: list[tuple[str, float]] = []
    refused = 0
    for n, step in enumerate([*schedule, *[1] * len(costs)]):  # then end whatever still runs
        if step == 0 and pending:
            lease = f"call-{n}"
            got = await store.admit(SESSION, keys, rule, lease)
            if got.admitted:
                flight.append((lease, pending.pop(0)))
            elif slots(budget, got.spent[0]) == 0:
                refused += 1  # refused only once the budget is spent
                assert got.spent[0].usd >= limit
                pending.pop(0)
        elif step > 0 and flight:
            lease, cost = flight.pop((step - 1) % len(flight))
            await store.settle([SESSION], keys, Spend(cost, 1), 0.0, lease)
        spent = (await store.spent(keys))[0]
        # While more than one call runs, what is left covers each of them at the largest cost so far.
        if len(flight) > 1:
            assert limit - spent.usd >= len(flight) * costs[0] - 1e-9
    assert not flight
    final = (await store.spent(keys))[0]
    assert final.usd <= limit + costs[0] + 1e-9
