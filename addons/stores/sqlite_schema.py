"""The history database's tables, their migrations, and retention (age and size) over all of them.

`SCHEMA` is the first released schema, which files written before versioning carry (user_version 0).
`MIGRATIONS[n]` brings a file from version n to n + 1, inside one write transaction: two proxies
starting on the same file do not both migrate it, and a failed step leaves the file as it was.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from addons.stores.base import SIGNATURE_TTL
from addons.stores.usage import USAGE_TTL
from addons.usage.totals import USAGE_TOKENS

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    session_id TEXT NOT NULL,
    answered_by TEXT NOT NULL,
    backend TEXT,
    model TEXT,
    key_name TEXT,
    project TEXT,
    stream INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    params TEXT NOT NULL,
    reply TEXT,
    usage TEXT,
    latency_ms REAL,
    status INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS interactions_session ON interactions (session_id, id);
"""
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the client's dialect per interaction; stored Responses answers (previous_response_id)
        "ALTER TABLE interactions ADD COLUMN frontend TEXT NOT NULL DEFAULT 'openai_chat'",
        """CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            session TEXT NOT NULL,
            previous_id TEXT,
            created_at REAL NOT NULL,
            response TEXT NOT NULL,
            input_items TEXT NOT NULL,
            messages TEXT NOT NULL
        )""",
        "CREATE INDEX responses_created ON responses (created_at)",
    ),
    (  # 2: what backends keep about the tool calls they hand out (thought signatures), by tool call id
        "CREATE TABLE signatures (id TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL)",
        "CREATE INDEX signatures_created ON signatures (created_at)",
    ),
    (  # 3: each interaction's tokens and cost; the usage of every answered call, kept longer than history
        *(f"ALTER TABLE interactions ADD COLUMN {c} INTEGER" for c in USAGE_TOKENS),
        "ALTER TABLE interactions ADD COLUMN cost_usd REAL",
        f"""CREATE TABLE usage (
            ts REAL NOT NULL,
            session_id TEXT NOT NULL,
            project TEXT,
            backend TEXT,
            model TEXT,
            key_name TEXT,
            frontend TEXT NOT NULL,
            {", ".join(f"{c} INTEGER NOT NULL" for c in USAGE_TOKENS)},
            cost_usd REAL
        )""",
        "CREATE INDEX usage_ts ON usage (ts)",
        "CREATE INDEX usage_session ON usage (session_id, ts)",
        "CREATE INDEX usage_project ON usage (project, ts)",
    ),
)
VERSION = len(MIGRATIONS)
# What retention prunes: each table, the column that orders its rows oldest first, their time, the
# table's own age limit in seconds (None: history's alone), and whether history's limits (age and size)
# apply to it too. Usage rows are small and budgets count a month of them: only their own age limit.
TABLES = (
    ("interactions", "id", "ts", None, True),
    ("responses", "rowid", "created_at", None, True),
    ("signatures", "rowid", "created_at", SIGNATURE_TTL, True),
    ("usage", "rowid", "ts", USAGE_TTL, False),
)
SIZE_SLACK = 0.9  # pruning for size goes down to this share of the limit, so it does not run per batch


def migrate(db: sqlite3.Connection) -> None:
    """Creates or upgrades the tables to VERSION. Raises sqlite3.Error when the file refuses."""
    db.executescript(SCHEMA)
    saved = db.isolation_level
    db.isolation_level = None  # the transaction below is ours: no implicit BEGIN or COMMIT
    try:
        db.execute("BEGIN IMMEDIATE")  # holds the write lock: the version read stays true
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > VERSION:
                log.warning("history: %d is a newer schema than this version's %d", version, VERSION)
            for steps in MIGRATIONS[version:]:
                for sql in steps:
                    db.execute(sql)
            if version < VERSION:
                db.execute(f"PRAGMA user_version = {VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.isolation_level = saved


def prune(db: sqlite3.Connection, max_days: float | None, max_bytes: int) -> bool:
    """Deletes rows older than `max_days` (0: no age limit but a table's own; None: no pruning by age this
    time) and, while the data outgrows `max_bytes` (0: no size limit), the oldest share of each table
    history's limits apply to. True when it deleted for size (the caller vacuums)."""
    with db:
        if max_days is not None:
            now = time.time()
            for table, _, ts, own, follows in TABLES:
                ages = [a for a in (max_days * 86400 * follows, own) if a]
                if ages:
                    db.execute(f"DELETE FROM {table} WHERE {ts} < ?", (now - min(ages),))
        shrink = max_bytes > 0 and used_bytes(db) > max_bytes
        while shrink and used_bytes(db) > max_bytes * SIZE_SLACK:
            # Rows are of similar size on average: drop the share that is too much, at least one.
            excess = 1 - max_bytes * SIZE_SLACK / used_bytes(db)
            deleted = 0
            for table, order, _, _, follows in TABLES:
                rows = follows and db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if rows:
                    oldest = f"SELECT {order} FROM {table} ORDER BY {order} LIMIT ?"
                    n = max(1, int(rows * excess))
                    deleted += db.execute(f"DELETE FROM {table} WHERE {order} IN ({oldest})", (n,)).rowcount
            if not deleted:
                break
    return shrink


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes the rows take (free pages not counted)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
    return pages * db.execute("PRAGMA page_size").fetchone()[0]
