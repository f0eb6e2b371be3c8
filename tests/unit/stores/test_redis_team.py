"""The Redis stores against a real Redis: instances sharing one prefix see each other's changes, the
request path answers from local views without waiting on Redis, an outage degrades to local state and
resynchronises (what was written meanwhile pushed), no key value reaches Redis, and the settings and the
start-up check guard the URL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from addons.settings import SettingsError, load_settings
from addons.stores.base import Route, RuntimeConfig, StoredResponse
from addons.stores.redis_link import MALFORMED, RedisLink, parse_change, refusal
from addons.stores.redis_rotation import block_length
from addons.stores.redis_team import RedisStores, build
from tests import stores_servers
from translators import json_codec

BASE = {"default_backend": "openrouter", "interactive_mode": False, "redact_api_keys_in_prompts": True}
KEY_VALUE = "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"


def startup() -> RuntimeConfig:
    return RuntimeConfig("openrouter", False, True, base=dict(BASE))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from stores_servers.redis_for_tests()


@pytest.fixture
def prefix(server: str) -> Iterator[str]:
    yield from stores_servers.scratch_prefix(server, "llm-test")


def team(url: str, namespace: str, idle_ttl: float = 3600) -> RedisStores:
    return build(url, namespace, idle_ttl, startup(), None)


async def synced(*stores: RedisStores) -> None:
    for s in stores:
        await s.link.synced()
        assert not s.link.degraded


async def closed(*stores: RedisStores) -> None:
    for s in stores:
        await s.link.aclose()


def at_once[T](coro: Coroutine[Any, Any, T]) -> T:
    """The result of a store call that completes without waiting (on Redis or anything else)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the call waited")


