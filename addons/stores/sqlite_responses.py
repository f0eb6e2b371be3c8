"""Responses in the history database (history on): written by the history writer, read in worker threads.

A put or delete waits here until the writer has made it, so a read sees it at once (a client sends the
next turn with `previous_response_id` as soon as it has the answer). The writer and the readers run in
other threads, hence the lock. JSON text is scrubbed on its way to disk, as history rows are.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from addons.stores.base import StoredResponse
from addons.stores.responses import EncodedResponse, HistoryWritten, Link, Unwritten, encode, walk
from addons.stores.sqlite import SqliteHistory

log = logging.getLogger(__name__)

FIELDS = ("id", "session", "previous_id", "created_at", "response", "input_items", "messages")
INSERT = f"INSERT OR REPLACE INTO responses ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
SELECT = f"SELECT {', '.join(FIELDS)} FROM responses WHERE id = ?"
SELECT_LINK = "SELECT previous_id, messages FROM responses WHERE id = ?"


class SqliteResponses(HistoryWritten):
    """ResponseStore in the file of `history`, which must have been started (it creates the table)."""

    def __init__(self, history: SqliteHistory) -> None:
        self.history = history
        self._unwritten: Unwritten[_Put | _Delete] = Unwritten()

    async def put(self, item: StoredResponse) -> None:
        enc = encode(item)
        if enc is not None and not self._submit(_Put(self, enc)):
            log.warning("responses: %s not stored: the history writer is not running or is stuck", item.id)

    async def get(self, response_id: str) -> StoredResponse | None:
        enc = await self._find(response_id)
        return None if enc is None else enc.decode()

    async def delete(self, response_id: str) -> bool:
        """Raises RuntimeError when the history writer cannot take the deletion."""
        if await self._find(response_id) is None:
            return False
        if not self._submit(_Delete(self, response_id)):
            raise RuntimeError(f"{response_id} not deleted: the history writer is not running or is stuck")
        return True

    async def conversation(self, response_id: str, limit: int = 1000) -> list[dict[str, Any]] | None:
        return await asyncio.to_thread(self._conversation, response_id, limit)

    async def _find(self, response_id: str) -> EncodedResponse | None:
        known, enc = self._unwritten.find(response_id)
        return enc if known else await asyncio.to_thread(self._read, response_id)

    def _read(self, response_id: str) -> EncodedResponse | None:
        with closing(self.history.connect()) as db:
            row = db.execute(SELECT, (response_id,)).fetchone()
        if row is None:
            return None
        return EncodedResponse(*row[:4], *(text.encode("utf-8") for text in row[4:]))

    def _conversation(self, response_id: str, limit: int) -> list[dict[str, Any]] | None:
        with closing(self.history.connect()) as db:

            def link(rid: str) -> Link | None:
                known, enc = self._unwritten.find(rid)
                if known:
                    return None if enc is None else (enc.previous_id, enc.messages)
                return db.execute(SELECT_LINK, (rid,)).fetchone()

            return walk(link, response_id, limit)


@dataclass(eq=False, slots=True)
class _Put:
    store: SqliteResponses
    enc: EncodedResponse

    @property
    def id(self) -> str:
        return self.enc.id

    def apply(self, db: sqlite3.Connection) -> None:
        e, scrub = self.enc, self.store.history.scrub
        texts = (scrub(blob.decode("utf-8")) for blob in (e.response, e.input_items, e.messages))
        db.execute(INSERT, (e.id, e.session, e.previous_id, e.created_at, *texts))

    def written(self) -> None:
        self.store.settle(self)


@dataclass(eq=False, slots=True)
class _Delete:
    store: SqliteResponses
    id: str
    enc: None = None  # what marks a delete (stores.responses.Unwritten)

    def apply(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM responses WHERE id = ?", (self.id,))

    def written(self) -> None:
        self.store.settle(self)
