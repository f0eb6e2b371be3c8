"""Key rotation, cooldowns, retries and failover routes through the real pipeline, in-process.

The core in front of FakeOpenRouter and FakeGemini served without sockets (tests/unit/pipeline/inproc.py),
each with four keys (OPENROUTER_API_KEY_1.._4, GEMINI_API_KEY_1.._4), the official SDK and httpx talking
to it through an httpx transport. Timeouts (the real client's clock) and 100 concurrent requests stay
end to end in tests/e2e/test_failover.py. What the proxy really did is read from the fakes'
recorded requests: which backend, model and key every attempt used, in which order. Key *values* appear
only inside comparisons with those records; everything the tests show or compare otherwise is a key name.

Cooldowns rest (backend, model, key), so every test that rate-limits a key uses a model no other test
uses (`fresh()`); 5xx rests nothing, so route tests share discovered models. One core serves most of
the module, as one proxy did; route persistence and retired (402) keys get cores of their own. Cooldowns
run on a clock the tests move (`clock`): a cooldown ends without waiting for it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest
import yaml

from addons.pipeline.core import Core
from addons.stores.memory import MemoryCooldowns
from tests.fakes.fake_gemini import FakeGemini, Reply, api_error, dropped, rate_limited, server_error
from tests.fakes.fake_openrouter import DEFAULT_MODELS as OPENROUTER_DEFAULT_MODELS
from tests.fakes.fake_openrouter import FakeOpenRouter, stream_events
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
    gm_hits,
    hits,
    or_hits,
    rotation,
)
from tests.fakes.server import Script
from tests.unit.pipeline.inproc import (
    BASE_URL,
    GEMINI_HOST,
    OPENROUTER_HOST,
    LogWatch,
    Transport,
    client_kwargs,
    core_for,
    offline,
)

# Route elements (discovered models; 5xx never cools, so tests may share them).
G1, G2, G3 = "gemini-2.5-pro", "gemini-2.0-flash", "gemini-2.5-flash-lite"
O1, O2 = "anthropic/claude-3.5-sonnet", "openai/gpt-4o-mini"
YAML_ROUTE = "yaml-mk"
CONFIG_YAML = f"""
routes:
  {YAML_ROUTE}:
    policy: mk
    elements: ["openrouter:{O2}", "gemini:{G3}"]
"""
PROXY_TIMEOUT = 1.5
DEFAULT_COOLDOWN = 30  # LLM_COOLDOWN_SECONDS: outlasts a test's requests on a busy machine


# -- cores ------------------------------------------------------------------------------------------


class Clock:
    """The cooldowns' clock: still unless a test moves it."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def proxy_env(**extra: str) -> dict[str, str]:
    env = {f"OPENROUTER_API_KEY_{i}": k for i, k in enumerate(OR_KEYS, 1)}
    env |= {f"GEMINI_API_KEY_{i}": k for i, k in enumerate(GM_KEYS, 1)}
    env |= {"PROXY_TIMEOUT": str(PROXY_TIMEOUT), "LLM_COOLDOWN_SECONDS": str(DEFAULT_COOLDOWN)}
    return env | extra


def start(ofake: FakeOpenRouter, gfake: FakeGemini, env: dict[str, str], config: str = "") -> Core:
    core = core_for({OPENROUTER_HOST: ofake, GEMINI_HOST: gfake}, env, yaml.safe_load(config) or {})
    assert isinstance(core.router.cooldowns, MemoryCooldowns)
    core.router.cooldowns.clock = Clock()
    return core


def assert_no_key_in_log(log: str) -> None:
    leaked = [OR_NAMES.get(k) or GM_NAMES[k] for k in ALL_KEYS if k in log or k[:-4] in log or k[4:] in log]
    assert not leaked, f"key values of {leaked} appeared in the log"


