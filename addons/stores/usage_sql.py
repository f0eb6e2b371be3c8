"""The usage table as both databases have it (sqlite_schema.py, pg_schema.py): a row per entry, and the
one SELECT that sums rows into totals, written once for SQLite's `?` and PostgreSQL's `$n` parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from addons.usage.totals import USAGE_TOKENS, Tally, UsageEntry, UsageQuery, UsageTotal

COLUMNS = (
    "ts",
    "session_id",
    "project",
    "backend",
    "model",
    "key_name",
    "frontend",
    *USAGE_TOKENS,
    "cost_usd",
)
# UsageQuery.group_by names -> columns.
GROUP_COLUMNS = {"session": "session_id", "project": "project", "backend": "backend", "model": "model",
                 "key": "key_name"}  # fmt: skip
_SUMS = (
    "count(*)",
    *(f"sum({c})" for c in USAGE_TOKENS),
    "coalesce(sum(cost_usd), 0)",
    "sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)",
)


def insert_sql(table: str, mark: Callable[[int], str]) -> str:
    marks = ", ".join(mark(i) for i in range(1, len(COLUMNS) + 1))
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})"


def entry_row(e: UsageEntry, scrub: Callable[[str], str]) -> tuple[Any, ...]:
    """The entry's column values; text scrubbed of keys as every history text is."""

    def text(v: str | None) -> str | None:
        return None if v is None else scrub(v)

    t = e.tokens
    return (
        e.ts, scrub(e.session), text(e.project), text(e.backend), text(e.model), text(e.key), e.frontend,
        t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens, e.cost_usd,
    )  # fmt: skip


def totals_sql(table: str, query: UsageQuery, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The SELECT of `query`'s totals and its parameters; rows are read back by `totals_from`."""
    where: list[str] = []
    args: list[Any] = []

    def cond(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.format(mark(len(args))))

    if query.session is not None:
        cond("session_id = {}", query.session)
    if query.project is not None:
        cond("project = {}", query.project)
    since, until = query.window()
    if since is not None:
        cond("ts >= {}", since)
    if until is not None:
        cond("ts < {}", until)
    groups = [GROUP_COLUMNS[g] for g in query.group_by]
    sql = f"SELECT {', '.join([*groups, *_SUMS])} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if groups:
        sql += " GROUP BY " + ", ".join(groups)
    return sql, args


def totals_from(query: UsageQuery, rows: Sequence[Sequence[Any]]) -> list[UsageTotal]:
    """The totals of the rows `totals_sql` selected, in UsageStore order. An aggregate over no rows (no
    GROUP BY) is one row of a zero count: no total."""
    tally = Tally(query.group_by)
    n = len(query.group_by)
    for row in rows:
        if not row[n]:
            continue
        values = row[n:]
        tokens = [int(v or 0) for v in values[1:5]]
        group = dict(zip(query.group_by, row[:n], strict=True))
        tally.merge(UsageTotal(group, int(values[0]), *tokens, float(values[5]), int(values[6])))
    return tally.result()
