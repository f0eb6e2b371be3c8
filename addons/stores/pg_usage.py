"""Usage in PostgreSQL (`database_url`): entries written by the history writer (at once, in its next
transaction), totals summed by PostgreSQL, so every instance sharing the database sees every call.

A total is never behind a call of this instance that ended: `totals` first waits until this instance's
entries are written. Another instance's call in flight shows once that instance has written it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from addons.stores.pg_history import PgHistory
from addons.stores.usage_sql import entry_row, insert_sql, totals_from, totals_sql
from addons.usage.totals import UsageEntry, UsageQuery, UsageTotal

log = logging.getLogger(__name__)


class PgUsage:
    """UsageStore in the schema of `history`'s pool. Raises StoreUnavailable when PostgreSQL is away."""

    def __init__(self, history: PgHistory) -> None:
        self.history = history
        self.table = f"{history.pool.table_prefix}.usage"
        self.insert = insert_sql(self.table, lambda i: f"${i}")
        self._last = 0  # sequence number of the latest entry submitted
        self.dropped = 0

    def add(self, entry: UsageEntry) -> None:
        seq = self.history.submit(_Add(self, entry))
        if seq is not None:
            self._last = seq
            return
        self.dropped += 1
        if self.dropped & (self.dropped - 1) == 0:
            log.warning("usage: %d entr(ies) not kept: the PostgreSQL buffer is full", self.dropped)

    async def totals(self, query: UsageQuery) -> list[UsageTotal]:
        if self._last:
            await self.history.written(self._last)  # False when PostgreSQL is away: the read says so
        sql, args = totals_sql(self.table, query, lambda i: f"${i}")
        rows = await self.history.pool.run(lambda conn: conn.fetch(sql, *args))
        return totals_from(query, [tuple(r.values()) for r in rows])


@dataclass(eq=False, slots=True)
class _Add:
    store: PgUsage
    entry: UsageEntry

    async def apply(self, conn: asyncpg.Connection, schema: str) -> None:
        await conn.execute(self.store.insert, *entry_row(self.entry, self.store.history.clean))

    def written(self) -> None:
        """Nothing waits on one entry: totals wait on the history writer's sequence numbers."""
