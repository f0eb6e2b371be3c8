"""The usage stores (memory, the history file, PostgreSQL) against one contract: totals exact per filter
and grouping, including calls that just ended, unknown costs counted apart; and what only the databases
add: tokens and cost in history rows, a migrated old file, retention of their own, keys scrubbed.

Real SQLite files and the machine's PostgreSQL (127.0.0.1:5432, database test), a schema per test.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.records import Usage
from addons.stores import pg
from addons.stores.base import HistoryRow, StoreUnavailable
from addons.stores.pg_usage import PgUsage
from addons.stores.sqlite import SqliteHistory
from addons.stores.sqlite_schema import VERSION, prune
from addons.stores.sqlite_usage import SqliteUsage
from addons.stores.usage import USAGE_TTL, MemoryUsage, UsageStore
from addons.usage.totals import USAGE_GROUPS, UsageEntry, UsageQuery, UsageTotal
from tests.unit.stores.test_pg_contracts import namespace_fixture, pg_url_fixture, query  # noqa: F401
from tests.unit.stores.test_sqlite_responses import OLD_SCHEMA

SECRET = "sk-usage-0123456789abcdef"
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()


def scrub(text: str) -> str:
    return text.replace(SECRET, "[REDACTED]")


CALL = Usage(100, 20, 80, 5)


def entry(session: str, project: str | None, backend: str, model: str, cost: float | None, ts: float,
          tokens: Usage = CALL, key: str = "KEY_1") -> UsageEntry:  # fmt: skip
    return UsageEntry(session, project, backend, model, key, "openai_chat", tokens, cost, ts)


class Made:
    """A store under test and what has to be stopped afterwards."""

    def __init__(self, store: UsageStore, stop: Callable[[], None] = lambda: None) -> None:
        self.store, self.stop = store, stop


def _sqlite(tmp: Path) -> Made:
    history = SqliteHistory(tmp / "history.sqlite3", scrub)
    history.start()
    return Made(SqliteUsage(history), history.close)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], UsageStore]]:
    made: list[Made] = []

    def build() -> UsageStore:
        if request.param == "memory":
            m = Made(MemoryUsage())
        elif request.param == "sqlite":
            m = _sqlite(tmp_path / str(len(made)))
            (tmp_path / str(len(made))).mkdir(exist_ok=True)
        else:
            url, namespace = request.getfixturevalue("pg_url"), request.getfixturevalue("namespace")
            history, _ = pg.build(url, namespace, scrub)
            history.start()
            m = Made(PgUsage(history), history.close)
        made.append(m)
        return m.store

    yield build
    for m in made:
        m.stop()


SCRIPT = [
    entry("s1", "acme", "gemini", "gemini-2.5-flash", 0.001, T0),
    entry("s1", "acme", "gemini", "gemini-2.5-flash", None, T0 + 1, Usage(10, 0)),
    entry("s1", "acme", "openrouter", "openai/gpt-4o", 0.25, T0 + 2, key="KEY_2"),
    entry("s2", "acme", "openrouter", "openai/gpt-4o", 0.5, T0 + 3600),
    entry("s3", None, "gemini", "gemini-2.5-pro", 0.002, T0 + 86400, Usage(300_000, 10, 0, 0)),
]


def totals(store: UsageStore, q: UsageQuery) -> list[UsageTotal]:
    return asyncio.run(store.totals(q))


def test_totals_per_filter_and_group_count_unknown_costs_apart(make: Callable[[], UsageStore]) -> None:
    store = make()
    for e in SCRIPT:
        store.add(e)
    (everything,) = totals(store, UsageQuery())  # no flush: totals include the calls that just ended
    assert (everything.requests, everything.prompt_tokens, everything.completion_tokens) == (5, 300_310, 70)
    assert (everything.cached_tokens, everything.reasoning_tokens, everything.unknown_cost) == (240, 15, 1)
    assert everything.cost_usd == pytest.approx(0.753)
    by_model = totals(store, UsageQuery(project="acme", group_by=("backend", "model")))
    assert [(t.group, t.requests, round(t.cost_usd, 6), t.unknown_cost) for t in by_model] == [
        ({"backend": "gemini", "model": "gemini-2.5-flash"}, 2, 0.001, 1),
        ({"backend": "openrouter", "model": "openai/gpt-4o"}, 2, 0.75, 0),
    ]
    by_project = totals(store, UsageQuery(group_by=("project",)))
    assert [(t.group["project"], t.requests) for t in by_project] == [(None, 1), ("acme", 4)]  # None first
    by_key = totals(store, UsageQuery(session="s1", group_by=("key",)))
    assert [(t.group["key"], t.requests) for t in by_key] == [("KEY_1", 2), ("KEY_2", 1)]
    assert totals(store, UsageQuery(session="nobody")) == []


def test_since_is_inclusive_and_until_exclusive(make: Callable[[], UsageStore]) -> None:
    store = make()
    for e in SCRIPT:
        store.add(e)
    at, hour = datetime.fromtimestamp(T0 + 2, UTC), datetime.fromtimestamp(T0 + 3600, UTC)
    (t,) = totals(store, UsageQuery(since=at, until=hour))
    assert t.requests == 1 and t.cost_usd == pytest.approx(0.25)
    (t,) = totals(store, UsageQuery(since=at, until=hour + timedelta(microseconds=1)))
    assert t.requests == 2
    naive = datetime(2026, 12, 1, 12)  # without a zone: UTC
    (t,) = totals(store, UsageQuery(since=naive))
    assert t.requests == 1 and t.group == {}


def test_entries_added_concurrently_all_count(make: Callable[[], UsageStore]) -> None:
    store = make()

    async def go() -> list[UsageTotal]:
        async def call(i: int) -> None:
            store.add(entry(f"s{i % 3}", "p", "b", "m", 0.001, T0 + i))
            await store.totals(UsageQuery(session=f"s{i % 3}"))

        await asyncio.gather(*(call(i) for i in range(60)))
        return await store.totals(UsageQuery(group_by=("session",)))

    result = asyncio.run(go())
    assert [(t.group["session"], t.requests) for t in result] == [("s0", 20), ("s1", 20), ("s2", 20)]
    assert sum(t.cost_usd for t in result) == pytest.approx(0.06)


def _random_entries(n: int, seed: int) -> list[UsageEntry]:
    rnd = random.Random(seed)
    return [
        entry(
            rnd.choice(["s1", "s2", "s3"]), rnd.choice(["a", "b", None]),
            rnd.choice(["gemini", "openrouter"]), rnd.choice(["m1", "m2"]),
            rnd.choice([None, 0.0, 0.001, 0.25]), T0 + rnd.randrange(0, 7 * 86400),
            Usage(rnd.randrange(0, 9999), rnd.randrange(0, 999), rnd.randrange(0, 99), rnd.randrange(0, 9)),
            rnd.choice(["K1", "K2"]),
        )
        for _ in range(n)
    ]  # fmt: skip


def _same(a: list[UsageTotal], b: list[UsageTotal]) -> None:
    assert [(t.group, t.requests, t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens,
             t.unknown_cost) for t in a] == [(t.group, t.requests, t.prompt_tokens, t.completion_tokens,
             t.cached_tokens, t.reasoning_tokens, t.unknown_cost) for t in b]  # fmt: skip
    assert [t.cost_usd for t in a] == pytest.approx([t.cost_usd for t in b])


def test_the_databases_sum_as_the_memory_store_does(make: Callable[[], UsageStore]) -> None:
    store, reference = make(), MemoryUsage()
    for e in _random_entries(300, seed=17):
        store.add(e)
        reference.add(e)
    day = datetime.fromtimestamp(T0, UTC) + timedelta(days=2)
    filters = [UsageQuery(), UsageQuery(session="s2"), UsageQuery(project="a"), UsageQuery(since=day),
               UsageQuery(project="b", since=day, until=day + timedelta(days=2))]  # fmt: skip
    groupings = [g for n in range(3) for g in itertools.combinations(USAGE_GROUPS, n)]
    for f in filters:
        for g in groupings:
            q = UsageQuery(f.session, f.project, f.since, f.until, g)
            _same(totals(store, q), totals(reference, q))


entries = st.lists(
    st.builds(
        entry, st.sampled_from(["s1", "s2"]), st.sampled_from(["p", None]), st.sampled_from(["b1", "b2"]),
        st.sampled_from(["m"]), st.none() | st.floats(0, 1), st.floats(T0, T0 + 1000),
        st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 9), st.integers(0, 9)),
    ),
    max_size=40,
)  # fmt: skip
queries = st.builds(
    UsageQuery, st.sampled_from([None, "s1"]), st.sampled_from([None, "p"]),
    st.none() | st.floats(T0, T0 + 1000).map(lambda t: datetime.fromtimestamp(t, UTC)), st.none(),
    st.sampled_from([(), ("session",), ("project", "backend"), ("backend", "session")]),
)  # fmt: skip


@given(entries, queries, st.integers(1, 50))
@settings(max_examples=200)
def test_memory_totals_are_the_sums_of_the_matching_entries(
    added: list[UsageEntry], q: UsageQuery, bound: int
) -> None:
    store = MemoryUsage(max_entries=bound)
    for e in added:
        store.add(e)
    kept = added[-bound:]  # the newest `bound` calls
    since = q.since.timestamp() if q.since else None
    match = [e for e in kept if q.session in (None, e.session) and q.project in (None, e.project)
             and (since is None or e.ts >= since)]  # fmt: skip
    result = totals(store, q)
    assert sum(t.requests for t in result) == len(match)
    assert sum(t.prompt_tokens for t in result) == sum(e.tokens.prompt_tokens for e in match)
    assert sum(t.unknown_cost for t in result) == sum(e.cost_usd is None for e in match)
    assert sum(t.cost_usd for t in result) == pytest.approx(sum(e.cost_usd or 0 for e in match))
    assert len({tuple(t.group.values()) for t in result}) == len(result)  # one total per group


def test_history_rows_carry_tokens_and_cost(tmp_path: Path) -> None:
    history = SqliteHistory(tmp_path / "h.sqlite3", scrub)
    history.start()
    try:
        history.record(HistoryRow("s", "backend", "gemini", "m", "K", None, 0, [], {}, "hi", None, 1.0, 200,
                                  None, prompt_tokens=12, completion_tokens=3, cached_tokens=2,
                                  reasoning_tokens=1, cost_usd=0.0042))  # fmt: skip
        history.record(
            HistoryRow("s", "proxy", None, None, None, None, 0, [], {}, "ok", None, 1.0, 200, None)
        )
        history.drain()
        rows = history.read_rows("s")
        numbers = [tuple(r[c] for c in ("prompt_tokens", "completion_tokens", "cached_tokens",
                                        "reasoning_tokens", "cost_usd")) for r in rows]  # fmt: skip
        assert numbers == [(12, 3, 2, 1, 0.0042), (None, None, None, None, None)]
    finally:
        history.close()


def test_an_old_history_file_gets_the_usage_table_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(OLD_SCHEMA)
    con.close()
    made = _sqlite(tmp_path)
    try:
        made.store.add(entry("s", "p", "b", "m", 0.5, T0))
        (t,) = totals(made.store, UsageQuery())
        assert t.requests == 1 and t.cost_usd == 0.5
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (VERSION,)
            old = db.execute("SELECT session_id, prompt_tokens, cost_usd FROM interactions").fetchall()
        assert len(old) == 2 and {r[1:] for r in old} == {(None, None)}  # old rows kept, no numbers made up
    finally:
        made.stop()


def test_usage_rows_outlive_history_but_not_their_own_limit(tmp_path: Path) -> None:
    made = _sqlite(tmp_path)
    now = time.time()
    try:
        for age_days in (1, 40, USAGE_TTL / 86400 + 1):
            made.store.add(entry("s", "p", "b", "m", 1.0, now - age_days * 86400))
        (t,) = totals(made.store, UsageQuery())
        assert t.requests == 3
        with sqlite3.connect(tmp_path / "history.sqlite3") as db:
            prune(db, max_days=30, max_bytes=1)  # history: 30 days and a size it can never meet
        (t,) = totals(made.store, UsageQuery())
        assert t.requests == 2 and t.cost_usd == 2.0  # 40 days old stays; past USAGE_TTL goes
    finally:
        made.stop()


def test_keys_never_reach_the_usage_rows(tmp_path: Path) -> None:
    made = _sqlite(tmp_path)
    try:
        made.store.add(entry(f"sess-{SECRET}", f"proj-{SECRET}", "b", "m", 0.1, T0))
        totals(made.store, UsageQuery())
        raw = (tmp_path / "history.sqlite3").read_bytes()
        wal = tmp_path / "history.sqlite3-wal"
        assert SECRET.encode() not in raw + (wal.read_bytes() if wal.exists() else b"")
    finally:
        made.stop()


def test_postgres_instances_see_each_others_calls(pg_url: str, namespace: str) -> None:
    (a, _), (b, _) = pg.build(pg_url, namespace, scrub), pg.build(pg_url, namespace, scrub)
    a.start(), b.start()
    try:
        one, two = PgUsage(a), PgUsage(b)
        one.add(entry("s", "p", "b", "m", 0.1, T0))
        (t,) = totals(one, UsageQuery())
        two.add(entry("s", "p", "b", "m", 0.2, T0 + 1))
        (t,) = totals(two, UsageQuery())
        assert t.requests == 2 and t.cost_usd == pytest.approx(0.3)
        (t,) = totals(one, UsageQuery(group_by=("session",)))
        assert t.group == {"session": "s"} and t.requests == 2
    finally:
        a.close(), b.close()


def test_postgres_away_is_store_unavailable(namespace: str) -> None:
    history, _ = pg.build("postgresql://127.0.0.1:9/test", namespace, scrub)  # nothing listens on port 9
    history.start()
    try:
        store = PgUsage(history)
        store.add(entry("s", "p", "b", "m", 0.1, T0))
        with pytest.raises(StoreUnavailable, match="did not answer"):
            totals(store, UsageQuery())
    finally:
        history.close()