@pytest.fixture(scope="module")
def ofake() -> Iterator[KeyedOpenRouter]:
    models = (*OPENROUTER_DEFAULT_MODELS, "fo/route-a")
    with offline(KeyedOpenRouter(OR_KEYS, models)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gfake() -> Iterator[TracedGemini]:
    with offline(TracedGemini(keys=GM_KEYS, models=GEMINI_MODELS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("ofake", "gfake"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def proxy(ofake: KeyedOpenRouter, gfake: TracedGemini) -> Iterator[Core]:
    with LogWatch().installed() as watch:
        yield start(ofake, gfake, proxy_env(), CONFIG_YAML)
    assert_no_key_in_log(watch.text)


# -- client helpers ---------------------------------------------------------------------------------


def sdk(p: Core, session: str = "fo") -> openai.OpenAI:
    return openai.OpenAI(
        api_key="client-side-key",
        max_retries=0,
        default_headers={"X-Session-ID": session},
        **client_kwargs(p),
    )


def chat(p: Core, model: str, text: str = "hi", stream: bool = False, session: str = "fo") -> str:
    with sdk(p, session) as c:
        return answer(c, model, text, stream)


def command(p: Core, text: str, session: str = "fo-cmd") -> str:
    with sdk(p, session) as c:
        r = c.chat.completions.create(model=O2, messages=[{"role": "user", "content": text}])
        return r.choices[0].message.content or ""


def status(p: Core) -> str:
    return command(p, "!/status")


def cooling(p: Core, backend: str, model: str) -> dict[str, tuple[int, str]]:
    return cooling_lines(status(p), backend, model)


def post(p: Core, model: str, stream: bool = False, text: str = "hi") -> httpx.Response:
    """A raw request: status, headers and the whole body (an SSE stream is read to its end)."""
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
    with httpx.Client(base_url=BASE_URL, transport=Transport(p)) as h:
        return h.post("/chat/completions", json=body)


def sse_events(text: str) -> list[Any]:
    """The data events of an SSE body; every one must be JSON except the final [DONE]."""
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in datas]


def assert_no_key_values(*texts: str) -> None:
    for t in texts:
        assert not any(k in t for k in ALL_KEYS), "a key value reached the client"


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
BACKENDS = pytest.mark.parametrize("backend", ["openrouter", "gemini"])


def target(backend: str, model: str) -> str:
    return f"{backend}:{model}"


# -- 1. rotation ------------------------------------------------------------------------------------


@BACKENDS
@STREAM
def test_requests_rotate_round_robin_over_all_keys(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
) -> None:
    model = fresh(backend)
    for i in range(8):
        assert chat(proxy, target(backend, model), f"r{i}", stream) == f"echo: r{i}"
    used = [h.key for h in hits(ofake, gfake, model)]
    assert len(used) == 8  # one attempt per request: nothing failed, nothing was retried
    assert used == (rotation(backend, used[0]) * 2)  # strict round robin, from wherever it stood
    if backend == "openrouter":
        assert gm_hits(gfake) == []
    else:
        assert or_hits(ofake) == []


# -- 2. rate limits: the key rests, the request succeeds on the next key -------------------------------


def _limit_once(backend: str, ofake: KeyedOpenRouter, gfake: TracedGemini, model: str, how: str) -> None:
    """Script a 429 for the next request on `model`, with the cooldown hint `how`."""
    if backend == "gemini":
        gfake.enqueue(rate_limited(how), model=model)
        return
    body = {"error": {"code": 429, "message": "Rate limit exceeded: limit_rpm/fo"}}
    if how == "http-date":
        headers = {"retry-after": email.utils.formatdate(time.time() + 40, usegmt=True)}
    elif how == "x-ratelimit-reset":
        headers = {"x-ratelimit-reset": str(int((time.time() + 35) * 1000))}
    elif how == "none":
        headers = {}
    else:
        headers = {"retry-after": how}
    ofake.enqueue(Script(status=429, json_body=body, headers=headers))


@pytest.mark.parametrize(
    ("backend", "how", "low", "high"),
    [
        ("gemini", "45.83s", 44, 46),  # RetryInfo.retryDelay, fractional
        ("openrouter", "30", 28, 30),  # Retry-After in seconds
        ("openrouter", "http-date", 37, 40),  # Retry-After as an HTTP date (40 s ahead)
        ("openrouter", "x-ratelimit-reset", 32, 35),  # OpenRouter's reset time, epoch ms (35 s ahead)
        ("openrouter", "none", DEFAULT_COOLDOWN - 2, DEFAULT_COOLDOWN),  # LLM_COOLDOWN_SECONDS
    ],
    ids=["gemini-retryinfo", "retry-after-seconds", "retry-after-date", "x-ratelimit-reset", "default"],
)
@STREAM
def test_429_fails_over_and_rests_the_key(
    proxy: Core,
    ofake: KeyedOpenRouter,
    gfake: TracedGemini,
    backend: str,
    how: str,
    low: int,
    high: int,
    stream: bool,
) -> None:
    model = fresh(backend)
    _limit_once(backend, ofake, gfake, model, how)
    started = time.monotonic()
    assert chat(proxy, target(backend, model), "first", stream) == "echo: first"
    first = hits(ofake, gfake, model)
    assert len(first) == 2, first  # the 429, then the next key answered
    limited = first[0].key
    assert first[1].key == after(backend, limited)

    for i in range(6):
        assert chat(proxy, target(backend, model), f"n{i}", stream) == f"echo: n{i}"
    later = [h.key for h in hits(ofake, gfake, model)[2:]]
    assert len(later) == 6 and limited not in later  # skipped while it rests...
    assert set(later) == set(RING[backend]) - {limited}  # ...and the others share the load

    cool = cooling(proxy, backend, model)
    asked = time.monotonic() - started  # how long after the 429 (at most) the status was read
    assert set(cool) == {limited}  # the key is shown by NAME, with the seconds left
    left, reason = cool[limited]
    assert low - asked <= left <= high, (cool, asked)
    assert "429" in reason


@BACKENDS
@STREAM
def test_rested_key_comes_back_after_its_cooldown(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
) -> None:
    # While it rests, the key is skipped: a cooldown far longer than four requests take on any machine...
    model = fresh(backend)
    _limit_once(backend, ofake, gfake, model, "60s" if backend == "gemini" else "60")
    assert chat(proxy, target(backend, model), "x", stream) == "echo: x"
    limited = hits(ofake, gfake, model)[0].key
    for i in range(4):
        chat(proxy, target(backend, model), f"during{i}", stream)
    during = [h.key for h in hits(ofake, gfake, model)[2:]]
    assert limited not in during
    assert set(cooling(proxy, backend, model)) == {limited}

    # ...and once its cooldown is over, it is back: a short one, then the cooldowns' clock moves past it.
    model = fresh(backend)
    rest = 1.5
    _limit_once(backend, ofake, gfake, model, f"{rest}s" if backend == "gemini" else f"{rest}")
    assert chat(proxy, target(backend, model), "x", stream) == "echo: x"
    limited = hits(ofake, gfake, model)[0].key
    assert [h.key for h in hits(ofake, gfake, model)] == [limited, after(backend, limited)]
    assert set(cooling(proxy, backend, model)) == {limited}
    assert isinstance(proxy.router.cooldowns, MemoryCooldowns)
    clock = proxy.router.cooldowns.clock
    assert isinstance(clock, Clock)
    clock.now += rest + 0.2
    assert cooling(proxy, backend, model) == {}
    n = len(hits(ofake, gfake, model))
    for i in range(4):
        chat(proxy, target(backend, model), f"after{i}", stream)
    back = [h.key for h in hits(ofake, gfake, model)[n:]]
    assert sorted(back) == RING[backend]  # four requests, four keys: the rested one is in use again


def test_gemini_per_day_quota_rests_the_key_until_midnight_pacific(
    proxy: Core, gfake: TracedGemini, ofake: KeyedOpenRouter
) -> None:
    model = fresh("gemini")
    gfake.enqueue(rate_limited("45.83s", per_day=True), model=model)
    assert chat(proxy, target("gemini", model), "daily") == "echo: daily"
    limited = gm_hits(gfake)[0].key
    tz = ZoneInfo("America/Los_Angeles")
    now = datetime.now(tz)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    expected = max(60.0, (midnight - now).total_seconds())
    left, reason = cooling(proxy, "gemini", model)[limited]
    assert abs(left - expected) < 10, (left, expected)
    assert "daily" in reason


# -- 3. server errors, timeouts, dropped connections: next key, transparently -------------------------


def _fault(backend: str, fault: str, stream: bool) -> Script | Reply:
    if fault in ("500", "503"):
        if backend == "gemini":
            return server_error(int(fault))
        return Script(status=int(fault), json_body={"error": {"code": int(fault), "message": "overloaded"}})
    if fault == "dropped":
        return dropped() if backend == "gemini" else Script(drop_before_headers=True)
    assert fault == "broken-body"  # a 200 whose body breaks off before it is complete
    return Script(events=[b'{"candidates": [', b"{}"], drop_after=1)


@BACKENDS
@pytest.mark.parametrize(
    ("fault", "stream"),
    [
        ("500", False),
        ("500", True),
        ("503", False),
        ("503", True),
        ("dropped", False),
        ("dropped", True),
        ("broken-body", False),
    ],
)
def test_transient_failure_is_retried_on_the_next_key(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, fault: str, stream: bool
) -> None:
    model = fresh(backend)
    script = _fault(backend, fault, stream)
    if backend == "gemini":
        gfake.enqueue(script, model=model)
    else:
        assert isinstance(script, Script)
        ofake.enqueue(script)
    assert chat(proxy, target(backend, model), "retry me", stream) == "echo: retry me"
    attempts = hits(ofake, gfake, model)
    assert len(attempts) == 2, attempts
    assert attempts[1].key == after(backend, attempts[0].key)
    # No cooldown for a transient failure: the next round of four requests uses all four keys.
    assert cooling(proxy, backend, model) == {}
    for i in range(4):
        chat(proxy, target(backend, model), f"again{i}", stream)
    assert sorted(h.key for h in hits(ofake, gfake, model)[2:]) == RING[backend]


# -- 4. client errors are final -------------------------------------------------------------------------


@BACKENDS
@pytest.mark.parametrize("status", [400, 401])
@STREAM
def test_400_and_401_are_not_retried(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, status: int, stream: bool
) -> None:
    model = fresh(backend)
    if backend == "gemini":
        google = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED"}[status]
        gfake.enqueue(api_error(status, google, f"scripted {status} for this request"), model=model)
    else:
        ofake.enqueue(
            Script(status=status, json_body={"error": {"code": status, "message": f"scripted {status}"}})
        )
    expected = {400: openai.BadRequestError, 401: openai.AuthenticationError}[status]
    with pytest.raises(expected) as e:
        chat(proxy, target(backend, model), "x", stream)
    assert f"scripted {status}" in str(e.value)
    assert len(hits(ofake, gfake, model)) == 1  # exactly one upstream request
    assert cooling(proxy, backend, model) == {}


# -- 5. everything rate-limited -------------------------------------------------------------------------


@BACKENDS
@STREAM
def test_all_keys_rate_limited(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
) -> None:
    model = fresh(backend)
    delays = (30, 20, 40, 50)
    for d in delays:
        if backend == "gemini":
            gfake.enqueue(rate_limited(f"{d}s"), model=model)
        else:
            body = {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}}
            ofake.enqueue(Script(status=429, json_body=body, headers={"retry-after": str(d)}))

    # Every key answers 429 within one request: the client gets the last 429, told when to come back.
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as e:
        chat(proxy, target(backend, model), "first", stream)
    r = e.value.response
    assert r.headers["retry-after"] == "20"  # the shortest cooldown, rounded up
    assert r.headers["x-should-retry"] == "false"
    assert r.headers["content-type"].startswith("application/json")
    assert sorted(h.key for h in hits(ofake, gfake, model)) == RING[backend]
    assert e.value.code == "all_keys_cooling_down"
    assert all(name in r.json()["error"]["message"] for name in RING[backend])  # names what is exhausted
    assert_no_key_values(r.text, str(r.headers))

    # The next request finds nothing usable: 429 at once, naming the resting keys, no upstream request.
    with pytest.raises(openai.RateLimitError) as e:
        chat(proxy, target(backend, model), "again", stream)
    resp = e.value.response
    # The shortest cooldown, minus the time since the 429s (counted generously: from before the first).
    assert math.ceil(20 - (time.monotonic() - started)) <= int(resp.headers["retry-after"]) <= 20
    assert resp.headers["x-should-retry"] == "false"
    message = str(e.value)
    for name in RING[backend]:
        assert name in message
    assert model in message
    assert_no_key_values(resp.text, str(resp.headers))
    assert len(hits(ofake, gfake, model)) == 4
    assert set(cooling(proxy, backend, model)) == set(RING[backend])


# -- 6. route policies ----------------------------------------------------------------------------------


def _make_route(p: Core, name: str, policy: str, elements: list[str]) -> None:
    reply = command(p, f"!/create-failover-route(name={name},policy={policy})")
    assert reply.startswith(f"failover route {name} created (policy {policy}"), reply
    reply = command(p, f"!/route-append(name={name},{','.join(elements)})")
    assert reply == f"route {name}: appended {', '.join(elements)}", reply


def _expected_order(policy: str, g: list[str], o: list[str]) -> list[tuple[str, str, str]]:
    """Route [gemini:G1, openrouter:O1, gemini:G2]; g and o are each backend's keys in rotation order."""
    if policy == "k":
        return [("gemini", G1, k) for k in g]
    if policy == "m":
        return [("gemini", G1, g[0]), ("openrouter", O1, o[0]), ("gemini", G2, g[0])]
    if policy == "km":
        return (
            [("gemini", G1, k) for k in g]
            + [("openrouter", O1, k) for k in o]
            + [("gemini", G2, k) for k in g]
        )
    assert policy == "mk"
    rounds = [(("gemini", G1, g[i]), ("openrouter", O1, o[i]), ("gemini", G2, g[i])) for i in range(4)]
    return [step for r in rounds for step in r]


@pytest.mark.parametrize("policy", ["k", "m", "km", "mk"])
@STREAM
def test_route_policy_sets_the_order_of_attempts(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, policy: str, stream: bool
) -> None:
    name = f"pol-{policy}-{'s' if stream else 'n'}"
    _make_route(proxy, name, policy, [f"gemini:{G1}", f"openrouter:{O1}", f"gemini:{G2}"])
    # Every attempt fails (503) except the last one the policy allows, which answers.
    fails = {"k": (3, 0, 0), "m": (1, 1, 0), "km": (4, 4, 3), "mk": (4, 4, 3)}[policy]
    gfake.enqueue(*[server_error(503) for _ in range(fails[0])], model=G1)
    ofake.enqueue(*[Script(status=503, json_body={"error": {"code": 503, "message": "no"}})] * fails[1])
    gfake.enqueue(*[server_error(503) for _ in range(fails[2])], model=G2)

    assert chat(proxy, name, "via route", stream) == "echo: via route"
    got = [h.where for h in hits(ofake, gfake)]
    g = rotation("gemini", got[0][2])
    o_first = or_hits(ofake)
    o = rotation("openrouter", o_first[0].key) if o_first else RING["openrouter"]
    assert got == _expected_order(policy, g, o)
    assert gfake.pending() == 0

    # The next request through the route starts one key further on.
    n = len(got)
    assert chat(proxy, name, "next", stream) == "echo: next"
    assert [h.where for h in hits(ofake, gfake)[n:]] == [("gemini", G1, g[1])]


@STREAM
def test_yaml_route_with_policy_mk(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, stream: bool
) -> None:
    assert f"{YAML_ROUTE} [mk]: openrouter:{O2}, gemini:{G3}" in command(proxy, "!/list-failover-routes")
    ofake.enqueue(*[Script(status=500, json_body={"error": {"code": 500, "message": "no"}})] * 4)
    gfake.enqueue(*[server_error(500) for _ in range(3)], model=G3)
    assert chat(proxy, YAML_ROUTE, "yaml", stream) == "echo: yaml"
    got = [h.where for h in hits(ofake, gfake)]
    o, g = rotation("openrouter", got[0][2]), rotation("gemini", got[1][2])
    assert got == [step for i in range(4) for step in (("openrouter", O2, o[i]), ("gemini", G3, g[i]))]


def test_route_as_session_model_override(proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini) -> None:
    name = "pol-session"
    _make_route(proxy, name, "m", [f"gemini:{G2}", f"openrouter:{O1}"])
    assert "model set to" in command(proxy, f"!/set(model={name})", session="routed")
    gfake.enqueue(server_error(503), model=G2)
    assert chat(proxy, "openai/whatever-the-client-says", "override", session="routed") == "echo: override"
    assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [("gemini", G2), ("openrouter", O1)]


def test_route_that_fails_everywhere_returns_the_last_failure(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini
) -> None:
    name = "pol-all-fail"
    _make_route(proxy, name, "m", [f"openrouter:{O1}", f"gemini:{G2}"])
    ofake.enqueue(Script(status=502, json_body={"error": {"code": 502, "message": "first down"}}))
    gfake.enqueue(server_error(503), model=G2)
    r = post(proxy, name)
    assert r.status_code == 503 and r.headers["x-should-retry"] == "false"
    assert "overloaded" in r.json()["error"]["message"]
    assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [("openrouter", O1), ("gemini", G2)]


# -- 7. Gemini -> OpenRouter inside one request ---------------------------------------------------------


@STREAM
def test_gemini_to_openrouter_failover(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, stream: bool
) -> None:
    name = f"g2o-{'s' if stream else 'n'}"
    _make_route(proxy, name, "km", [f"gemini:{G3}", "openrouter:fo/route-a"])
    gfake.enqueue(*[server_error(503) for _ in range(4)], model=G3)
    assert chat(proxy, name, "cross backend", stream) == "echo: cross backend"
    got = hits(ofake, gfake)
    assert [h.backend for h in got] == ["gemini"] * 4 + ["openrouter"]
    assert sorted(h.key for h in got[:4]) == RING["gemini"]
    assert got[4].model == "fo/route-a"
    if stream:  # the raw stream: well-formed SSE from the OpenRouter side, ending with [DONE]
        gfake.enqueue(*[server_error(503) for _ in range(4)], model=G3)
        r = post(proxy, name, stream=True, text="raw")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.text)
        assert events[-1] == "[DONE]"
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
        assert text == "echo: raw"
        assert all("error" not in e for e in events[:-1])


# -- 8. route commands and persistence ------------------------------------------------------------------


def test_route_commands_validate_apply_and_survive_restart(
    ofake: KeyedOpenRouter, gfake: TracedGemini, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    env = proxy_env(LLM_STATE_FILE=str(state))
    with LogWatch().installed() as watch:
        p = start(ofake, gfake, env)
        assert command(p, "!/list-failover-routes").startswith("no failover routes")
        assert command(p, "!/create-failover-route(name=r1,policy=km)").startswith(
            "failover route r1 created (policy km"
        )
        assert "already exists" in command(p, "!/create-failover-route(name=r1,policy=k)")
        bad_policy = command(p, "!/create-failover-route(name=r2,policy=zz)")
        assert "policy must be one of k, m, km, mk" in bad_policy and "nothing was applied" in bad_policy
        assert command(p, f"!/route-append(name=r1,gemini:gemini-2.5-flash,openrouter:{O2})") == (
            f"route r1: appended gemini:gemini-2.5-flash, openrouter:{O2}"
        )
        assert (
            command(p, f"!/route-prepend(name=r1,openrouter:{O1})") == f"route r1: prepended openrouter:{O1}"
        )
        shown = f"r1 [km]: openrouter:{O1}, gemini:gemini-2.5-flash, openrouter:{O2}"
        assert command(p, "!/route-list(name=r1)") == shown

        # Rejected elements: a clear message, and nothing of the message applied.
        reply = command(p, f"!/route-append(name=r1,gemini:{G2},claude:opus-4)")
        assert "unknown backend 'claude'" in reply and "nothing was applied" in reply
        reply = command(p, f"!/route-append(name=r1,gemini:{G2},gemini:gemini-9-ultra)")
        assert "model 'gemini-9-ultra' is not available on gemini" in reply and "nothing was applied" in reply
        reply = command(p, "!/route-prepend(name=r1,openrouter:openai/gpt-4o-mini-typo)")
        assert "not available on openrouter" in reply and "closest: openai/gpt-4o-mini" in reply
        reply = command(p, "!/create-failover-route(name=r3,policy=k) !/route-append(name=r1,nope)")
        assert "must be BACKEND:MODEL" in reply and "nothing was applied" in reply
        assert "no failover route 'ghost'" in command(p, "!/route-append(name=ghost,gemini:gemini-2.5-flash)")
        assert command(p, "!/route-list(name=r1)") == shown
        assert "r3" not in command(p, "!/list-failover-routes")
        assert or_hits(ofake) == []  # no command reached a backend
        assert gm_hits(gfake) == []

        # clear / delete / list
        assert command(p, "!/create-failover-route(name=tmp,policy=mk)").startswith("failover route tmp")
        command(p, "!/route-append(name=tmp,gemini:gemini-2.5-flash)")
        assert command(p, "!/route-clear(name=tmp)") == "route tmp cleared"
        assert command(p, "!/route-list(name=tmp)") == "tmp [mk]: (empty)"
        r = post(p, "tmp")
        assert r.status_code == 400 and "has no elements yet" in r.json()["error"]["message"]
        assert command(p, "!/list-failover-routes") == f"{shown}\ntmp [mk]: (empty)"
        assert command(p, "!/delete-failover-route(name=tmp)") == "failover route tmp deleted"
        assert command(p, "!/list-failover-routes") == shown
        assert "no failover route 'tmp'" in command(p, "!/route-list(name=tmp)")
        assert shown in status(p)

        asyncio.run(p.stores.config.flush())  # the state file is written by a background thread
        asyncio.run(p.stores.config.flush())  # a process exits only once its state writer is done
        saved = state.read_text()
        assert_no_key_values(saved)
        elements = [f"openrouter:{O1}", "gemini:gemini-2.5-flash", f"openrouter:{O2}"]
        assert json.loads(saved) == {"routes": {"r1": {"policy": "km", "elements": elements}}}
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"

    with LogWatch().installed() as watch2:
        p2 = start(ofake, gfake, env)  # a restart: a new core on the same state file
        assert command(p2, "!/list-failover-routes") == shown
        assert chat(p2, "r1", "after restart", stream=True) == "echo: after restart"
        assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [("openrouter", O1)]
    assert_no_key_in_log(watch.text + watch2.text)


# -- 10. a failure after bytes reached the client ---------------------------------------------------------


@pytest.mark.parametrize("how", ["openrouter-drop", "gemini-drop", "gemini-error-event"])
def test_mid_stream_failure_ends_with_an_error_event_and_is_not_retried(
    proxy: Core, ofake: KeyedOpenRouter, gfake: TracedGemini, how: str
) -> None:
    backend = how.split("-")[0]
    model = fresh(backend)

    def script() -> None:
        if how == "openrouter-drop":
            events = stream_events(["AAAA", "bbbb", "CCCC"], model)
            ofake.enqueue(Script(events=events, drop_after=2))
        elif how == "gemini-drop":
            gfake.enqueue(Reply(text="AAAAbbbbCCCC", chunks=3, drop_after=2), model=model)
        else:
            gfake.enqueue(Reply(text="AAAAbbbbCCCC", chunks=3, error_after=2), model=model)

    script()
    got = ""
    with pytest.raises(openai.APIError) as e, sdk(proxy) as c:
        for ch in c.chat.completions.create(
            model=target(backend, model), messages=[{"role": "user", "content": "x"}], stream=True
        ):
            if ch.choices:
                got += ch.choices[0].delta.content or ""
    assert got == "AAAAbbbb"  # what arrived before the failure reached the client
    assert not isinstance(e.value, openai.APIConnectionError)  # an error event, not a cut connection
    assert len(hits(ofake, gfake, model)) == 1  # bytes were out: no retry

    # The raw stream: the text, then one error event, and nothing after it.
    script()
    r = post(proxy, target(backend, model), stream=True)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert "error" in events[-1] and all("error" not in ev for ev in events[:-1] if ev != "[DONE]")
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert error["message"] and error.get("code")
    assert_no_key_values(r.text)
    assert len(hits(ofake, gfake, model)) == 2


# -- OpenRouter 402: the key is retired for every model -------------------------------------------------


def test_openrouter_402_retires_the_key_for_every_model(ofake: KeyedOpenRouter, gfake: TracedGemini) -> None:
    with LogWatch().installed() as watch:
        p = start(ofake, gfake, proxy_env())
        body = {"error": {"code": 402, "message": "Insufficient credits"}}
        ofake.enqueue(Script(status=402, json_body=body))
        assert chat(p, f"openrouter:{O1}", "pay") == "echo: pay"
        first = or_hits(ofake)
        retired = first[0].key
        assert len(first) == 2 and first[1].key == after("openrouter", retired)
        for i, model in enumerate([O1, O2, "fo/other"] * 3):
            chat(p, f"openrouter:{model}", f"m{i}", stream=bool(i % 2))
        assert retired not in [h.key for h in or_hits(ofake)[2:]]
        assert f"openrouter:* {retired}: retired (credits exhausted (402))" in status(p)
    assert_no_key_in_log(watch.text)
