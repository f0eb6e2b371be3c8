"""The PostgreSQL stores against the HistorySink and ResponseStore contracts (the very tests the embedded
stores pass, imported here with this module's fixtures), plus what only a shared database adds: another
instance reads a put at once, and reads see their own writes before these reach the database.

Real PostgreSQL: the machine's (127.0.0.1:5432, database test) or a throwaway one; each test has its own
schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from addons.stores import pg
from addons.stores.pg_history import PgHistory
from addons.stores.pg_responses import PgResponses
from addons.stores.pg_schema import quoted, schema_name
from tests.stores_servers import postgres_server
from tests.unit.stores import test_contracts, test_responses
from tests.unit.stores.test_contracts import (  # noqa: F401  (collected here with this module's fixtures)
    test_history_names_the_front_end,
    test_history_never_stores_a_key,
    test_history_reads_a_sessions_newest_rows_oldest_first,
)
from tests.unit.stores.test_responses import (  # noqa: F401
    item,
    said,
    test_a_missing_link_ends_the_chain_with_a_warning,
    test_a_put_again_replaces,
    test_any_json_round_trips,
    test_conversation_walks_the_chain_oldest_first,
    test_delete_and_unknown_ids,
    test_put_get_round_trips_exactly_and_hands_out_copies,
    test_what_is_not_json_is_not_stored,
)

SECRETS = (test_contracts.SECRET, test_responses.SECRET)


def scrub(text: str) -> str:
    for secret in SECRETS:
        text = text.replace(secret, "[REDACTED]")
    return text


@pytest.fixture(name="pg_url", scope="session")
def pg_url_fixture() -> Iterator[str]:
    url, server = postgres_server()
    yield url
    if server is not None:
        server.close()


def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(name="namespace")
def namespace_fixture(pg_url: str) -> Iterator[str]:
    """A namespace of this test's own; its schema is dropped afterwards. (The other test_pg_* modules
    import these fixtures by their function names.)"""
    ns = f"llm-test-{uuid.uuid4().hex[:12]}"
    yield ns
    query(pg_url, f"DROP SCHEMA IF EXISTS {quoted(schema_name(ns))} CASCADE")


Build = Callable[..., tuple[PgHistory, PgResponses]]


@pytest.fixture(name="stores")
def stores_fixture(pg_url: str, namespace: str) -> Iterator[Build]:
    """Builds started stores (any number: several instances) in this test's schema; closes them after."""
    made: list[PgHistory] = []

    def build(**kw: Any) -> tuple[PgHistory, PgResponses]:
        history, responses = pg.build(kw.pop("url", pg_url), namespace, kw.pop("scrub", scrub), **kw)
        history.start()
        made.append(history)
        return history, responses

    yield build
    for history in made:
        history.close()


@pytest.fixture
def history(stores: Build) -> PgHistory:
    return stores()[0]


@pytest.fixture
def store(stores: Build) -> PgResponses:
    return stores()[1]


def test_another_instance_reads_a_put_as_soon_as_it_returns(stores: Build) -> None:
    (_, a), (_, b) = stores(), stores()

    async def go() -> None:
        await a.put(item("resp_1"))
        assert await b.get("resp_1") == item("resp_1")  # no flush: put waits for its commit
        await b.put(item("resp_2", "resp_1"))
        assert said(await a.conversation("resp_2")) == [
            "question resp_1", "answer resp_1", "question resp_2", "answer resp_2"
        ]  # fmt: skip
        assert await b.delete("resp_1") is True
        await b.flush()
        assert await a.get("resp_1") is None

    asyncio.run(go())


def test_reads_see_their_writes_before_they_reach_the_database(stores: Build, pg_url: str) -> None:
    history, store = stores()
    table = f"{quoted(history.pool.schema)}.responses"

    async def go() -> None:
        await store.put(item("resp_0"))  # the schema exists once a put returns
        conn = await asyncpg.connect(pg_url)
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # writers wait; readers do not
        try:
            await store.put(item("resp_1"))  # waits its PUT_WAIT, then returns: kept here meanwhile
            await store.put(item("resp_2", "resp_1"))
            assert [r["id"] for r in await conn.fetch(f"SELECT id FROM {table}")] == ["resp_0"]
            assert await store.get("resp_1") == item("resp_1")
            assert said(await store.conversation("resp_2"))[0] == "question resp_1"
            assert await store.delete("resp_1") is True and await store.get("resp_1") is None
        finally:
            await tx.rollback()
            await conn.close()
        await store.flush()
        assert await store.get("resp_1") is None and await store.get("resp_2") == item("resp_2", "resp_1")

    asyncio.run(go())


def test_conversation_mixes_kept_and_stored_links(stores: Build) -> None:
    (_, a), (_, b) = stores(), stores()

    async def go() -> None:
        for n in range(1, 6):
            await a.put(item(f"resp_{n}", f"resp_{n - 1}" if n > 1 else None))
        await b.put(item("resp_3", "resp_2", text="changed on b"))  # b's own, newer than the table's
        await b.delete("resp_1")
        assert said(await b.conversation("resp_5"))[::2] == [
            "question resp_2", "changed on b", "question resp_4", "question resp_5"
        ]  # fmt: skip

    asyncio.run(go())


def test_text_postgresql_refuses_is_stored_replaced(history: PgHistory) -> None:
    async def go() -> None:
        row = test_contracts.row("s1", 1)
        row.reply, row.error = "nul \x00 here", "lone \ud800 surrogate"
        history.record(row)
        await history.flush()
        (stored,) = await history.read("s1", 10)
        assert (stored["reply"], stored["error"]) == ("nul \ufffd here", "lone ? surrogate")

    asyncio.run(go())
