"""Fixtures for the team end to end (tests/e2e/test_team.py): several real proxies sharing one Redis and
one PostgreSQL under a namespace of their own (a Redis key prefix and a PostgreSQL schema), driven
directly as a load balancer would; and what they left in both servers, read back for the secret scan.

Each `Team` has its own namespace, removed when it closes; the servers are the machine's when they
answer, else throwaway ones (tests/stores_servers.py). Fault tests always take throwaway servers, so
stopping them never touches the machine's own.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import openai
import pytest
import redis

from addons.stores.pg_schema import quoted, schema_name
from tests import stores_servers
from tests.fakes.fake_openrouter import DEFAULT_MODELS
from tests.fakes.keyed import OR_KEYS, KeyedOpenRouter
from tests.harness import ProxyProcess, leaks

KEYS = OR_KEYS[:2]  # OPENROUTER_API_KEY_1 and _2
MODEL = "openai/gpt-4o-mini"
# Models of their own for the tests that cool a key down or pick a model, so they cannot meet.
LIMITED, CHOSEN, ROUTED, OUTAGE = "team/limited", "team/chosen", "team/routed", "team/outage"
MODELS = (*DEFAULT_MODELS, LIMITED, CHOSEN, ROUTED, OUTAGE)


@dataclass(frozen=True)
class Servers:
    redis_url: str
    pg_url: str


@pytest.fixture(scope="module")
def ofake() -> Iterator[KeyedOpenRouter]:
    with KeyedOpenRouter(KEYS, MODELS) as fake:
        yield fake


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """The machine's Redis and PostgreSQL when they answer, else throwaway ones."""
    redis_url, own_redis = stores_servers.redis_server()
    try:
        pg_url, own_pg = stores_servers.postgres_server()
        try:
            yield Servers(redis_url, pg_url)
        finally:
            if own_pg is not None:
                own_pg.close()
    finally:
        if own_redis is not None:
            own_redis.close()


@pytest.fixture(scope="module")
def team(servers: Servers, ofake: KeyedOpenRouter) -> Iterator[Team]:
    """Three instances on the machine's servers (or throwaway ones), for the whole module."""
    t = Team(servers, ofake, 3)
    try:
        yield t.start()
    finally:
        t.close()


@pytest.fixture
def outage_servers() -> Iterator[tuple[stores_servers.ThrowawayRedis, stores_servers.ThrowawayPostgres]]:
    """A throwaway Redis and PostgreSQL of the test's own, for tests that stop and restart them."""
    own_redis = stores_servers.ThrowawayRedis().start()
    try:
        own_pg = stores_servers.ThrowawayPostgres().start()
        try:
            yield own_redis, own_pg
        finally:
            own_pg.close()
    finally:
        own_redis.close()


