"""The response store in the history database: reads before the writes reach the file, persistence,
retention shared with history, and the migration of history files written before the schema had a version.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from addons.stores.base import HistoryRow
from addons.stores.sqlite_schema import VERSION
from tests.unit.stores.test_responses import SECRET, Sqlite, item, said


def test_sqlite_reads_its_writes_before_they_reach_the_file(tmp_path: Path) -> None:
    db = Sqlite(tmp_path / "history.sqlite3")
    lock = sqlite3.connect(db.path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the writer now waits for this lock; readers (WAL) do not

    async def go() -> None:
        await db.store.put(item("resp_1"))
        await db.store.put(item("resp_2", "resp_1"))
        await db.store.put(item("resp_3"))
        await asyncio.sleep(0.2)  # well past the writer's batch window
        assert db.rows("SELECT id FROM responses") == []
        assert await db.store.get("resp_1") == item("resp_1")
        assert said(await db.store.conversation("resp_2"))[0] == "question resp_1"
        assert await db.store.delete("resp_3") is True and await db.store.get("resp_3") is None
        lock.execute("COMMIT")
        await db.store.flush()
        assert db.rows("SELECT id FROM responses ORDER BY id") == [("resp_1",), ("resp_2",)]
        assert await db.store.get("resp_1") == item("resp_1")

    try:
        asyncio.run(go())
    finally:
        lock.close()
        db.close()


def test_sqlite_a_newer_put_waits_while_an_older_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("addons.stores.sqlite.BATCH_WINDOW", 0.3)  # the second put's batch waits this long
    db = Sqlite(tmp_path / "history.sqlite3")
    lock = sqlite3.connect(db.path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")

    async def go() -> None:
        await db.store.put(item("resp_1", text="first"))
        await asyncio.sleep(0.5)  # the writer holds the first put, waiting for the lock
        await db.store.put(item("resp_1", text="second"))
        lock.execute("COMMIT")
        while not db.rows("SELECT id FROM responses"):  # the first put is written now
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert said(await db.store.conversation("resp_1"))[0] == "second"  # not the older row on disk
        await db.store.flush()
        assert said(await db.store.conversation("resp_1"))[0] == "second"

    try:
        asyncio.run(go())
    finally:
        lock.close()
        db.close()


def test_sqlite_keeps_responses_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = Sqlite(path)
    asyncio.run(first.store.put(item("resp_1")))
    first.close()  # writes what is queued
    again = Sqlite(path)
    try:
        assert asyncio.run(again.store.get("resp_1")) == item("resp_1")
    finally:
        again.close()


def test_sqlite_never_writes_a_key_to_disk(tmp_path: Path) -> None:
    db = Sqlite(tmp_path / "history.sqlite3")
    try:
        asyncio.run(db.store.put(item("resp_1", text=f"my key is {SECRET}")))
        asyncio.run(db.store.flush())
        con = sqlite3.connect(db.path)
        dump = "\n".join(con.iterdump())
        con.close()
        assert "resp_1" in dump and SECRET not in dump and "[REDACTED]" in dump
    finally:
        db.close()


def history_row(n: int, text: str = "hi", ts: float | None = None, frontend: str | None = None) -> HistoryRow:
    row = HistoryRow(
        session_id="s", answered_by="backend", backend="b", model="m", key_name="KEY_1", project=None,
        stream=0, prompt=[{"role": "user", "content": text}], params={"n": n}, reply=f"reply {n}",
        usage=None, latency_ms=1.0, status=200, error=None,
    )  # fmt: skip
    if ts is not None:
        row.ts = ts
    if frontend is not None:
        row.frontend = frontend
    return row


def test_sqlite_retention_by_age_covers_responses(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = Sqlite(path)
    old = time.time() - 3 * 86400

    async def fill() -> None:
        await first.store.put(item("resp_new"))
        aged = item("resp_aged")
        aged.created_at = old
        await first.store.put(aged)
        first.history.record(history_row(1, ts=old))
        first.history.record(history_row(2))
        await first.history.flush()

    asyncio.run(fill())
    first.close()
    again = Sqlite(path, max_days=2)  # pruning by age runs when the writer starts
    try:
        asyncio.run(again.history.flush())
        assert again.rows("SELECT id FROM responses") == [("resp_new",)]
        assert again.rows("SELECT params FROM interactions") == [('{"n":2}',)]
    finally:
        again.close()


def test_sqlite_retention_by_size_counts_responses(tmp_path: Path) -> None:
    limit = 256 * 1024
    db = Sqlite(tmp_path / "history.sqlite3", max_bytes=limit)

    async def go() -> None:
        for n in range(20):  # ~40 KB each, 800 KB in all, half of it history, half responses
            db.history.record(history_row(n, "h" * 20_000))
            await db.store.put(item(f"resp_{n:02d}", text="r" * 20_000))
            await db.store.flush()
            assert db.path.stat().st_size <= limit

    try:
        asyncio.run(go())
        kept = [r[0] for r in db.rows("SELECT id FROM responses ORDER BY rowid")]
        assert 1 <= len(kept) < 20 and kept[-1] == "resp_19" and kept == sorted(kept)  # the newest stay
        assert 1 <= len(db.rows("SELECT id FROM interactions")) < 20
    finally:
        db.close()


# -- migration of history files ------------------------------------------------------------------------

# The history schema as released before it carried a version (user_version 0).
OLD_SCHEMA = """
CREATE TABLE interactions (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, session_id TEXT NOT NULL, answered_by TEXT NOT NULL,
    backend TEXT, model TEXT, key_name TEXT, project TEXT, stream INTEGER NOT NULL, prompt TEXT NOT NULL,
    params TEXT NOT NULL, reply TEXT, usage TEXT, latency_ms REAL, status INTEGER, error TEXT
);
CREATE INDEX interactions_session ON interactions (session_id, id);
INSERT INTO interactions (ts, session_id, answered_by, backend, model, key_name, stream, prompt, params,
    reply, usage, latency_ms, status)
