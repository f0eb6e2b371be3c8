"""Responses in PostgreSQL (`previous_response_id` across instances), written by the history writer.

A put or delete is kept here until the writer has made it, so this instance reads it at once; `put` also
waits briefly for the commit, so that the client's next turn finds it through any other instance. A read
that needs the database while it is unreachable raises StoreUnavailable (the front-end answers 503).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from addons.stores.base import StoredResponse
from addons.stores.pg_history import PgHistory
from addons.stores.responses import EncodedResponse, HistoryWritten, Link, Unwritten, encode, walk

log = logging.getLogger(__name__)

PUT_WAIT = 1.0  # seconds a put waits for its commit; after that it is kept here until written
FIELDS = ("id", "session", "previous_id", "created_at", "response", "input_items", "messages")
UPSERT = (
    "INSERT INTO {s}.responses (" + ", ".join(FIELDS) + ") VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{f} = EXCLUDED.{f}" for f in FIELDS[1:])
)
SELECT = "SELECT " + ", ".join(FIELDS) + " FROM {s}.responses WHERE id = $1"
# The chain back from one response, as far as the table has it (at most $2 links).
CHAIN = """WITH RECURSIVE chain (id, previous_id, messages, depth) AS (
    SELECT id, previous_id, messages, 1 FROM {s}.responses WHERE id = $1
    UNION ALL
    SELECT r.id, r.previous_id, r.messages, c.depth + 1
    FROM {s}.responses r JOIN chain c ON r.id = c.previous_id WHERE c.depth < $2
) SELECT id, previous_id, messages FROM chain"""


class _Missing(Exception):
    """A link neither waiting here nor fetched yet: fetch the chain from it, then walk again."""

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id


class PgResponses(HistoryWritten):
    """ResponseStore in the PostgreSQL schema of `history`, which owns the pool and the writer."""

    def __init__(self, history: PgHistory) -> None:
        self.history = history
        s = history.pool.table_prefix
        self._select, self._chain = SELECT.format(s=s), CHAIN.format(s=s)
        self._unwritten: Unwritten[_Put | _Delete] = Unwritten()

    async def put(self, item: StoredResponse) -> None:
        enc = encode(item)
        if enc is None:
            return
        seq = self._submit(_Put(self, enc))
        if seq is None:
            log.warning("responses: %s not stored: the history writer is not running or is full", item.id)
            return
        await self.history.written(seq, PUT_WAIT)

    async def get(self, response_id: str) -> StoredResponse | None:
        """Raises StoreUnavailable when PostgreSQL cannot answer."""
        enc = await self._find(response_id)
        return None if enc is None else enc.decode()

    async def delete(self, response_id: str) -> bool:
        """Raises StoreUnavailable when PostgreSQL cannot answer, RuntimeError when the writer cannot take
        the deletion."""
        if await self._find(response_id) is None:
            return False
        if self._submit(_Delete(self, response_id)) is None:
            raise RuntimeError(f"{response_id} not deleted: the history writer is not running or is full")
        return True

    async def conversation(self, response_id: str, limit: int = 1000) -> list[dict[str, Any]] | None:
        """Raises StoreUnavailable when PostgreSQL cannot answer and the chain is not all kept here."""
        fetched: dict[str, Link | None] = {}

        def link(rid: str) -> Link | None:
            known, enc = self._unwritten.find(rid)
            if known:
                return None if enc is None else (enc.previous_id, enc.messages)
            if rid not in fetched:
                raise _Missing(rid)
            return fetched[rid]

        while True:  # each round fetches at least the link it lacked: it ends
            try:
                return walk(link, response_id, limit)
            except _Missing as missing:
                fetched.update(await self._fetch_chain(missing.response_id, limit))
                fetched.setdefault(missing.response_id, None)

    async def _fetch_chain(self, response_id: str, limit: int) -> dict[str, Link]:
        rows = await self.history.pool.run(lambda conn: conn.fetch(self._chain, response_id, limit))
        return {r["id"]: (r["previous_id"], r["messages"]) for r in rows}

    async def _find(self, response_id: str) -> EncodedResponse | None:
        known, enc = self._unwritten.find(response_id)
        if known:
            return enc
        row = await self.history.pool.run(lambda conn: conn.fetchrow(self._select, response_id))
        if row is None:
            return None
        return EncodedResponse(*tuple(row)[:4], *(text.encode("utf-8") for text in tuple(row)[4:]))


@dataclass(eq=False, slots=True)
class _Put:
    store: PgResponses
    enc: EncodedResponse

    @property
    def id(self) -> str:
        return self.enc.id

    async def apply(self, conn: asyncpg.Connection, schema: str) -> None:
        e, scrub = self.enc, self.store.history.scrub
        texts = (scrub(blob.decode("utf-8")) for blob in (e.response, e.input_items, e.messages))
        await conn.execute(UPSERT.format(s=schema), e.id, e.session, e.previous_id, e.created_at, *texts)

    def written(self) -> None:
        self.store.settle(self)


@dataclass(eq=False, slots=True)
class _Delete:
    store: PgResponses
    id: str
    enc: None = None  # what marks a delete (stores.responses.Unwritten)

    async def apply(self, conn: asyncpg.Connection, schema: str) -> None:
        await conn.execute(f"DELETE FROM {schema}.responses WHERE id = $1", self.id)

    def written(self) -> None:
        self.store.settle(self)
