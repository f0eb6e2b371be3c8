"""The Redis stores against a real Redis: instances sharing one prefix see each other's changes, an outage
degrades to local state and resynchronises, no key value reaches Redis, and the settings guard the URL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

from addons.settings import SettingsError, load_settings
from addons.stores.base import Route, RuntimeConfig
from addons.stores.redis_team import RedisStores, build
from tests import stores_servers

BASE = {"default_backend": "openrouter", "interactive_mode": False, "redact_api_keys_in_prompts": True}
KEY_VALUE = "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"


def startup() -> RuntimeConfig:
    return RuntimeConfig("openrouter", False, True, base=dict(BASE))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    url, throwaway = stores_servers.redis_server()
    yield url
    if throwaway is not None:
        throwaway.close()


@pytest.fixture
def prefix(server: str) -> Iterator[str]:
    name = f"llm-test-{uuid.uuid4().hex[:12]}"
    yield name
    stores_servers.delete_prefix(server, name)


def team(url: str, namespace: str) -> RedisStores:
    return build(url, namespace, 3600, startup(), None)


async def within(seconds: float, condition: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until `condition` holds; fails after `seconds`."""
    start = time.monotonic()
    while not await condition():
        assert time.monotonic() - start < seconds, "not within the time allowed"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def test_instances_on_one_prefix_share_config_cooldowns_sessions_and_rotation(
    server: str, prefix: str
) -> None:
    async def go() -> None:
        a, b = team(server, prefix), team(server, prefix)
        for s in (a, b):
            await s.link.check()

        async def routed() -> bool:
            return set((await b.config.get()).routes) == {"r"}

        async def resting() -> bool:
            return await b.cooldowns.remaining("openrouter", "m", "OPENROUTER_API_KEY_1") > 55

        changed = RuntimeConfig("gemini", True, True, {"r": Route("r", "k", [("gemini", "m")])}, dict(BASE))
        await a.config.put(changed)
        await within(0.1, routed)
        assert (await b.config.get()).default_backend == "gemini"
        await a.cooldowns.cool("openrouter", "m", "OPENROUTER_API_KEY_1", 60, "429")
        await within(0.1, resting)
        await a.sessions.update("s1", {"model": "gemini:x", "project": "p"})
        got = await b.sessions.get("s1")
        assert (got.model, got.project) == ("gemini:x", "p")
        turns = [await (a, b)[i % 2].cooldowns.next_turn("openrouter", 3) for i in range(30)]
        assert [turns.count(p) for p in range(3)] == [10, 10, 10]
        await a.signatures.put_many({"call_1": "sig"})
        assert await b.signatures.get_many(["call_1", "nope"]) == {"call_1": "sig"}
        await a.link.aclose()
        await b.link.aclose()

    asyncio.run(go())
    _no_key_value_in(server, prefix)


def test_unreachable_redis_at_start_up_names_the_setting_without_the_password() -> None:
    port = stores_servers.free_port()

    async def go() -> None:
        stores = team(f"redis://:hunter2-secret@127.0.0.1:{port}/0", "x")
        with pytest.raises(SettingsError) as e:
            await stores.link.check()
        assert "redis_url" in str(e.value) and "hunter2" not in str(e.value)
        started = time.monotonic()
        s = await stores.sessions.get("s")  # requests are still served, from local state
        await stores.sessions.update("s", {"model": "m"})
        await stores.cooldowns.cool("b", "m", "K", 30, "429")
        assert s.id == "s" and await stores.cooldowns.remaining("b", "m", "K") > 25
        assert await stores.cooldowns.next_turn("ring", 2) == 0
        assert time.monotonic() - started < 1.0 and stores.link.degraded
        await stores.link.aclose()

    asyncio.run(go())


def test_refused_credentials_stop_start_up() -> None:
    server = stores_servers.ThrowawayRedis(password="right-password-123").start()
    try:

        async def go() -> None:
            stores = team(f"redis://:wrong-password-456@127.0.0.1:{server.port}/0", "x")
            with pytest.raises(SettingsError) as e:
                await stores.link.check()
            assert "credentials" in str(e.value) and "wrong-password" not in str(e.value)
            await stores.link.aclose()

        asyncio.run(go())
    finally:
        server.close()


def test_an_outage_degrades_to_local_state_and_resyncs_within_5_s() -> None:
    server = stores_servers.ThrowawayRedis().start()
    try:

        async def go() -> None:
            stores = team(server.url, "outage")
            await stores.link.check()
            server.stop()
            changed = RuntimeConfig("gemini", False, True, {}, dict(BASE))
            started = time.monotonic()
            await stores.config.put(changed)  # the first call notices and degrades
            await stores.cooldowns.cool("b", "m", "K", 60, "429")
            await stores.sessions.update("s", {"project": "during"})
            assert (await stores.sessions.get("s")).project == "during"
            assert time.monotonic() - started < 1.0 and stores.link.degraded
            assert (await stores.config.get()).default_backend == "gemini"
            server.start()  # empty: what this instance changed meanwhile is pushed back

            async def back() -> bool:
                return not stores.link.degraded

            await within(5, back)
            with redis.Redis.from_url(server.url) as r:
                assert b"gemini" in r.get("outage:config")
                assert (
                    r.hlen("outage:cooldowns") == 1 and r.hget("outage:session:s", "project") == b'"during"'
                )
            await stores.link.aclose()

        asyncio.run(go())
    finally:
        server.close()


def test_settings_validate_the_urls_and_treat_their_passwords_as_secrets() -> None:
    s = load_settings({}, {"LLM_REDIS_URL": "rediss://u:p%40ss-word-1@cache:6380/1"}, {})
    assert s.llm_namespace == "llm-intercept"
    assert {v for n, v in s.all_secrets() if n == "redis_url password"} == {"p%40ss-word-1", "p@ss-word-1"}
    for env, value in (
        ("LLM_REDIS_URL", "http://:pw-secret@h"),
        ("LLM_DATABASE_URL", "mysql://:pw-secret@h"),
    ):
        with pytest.raises(SettingsError) as e:
            load_settings({}, {env: value}, {})
        assert env in str(e.value) and "pw-secret" not in str(e.value)
    with pytest.raises(SettingsError, match="LLM_NAMESPACE"):
        load_settings({}, {"LLM_NAMESPACE": "a b"}, {})


def _no_key_value_in(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as r:
        for key in r.scan_iter(match=f"{prefix}*"):
            kind = r.type(key)
            value = r.hgetall(key) if kind == b"hash" else r.get(key) if kind == b"string" else b""
            assert KEY_VALUE[:20].encode() not in repr(value).encode() + key