class Team:
    """`size` proxies on the same Redis, PostgreSQL and namespace, each with the same two keys."""

    def __init__(self, servers: Servers, fake: KeyedOpenRouter, size: int) -> None:
        self.servers = servers
        self.namespace = f"e2e-team-{secrets.token_hex(6)}"
        self.schema = schema_name(self.namespace)
        self.env = {
            "OPENROUTER_API_KEY_1": KEYS[0],
            "OPENROUTER_API_KEY_2": KEYS[1],
            "OPENROUTER_API_BASE_URL": fake.base_url,
            "PROXY_TIMEOUT": "5",
            "LLM_REDIS_URL": servers.redis_url,
            "LLM_DATABASE_URL": servers.pg_url,
            "LLM_NAMESPACE": self.namespace,
        }
        self.size = size
        self.proxies: list[ProxyProcess] = []

    def start(self) -> Team:
        """Fresh processes (fresh folders: nothing local carries over), started side by side."""
        self.proxies = [ProxyProcess(env=self.env) for _ in range(self.size)]
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(lambda p: p.start(), self.proxies))
        return self

    def stop(self) -> None:
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(lambda p: p.stop(), self.proxies))

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the proxies and remove the namespace from both servers."""
        self.stop()
        stores_servers.delete_prefix(self.servers.redis_url, self.namespace + ":")
        drop_schema(self.servers.pg_url, self.schema)

    def __getitem__(self, i: int) -> ProxyProcess:
        return self.proxies[i]

    def secrets(self) -> list[str]:
        return self.proxies[0].secrets()

    # -- what a client does -------------------------------------------------------------------------

    def chat(self, i: int, text: str, session: str, model: str = MODEL, stream: bool = False) -> str:
        """The answer's text through instance `i`, streamed or not, with the official SDK."""
        with client(self[i], session) as c:
            messages: Any = [{"role": "user", "content": text}]
            if not stream:
                return (
                    c.chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
                )
            chunks = c.chat.completions.create(model=model, messages=messages, stream=True)
            return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)

    def history(self, i: int, session: str) -> list[dict[str, Any]]:
        url = f"{self[i].base_url}/sessions/{session}/history?limit=10000"
        r = httpx.get(url, trust_env=False, timeout=20)
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    # -- what the servers hold ----------------------------------------------------------------------

    def redis_keys(self) -> list[bytes]:
        with redis.Redis.from_url(self.servers.redis_url) as r:
            return sorted(r.scan_iter(match=f"{self.namespace}:*", count=1000))

    def redis_dump(self) -> bytes:
        """Every key under the namespace with all it holds, read as its type requires."""
        with redis.Redis.from_url(self.servers.redis_url) as r:
            return b"\n".join(key + b" " + _value(r, key) for key in self.redis_keys())

    def pg_dump(self) -> bytes:
        """`pg_dump` of the team's schema: its tables, with every row."""
        tool = shutil.which("pg_dump") or "/usr/local/bin/pg_dump"
        done = subprocess.run(
            [tool, f"--dbname={self.servers.pg_url}", f"--schema={self.schema}"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    def leaks(self) -> dict[str, list[str]]:
        """Where any fragment of a configured key shows in Redis or PostgreSQL."""
        found = {
            "redis": leaks(self.redis_dump(), self.secrets()),
            "postgres": leaks(self.pg_dump(), self.secrets()),
        }
        return {where: hits for where, hits in found.items() if hits}


def _value(r: redis.Redis, key: bytes) -> bytes:
    kind = r.type(key).decode()
    if kind == "string":
        return bytes(r.get(key) or b"")
    if kind == "hash":
        return b" ".join(k + b"=" + v for k, v in r.hgetall(key).items())
    if kind == "zset":
        return b" ".join(m + b"=" + str(s).encode() for m, s in r.zrange(key, 0, -1, withscores=True))
    if kind == "set":
        return b" ".join(sorted(r.smembers(key)))
    if kind == "list":
        return b" ".join(r.lrange(key, 0, -1))
    if kind == "stream":
        return repr(r.xrange(key)).encode()
    raise AssertionError(f"Redis key {key!r} has type {kind}, which the scan cannot read")


def drop_schema(url: str, schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quoted(schema)} CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())


def client(p: ProxyProcess, session: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=p.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": session},
    )


def used_keys(fake: KeyedOpenRouter, model: str, since: float = 0.0) -> list[str]:
    """The key (1 or 2) each chat request for `model` carried, in arrival order (after `since`)."""
    with fake._lock:
        recs = [r for r in fake.requests if r.path.endswith("/chat/completions") and r.at > since]
    names = {k: str(i) for i, k in enumerate(KEYS, 1)}
    return [names[r.headers["authorization"][7:]] for r in recs if r.json()["model"] == model]


class Load:
    """Chat requests round-robin over the team from a thread (every other one streamed), each answer
    checked exact, paced so a run stays a few hundred rows, until the block ends."""

    def __init__(self, team: Team, session: str, pace: float = 0.02) -> None:
        self.team, self.session, self.pace = team, session, pace
        self.answered: list[str] = []  # prompts answered exactly, in order
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def more(self, n: int, timeout: float = 20.0) -> None:
        """Wait until `n` more requests were answered."""
        goal, deadline = len(self.answered) + n, time.monotonic() + timeout
        while len(self.answered) < goal:
            assert time.monotonic() < deadline, f"load stalled at {len(self.answered)}: {self.failures[-3:]}"
            time.sleep(0.02)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            text = f"load {i}"
            try:
                got = self.team.chat(i % self.team.size, text, self.session, stream=bool(i % 2))
            except Exception as e:  # every failure is a finding: the test shows them all
                self.failures.append(f"{text} via instance {i % self.team.size}: {e!r}")
            else:
                if got == f"echo: {text}":
                    self.answered.append(text)
                else:
                    self.failures.append(f"{text}: answered {got!r}")
            i += 1
            self._stop.wait(self.pace)
