"""Signatures in the history database (history on): written by the history writer, read in worker threads.

A put waits here until the writer has made it, so a read sees it at once (a client sends the tool results
as soon as it has the calls). Rows expire after the store's `ttl` (reads skip them, retention deletes
them) and count towards history's size limit. Values are not scrubbed as history text is: they are
opaque provider tokens, not what anyone typed, and a changed one is worth nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import closing
from dataclasses import dataclass

from addons.stores.base import SIGNATURE_TTL
from addons.stores.sqlite import SqliteHistory

log = logging.getLogger(__name__)

INSERT = "INSERT OR REPLACE INTO signatures (id, value, created_at) VALUES (?, ?, ?)"
BATCH = 500  # ids per SELECT: well below SQLite's limit on bound parameters

Entry = tuple[float, str]  # (created_at, value)


class SqliteSignatures:
    """SignatureStore in the file of `history`, which must have been started (it creates the table)."""

    def __init__(
        self, history: SqliteHistory, ttl: float = SIGNATURE_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self.history = history
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, Entry] = {}  # submitted, not yet written

    async def put_many(self, items: Mapping[str, str]) -> None:
        if not items:
            return
        now = self._clock()
        op = _Put(self, {call_id: (now, value) for call_id, value in items.items()})
        # Under the lock: the writer may finish the op before submit returns, and settles it only after.
        with self._lock:
            if not self.history.submit(op):
                log.warning(
                    "signatures: %d not kept: the history writer is not running or is stuck", len(items)
                )
                return
            self._pending.update(op.entries)

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        cutoff = self._clock() - self.ttl
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            found = {i: e for i in wanted if (e := self._pending.get(i)) is not None}
        rest = [i for i in wanted if i not in found]
        if rest:
            found.update(await asyncio.to_thread(self._read, rest))
        return {i: value for i, (created, value) in found.items() if created >= cutoff}

    async def flush(self) -> None:
        await self.history.flush()

    def settle(self, op: _Put) -> None:
        """The writer is done with `op`: reads go to the file from now on, unless a later put is waiting."""
        with self._lock:
            for call_id, entry in op.entries.items():
                if self._pending.get(call_id) is entry:
                    del self._pending[call_id]

    def _read(self, ids: list[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        with closing(self.history.connect()) as db:
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                marks = ", ".join("?" for _ in chunk)
                sql = f"SELECT id, created_at, value FROM signatures WHERE id IN ({marks})"
                out.update((row[0], (row[1], row[2])) for row in db.execute(sql, chunk))
        return out


@dataclass(eq=False, slots=True)
class _Put:
    store: SqliteSignatures
    entries: dict[str, Entry]

    def apply(self, db: sqlite3.Connection) -> None:
        db.executemany(INSERT, ((i, value, created) for i, (created, value) in self.entries.items()))

    def written(self) -> None:
        self.store.settle(self)
