"""The bench's shared-stores row (issue 16, acceptance 5): its servers are probed, its run's Redis keys
and PostgreSQL schema are removed afterwards (and nothing else), its phase is interleaved with the
embedded proxy's, and its row says yes/NO against +0.3 ms, or why it was not measured."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from addons.stores.pg_schema import schema_name
from bench import phases, report_team
from bench.run import QUICK
from bench.stats import Spread
from bench.table import Table
from bench.targets import free_port
from bench.team import TeamServers
from tests import stores_servers


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(Redis URL, PostgreSQL URL): the machine's, else throwaway ones (never a skip)."""
    redis_url, redis_server = stores_servers.redis_server()
    pg_url, pg_server = stores_servers.postgres_server()
    yield redis_url, pg_url
    for server in (redis_server, pg_server):
        if server:
            server.close()


def _schema_with_rows(url: str, schema: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(f'CREATE TABLE "{schema}".interactions (id int)')
            await conn.execute(f'INSERT INTO "{schema}".interactions VALUES (1)')
        finally:
            await conn.close()

    asyncio.run(run())


def test_namespace_is_fresh_and_already_a_schema_name() -> None:
    a, b = TeamServers(), TeamServers()
    assert a.namespace != b.namespace
    assert schema_name(a.namespace) == a.namespace == a.schema
    assert a.env() == {
        "LLM_REDIS_URL": "redis://127.0.0.1:6379",
        "LLM_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "LLM_NAMESPACE": a.namespace,
    }


def test_cleanup_removes_the_runs_keys_and_schema_only(servers: tuple[str, str]) -> None:
    redis_url, pg_url = servers
    team, neighbour = TeamServers(redis_url, pg_url), TeamServers(redis_url, pg_url)
    with redis.Redis.from_url(redis_url) as r:
        for i in range(1500):  # more than one delete batch
            r.set(f"{team.namespace}:sessions:{i}", "x")
        r.set(f"{neighbour.namespace}:config", "kept")
        r.set(team.namespace, "no colon: not under the prefix")
    _schema_with_rows(pg_url, team.schema)
    _schema_with_rows(pg_url, neighbour.schema)
    try:
        assert team.leftovers() == (1500, True)
        assert team.cleanup() == []
        assert team.leftovers() == (0, False)
        assert neighbour.leftovers() == (1, True)
        assert team.cleanup() == []  # nothing left to remove is not a problem
    finally:
        neighbour.cleanup()
        with redis.Redis.from_url(redis_url) as r:
            r.delete(team.namespace)
    assert neighbour.leftovers() == (0, False)


def test_probe_names_the_server_that_does_not_answer(servers: tuple[str, str]) -> None:
    redis_url, pg_url = servers
    assert TeamServers(redis_url, pg_url).unavailable() is None
    dead = f"127.0.0.1:{free_port()}"
    no_redis = TeamServers(f"redis://{dead}", pg_url).unavailable()
    assert no_redis and no_redis.startswith(f"Redis redis://{dead} does not answer")
    no_pg = TeamServers(redis_url, f"postgresql://postgres@{dead}/test").unavailable()
    assert no_pg and no_pg.startswith(f"PostgreSQL postgresql://postgres@{dead}/test does not answer")


def test_cleanup_reports_what_it_could_not_remove() -> None:
    dead = f"127.0.0.1:{free_port()}"
    problems = TeamServers(f"redis://{dead}", f"postgresql://postgres@{dead}/test").cleanup()
    assert len(problems) == 2
    assert problems[0].startswith("Redis keys bench_") and problems[1].startswith("PostgreSQL schema bench_")


def test_team_phase_only_with_the_team_target_and_interleaved_with_the_proxy() -> None:
    assert "team_latency" not in {ph.name for ph in phases.phases(QUICK)}
    team = {ph.name: ph for ph in phases.phases(QUICK, team=True)}
    plain = {ph.name: ph for ph in phases.phases(QUICK)}
    assert set(team) - set(plain) == {"team_latency"}
    phase = team["team_latency"]
    assert (phase.mode, dict(phase.columns)) == ("latency", {"proxy": "proxy", "team": "proxy_team"})
    assert phase.spec == plain["latency"].spec  # the same requests as the embedded proxy's row


def _row(spreads: dict[str, dict[str, Spread | None]], team: dict[str, object]) -> list[str]:
    t = Table(spreads)
    report_team.team_rows(t, team)
    return t.lines[3:]  # after the header and the section line


@pytest.mark.parametrize(
    ("added", "verdict"), [(0.12, "yes"), (0.3, "yes"), (0.31, "**NO**"), (-0.02, "yes")]
)
def test_row_meets_the_target_or_not(added: float, verdict: str) -> None:
    spreads = {
        "team_latency_p50_ms": {"proxy": Spread(1.0, 0.9, 1.1), "team": Spread(1.0 + added, 1.0, 1.2)},
        "team_added_p50_ms": {"proxy": Spread(added, added - 0.01, added + 0.01)},
    }
    absolute, row = _row(spreads, report_team.status(None, "bench_x", []))
    assert "1.000 (0.900–1.100) →" in absolute
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3].startswith(f"{'+' if added >= 0 else ''}{added:.3f} (")
    assert cells[5:] == ["≤ +0.3 ms", verdict]


@given(st.text())
def test_a_skipped_row_says_why_in_one_cell(reason: str) -> None:
    (row,) = _row({}, report_team.status(reason or "x", None, []))
    assert "\n" not in row and row.count("|") == 8
    assert row.startswith("| added latency p50, Redis + PostgreSQL stores vs embedded (ms) |")
    assert "not measured: " in row and row.endswith("| ≤ +0.3 ms | — |")


def test_cleanup_problems_become_a_note() -> None:
    assert report_team.team_notes(report_team.status(None, "bench_x", [])) == []
    notes = report_team.team_notes(report_team.status(None, "bench_x", ["Redis keys bench_x:* not deleted"]))
    assert notes == ["", "Shared stores cleanup: Redis keys bench_x:* not deleted"]
