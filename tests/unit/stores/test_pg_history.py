"""The PostgreSQL history: the rows SQLite would keep, written in batches, bounded while the server is away,
pruned by age, and no key in a dump of the schema."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from addons.stores.base import StoredResponse
from addons.stores.sqlite import SqliteHistory
from tests.stores_servers import free_port
from tests.unit.stores.test_contracts import row
from tests.unit.stores.test_pg_contracts import (  # noqa: F401  (fixtures)
    Build,
    namespace_fixture,
    pg_url_fixture,
    query,
    scrub,
    stores_fixture,
)
from tests.unit.stores.test_responses import item

# Real-looking keys, as users paste them into prompts.
KEYS = (
    "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",
    "AIzaSyD4f8Kq2mX7pL9vR3tN6wB1cZ5hJ0gY8sE",
)


def redact(text: str) -> str:
    for key in KEYS:
        text = text.replace(key, "[REDACTED]")
    return text


def test_rows_read_back_as_the_sqlite_history_has_them(stores: Build, tmp_path: Path) -> None:
    history, _ = stores()
    sqlite = SqliteHistory(tmp_path / "h.sqlite3", scrub)
    sqlite.start()
    rows = [row("s1", n, text=f"question {n} ünïcødé ✓") for n in range(3)]
    rows[1].stream, rows[1].usage, rows[1].error, rows[1].status = 1, None, "upstream said no", 502
    rows[2].frontend, rows[2].project, rows[2].params = "anthropic", "proj", {"nested": {"x": [1, 2.5, None]}}

    async def go() -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
        for r in rows:
            history.record(r)
            sqlite.record(r)
        await history.flush()
        await sqlite.flush()
        return await history.read("s1", 10), await sqlite.read("s1", 10)

    try:
        ours, theirs = asyncio.run(go())
    finally:
        sqlite.close()
    assert [{**r, "id": 0} for r in ours] == [{**r, "id": 0} for r in theirs]
    assert len({r["id"] for r in ours}) == 3


def test_rows_arriving_together_are_written_in_one_transaction(stores: Build, pg_url: str) -> None:
    history, _ = stores()

    async def go() -> None:
        for n in range(300):
            history.record(row("s1", n))
        await history.flush()

    asyncio.run(go())
    table = f"{history.pool.table_prefix}.interactions"
    ((count, transactions),) = query(pg_url, f"SELECT count(*), count(DISTINCT xmin::text) FROM {table}")
    assert count == 300 and transactions <= 2  # one, unless a flush cut the batch window short


def test_a_full_buffer_drops_and_counts_never_blocks(stores: Build, caplog: pytest.LogCaptureFixture) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/test"  # refuses: rows wait in the buffer
    history, _ = stores(url=nobody, max_queue=5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for n in range(9):
            history.record(row("s1", n))
    assert time.monotonic() - started < 0.05
    assert history.dropped == 4
    assert "buffer full" in caplog.text and "4 row(s) dropped" in caplog.text
    assert caplog.text.count("buffer full") == 3  # at 1, 2 and 4 dropped: not a line per row


def test_rows_past_max_days_are_pruned(stores: Build) -> None:
    old = row("s1", 1)
    old.ts = time.time() - 3 * 86400
    first, _ = stores()
    first.record(old)
    first.record(row("s1", 2))
    asyncio.run(first.flush())
    assert [r["params"]["n"] for r in asyncio.run(first.read("s1", 10))] == [1, 2]
    again, _ = stores(max_days=1)  # prunes at start

    async def go() -> list[int]:
        deadline = time.monotonic() + 5
        while len(rows := await again.read("s1", 10)) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return [r["params"]["n"] for r in rows]

    assert asyncio.run(go()) == [2]


def test_no_key_in_a_dump_of_the_schema(stores: Build, pg_url: str) -> None:
    history, responses = stores(scrub=redact)
    said = f"my keys: {KEYS[0]} and {KEYS[1]}"
    r = row("s1", 1, text=said)
    r.reply, r.error, r.params, r.usage, r.project = said, said, {"note": said}, {"k": said}, said

    async def go() -> None:
        history.record(r)
        await responses.put(
            StoredResponse("resp_1", "s1", None, {"said": said}, [{"c": said}], [{"c": said}])
        )
        await history.flush()

    asyncio.run(go())
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is not installed"
    url = urlsplit(pg_url)
    dump = subprocess.run(
        [pg_dump, "-h", url.hostname or "", "-p", str(url.port), "-U", url.username or "", "-n",
         history.pool.schema, url.path.lstrip("/")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "[REDACTED]" in dump and "resp_1" in dump
    for key in KEYS:
        assert key not in dump and key[-12:] not in dump


def test_a_closed_sink_starts_again(stores: Build) -> None:
    history, responses = stores()
    history.record(row("s1", 1))
    history.close()  # writes what is queued
    history.start()
    history.record(row("s1", 2))

    async def go() -> list[int]:
        await responses.put(item("resp_1"))
        await history.flush()
        return [r["params"]["n"] for r in await history.read("s1", 10)]

    assert asyncio.run(go()) == [1, 2]
    assert asyncio.run(responses.get("resp_1")) == item("resp_1")
