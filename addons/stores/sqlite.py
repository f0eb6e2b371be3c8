"""Session history in SQLite, written by a background thread so a slow disk never delays a reply.

Rows hold what was forwarded and key *names*, never a key: every text column is scrubbed in the writer
thread, even when the user turned prompt redaction off (that switch governs what goes upstream, not our
disk). JSON columns are scrubbed as encoded text, one pass each instead of a walk over every string: API
keys hold no character that JSON escapes, so a key inside a value appears verbatim in the encoding.

The writer also makes the writes of the other stores in the same file (`sqlite_responses.py`,
`sqlite_signatures.py`), in the same transactions: one connection writes, and retention weighs every table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from addons.stores.base import HistoryRow
from addons.stores.sqlite_schema import SCHEMA as SCHEMA  # the first schema: tests build old files with it
from addons.stores.sqlite_schema import migrate, prune
from addons.usage.totals import USAGE_TOKENS
from translators import json_codec

log = logging.getLogger(__name__)

COLUMNS = (
    "ts", "session_id", "answered_by", "backend", "model", "key_name", "project", "stream",
    "prompt", "params", "reply", "usage", "latency_ms", "status", "error", "frontend",
    *USAGE_TOKENS, "cost_usd",
)  # fmt: skip
JSON_COLUMNS = ("prompt", "params", "usage")
INSERT = f"INSERT INTO interactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
_STOP = object()
BATCH_WINDOW = 0.05  # seconds; history is read after a flush, so nobody waits for it
PRUNE_EVERY = 600.0  # seconds between deletions of rows past their age, traffic or not


class WriteOp(Protocol):
    """Another store's write, done by the history writer in its next batch (one transaction)."""

    def apply(self, db: sqlite3.Connection) -> None:
        """Inside the batch's transaction; raises only sqlite3.Error (which rolls the batch back)."""
        ...

    def written(self) -> None:
        """After the batch's transaction, committed or not."""
        ...


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "llm-intercept" / "history.sqlite3"


