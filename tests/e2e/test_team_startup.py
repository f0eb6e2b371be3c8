"""A team's proxy at start-up and without PostgreSQL (issue 16, "when a server goes away"): a shared store
that refuses the credentials or does not answer stops the proxy (exit status 1, no ready line) with a
message naming the setting and never its password; a malformed URL is refused at settings validation; a
`previous_response_id` lookup while PostgreSQL is away answers a clear 503 while chat requests keep being
served.

Servers that are stopped or reconfigured here are throwaway ones (tests/stores_servers.py), never the
machine's own.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests import stores_servers
from tests.e2e.team_fixtures import MODEL, Servers, Team, client, ofake, outage_servers
from tests.fakes.keyed import KeyedOpenRouter
from tests.harness import READY, ProxyProcess, free_port, wait_for

__all__ = ["ofake", "outage_servers"]  # fixtures, imported to be found

# Distinctive, so that any sighting in a log is the password and not chance.
WRONG = "wrong-pass-Hk27Qz"
RIGHT = "right-pass-Vb58Xw"


def exited(env: dict[str, str]) -> ProxyProcess:
    """A proxy started with `env`, once it has stopped on its own (within 30 s, else the test fails)."""
    p = ProxyProcess(env=env, wait_ready=False).start()
    try:
        p.wait_exit(30)
    finally:
        p.stop()
    return p


def refusal(p: ProxyProcess, setting: str) -> str:
    """The log line that stopped the proxy, naming the setting; it stopped as an invalid option does:
    exit status 1, and never a ready line first."""
    assert p.proc is not None and p.proc.returncode == 1, p.log
    assert READY.search(p.log) is None, p.log
    found = re.search(rf"^.*llm-intercept: {setting} .*$", p.log, re.M)
    assert found, p.log
    return found[0]


@pytest.fixture
def password_redis() -> Iterator[stores_servers.ThrowawayRedis]:
    server = stores_servers.ThrowawayRedis(password=RIGHT).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def password_postgres() -> Iterator[int]:
    """The port of a throwaway PostgreSQL that lets user postgres in over TCP with RIGHT only."""
    server = stores_servers.ThrowawayPostgres().start()
    try:
        asyncio.run(_require_password(server))
        assert not stores_servers.pg_answers(server.url)  # trust is gone
        assert stores_servers.pg_answers(f"postgresql://postgres:{RIGHT}@127.0.0.1:{server.port}/postgres")
        yield server.port
    finally:
        server.close()


async def _require_password(server: stores_servers.ThrowawayPostgres) -> None:
    conn = await asyncpg.connect(server.url, timeout=10)
    try:
        await conn.execute(f"ALTER USER postgres PASSWORD '{RIGHT}'")
        hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        (server.data / "pg_hba.conf").write_text(hba)
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


# -- refused at start-up ----------------------------------------------------------------------------------


def test_redis_refusing_the_password_stops_the_proxy(password_redis: stores_servers.ThrowawayRedis) -> None:
    p = exited({"LLM_REDIS_URL": f"redis://:{WRONG}@127.0.0.1:{password_redis.port}/0"})
    assert "refused the credentials" in refusal(p, "redis_url")
    assert WRONG not in p.log and RIGHT not in p.log


def test_redis_not_answering_stops_the_proxy() -> None:
    p = exited({"LLM_REDIS_URL": f"redis://:{WRONG}@127.0.0.1:{free_port()}/0"})
    assert "does not answer" in refusal(p, "redis_url")
    assert WRONG not in p.log


def test_postgres_not_answering_stops_the_proxy() -> None:
    p = exited({"LLM_DATABASE_URL": f"postgresql://postgres:{WRONG}@127.0.0.1:{free_port()}/test"})
    assert "cannot connect" in refusal(p, "database_url")
    assert WRONG not in p.log


def test_postgres_refusing_the_password_stops_the_proxy(password_postgres: int) -> None:
    p = exited({"LLM_DATABASE_URL": f"postgresql://postgres:{WRONG}@127.0.0.1:{password_postgres}/postgres"})
    assert "password authentication failed" in refusal(p, "database_url")
    assert WRONG not in p.log and RIGHT not in p.log


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLM_REDIS_URL": "http://x"}, "LLM_REDIS_URL"),
        ({"LLM_REDIS_URL": f"redis//:{WRONG}@127.0.0.1:6379"}, "LLM_REDIS_URL"),
        ({"LLM_DATABASE_URL": f"mysql://root:{WRONG}@127.0.0.1/test"}, "LLM_DATABASE_URL"),
    ],
)
def test_malformed_url_is_refused_at_validation(env: dict[str, str], expected: str) -> None:
    p = exited(env)
    assert p.proc is not None and p.proc.returncode != 0
    assert re.search(rf"invalid configuration: {expected} .*URL", p.log), p.log
    assert READY.search(p.log) is None and WRONG not in p.log


# -- PostgreSQL away while running -----------------------------------------------------------------------


def ask_with_previous(p: ProxyProcess, previous: str) -> httpx.Response:
    body = {"model": MODEL, "input": "what did I say?", "previous_response_id": previous}
    return httpx.post(f"{p.base_url}/responses", json=body, headers={"X-Session-ID": "resp"}, timeout=20)


def test_previous_response_id_while_postgres_is_away_is_503(
    outage_servers: Any, ofake: KeyedOpenRouter
) -> None:
    own_redis, own_pg = outage_servers
    t = Team(Servers(own_redis.url, own_pg.url), ofake, 2)
    try:
        t.start()
        with client(t[0], "resp") as a:
            first = a.responses.create(model=MODEL, input="remember me").id
        own_pg.stop()
        r = ask_with_previous(t[1], first)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "store_unavailable" and error["type"] and error["message"], error
        for n, i in enumerate((0, 1, 0, 1)):  # chat goes on, streamed or not, through both
            assert t.chat(i, f"still here {n}", "chat", stream=bool(n % 2)) == f"echo: still here {n}"
        own_pg.start()
        assert wait_for(lambda: ask_with_previous(t[1], first).status_code == 200, 15, 0.2)
        assert ask_with_previous(t[1], first).json()["previous_response_id"] == first
    finally:
        t.stop()