VALUES (1000.5, 'old', 'backend', 'b', 'm', 'KEY_1', 1, '[{"role":"user","content":"before"}]', '{}',
    'reply before', '{"total_tokens":3}', 12.5, 200);
INSERT INTO interactions (ts, session_id, answered_by, stream, prompt, params, status, error)
VALUES (1001.0, 'old', 'proxy', 0, '[]', '{"n":1}', 502, 'upstream down');
"""


def test_an_old_history_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(OLD_SCHEMA)
    con.close()
    db = Sqlite(path)
    try:
        rows = db.history.read_rows("old")
        assert [(r["ts"], r["reply"], r["error"], r["frontend"]) for r in rows] == [
            (1000.5, "reply before", None, "openai_chat"),
            (1001.0, None, "upstream down", "openai_chat"),
        ]
        assert rows[0]["prompt"] == [{"role": "user", "content": "before"}] and rows[0]["stream"] is True
        assert rows[0]["usage"] == {"total_tokens": 3} and rows[0]["latency_ms"] == 12.5
        assert db.rows("PRAGMA user_version") == [(VERSION,)]
        db.history.record(history_row(7, frontend="responses"))
        asyncio.run(db.store.put(item("resp_1")))
        asyncio.run(db.store.flush())
    finally:
        db.close()
    again = Sqlite(path)  # a migrated file opens as it is
    try:
        assert [r["frontend"] for r in again.history.read_rows("s")] == ["responses"]
        assert len(again.history.read_rows("old")) == 2
        assert asyncio.run(again.store.get("resp_1")) == item("resp_1")
    finally:
        again.close()


def test_a_file_from_a_newer_version_is_used_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite3"
    Sqlite(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {VERSION + 1}")
    con.close()
    with caplog.at_level(logging.WARNING):
        db = Sqlite(path)
    try:
        db.history.record(history_row(1))
        asyncio.run(db.history.flush())
        assert len(db.history.read_rows("s")) == 1 and db.rows("PRAGMA user_version") == [(VERSION + 1,)]
        assert "newer schema" in caplog.text
    finally:
        db.close()
