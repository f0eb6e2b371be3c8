"""Session history in PostgreSQL, written in batches by a task on the pool's own loop.

`record` only appends to a bounded buffer: a reply never waits for the database. While PostgreSQL is
unreachable the rows stay in the buffer and are written, in order, once it answers again; rows that do not
fit are counted and logged, never a blocked request or an error. Text is scrubbed of keys exactly as the
SQLite history does (the same row encoding), whatever the user set prompt redaction to.

The writer also makes the response store's writes (`pg_responses.py`), in the same transactions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any, Protocol

import asyncpg

from addons.stores.base import HistoryRow
from addons.stores.pg_pool import PgPool, StoreUnavailable
from addons.stores.pg_schema import prune
from addons.stores.sqlite import COLUMNS, JSON_COLUMNS
from addons.stores.sqlite import _row as encode_row
from translators import json_codec

log = logging.getLogger(__name__)

BATCH_WINDOW = 0.05  # seconds the writer collects rows after the first, for one transaction
BATCH_MAX = 500
RETRY_EVERY = 1.0  # seconds between attempts while PostgreSQL is unreachable
PRUNE_EVERY = 600.0  # seconds between deletions of rows past their age
FLUSH_WAIT = 5.0  # seconds flush and drain wait at most


class PgWriteOp(Protocol):
    """Another store's write, made by the history writer in its next transaction."""

    async def apply(self, conn: asyncpg.Connection, schema: str) -> None:
        """Inside the batch's transaction; `schema` is the quoted schema name."""
        ...

    def written(self) -> None:
        """After the transaction committed, or after the write was given up (a statement refused)."""
        ...


