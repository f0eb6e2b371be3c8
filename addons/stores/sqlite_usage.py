"""Usage in the history database (history on): entries written by the history writer in its batches,
totals summed by SQLite in a worker thread.

A total is never behind a call that ended: while entries wait for the writer, `totals` first waits until
they are written (one round through the writer, milliseconds); with none waiting it reads at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass

from addons.stores.sqlite import SqliteHistory
from addons.stores.usage_sql import entry_row, insert_sql, totals_from, totals_sql
from addons.usage.totals import UsageEntry, UsageQuery, UsageTotal

log = logging.getLogger(__name__)

INSERT = insert_sql("usage", lambda _: "?")


class SqliteUsage:
    """UsageStore in the file of `history`, which must have been started (it creates the table)."""

    def __init__(self, history: SqliteHistory) -> None:
        self.history = history
        self.dropped = 0  # entries the writer could not take (stuck or stopped)
        self._lock = threading.Lock()
        self._unwritten = 0  # submitted, not yet written

    def add(self, entry: UsageEntry) -> None:
        # Under the lock: the writer may finish the op before submit returns, and settles it only after.
        with self._lock:
            if self.history.submit(_Add(self, entry)):
                self._unwritten += 1
                return
            self.dropped += 1
            dropped = self.dropped
        if dropped & (dropped - 1) == 0:  # 1, 2, 4, 8...: the count without a line per entry
            log.warning(
                "usage: %d entr(ies) not kept: the history writer is not running or is stuck", dropped
            )

    async def totals(self, query: UsageQuery) -> list[UsageTotal]:
        if self._unwritten:
            await self.history.flush()
        return await asyncio.to_thread(self._read, query)

    def settle(self) -> None:
        with self._lock:
            self._unwritten -= 1

    def _read(self, query: UsageQuery) -> list[UsageTotal]:
        if self.history.path is None or not self.history.path.exists():  # not started yet: nothing kept
            return []
        sql, args = totals_sql("usage", query, lambda _: "?")
        with closing(self.history.connect()) as db:
            return totals_from(query, db.execute(sql, args).fetchall())


@dataclass(eq=False, slots=True)
class _Add:
    store: SqliteUsage
    entry: UsageEntry

    def apply(self, db: sqlite3.Connection) -> None:
        db.execute(INSERT, entry_row(self.entry, self.store.history.scrub))

    def written(self) -> None:
        self.store.settle()
