"""Key rotation under a real clock and real concurrency, end to end: what only a real mitmdump shows.

A real mitmdump with the addon in front of FakeOpenRouter and FakeGemini, each with four keys; what the
proxy did is read from the fakes' records (tests/fakes/keyed.py). The rest of rotation, cooldowns,
retries and routes runs in-process in tests/unit/pipeline/test_failover_paths.py; here stay a slow
upstream given up after PROXY_TIMEOUT by the real client, and 100 concurrent requests with a key limited
mid-run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from tests.fakes.fake_gemini import FakeGemini, Reply, rate_limited
from tests.fakes.fake_openrouter import DEFAULT_MODELS as OPENROUTER_DEFAULT_MODELS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.keyed import (
    ALL_KEYS,
    GEMINI_MODELS,
    GM_KEYS,
    GM_NAMES,
    OR_KEYS,
    OR_NAMES,
    RING,
    KeyedOpenRouter,
    TracedGemini,
    after,
    answer,
    cooling_lines,
    fresh,
    hits,
)
from tests.fakes.server import Script
from tests.harness import ProxyProcess

O2 = "openai/gpt-4o-mini"
PROXY_TIMEOUT = 1.5
SLOW = 5.0  # seconds a "slow" upstream waits before its status line: well over PROXY_TIMEOUT
DEFAULT_COOLDOWN = 30  # LLM_COOLDOWN_SECONDS: outlasts a test's requests on a busy machine


# -- proxies ----------------------------------------------------------------------------------------


def proxy_env(or_fake: FakeOpenRouter, gm_fake: FakeGemini, **extra: str) -> dict[str, str]:
    env = {f"OPENROUTER_API_KEY_{i}": k for i, k in enumerate(OR_KEYS, 1)}
    env |= {f"GEMINI_API_KEY_{i}": k for i, k in enumerate(GM_KEYS, 1)}
    env |= {
        "OPENROUTER_API_BASE_URL": or_fake.base_url,
        "GEMINI_API_BASE_URL": gm_fake.base_url,
        "PROXY_TIMEOUT": str(PROXY_TIMEOUT),
        "LLM_COOLDOWN_SECONDS": str(DEFAULT_COOLDOWN),
    }
    return env | extra


def assert_no_key_in_log(p: ProxyProcess) -> None:
    log = p.log
    leaked = [OR_NAMES.get(k) or GM_NAMES[k] for k in ALL_KEYS if k in log or k[:-4] in log or k[4:] in log]
    assert not leaked, f"key values of {leaked} appeared in the proxy log"


@pytest.fixture(scope="module")
def ofake() -> Iterator[KeyedOpenRouter]:
    models = (*OPENROUTER_DEFAULT_MODELS, "fo/route-a")
    with KeyedOpenRouter(OR_KEYS, models) as fake:
        yield fake


@pytest.fixture(scope="module")
def gfake() -> Iterator[TracedGemini]:
    with TracedGemini(keys=GM_KEYS, models=GEMINI_MODELS) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("ofake", "gfake"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def proxy(ofake: KeyedOpenRouter, gfake: TracedGemini) -> Iterator[ProxyProcess]:
    with ProxyProcess(env=proxy_env(ofake, gfake)) as p:
        yield p
    assert_no_key_in_log(p)


# -- client helpers ---------------------------------------------------------------------------------


def sdk(p: ProxyProcess, session: str = "fo") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=p.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=30,
        default_headers={"X-Session-ID": session},
    )


def chat(p: ProxyProcess, model: str, text: str = "hi", stream: bool = False, session: str = "fo") -> str:
    with sdk(p, session) as c:
        return answer(c, model, text, stream)


def command(p: ProxyProcess, text: str, session: str = "fo-cmd") -> str:
    with sdk(p, session) as c:
        r = c.chat.completions.create(model=O2, messages=[{"role": "user", "content": text}])
        return r.choices[0].message.content or ""


def status(p: ProxyProcess) -> str:
    return command(p, "!/status")


def cooling(p: ProxyProcess, backend: str, model: str) -> dict[str, tuple[int, str]]:
    return cooling_lines(status(p), backend, model)


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
BACKENDS = pytest.mark.parametrize("backend", ["openrouter", "gemini"])


def target(backend: str, model: str) -> str:
    return f"{backend}:{model}"


# -- a slow upstream: the next key, after PROXY_TIMEOUT -------------------------------------------------


@BACKENDS
@STREAM
def test_slow_upstream_is_given_up_after_the_timeout_and_retried_on_the_next_key(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
) -> None:
    model = fresh(backend)
    if backend == "gemini":
        gfake.enqueue(Reply(header_delay=SLOW), model=model)
    else:
        ofake.enqueue(Script(header_delay=SLOW, json_body={}))
    started = time.monotonic()
    assert chat(proxy, target(backend, model), "retry me", stream) == "echo: retry me"
    elapsed = time.monotonic() - started
    attempts = hits(ofake, gfake, model)
    assert len(attempts) == 2, attempts
    assert attempts[1].key == after(backend, attempts[0].key)
    assert PROXY_TIMEOUT - 0.1 <= attempts[1].at - attempts[0].at < SLOW  # gave up at PROXY_TIMEOUT
    assert elapsed < SLOW  # ...not after the slow key's answer
    # No cooldown for a transient failure: the next round of four requests uses all four keys.
    assert cooling(proxy, backend, model) == {}
    for i in range(4):
        chat(proxy, target(backend, model), f"again{i}", stream)
    assert sorted(h.key for h in hits(ofake, gfake, model)[2:]) == RING[backend]


# -- concurrency -------------------------------------------------------------------------------------


async def _until(what: str, check: Callable[[], bool], bound: float = 60.0) -> None:
    """Wait until `check` (run in a thread: it may block on the proxy) holds; `bound` only catches hangs."""
    deadline = time.monotonic() + bound
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {bound:g} s")
        await asyncio.sleep(0.02)


@BACKENDS
def test_100_concurrent_requests_with_a_key_limited_mid_run(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str
) -> None:
    model = fresh(backend)
    limited = RING[backend][1]
    # The test waits on events, never on this clock: long enough to outlast the run on a loaded machine.
    cooldown = 60
    # 100 requests in three waves, each started 15 ms apart (half of them streams lasting a few hundred
    # ms, so dozens are in flight at once). Wave 2 starts once all of wave 1 reached the fake and one key
    # is set to answer 429 next; wave 3 once the proxy's status shows that key resting. Wave 2 overlaps
    # the 429 (requests already planned may still use the key); wave 3 was sent after it: none may.
    n, spacing, waves = 100, 0.015, (0, 30, 60)
    fake: FakeOpenRouter | FakeGemini = ofake if backend == "openrouter" else gfake
    armed, resting = asyncio.Event(), asyncio.Event()

    def limit() -> None:
        if backend == "gemini":
            gfake.enqueue(rate_limited(f"{cooldown}s"), key=GM_KEYS[1])
        else:
            body = {"error": {"code": 429, "message": "Rate limit exceeded"}}
            headers = {"retry-after": str(cooldown)}
            ofake.enqueue_for(OR_KEYS[1], Script(status=429, json_body=body, headers=headers))

    async def control() -> None:
        await _until("wave 1 to reach the fake", lambda: len(hits(ofake, gfake, model)) >= waves[1])
        limit()
        armed.set()
        await _until("the proxy to rest the key", lambda: limited in cooling(proxy, backend, model))
        resting.set()

    async def one(client: openai.AsyncOpenAI, i: int) -> str:
        wave = sum(i >= w for w in waves) - 1
        if wave:
            await (armed, resting)[wave - 1].wait()
        await asyncio.sleep((i - waves[wave]) * spacing)
        messages: Any = [{"role": "user", "content": f"c{i}"}]
        if i % 2:
            stream = await client.chat.completions.create(
                model=target(backend, model), messages=messages, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        r = await client.chat.completions.create(model=target(backend, model), messages=messages)
        return r.choices[0].message.content or ""

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=proxy.base_url, api_key="k", max_retries=0, timeout=60
        ) as client:
            warm_up = O2 if backend == "openrouter" else "gemini:gemini-2.5-flash"
            await client.chat.completions.create(model=warm_up, messages=[{"role": "user", "content": "w"}])
            work = asyncio.gather(control(), *(one(client, i) for i in range(n)))
            return (await asyncio.wait_for(work, 100))[1:]

    fake.delay = 0.1
    try:
        answers = asyncio.run(run())
    finally:
        fake.delay = 0.0
    assert answers == [f"echo: c{i}" for i in range(n)]  # every request answered, none failed

    got = hits(ofake, gfake, model)
    served = [(at, key) for at, key, status in fake.served if status == 429]
    assert len(served) == 1
    t429, key429 = served[0]
    timeline = [(round(h.at - t429, 3), h.key, h.prompt) for h in got]
    assert key429 == limited
    assert len(got) == n + 1, timeline  # the one 429, retried on the next key
    assert sum(h.key == limited and h.at < t429 for h in got) >= 2, timeline  # in use before: mid-run
    wave3 = [h for h in got if int(h.prompt[1:]) >= waves[2]]
    assert len(wave3) == n - waves[2], timeline  # the run went on after the key was seen resting...
    assert all(h.key != limited for h in wave3), timeline  # ...and the limited key got none of it
    shares = Counter(h.key for h in got)
    for key in set(RING[backend]) - {limited}:
        assert shares[key] >= 0.2 * n, shares  # every other key carried a fair share
    assert set(cooling(proxy, backend, model)) == {limited}