async def within(seconds: float, condition: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until `condition` holds; fails after `seconds`."""
    start = time.monotonic()
    while not await condition():
        assert time.monotonic() - start < seconds, "not within the time allowed"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def settled(*stores: RedisStores) -> None:
    """Until the rotation blocks being claimed in the background are claimed."""
    for s in stores:
        await asyncio.gather(*s.cooldowns.rotation._claims.values())


def test_instances_on_one_prefix_share_config_cooldowns_sessions_and_rotation(
    server: str, prefix: str
) -> None:
    async def go() -> None:
        a, b = team(server, prefix), team(server, prefix)
        await synced(a, b)

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
        got = await b.sessions.get("s1")  # unknown to b until now: read from Redis
        assert (got.model, got.project) == ("gemini:x", "p")
        await a.signatures.put_many({"call_1": "sig"})
        assert await b.signatures.get_many(["call_1", "nope"]) == {"call_1": "sig"}
        await closed(a, b)

    asyncio.run(go())
    _no_key_value_in(server, prefix)


def test_a_session_change_through_one_instance_is_in_force_on_the_others_when_it_returns(
    server: str, prefix: str
) -> None:
    """b and c answer the session from their local views, at once; a's update returns only once both have
    applied it (they acknowledge its change message), so its next request sees it wherever it goes."""

    async def go() -> None:
        a, b, c = (team(server, prefix) for _ in range(3))
        await synced(a, b, c)
        for s in (b, c):
            assert (await s.sessions.get("pick")).model is None  # now in each view
        for n in range(20):  # no run of them may lose the race with the change message
            model = f"openrouter:m{n}"
            await a.sessions.update("pick", {"model": model, "budget": "2.50", "loop_guard": False})
            for s in (b, c):
                got = at_once(s.sessions.get("pick"))
                assert (got.model, got.budget, got.loop_guard) == (model, "2.50", False)
        assert {s.id for s in at_once(b.sessions.all())} == {"pick"}
        await closed(a, b, c)

    asyncio.run(go())


def test_sessions_in_use_through_one_instance_stay_alive_on_all_and_idle_ones_expire(
    server: str, prefix: str
) -> None:
    """Uses answered from a's view reach Redis in the background (batched), so a session used only through
    a keeps its fields everywhere beyond the idle expiry, while an idle one is gone from Redis."""
    ttl = 3.0

    async def go() -> None:
        a, b = team(server, prefix, ttl), team(server, prefix, ttl)
        await synced(a, b)
        await b.sessions.update("busy", {"project": "kept"})
        await b.sessions.update("idle", {"project": "dropped"})
        assert (await a.sessions.get("busy")).project == "kept"
        until = time.monotonic() + 2 * ttl
        while time.monotonic() < until:
            assert at_once(a.sessions.get("busy")).project == "kept"
            await asyncio.sleep(0.1)

        async def idle_gone() -> bool:
            return not await b.link.raw(lambda r: r.exists(f"{prefix}:session:idle"))

        await within(10, idle_gone)
        assert (await b.sessions.get("busy")).project == "kept"
        with redis.Redis.from_url(server) as r:
            assert r.zscore(f"{prefix}:sessions", "idle") is None
            assert r.hget(f"{prefix}:session:busy", "project") == b'"kept"'
        await closed(a, b)

    asyncio.run(go())


def test_rotation_positions_come_from_blocks_claimed_ahead(server: str, prefix: str) -> None:
    """Each instance claims a block of positions, consecutive blocks starting one key further round: the
    instances' first requests go to different keys (on their own, all three would take the first), a
    request takes its position without waiting on Redis (the next block is claimed in the background),
    and every full block gives each key the same share."""
    ring, size = "openrouter:K1,K2,K3,K4", 4
    length = block_length(size)

    async def go() -> None:
        teams = [team(server, prefix) for _ in range(3)]
        await synced(*teams)
        first = [await s.cooldowns.next_turn(ring, size) for s in teams]  # each claims its first block
        assert first == [0, 1, 2]
        turns: list[list[int]] = [[p] for p in first]
        for _ in range(length - 1):
            for s, mine in zip(teams, turns, strict=True):
                await settled(s)
                mine.append(at_once(s.cooldowns.next_turn(ring, size)))
        for start, mine in zip(first, turns, strict=True):  # round the ring from where its block began
            assert mine == [(start + n) % size for n in range(length)]
        assert Counter(p for mine in turns for p in mine) == {p: 3 * length // size for p in range(size)}
        await closed(*teams)

    asyncio.run(go())


def test_requests_at_once_share_claims_and_keep_the_keys_even(server: str, prefix: str) -> None:
    """Bursts beyond the block claimed ahead wait for the one claim in flight; every position handed out
    comes from a block begun in full, so each key's share differs by at most one per instance."""
    ring, size = "openrouter:K1,K2,K3", 3

    async def go() -> None:
        teams = [team(server, prefix) for _ in range(3)]
        await synced(*teams)
        counts: Counter[int] = Counter()
        for _ in range(10):  # thirty requests at once on each instance, ten times
            counts.update(await asyncio.gather(*(s.cooldowns.next_turn(ring, size) for s in teams * 30)))
        assert sum(counts.values()) == 900 and max(counts.values()) - min(counts.values()) <= len(teams)
        with redis.Redis.from_url(server) as r:  # one claim per block, not one per request
            assert int(r.get(f"{prefix}:turn:{ring}") or 0) <= 900 // block_length(size) + 2 * len(teams)
        await closed(*teams)

    asyncio.run(go())


def test_a_skipped_key_moves_this_instances_rotation_on(server: str, prefix: str) -> None:
    ring, size = "openrouter:K1,K2,K3,K4", 4

    async def go() -> None:
        a, b = team(server, prefix), team(server, prefix)
        await synced(a, b)
        assert await a.cooldowns.next_turn(ring, size) == 0
        await a.cooldowns.set_turn(ring, 3)  # the planner skipped a resting key: 3 comes next
        assert at_once(a.cooldowns.next_turn(ring, size)) == 3
        assert at_once(a.cooldowns.next_turn(ring, size)) == 0
        assert await b.cooldowns.next_turn(ring, size) == 1  # its own block, begun one key further
        await closed(a, b)

    asyncio.run(go())


def test_unreachable_redis_at_start_up_names_the_setting_without_the_password() -> None:
    port = stores_servers.free_port()

    async def go() -> None:
        url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
        problem = await refusal(url)
        assert problem is not None and problem.startswith("redis_url (") and "does not answer" in problem
        assert "hunter2" not in problem
        stores = team(url, "x")
        started = time.monotonic()
        s = await stores.sessions.get("s")  # requests are still served, from local state
        await stores.sessions.update("s", {"model": "m"})
        await stores.cooldowns.cool("b", "m", "K", 30, "429")
        assert s.id == "s" and await stores.cooldowns.remaining("b", "m", "K") > 25
        assert await stores.cooldowns.next_turn("ring", 2) == 0
        assert time.monotonic() - started < 1.0 and stores.link.degraded
        await stores.link.aclose()

    asyncio.run(go())


def test_a_slow_background_read_is_not_an_outage(
    server: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A background read outlasting the socket timeout (a large refresh on a busy loop) raises redis's own
    TimeoutError: the link starts its subscription over, but Redis still answers a ping, so it is not
    marked away (nor said to be in the log)."""

    async def go() -> None:
        link = RedisLink(server, prefix)
        reads = 0

        async def slow_refresh() -> None:
            nonlocal reads
            reads += 1
            await link.raw(lambda r: r.blpop([f"{prefix}:never"], timeout=5), timeout=10)

        async def again() -> bool:
            return reads >= 2  # the first timed out, and the listener is back at work

        link.on_refresh(slow_refresh)
        await link.synced()
        await within(20, again)
        assert not link.degraded
        await link.aclose()

    with caplog.at_level(logging.WARNING, logger="addons.stores.redis_link"):
        asyncio.run(go())
    assert "unreachable" not in caplog.text


def test_refused_credentials_stop_start_up() -> None:
    server = stores_servers.ThrowawayRedis(password="right-password-123").start()
    try:

        async def go() -> None:
            problem = await refusal(f"redis://:wrong-password-456@127.0.0.1:{server.port}/0")
            assert problem is not None and "redis_url" in problem and "refused the credentials" in problem
            assert "wrong-password" not in problem
            assert await refusal(server.url) is None

        asyncio.run(go())
    finally:
        server.close()


def test_an_outage_degrades_to_local_state_and_resyncs_within_5_s() -> None:
    server = stores_servers.ThrowawayRedis().start()
    try:

        async def go() -> None:
            stores = team(server.url, "outage")
            await synced(stores)
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


def test_signatures_and_responses_written_during_an_outage_reach_the_others_afterwards(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Remembered by id (at most `limit`; the rest counted in one log line) and pushed from the local store
    when Redis is back; a delete made meanwhile is pushed too."""
    server = stores_servers.ThrowawayRedis().start()
    try:

        async def go() -> None:
            a, b = team(server.url, "blobs"), team(server.url, "blobs")
            await synced(a, b)
            a.signatures.unsent.limit = 3
            await a.responses.put(kept("resp_old"))
            server.stop()
            for n in range(5):
                await a.signatures.put_many({f"call_{n}": f"sig {n}"})
            await a.responses.put(kept("resp_new"))
            assert await a.responses.delete("resp_old")
            assert a.link.degraded and await a.signatures.get_many(["call_0"]) == {"call_0": "sig 0"}
            server.start()  # empty: no persistence, so only what a pushes is there

            async def back() -> bool:
                return not a.link.degraded and not b.link.degraded

            await within(5, back)
            ids = [f"call_{n}" for n in range(5)]
            assert await b.signatures.get_many(ids) == {f"call_{n}": f"sig {n}" for n in (2, 3, 4)}
            got = await b.responses.get("resp_new")
            assert got is not None and got.messages == kept("resp_new").messages
            assert await b.responses.get("resp_old") is None
            assert not a.signatures.unsent.ids and not a.responses.unsent.ids
            await closed(a, b)

        with caplog.at_level(logging.WARNING, logger="addons.stores.redis_blobs"):
            asyncio.run(go())
        lines = [r.getMessage() for r in caplog.records if "during the outage" in r.getMessage()]
        assert len(lines) == 1 and lines[0].startswith("redis: 2 thought signature(s) written"), lines
    finally:
        server.close()


def kept(response_id: str) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        session="s",
        previous_id=None,
        response={"id": response_id, "object": "response"},
        input_items=[],
        messages=[{"role": "user", "content": f"hello from {response_id}"}],
    )


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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
message_fields = st.sampled_from(["kind", "from", "ack", "subject", "fields"])


@given(st.dictionaries(message_fields, json_values) | json_values)
def test_a_change_message_is_read_whole_or_refused_as_malformed(event: Any) -> None:
    """Anyone may publish on the channel: a message is either a Change of text values, or one of the errors
    the listener logs as malformed (never one that would end the synchronisation)."""
    try:
        change = parse_change(json_codec.dumps(event))
    except MALFORMED:
        return
    texts = [change.kind, change.sender, *change.fields, *change.fields.values()]
    assert all(isinstance(v, str) for v in texts)
    assert change.ack is None or isinstance(change.ack, str)
    assert change.subject is None or isinstance(change.subject, str)