class SqliteHistory:
    """HistorySink in a local SQLite file."""

    def __init__(
        self,
        path: Path | None,
        scrub: Callable[[str], str],
        max_queue: int = 10_000,
        max_days: float = 0.0,
        max_bytes: int = 0,
    ) -> None:
        self.path = path
        self.scrub = scrub
        self.max_days = max_days  # 0: rows never expire
        self.max_bytes = max_bytes  # 0: no size limit
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._hurry = threading.Event()  # set by flush/close: write now, don't wait for more rows
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def start(self) -> None:
        if self.path is None or self._thread is not None:
            return
        # Owner-only from creation on (the addon sets umask 077 too). SQLite gives its -wal/-shm files the
        # database's mode, so a database left 0644 by an older version is tightened before it is opened.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for f in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))):
            if f.exists() and f.stat().st_mode & 0o077:
                os.chmod(f, 0o600)
        db = sqlite3.connect(self.path, timeout=10)
        try:
            # Incremental vacuum lets pruning give pages back to the file system. It takes effect only
            # before the first table and before WAL mode (older databases are converted by _prune).
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            migrate(db)
        finally:
            db.close()
        self._thread = threading.Thread(target=self._writer, name="llm-history", daemon=True)
        self._thread.start()

    def record(self, row: HistoryRow) -> None:
        """Queue one interaction; never blocks. Rows are dropped (and counted) if the writer is stuck."""
        if self._thread is None:
            return
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1

    def submit(self, op: WriteOp) -> bool:
        """Queue another store's write; never blocks. False when the writer is not running or is stuck."""
        if self._thread is None:
            return False
        try:
            self._queue.put_nowait(op)
        except queue.Full:
            return False
        return True

    async def flush(self) -> None:
        await asyncio.to_thread(self.drain)

    async def read(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read_rows, session_id, limit)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        done.wait(timeout)

    def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._hurry.set()
        self._thread.join(5)
        self._thread = None

    def read_rows(
        self, session_id: str, limit: int = 1000, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Oldest first. Blocking: call it in a worker thread."""
        if self.path is None or not self.path.exists():
            return []
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM interactions WHERE session_id = ?"
        args: list[Any] = [session_id]
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self.connect() as db:
            rows = db.execute(sql, args).fetchall()
        out = []
        for row in reversed(rows):
            item = dict(zip(("id", *COLUMNS), row, strict=True))
            for c in JSON_COLUMNS:
                if item[c] is not None:
                    item[c] = json.loads(item[c])
            item["stream"] = bool(item["stream"])
            out.append(item)
        return out

    def connect(self) -> sqlite3.Connection:
        """A connection of its own, for one thread."""
        assert self.path is not None
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _next_batch(self) -> list[Any]:
        """What arrives within BATCH_WINDOW of the first row goes into one transaction: a commit costs
        many times the CPU of a row (bench/README.md). A flush or stop cuts the wait short. Empty when
        nothing came for PRUNE_EVERY seconds, so that old rows still expire on an idle proxy."""
        try:
            batch = [self._queue.get(timeout=PRUNE_EVERY)]
        except queue.Empty:
            return []
        if not isinstance(batch[0], threading.Event) and batch[0] is not _STOP:
            self._hurry.wait(BATCH_WINDOW)
        self._hurry.clear()
        while len(batch) < 500:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _writer(self) -> None:
        db = self.connect()
        self._prune(db, by_age=True)
        pruned_at = time.monotonic()
        while True:
            batch = self._next_batch()
            wrote = self._write(db, batch)
            due = time.monotonic() - pruned_at >= PRUNE_EVERY
            if wrote or due:  # before flushes are released: a reader then sees the file within its limits
                self._prune(db, by_age=due)
            if due:
                pruned_at = time.monotonic()
            for r in batch:
                if isinstance(r, threading.Event):
                    r.set()
            if any(r is _STOP for r in batch):
                db.close()
                return

    def _write(self, db: sqlite3.Connection, batch: list[Any]) -> bool:
        """One transaction for the batch's rows and other stores' writes. False when there were none."""
        rows, ops = [], []
        for r in batch:
            if isinstance(r, HistoryRow):
                try:
                    rows.append(_row(r, self.scrub))
                except Exception as e:  # e.g. a prompt nested too deeply to encode: skip it, go on
                    log.warning("history: skipped one interaction of session %s: %s", r.session_id, e)
            elif r is not _STOP and not isinstance(r, threading.Event):
                ops.append(r)
        if not rows and not ops:
            return False
        try:
            with db:
                db.executemany(INSERT, rows)
                for op in ops:
                    op.apply(db)
        except sqlite3.Error as e:
            log.error("history: could not write %d row(s) and %d other write(s): %s", len(rows), len(ops), e)
        for op in ops:
            op.written()
        return True

    def _prune(self, db: sqlite3.Connection, by_age: bool) -> None:
        """Deletes rows past `max_days` (when `by_age`) and the oldest rows while the data outgrows
        `max_bytes`, then hands the freed pages back to the file system. Runs in the writer thread."""
        try:
            if not prune(db, self.max_days if by_age else None, self.max_bytes):
                return
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                db.execute("PRAGMA incremental_vacuum").fetchall()  # one page per step: run it out
            else:  # a database from an older version: one full vacuum converts it
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
                db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.error("history: could not prune %s: %s", self.path, e)


def _row(r: HistoryRow, scrub: Callable[[str], str]) -> tuple[Any, ...]:
    out: list[Any] = []
    for c in COLUMNS:
        v = getattr(r, c)
        if c in JSON_COLUMNS and v is not None:
            v = json_codec.dumps(v).decode("utf-8")
        out.append(scrub(v) if isinstance(v, str) else v)
    return tuple(out)
