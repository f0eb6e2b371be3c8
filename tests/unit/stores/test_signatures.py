"""The signature stores (SignatureStore): the contract for the memory store and the one in the history
database, their bounds and expiry, reads before the writes reach the file, and the schema migration."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addons.stores.base import SIGNATURE_TTL, SignatureStore
from addons.stores.signatures_memory import MemorySignatures
from addons.stores.sqlite import SqliteHistory
from addons.stores.sqlite_schema import VERSION
from addons.stores.sqlite_signatures import SqliteSignatures
from tests.unit.stores.test_responses import SECRET, scrub
from tests.unit.stores.test_sqlite_responses import OLD_SCHEMA


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Db:
    """A started history file and the signature store in it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time, **limits: Any) -> None:
        self.path = path
        self.history = SqliteHistory(path, scrub, **limits)
        self.history.start()
        self.store = SqliteSignatures(self.history, clock=clock)

    def close(self) -> None:
        self.history.close()

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


STORES: dict[str, Callable[[Path, Clock], tuple[SignatureStore, Callable[[], None]]]] = {
    "memory": lambda tmp, clock: (MemorySignatures(clock=clock), lambda: None),
    "sqlite": lambda tmp, clock: (lambda db: (db.store, db.close))(Db(tmp / "history.sqlite3", clock)),
}


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[SignatureStore]:
    made, close = STORES[request.param](tmp_path, clock)
    yield made
    close()


SIG = "Q2lRQnZqOW" * 700  # ~7 KB, as Gemini 3 sends them


# -- the contract, for both -----------------------------------------------------------------------------


def test_put_many_get_many_round_trip_and_leave_out_unknown_ids(store: SignatureStore) -> None:
    async def go() -> None:
        assert await store.get_many([]) == {} and await store.get_many(["call_nope"]) == {}
        await store.put_many({"call_a": SIG, "call_b": '{"v":1,"sig":"x","id":"é ✓"}'})
        want = {"call_a": SIG, "call_b": '{"v":1,"sig":"x","id":"é ✓"}'}
        assert await store.get_many(["call_a", "call_nope", "call_b", "call_a"]) == want
        await store.flush()
        assert await store.get_many(["call_b", "call_a"]) == want
        await store.put_many({})

    asyncio.run(go())


def test_a_put_again_replaces(store: SignatureStore) -> None:
    async def go() -> None:
        await store.put_many({"call_a": "first"})
        await store.put_many({"call_a": "second"})
        assert await store.get_many(["call_a"]) == {"call_a": "second"}
        await store.flush()
        assert await store.get_many(["call_a"]) == {"call_a": "second"}

    asyncio.run(go())


def test_entries_expire_after_the_ttl(store: SignatureStore, clock: Clock) -> None:
    async def go() -> None:
        await store.put_many({"call_old": "1"})
        clock.now += SIGNATURE_TTL - 60
        await store.put_many({"call_new": "2"})
        assert await store.get_many(["call_old", "call_new"]) == {"call_old": "1", "call_new": "2"}
        clock.now += 120
        assert await store.get_many(["call_old", "call_new"]) == {"call_new": "2"}
        await store.flush()
        assert await store.get_many(["call_old", "call_new"]) == {"call_new": "2"}

    asyncio.run(go())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=300), max_size=8))
def test_any_ids_and_values_round_trip(store: SignatureStore, items: dict[str, str]) -> None:
    async def go() -> None:
        await store.put_many(items)
        assert await store.get_many(list(items)) == items
        await store.flush()
        assert await store.get_many(list(items)) == items

    asyncio.run(go())


# -- the memory store's bounds --------------------------------------------------------------------------


