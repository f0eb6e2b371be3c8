"""The response stores (ResponseStore): the contract, for the memory store and the one in the history
database, and the memory store's bounds. What only the SQLite store has: test_sqlite_responses.py.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addons.stores.base import ResponseStore, StoredResponse
from addons.stores.responses import encode
from addons.stores.responses_memory import MemoryResponses
from addons.stores.sqlite import SqliteHistory
from addons.stores.sqlite_responses import SqliteResponses

SECRET = "sk-responses-0123456789abcdef"
NOW = time.time()  # every item's created_at, so that two built alike compare equal


def scrub(text: str) -> str:
    return text.replace(SECRET, "[REDACTED]")


class Sqlite:
    """A started history file and the response store in it."""

    def __init__(self, path: Path, **limits: Any) -> None:
        self.path = path
        self.history = SqliteHistory(path, scrub, **limits)
        self.history.start()
        self.store = SqliteResponses(self.history)

    def close(self) -> None:
        self.history.close()

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


STORES: dict[str, Callable[[Path], tuple[ResponseStore, Callable[[], None]]]] = {
    "memory": lambda tmp: (MemoryResponses(), lambda: None),
    "sqlite": lambda tmp: (lambda db: (db.store, db.close))(Sqlite(tmp / "history.sqlite3")),
}


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResponseStore]:
    made, close = STORES[request.param](tmp_path)
    yield made
    close()


def item(rid: str, previous: str | None = None, text: str = "", session: str = "s") -> StoredResponse:
    said = text or f"question {rid}"
    return StoredResponse(
        id=rid,
        session=session,
        previous_id=previous,
        response={"id": rid, "object": "response", "output": [{"type": "message", "content": f"to {rid}"}]},
        input_items=[{"id": f"msg_{rid}", "type": "message", "role": "user", "content": said}],
        messages=[{"role": "user", "content": said}, {"role": "assistant", "content": f"answer {rid}"}],
        created_at=NOW,
    )


def said(messages: list[dict[str, Any]] | None) -> list[str]:
    assert messages is not None
    return [m["content"] for m in messages]


# -- the contract, for both -----------------------------------------------------------------------------


def test_put_get_round_trips_exactly_and_hands_out_copies(store: ResponseStore) -> None:
    original = item("resp_1", "resp_0")
    original.response["usage"] = {"input_tokens": 12, "cost": 0.125, "cached": None, "ok": True}
    original.messages[0]["content"] = [{"type": "text", "text": 'ünïcødé ✓ \u2028 "quoted" \\ 😀'}]

    async def go() -> None:
        await store.put(original)
        first = await store.get("resp_1")
        assert first == original and first is not original
        first.response["output"].clear()
        await store.flush()
        assert await store.get("resp_1") == original  # after the write too, and untouched by the change

    asyncio.run(go())


def test_delete_and_unknown_ids(store: ResponseStore) -> None:
    async def go() -> None:
        assert await store.get("resp_nope") is None and await store.delete("resp_nope") is False
        await store.put(item("resp_1"))
        await store.put(item("resp_2"))
        assert await store.delete("resp_1") is True
        assert await store.get("resp_1") is None and await store.delete("resp_1") is False
        await store.flush()
        assert await store.get("resp_1") is None and await store.get("resp_2") == item("resp_2")

    asyncio.run(go())


def test_a_put_again_replaces(store: ResponseStore) -> None:
    async def go() -> None:
        await store.put(item("resp_1", text="first"))
        await store.put(item("resp_1", text="second"))
        assert said(await store.conversation("resp_1")) == ["second", "answer resp_1"]
        await store.flush()
        assert said(await store.conversation("resp_1")) == ["second", "answer resp_1"]

    asyncio.run(go())


def test_conversation_walks_the_chain_oldest_first(store: ResponseStore) -> None:
    async def go() -> None:
        await store.put(item("resp_1"))
        await store.put(item("resp_2", "resp_1"))
        await store.put(item("resp_3", "resp_2"))
        await store.put(item("resp_2b", "resp_1"))  # a branch: resp_1 continued twice
        chain = ["question resp_1", "answer resp_1", "question resp_2", "answer resp_2"]
        assert said(await store.conversation("resp_3")) == [*chain, "question resp_3", "answer resp_3"]
        assert said(await store.conversation("resp_2")) == chain
        assert said(await store.conversation("resp_2b"))[2:] == ["question resp_2b", "answer resp_2b"]
        assert said(await store.conversation("resp_3", limit=2)) == [
            *chain[2:],
            "question resp_3",
            "answer resp_3",
        ]
        assert await store.conversation("resp_unknown") is None

    asyncio.run(go())


def test_a_missing_link_ends_the_chain_with_a_warning(
    store: ResponseStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        await store.put(item("resp_1"))
        await store.put(item("resp_2", "resp_1"))
        await store.put(item("resp_3", "resp_2"))
        await store.put(item("resp_x", "resp_gone"))
        await store.delete("resp_2")
        with caplog.at_level(logging.WARNING):
            assert said(await store.conversation("resp_3")) == ["question resp_3", "answer resp_3"]
            assert said(await store.conversation("resp_x")) == ["question resp_x", "answer resp_x"]
        assert "resp_2" in caplog.text and "resp_gone" in caplog.text

    asyncio.run(go())


def test_what_is_not_json_is_not_stored(store: ResponseStore, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        with caplog.at_level(logging.WARNING):
            await store.put(item("resp_bad", text="\ud800"))  # a lone surrogate a client sent as \\ud800
        assert "resp_bad not stored" in caplog.text
        await store.flush()
        assert await store.get("resp_bad") is None

    asyncio.run(go())


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_any_json_round_trips(store: ResponseStore, value: Any) -> None:
    stored = StoredResponse(
        "resp_any", "s", None, {"v": value}, [{"v": value}], [{"role": "user", "v": value}]
    )

    async def go() -> None:
        await store.put(stored)
        assert await store.get("resp_any") == stored
        await store.flush()
        assert await store.get("resp_any") == stored

    asyncio.run(go())


# -- the memory store's bounds -------------------------------------------------------------------------


def test_memory_evicts_the_least_recently_used_beyond_its_count() -> None:
    store = MemoryResponses(max_items=3)

    async def go() -> list[str]:
        for n in (1, 2, 3):
            await store.put(item(f"resp_{n}"))
        await store.get("resp_1")  # used: resp_2 is now the least recently used
        await store.put(item("resp_4"))
        return [rid for rid in ("resp_1", "resp_2", "resp_3", "resp_4") if await store.get(rid)]

    assert asyncio.run(go()) == ["resp_1", "resp_3", "resp_4"]


def test_memory_evicts_the_oldest_beyond_its_size(caplog: pytest.LogCaptureFixture) -> None:
    one = encode(item("resp_1", text="x" * 1000))
    assert one is not None
    store = MemoryResponses(max_bytes=2 * one.size + 10)

    async def go() -> list[str]:
        for n in (1, 2, 3):
            await store.put(item(f"resp_{n}", text="x" * 1000))
        with caplog.at_level(logging.WARNING):
            await store.put(item("resp_huge", text="x" * 10 * one.size))  # alone over the limit
        return [rid for rid in ("resp_1", "resp_2", "resp_3", "resp_huge") if await store.get(rid)]

    assert asyncio.run(go()) == ["resp_2", "resp_3"]  # the huge one pushed nothing out
    assert "resp_huge not stored" in caplog.text