class PgHistory:
    """HistorySink in PostgreSQL. Owns the pool's life cycle: `start` starts it, `close` stops it."""

    def __init__(
        self, pool: PgPool, scrub: Callable[[str], str], max_queue: int = 10_000, max_days: float = 0.0
    ) -> None:
        self.pool = pool
        self.scrub = scrub
        self.max_queue = max_queue
        self.max_days = max_days  # 0: rows never expire
        self.dropped = 0  # rows refused because the buffer was full
        self.down = False  # the last write found PostgreSQL unreachable
        self._lock = threading.Lock()  # record and flush run on other threads than the writer
        self._buf: deque[HistoryRow | PgWriteOp] = deque()
        self._accepted = 0  # items ever queued: an item's sequence number is this count after it
        self._settled = 0  # items ever written or given up, oldest first
        self._waiters: list[tuple[int, concurrent.futures.Future[bool]]] = []
        self._idle = False  # the writer waits for _wake
        self._stopping = False
        # The writer's events, made anew for each start (an event belongs to the loop that waits on it); set
        # them through the pool's call_soon. _halt: close() cuts a wait for PostgreSQL short.
        self._wake, self._hurry, self._halt = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._writer: concurrent.futures.Future[None] | None = None
        s = pool.table_prefix
        self._insert = (
            f"INSERT INTO {s}.interactions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
        )
        self._select = (
            f"SELECT id, {', '.join(COLUMNS)} FROM {s}.interactions WHERE session_id = $1 "
            "ORDER BY id DESC LIMIT $2"
        )

    @property
    def enabled(self) -> bool:
        return True

    def start(self) -> None:
        if self._writer is not None:
            return
        self.pool.start()
        self._stopping = False
        self._wake, self._hurry, self._halt = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._writer = self.pool.spawn(self._write_forever())
        self._writer.add_done_callback(_report)

    def record(self, row: HistoryRow) -> None:
        """Queue one interaction; never blocks. Dropped, and counted, when the buffer is full."""
        if self._writer is None or self.submit(row) is not None:
            return
        with self._lock:
            self.dropped += 1
            dropped, waiting = self.dropped, len(self._buf)
        if dropped & (dropped - 1) == 0:  # 1, 2, 4, 8...: the log shows the count without a line per row
            log.warning(
                "history: buffer full (%d waiting for PostgreSQL): %d row(s) dropped", waiting, dropped
            )

    def submit(self, item: HistoryRow | PgWriteOp) -> int | None:
        """Queue a row or another store's write; never blocks. Its sequence number for `written`, or None
        when the writer is not running or the buffer is full. Both go into the next batch: whoever needs
        one written waits with `written`, which hurries the batch (a wake-up of the writer's thread per
        item would cost every request a GIL hand-off)."""
        with self._lock:
            if self._writer is None or self._stopping or len(self._buf) >= self.max_queue:
                return None
            self._buf.append(item)
            self._accepted += 1
            seq, wake = self._accepted, self._idle
            self._idle = False
        if wake:
            self.pool.call_soon(self._wake.set)
        return seq

    async def written(self, seq: int, timeout: float = FLUSH_WAIT) -> bool:
        """Waits until the items up to `seq` are written; False when PostgreSQL is unreachable or it takes
        longer than `timeout`."""
        future = asyncio.wrap_future(self._waiter(seq))
        done, _ = await asyncio.wait({future}, timeout=timeout)
        return bool(done) and future.result()

    async def flush(self) -> None:
        if self._writer is not None:
            await self.written(self._accepted)

    def drain(self, timeout: float = FLUSH_WAIT) -> None:
        if self._writer is None:
            return
        try:
            self._waiter(self._accepted).result(timeout)
        except concurrent.futures.TimeoutError:
            log.warning("history: rows still waiting for PostgreSQL after %.0f s", timeout)

    async def read(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Oldest first. Raises StoreUnavailable when PostgreSQL cannot answer."""
        rows = await self.pool.run(lambda conn: conn.fetch(self._select, session_id, limit))
        out = []
        for row in reversed(rows):
            item = dict(row.items())
            for c in JSON_COLUMNS:
                if item[c] is not None:
                    item[c] = json_codec.loads(item[c])
            item["stream"] = bool(item["stream"])
            out.append(item)
        return out

    def close(self) -> None:
        """Writes what is queued (if PostgreSQL answers within a few seconds) and stops the pool."""
        if self._writer is None:
            return
        with self._lock:
            self._stopping = True
        for event in (self._wake, self._hurry, self._halt):
            self.pool.call_soon(event.set)
        try:
            self._writer.result(FLUSH_WAIT)
        except concurrent.futures.TimeoutError:
            log.warning("history: the PostgreSQL writer did not stop within %.0f s", FLUSH_WAIT)
        if left := len(self._buf):
            log.error("history: %d row(s) not written: PostgreSQL was unreachable at shutdown", left)
        self.pool.stop()
        self._writer = None

    def _waiter(self, seq: int) -> concurrent.futures.Future[bool]:
        """Resolved True once the items up to `seq` are written, False at once while PostgreSQL is down."""
        future: concurrent.futures.Future[bool] = concurrent.futures.Future()
        with self._lock:
            if self._settled >= seq or self.down or self._writer is None:
                _resolve(future, self._settled >= seq)
                return future
            self._waiters.append((seq, future))
        self.pool.call_soon(self._hurry.set)
        return future

    def _release(self, written: bool) -> None:
        """Resolves the waiters that are due: those written, or all of them when PostgreSQL is down."""
        with self._lock:
            due = [(s, f) for s, f in self._waiters if not written or s <= self._settled]
            self._waiters = [w for w in self._waiters if w not in due]
        for _, future in due:
            _resolve(future, written)

    async def _write_forever(self) -> None:
        pruned_at = -PRUNE_EVERY
        while True:
            # Also the first contact: it creates or migrates the schema at start-up.
            if time.monotonic() - pruned_at >= PRUNE_EVERY and not self.down:
                pruned_at = time.monotonic()
                await self._prune()
            batch = await self._gather()
            if not batch and self._stopping:
                return
            if batch and not await self._write(batch):
                if self._stopping:
                    return
                await _wait(self._halt, RETRY_EVERY)

    async def _gather(self) -> list[HistoryRow | PgWriteOp]:
        """The next batch: what arrives within BATCH_WINDOW of the first item (or of the last write, if
        items came meanwhile), unless hurried. Empty after PRUNE_EVERY without any, so that old rows still
        expire on an idle proxy."""
        with self._lock:
            if not self._buf:
                self._idle = True
                self._wake.clear()
            idle = self._idle
        if idle and not self._stopping:
            await _wait(self._wake, PRUNE_EVERY)
        with self._lock:
            self._idle = False  # what arrives from now on joins this batch without waking the writer
            full = len(self._buf) >= BATCH_MAX
        if not self._stopping and not full:
            # Also when items were waiting (they came during the last write): under steady load a batch
            # per window, not a transaction per request.
            await _wait(self._hurry, BATCH_WINDOW)
        self._hurry.clear()
        with self._lock:
            return list(islice(self._buf, BATCH_MAX))

    async def _write(self, batch: list[HistoryRow | PgWriteOp]) -> bool:
        """One transaction for the batch. False when PostgreSQL is unreachable: the batch stays queued."""
        rows, ops = [], []
        for item in batch:
            if isinstance(item, HistoryRow):
                try:
                    rows.append(encode_row(item, self.clean))
                except Exception as e:  # e.g. a prompt nested too deeply to encode: skip it, go on
                    log.warning("history: skipped one interaction of session %s: %s", item.session_id, e)
            else:
                ops.append(item)

        async def transaction(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                if rows:
                    await conn.executemany(self._insert, rows)
                for op in ops:
                    await op.apply(conn, self.pool.table_prefix)

        try:
            await self.pool.with_connection(transaction)
        except StoreUnavailable as e:
            self._went_down(e)
            return False
        except (asyncpg.PostgresError, ValueError, TypeError) as e:
            log.error("history: could not write %d row(s) and %d other write(s): %s", len(rows), len(ops), e)
        if self.down:
            log.warning(
                "history: PostgreSQL answers again; writing the %d item(s) that waited", len(self._buf)
            )
            self.down = False
        for op in ops:
            op.written()
        with self._lock:
            for _ in batch:
                self._buf.popleft()
            self._settled += len(batch)
        self._release(True)
        return True

    def _went_down(self, e: StoreUnavailable) -> None:
        if not self.down:
            log.warning("history: %s; %d item(s) wait in the buffer", e, len(self._buf))
        self.down = True
        self._release(False)

    async def _prune(self) -> None:
        try:
            await self.pool.with_connection(lambda conn: prune(conn, self.pool.schema, self.max_days))
        except StoreUnavailable as e:
            self._went_down(e)
        except asyncpg.PostgresError as e:
            log.error("history: could not prune PostgreSQL: %s", e)

    def clean(self, text: str) -> str:
        """Scrubbed, and fit for PostgreSQL text, which holds neither NUL nor a lone surrogate."""
        text = self.scrub(text)
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
        return text


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _resolve(future: concurrent.futures.Future[bool], value: bool) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):  # its waiter was cancelled
        future.set_result(value)


def _report(writer: concurrent.futures.Future[None]) -> None:
    if not writer.cancelled() and (e := writer.exception()) is not None:
        log.error("history: the PostgreSQL writer stopped: %r", e)
