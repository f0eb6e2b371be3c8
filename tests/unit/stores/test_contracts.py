"""The store interfaces (addons/stores/base.py), checked against every implementation.

A new store (Redis, PostgreSQL) joins by adding a factory to the lists below: each factory builds a fresh,
empty store, and the tests hold for all of them.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from addons.stores.base import (
    ActiveCooldown,
    ConfigStore,
    CooldownStore,
    HistoryRow,
    HistorySink,
    Route,
    RuntimeConfig,
    SessionStore,
)
from addons.stores.jsonfile import JsonConfigStore, StateFile
from addons.stores.memory import MemoryCooldowns, MemorySessions
from addons.stores.redis_config import RedisConfig
from addons.stores.redis_link import RedisLink
from addons.stores.redis_state import RedisCooldowns, RedisSessions
from addons.stores.sqlite import SqliteHistory
from tests import stores_servers

BASE = {"default_backend": "openrouter", "interactive_mode": False, "redact_api_keys_in_prompts": True}
SECRET = "sk-contract-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def startup() -> RuntimeConfig:
    return RuntimeConfig("openrouter", False, True, base=dict(BASE))


class RedisLinks:
    """Links to the test Redis (started on first use), each under a fresh key prefix of this run."""

    def __init__(self) -> None:
        self.prefix = f"llm-test-{uuid.uuid4().hex[:12]}"
        self.url: str | None = None
        self.server: stores_servers.ThrowawayRedis | None = None
        self._n = itertools.count()

    def __call__(self) -> RedisLink:
        if self.url is None:
            self.url, self.server = stores_servers.redis_server()
        return RedisLink(self.url, f"{self.prefix}:{next(self._n)}")

    def close(self) -> None:
        if self.url is not None:
            stores_servers.delete_prefix(self.url, self.prefix)
        if self.server is not None:
            self.server.close()


REDIS = RedisLinks()


@pytest.fixture(scope="module", autouse=True)
def _redis_cleanup() -> Iterator[None]:
    yield
    REDIS.close()


SESSION_STORES: dict[str, Callable[..., SessionStore]] = {
    "memory": MemorySessions,
    "redis": lambda: RedisSessions(REDIS()),
}
COOLDOWN_STORES: dict[str, Callable[[Clock], CooldownStore]] = {
    "memory": MemoryCooldowns,
    "redis": lambda clock: RedisCooldowns(REDIS(), clock),
}
CONFIG_STORES: dict[str, Callable[[Path], ConfigStore]] = {
    "json-no-file": lambda tmp: JsonConfigStore(StateFile(None), startup()),
    "json-file": lambda tmp: JsonConfigStore(StateFile(str(tmp / "state.json")), startup()),
    "redis": lambda tmp: RedisConfig(REDIS(), startup()),
}
HISTORY_SINKS: dict[str, Callable[[Path], HistorySink]] = {
    "sqlite": lambda tmp: SqliteHistory(tmp / "history.sqlite3", lambda s: s.replace(SECRET, "[REDACTED]")),
}


@pytest.fixture(params=list(SESSION_STORES))
def make_sessions(request: pytest.FixtureRequest) -> Callable[..., SessionStore]:
    return SESSION_STORES[request.param]


@pytest.fixture(params=list(COOLDOWN_STORES))
def cooldowns(request: pytest.FixtureRequest) -> tuple[CooldownStore, Clock]:
    clock = Clock()
    return COOLDOWN_STORES[request.param](clock), clock


@pytest.fixture(params=list(CONFIG_STORES))
def config(request: pytest.FixtureRequest, tmp_path: Path) -> ConfigStore:
    return CONFIG_STORES[request.param](tmp_path)


@pytest.fixture(params=list(HISTORY_SINKS))
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistorySink]:
    sink = HISTORY_SINKS[request.param](tmp_path)
    sink.start()
    yield sink
    sink.close()


# -- SessionStore --------------------------------------------------------------------------------------


def test_sessions_are_created_on_first_use_and_handed_out_as_copies(
    make_sessions: Callable[..., SessionStore],
) -> None:
    async def go() -> None:
        store = make_sessions()
        s = await store.get("a")
        assert (s.id, s.model, s.backend, s.project, s.interactive, s.greeted) == (
            "a",
            None,
            None,
            None,
            None,
            False,
        )
        s.project = "changed in place"
        assert (await store.get("a")).project is None  # only update() changes a session
        assert await store.count() == 1

    asyncio.run(go())


def test_update_sets_fields_and_creates_a_missing_session(make_sessions: Callable[..., SessionStore]) -> None:
    async def go() -> None:
        store = make_sessions()
        await store.get("a")
        await store.update("a", {"project": "p", "interactive": True, "greeted": True})
        await store.update("b", {"model": "backend:m"})
        a, b = await store.get("a"), await store.get("b")
        assert (a.project, a.interactive, a.greeted, b.model) == ("p", True, True, "backend:m")
        assert sorted(s.id for s in await store.all()) == ["a", "b"] and await store.count() == 2

    asyncio.run(go())


def test_sessions_are_capped_and_idle_ones_expire(make_sessions: Callable[..., SessionStore]) -> None:
    async def go() -> None:
        store = make_sessions()  # the default cap: 10,000
        for i in range(10_001):
            await store.get(str(i))
        ids = {s.id for s in await store.all()}
        assert len(ids) == 10_000 and "0" not in ids and "10000" in ids  # the least recently used went
        store.idle_ttl = 0
        await store.get("fresh")
        assert await store.count() == 1

    asyncio.run(go())


# -- CooldownStore -------------------------------------------------------------------------------------


def test_cooldowns_rest_a_key_for_one_model_and_the_longer_one_wins(
    cooldowns: tuple[CooldownStore, Clock],
) -> None:
    store, clock = cooldowns

    async def go() -> None:
        assert await store.remaining("b", "m", "K1") == 0
        await store.cool("b", "m", "K1", 40, "first")
        await store.cool("b", "m", "K1", 5, "second")
        assert await store.remaining("b", "m", "K1") == 40
        assert await store.remaining("b", "other", "K1") == 0 and await store.remaining("b", "m", "K2") == 0
        assert await store.active() == [ActiveCooldown("b", "m", "K1", 40, "first")]
        clock.now += 41
        assert await store.remaining("b", "m", "K1") == 0 and await store.active() == []

    asyncio.run(go())


def test_retired_keys_rest_for_every_model(cooldowns: tuple[CooldownStore, Clock]) -> None:
    store, clock = cooldowns

    async def go() -> None:
        await store.retire("b", "K1", None, "credits exhausted (402)")
        await store.retire("b", "K2", 60, "credits exhausted (402)")
        assert await store.remaining("b", "any", "K1") == math.inf
        assert await store.remaining("b", "any", "K2") == 60
        clock.now += 61
        assert await store.remaining("b", "any", "K2") == 0
        assert await store.active() == [ActiveCooldown("b", "*", "K1", math.inf, "credits exhausted (402)")]

    asyncio.run(go())


def test_rotation_positions_per_ring(cooldowns: tuple[CooldownStore, Clock]) -> None:
    store, _ = cooldowns

    async def go() -> None:
        assert [await store.next_turn("r1", 3) for _ in range(4)] == [0, 1, 2, 0]
        assert await store.next_turn("r2", 2) == 0  # rings are independent
        await store.set_turn("r1", 2)
        assert await store.next_turn("r1", 3) == 2
        await store.set_turn("r1", 3)  # one past the end: back to the start
        assert await store.next_turn("r1", 3) == 0

    asyncio.run(go())


# -- ConfigStore ---------------------------------------------------------------------------------------


def test_config_put_then_get_and_flush(config: ConfigStore) -> None:
    async def go() -> None:
        first = await config.get()
        assert (first.default_backend, first.interactive, first.redact, first.routes) == (
            "openrouter", False, True, {}
        )  # fmt: skip
        changed = RuntimeConfig("gemini", True, False, {"r": Route("r", "km", [("b", "m")])}, dict(BASE))
        await config.put(changed)
        await config.flush()
        got = await config.get()
        assert got.snapshot() == changed.snapshot()
        assert got.routes["r"].elements == [("b", "m")]

    asyncio.run(go())


# -- HistorySink ---------------------------------------------------------------------------------------


def row(session: str, n: int, text: str = "hi") -> HistoryRow:
    return HistoryRow(
        session_id=session, answered_by="backend", backend="b", model="m", key_name="KEY_1", project=None,
        stream=0, prompt=[{"role": "user", "content": text}], params={"n": n}, reply=f"reply {n}",
        usage={"total_tokens": n}, latency_ms=1.5, status=200, error=None,
    )  # fmt: skip


def test_history_reads_a_sessions_newest_rows_oldest_first(history: HistorySink) -> None:
    async def go() -> None:
        assert history.enabled
        for n in range(5):
            history.record(row("s1", n))
            history.record(row("s2", n))
        await history.flush()
        rows = await history.read("s1", 3)
        assert [r["params"]["n"] for r in rows] == [2, 3, 4]
        assert rows[0]["session_id"] == "s1" and rows[0]["stream"] is False and rows[0]["key_name"] == "KEY_1"
        assert rows[0]["frontend"] == "openai_chat"  # the default: chat completions
        assert await history.read("nobody", 10) == []

    asyncio.run(go())


def test_history_names_the_front_end(history: HistorySink) -> None:
    async def go() -> None:
        for frontend in ("anthropic", "responses"):
            r = row("s1", 1)
            r.frontend = frontend
            history.record(r)
        await history.flush()
        assert [r["frontend"] for r in await history.read("s1", 10)] == ["anthropic", "responses"]

    asyncio.run(go())


def test_history_never_stores_a_key(history: HistorySink) -> None:
    async def go() -> None:
        history.record(row("s1", 1, f"my key {SECRET}"))
        await history.flush()
        (stored,) = await history.read("s1", 10)
        assert SECRET not in repr(stored)

    asyncio.run(go())
