"""PostgreSQL going away and coming back, on a throwaway server this test starts and stops: requests are
never held up, history waits in its buffer and is written afterwards, and a lookup that needs the database
while it is away raises StoreUnavailable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from addons.stores import pg
from addons.stores.base import StoreUnavailable
from addons.stores.pg_history import PgHistory
from tests.stores_servers import ThrowawayPostgres
from tests.unit.stores.test_contracts import row
from tests.unit.stores.test_pg_contracts import scrub
from tests.unit.stores.test_responses import item, said

NAMESPACE = "llm-faults"  # the throwaway server is this test's alone


@pytest.fixture
def server() -> Iterator[ThrowawayPostgres]:
    made = ThrowawayPostgres().start()
    yield made
    made.close()


@pytest.fixture
def closing() -> Iterator[list[PgHistory]]:
    started: list[PgHistory] = []
    yield started
    for history in started:
        history.close()


async def read_until(history: PgHistory, session: str, count: int, seconds: float = 10) -> list[int]:
    """The session's rows' numbers once there are `count` (or whatever is there after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            rows = await history.read(session, 100)
        except StoreUnavailable:
            rows = []
        if len(rows) >= count or time.monotonic() > deadline:
            return [r["params"]["n"] for r in rows]
        await asyncio.sleep(0.05)


def test_postgres_going_away_and_coming_back(server: ThrowawayPostgres, closing: list[PgHistory]) -> None:
    history, responses = pg.build(server.url, NAMESPACE, scrub)
    history.start()
    closing.append(history)

    async def go() -> None:
        for n in range(5):
            history.record(row("s1", n))
        await responses.put(item("resp_1"))
        await history.flush()
        await asyncio.to_thread(server.stop)
        started = time.monotonic()
        for n in range(5, 10):
            history.record(row("s1", n))
        assert time.monotonic() - started < 0.05  # recording never waits for the database
        await responses.put(item("resp_2", "resp_1"))
        await history.flush()
        assert time.monotonic() - started < 3  # nor do put and flush, beyond their short bounds
        assert history.down
        assert await responses.get("resp_2") == item("resp_2", "resp_1")  # kept here until written
        for lookup in (history.read("s1", 10), responses.get("resp_1"), responses.conversation("resp_2")):
            with pytest.raises(StoreUnavailable):
                await lookup
        await asyncio.to_thread(server.start)
        assert await read_until(history, "s1", 10) == list(range(10))
        assert not history.down

    asyncio.run(go())
    again, others = pg.build(server.url, NAMESPACE, scrub)  # another instance sees it all
    again.start()
    closing.append(again)
    assert said(asyncio.run(others.conversation("resp_2"))) == [
        "question resp_1", "answer resp_1", "question resp_2", "answer resp_2"
    ]  # fmt: skip


def test_an_instance_started_while_postgres_is_down_catches_up(
    server: ThrowawayPostgres, closing: list[PgHistory]
) -> None:
    server.stop()
    history, responses = pg.build(server.url, NAMESPACE, scrub)
    history.start()  # no error: the schema is made once the server answers
    closing.append(history)

    async def go() -> None:
        for n in range(3):
            history.record(row("s1", n))
        await responses.put(item("resp_1"))
        await history.flush()
        assert history.down and history.dropped == 0
        await asyncio.to_thread(server.start)
        assert await read_until(history, "s1", 3) == [0, 1, 2]
        await responses.flush()
        assert await responses.get("resp_1") == item("resp_1")

    asyncio.run(go())


def test_close_while_postgres_is_down_returns_and_says_what_was_lost(
    server: ThrowawayPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    history, _ = pg.build(server.url, NAMESPACE, scrub)
    history.start()
    server.stop()
    history.record(row("s1", 1))
    started = time.monotonic()
    history.drain()
    history.close()
    assert time.monotonic() - started < 8
    assert "1 row(s) not written" in caplog.text
