"""The PostgreSQL schema: created once, versioned, migrated safely by instances starting together; the
schema name any namespace gives; and the start-up check of `database_url`."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.stores import pg, pg_schema
from addons.stores.pg_schema import VERSION, migrate, quoted, schema_name
from tests.stores_servers import free_port
from tests.unit.stores.test_pg_contracts import namespace_fixture, pg_url_fixture, query  # noqa: F401


async def connections(url: str, n: int) -> list[asyncpg.Connection]:
    return [await asyncpg.connect(url) for _ in range(n)]


def test_instances_starting_together_migrate_once(pg_url: str, namespace: str) -> None:
    schema = schema_name(namespace)

    async def go() -> list[int]:
        conns = await connections(pg_url, 4)
        try:
            found = await asyncio.gather(*(migrate(c, schema) for c in conns))
            again = await migrate(conns[0], schema)  # idempotent: nothing left to do
            return [*found, again]
        finally:
            for c in conns:
                await c.close()

    found = asyncio.run(go())
    assert sorted(found) == [0, VERSION, VERSION, VERSION, VERSION]  # one created it; the others waited
    assert [r["version"] for r in query(pg_url, f"SELECT version FROM {quoted(schema)}.schema_version")] == [
        VERSION
    ]
    tables = query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema)
    assert [t["tablename"] for t in tables] == ["interactions", "responses", "schema_version", "usage"]


def test_a_later_step_migrates_an_older_schema_in_one_transaction(
    pg_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = schema_name(namespace)
    conn_url = pg_url

    async def go() -> None:
        (conn,) = await connections(conn_url, 1)
        try:
            await migrate(conn, schema)
            broken = (*pg_schema.MIGRATIONS, ("ALTER TABLE {s}.responses ADD COLUMN note TEXT", "NOT SQL"))
            monkeypatch.setattr(pg_schema, "MIGRATIONS", broken)
            monkeypatch.setattr(pg_schema, "VERSION", VERSION + 1)
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await pg_schema.migrate(conn, schema)
            assert await conn.fetchval(f"SELECT version FROM {quoted(schema)}.schema_version") == VERSION
            fixed = (*pg_schema.MIGRATIONS[:-1], ("ALTER TABLE {s}.responses ADD COLUMN note TEXT",))
            monkeypatch.setattr(pg_schema, "MIGRATIONS", fixed)
            assert await pg_schema.migrate(conn, schema) == VERSION
            assert await conn.fetchval(f"SELECT version FROM {quoted(schema)}.schema_version") == VERSION + 1
            await conn.execute(f"SELECT note FROM {quoted(schema)}.responses")
        finally:
            await conn.close()

    asyncio.run(go())


def test_a_newer_schema_is_left_alone_with_a_warning(
    pg_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    schema = schema_name(namespace)

    async def go() -> int:
        (conn,) = await connections(pg_url, 1)
        try:
            await migrate(conn, schema)
            await conn.execute(f"UPDATE {quoted(schema)}.schema_version SET version = {VERSION + 5}")
            with caplog.at_level(logging.WARNING):
                return await migrate(conn, schema)
        finally:
            await conn.close()

    assert asyncio.run(go()) == VERSION + 5
    assert "newer than this release" in caplog.text


@given(st.text(max_size=100))
def test_any_namespace_gives_a_plain_identifier(namespace: str) -> None:
    name = schema_name(namespace)
    assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name)
    assert schema_name("llm-intercept") == "llm_intercept" and schema_name("2team") == "n2team"


def test_check_names_the_setting_and_hides_the_password(pg_url: str) -> None:
    assert asyncio.run(pg.check(pg_url)) is None
    refused = f"postgresql://postgres:hunter2secret@127.0.0.1:{free_port()}/test"
    bad = {
        refused: "cannot connect",
        "mysql://postgres:hunter2secret@127.0.0.1/test": "not a postgresql:// URL",
        "postgresql://postgres:hunter2secret@127.0.0.1:notaport/test": "cannot connect",
        pg_url.rsplit("/", 1)[0] + "/no_such_database_here": "does not exist",
    }
    for url, why in bad.items():
        said = asyncio.run(pg.check(url))
        assert said is not None and why in said, said
        assert "database_url (LLM_DATABASE_URL)" in said and "hunter2secret" not in said