def test_memory_store_drops_the_oldest_puts_beyond_its_bounds(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        by_count = MemorySignatures(max_items=3)
        for n in range(5):
            await by_count.put_many({f"call_{n}": "v"})
        await by_count.put_many({"call_2": "renewed"})  # a put again makes it the newest
        await by_count.put_many({"call_5": "v"})
        assert set(await by_count.get_many([f"call_{n}" for n in range(6)])) == {"call_2", "call_4", "call_5"}

        by_size = MemorySignatures(max_chars=100)
        await by_size.put_many({"call_a": "x" * 40, "call_b": "y" * 40})
        await by_size.put_many({"call_c": "z" * 40})
        assert set(await by_size.get_many(["call_a", "call_b", "call_c"])) == {"call_b", "call_c"}
        await by_size.put_many({"call_huge": "h" * 200})
        assert "not kept" in caplog.text
        assert set(await by_size.get_many(["call_b", "call_c", "call_huge"])) == {"call_b", "call_c"}

    asyncio.run(go())


# -- what only the SQLite store has ---------------------------------------------------------------------


def test_sqlite_reads_its_writes_before_they_reach_the_file(tmp_path: Path) -> None:
    db = Db(tmp_path / "history.sqlite3")
    lock = sqlite3.connect(db.path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the writer now waits for this lock; readers (WAL) do not

    async def go() -> None:
        await db.store.put_many({"call_a": SIG})
        await asyncio.sleep(0.2)  # well past the writer's batch window
        assert db.rows("SELECT id FROM signatures") == []
        assert await db.store.get_many(["call_a"]) == {"call_a": SIG}
        lock.execute("COMMIT")
        await db.store.flush()
        assert db.rows("SELECT id, value FROM signatures") == [("call_a", SIG)]
        assert await db.store.get_many(["call_a"]) == {"call_a": SIG}

    try:
        asyncio.run(go())
    finally:
        lock.close()
        db.close()


def test_sqlite_keeps_signatures_across_a_restart_and_reads_many_at_once(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = Db(path)
    many = {f"call_{n:04d}": f"sig-{n}" for n in range(1200)}  # more ids than one SELECT binds
    asyncio.run(first.store.put_many(many))
    first.close()  # writes what is queued
    again = Db(path)
    try:
        assert asyncio.run(again.store.get_many([*many, "call_unknown"])) == many
    finally:
        again.close()


def test_sqlite_stores_values_as_they_are(tmp_path: Path) -> None:
    """History text is scrubbed on its way to disk; a signature is an opaque token and must not change."""
    db = Db(tmp_path / "history.sqlite3")
    try:
        asyncio.run(db.store.put_many({"call_a": f"opaque{SECRET}"}))
        asyncio.run(db.store.flush())
        assert db.rows("SELECT value FROM signatures") == [(f"opaque{SECRET}",)]
    finally:
        db.close()


def test_sqlite_retention_drops_expired_signatures_whatever_history_keeps(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    clock = Clock(time.time() - SIGNATURE_TTL - 3600)
    first = Db(path, clock)
    asyncio.run(first.store.put_many({"call_old": "1"}))
    clock.now = time.time()
    asyncio.run(first.store.put_many({"call_new": "2"}))
    asyncio.run(first.store.flush())
    first.close()
    again = Db(path, max_days=0)  # history rows never expire; pruning by age runs when the writer starts
    try:
        asyncio.run(again.history.flush())
        assert again.rows("SELECT id FROM signatures") == [("call_new",)]
    finally:
        again.close()


def test_sqlite_retention_by_size_counts_signatures(tmp_path: Path) -> None:
    limit = 256 * 1024
    db = Db(tmp_path / "history.sqlite3", max_bytes=limit)

    async def go() -> None:
        for n in range(20):  # ~40 KB each, 800 KB in all
            await db.store.put_many({f"call_{n:02d}": "s" * 40_000})
            await db.store.flush()
            assert db.path.stat().st_size <= limit

    try:
        asyncio.run(go())
        kept = [r[0] for r in db.rows("SELECT id FROM signatures ORDER BY rowid")]
        assert 1 <= len(kept) < 20 and kept[-1] == "call_19" and kept == sorted(kept)  # the newest stay
    finally:
        db.close()


def test_an_older_history_file_gets_the_signatures_table(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(OLD_SCHEMA)
    con.close()
    db = Db(path)
    try:
        assert db.rows("PRAGMA user_version") == [(VERSION,)]
        asyncio.run(db.store.put_many({"call_a": "1"}))
        asyncio.run(db.store.flush())
        assert db.rows("SELECT id FROM signatures") == [("call_a",)]
        assert len(db.history.read_rows("old")) == 2  # history kept
        assert db.rows("SELECT count(*) FROM responses") == [(0,)]
    finally:
        db.close()
