"""The PostgreSQL tables (history, kept Responses answers, usage), their versioned migrations, and retention.

Everything lives in one schema per deployment (`llm_namespace`, sanitised), so several deployments can
share a database. `MIGRATIONS[n]` brings a schema from version n to n + 1; they run in one transaction
under an advisory lock, so instances starting together migrate once and a failed step changes nothing.
JSON columns are `text`, as in SQLite: the exact encoding comes back (jsonb would reorder keys and turn
floats into numerics); `::jsonb` casts serve ad-hoc queries.
"""

from __future__ import annotations

import logging
import re
import time

import asyncpg

from addons.stores.usage import USAGE_TTL
from addons.usage.totals import USAGE_TOKENS

log = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: history as SQLite keeps it, and stored Responses answers (previous_response_id)
        """CREATE TABLE {s}.interactions (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            session_id TEXT NOT NULL,
            answered_by TEXT NOT NULL,
            backend TEXT,
            model TEXT,
            key_name TEXT,
            project TEXT,
            stream SMALLINT NOT NULL,
            prompt TEXT NOT NULL,
            params TEXT NOT NULL,
            reply TEXT,
            usage TEXT,
            latency_ms DOUBLE PRECISION,
            status INTEGER,
            error TEXT,
            frontend TEXT NOT NULL DEFAULT 'openai_chat'
        )""",
        "CREATE INDEX interactions_session ON {s}.interactions (session_id, id)",
        "CREATE INDEX interactions_ts ON {s}.interactions (ts)",
        """CREATE TABLE {s}.responses (
            id TEXT PRIMARY KEY,
            session TEXT NOT NULL,
            previous_id TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            response TEXT NOT NULL,
            input_items TEXT NOT NULL,
            messages TEXT NOT NULL
        )""",
        "CREATE INDEX responses_created ON {s}.responses (created_at)",
    ),
    (  # 2: each interaction's tokens and cost; the usage of every answered call, kept longer than history
        *(f"ALTER TABLE {{s}}.interactions ADD COLUMN {c} BIGINT" for c in USAGE_TOKENS),
        "ALTER TABLE {s}.interactions ADD COLUMN cost_usd DOUBLE PRECISION",
        f"""CREATE TABLE {{s}}.usage (
            ts DOUBLE PRECISION NOT NULL,
            session_id TEXT NOT NULL,
            project TEXT,
            backend TEXT,
            model TEXT,
            key_name TEXT,
            frontend TEXT NOT NULL,
            {", ".join(f"{c} BIGINT NOT NULL" for c in USAGE_TOKENS)},
            cost_usd DOUBLE PRECISION
        )""",
        "CREATE INDEX usage_ts ON {s}.usage (ts)",
        "CREATE INDEX usage_session ON {s}.usage (session_id, ts)",
        "CREATE INDEX usage_project ON {s}.usage (project, ts)",
    ),
)
VERSION = len(MIGRATIONS)
LOCK_CLASS = 0x11A1  # the advisory lock's first key: ours; the second is the schema name's hash
# Each table, the column holding its rows' time, and its own age limit in seconds (None: history's).
# Usage rows are small and budgets count a month of them: history's age limit does not apply to them.
TABLES = (("interactions", "ts", None), ("responses", "created_at", None), ("usage", "ts", USAGE_TTL))


def schema_name(namespace: str) -> str:
    """A PostgreSQL identifier from the namespace: lower case, [a-z0-9_], at most 63 bytes."""
    name = re.sub(r"[^a-z0-9_]", "_", namespace.lower())[:63]
    if not name or name[0].isdigit():
        name = ("n" + name)[:63]
    return name


def quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str) -> int:
    """Creates or upgrades the schema to VERSION; returns the version found. Raises asyncpg errors."""
    s = quoted(schema)
    async with conn.transaction():
        # Held to the transaction's end: a second instance waits here, then finds the work done.
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, schema)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_version (version INTEGER NOT NULL)")
        found = await conn.fetchval(f"SELECT max(version) FROM {s}.schema_version") or 0
        if found > VERSION:
            log.warning(
                "history: schema %s is at version %d, newer than this release's %d", schema, found, VERSION
            )
        for steps in MIGRATIONS[found:]:
            for sql in steps:
                await conn.execute(sql.format(s=s))
        if found < VERSION:
            await conn.execute(f"DELETE FROM {s}.schema_version")
            await conn.execute(f"INSERT INTO {s}.schema_version (version) VALUES ($1)", VERSION)
    return found


async def prune(conn: asyncpg.Connection, schema: str, max_days: float) -> None:
    """Deletes rows older than `max_days` (0: none) from every table history's limit applies to, and rows
    past their own age limit from the others."""
    now = time.time()
    for table, ts, own in TABLES:
        age = own if own is not None else max_days * 86400
        if age > 0:
            await conn.execute(f"DELETE FROM {quoted(schema)}.{table} WHERE {ts} < $1", now - age)
