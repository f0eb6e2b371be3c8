"""Key rotation, cooldowns, retries and failover routes, end to end.

A real mitmdump with the addon in front of FakeOpenRouter and FakeGemini, each with four keys
(OPENROUTER_API_KEY_1.._4, GEMINI_API_KEY_1.._4). What the proxy really did is read from the fakes'
recorded requests: which backend, model and key every attempt used, in which order. Key *values* appear
only inside comparisons with those records; everything the tests show or compare otherwise is a key name.

Cooldowns rest (backend, model, key), so every test that rate-limits a key uses a model no other test
uses (`fresh()`); 5xx and timeouts rest nothing, so route tests share discovered models. One proxy
serves most of the module; route persistence and retired (402) keys get proxies of their own.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import math
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest

from tests.fakes.fake_gemini import DEFAULT_MODELS as GEMINI_DEFAULT_MODELS
from tests.fakes.fake_gemini import (
    GENERATE,
    FakeGemini,
    Reply,
    api_error,
    dropped,
    rate_limited,
    server_error,
)
from tests.fakes.fake_gemini import last_user_text as gemini_prompt
from tests.fakes.fake_openrouter import DEFAULT_MODELS as OPENROUTER_DEFAULT_MODELS
from tests.fakes.fake_openrouter import FakeOpenRouter, stream_events
from tests.fakes.fake_openrouter import last_user_text as openrouter_prompt
from tests.fakes.server import Recorded, Script
from tests.harness import ProxyProcess

OR_KEYS = (
    "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",
    "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",
    "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",
    "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",
)
GM_KEYS = (
    "AIzaSyleFyBs-K0P5_NhM_CqBQoeEDl_8bh8W73",
    "AIzaSyqt-RllByKEr3VH8ZaeDlpPeX344LjeDyJ",
    "AIzaSyHw4kMI71yBBfzaegGFGVz3b-WWMMBmtn7",
    "AIzaSyN3v8Qe_tR5kJm2Zw9XcB7-pLd4HfG6sYq",
)
OR_NAMES = {v: f"OPENROUTER_API_KEY_{i}" for i, v in enumerate(OR_KEYS, 1)}
GM_NAMES = {v: f"GEMINI_API_KEY_{i}" for i, v in enumerate(GM_KEYS, 1)}
RING = {"openrouter": list(OR_NAMES.values()), "gemini": list(GM_NAMES.values())}
ALL_KEYS = OR_KEYS + GM_KEYS

# Models for tests that cool keys down: each test takes its own (`fresh`).
FRESH_GEMINI = [f"gemini-fo-{n:02d}" for n in range(1, 81)]
GEMINI_MODELS = (*GEMINI_DEFAULT_MODELS, *((m, GENERATE) for m in FRESH_GEMINI))
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
SLOW = 5.0  # seconds a "slow" upstream waits before its status line: well over PROXY_TIMEOUT
DEFAULT_COOLDOWN = 30  # LLM_COOLDOWN_SECONDS: outlasts a test's requests on a busy machine

_fresh_numbers = itertools.count()


def fresh(backend: str) -> str:
    """A model no other test uses, so cooldowns on it cannot leak between tests."""
    n = next(_fresh_numbers)
    return FRESH_GEMINI[n] if backend == "gemini" else f"fo/model-{n:02d}"


# -- fakes ------------------------------------------------------------------------------------------


class KeyedOpenRouter(FakeOpenRouter):
    """FakeOpenRouter whose scripts can be reserved for one key (the stock fake plays them in order)."""

    def __init__(self, keys: tuple[str, ...], models: tuple[str, ...]) -> None:
        super().__init__(keys, models)
        self._keyed: dict[str, deque[Script]] = {}
        self._keyed_lock = threading.Lock()
        self.served: list[tuple[float, str, int]] = []  # keyed scripts played: (time, key name, status)

    def enqueue_for(self, key: str, *scripts: Script) -> None:
        with self._keyed_lock:
            self._keyed.setdefault(key, deque()).extend(scripts)

    def reset(self) -> None:
        super().reset()
        with self._keyed_lock:
            self._keyed.clear()
        self.served = []

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if rec.method == "POST" and rec.path.endswith("/chat/completions") and self._authorised(rec):
            key = rec.headers["authorization"][7:]
            with self._keyed_lock:
                queue = self._keyed.get(key)
                script = queue.popleft() if queue else None
            if script is not None:
                self.served.append((time.monotonic(), OR_NAMES.get(key, "?"), script.status))
                self.play(h, script)
                return
        super().handle(h, rec)


class TracedGemini(FakeGemini):
    """FakeGemini that notes when each scripted answer is handed out, and for which key."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.served: list[tuple[float, str, int]] = []  # (time, key name, status)

    def reset(self) -> None:
        super().reset()
        self.served = []

    def _take(self, model: str, key: str | None) -> Reply | Script | None:
        script = super()._take(model, key)
        if script is not None:
            status = script.status if isinstance(script, Script) else 200
            self.served.append((time.monotonic(), GM_NAMES.get(key or "", "?"), status))
        return script


@dataclass(frozen=True)
class Hit:
    """One request a fake received: when, for which backend/model, with which key (by name), asking what."""

    at: float
    backend: str
    model: str
    key: str
    prompt: str

    @property
    def where(self) -> tuple[str, str, str]:
        return (self.backend, self.model, self.key)


def or_hits(fake: FakeOpenRouter) -> list[Hit]:
    with fake._lock:
        recs = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/chat/completions")]
    out = []
    for r in recs:
        body = r.json()
        key = OR_NAMES.get(r.headers["authorization"][7:], "?")
        out.append(Hit(r.at, "openrouter", body["model"], key, openrouter_prompt(body)))
    return out


def gm_hits(fake: FakeGemini) -> list[Hit]:
    out = []
    for r in fake.generate_requests():
        model = unquote(urlsplit(r.path).path).removeprefix("/v1beta/models/").rpartition(":")[0]
        key = GM_NAMES.get(fake.key_of(r) or "", "?")
        out.append(Hit(r.at, "gemini", model, key, gemini_prompt(r.json())))
    return out


def hits(or_fake: FakeOpenRouter, gm_fake: FakeGemini, model: str | None = None) -> list[Hit]:
    """Every chat attempt on both fakes, in the order they arrived."""
    all_hits = sorted(or_hits(or_fake) + gm_hits(gm_fake), key=lambda h: h.at)
    return [h for h in all_hits if model is None or h.model == model]


def rotation(backend: str, start: str) -> list[str]:
    names = RING[backend]
    i = names.index(start)
    return names[i:] + names[:i]


def after(backend: str, key: str, n: int = 1) -> str:
    return rotation(backend, key)[n % 4]


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
    with ProxyProcess(env=proxy_env(ofake, gfake), config_yaml=CONFIG_YAML) as p:
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
    """The answer's text, through the official SDK, streamed or not."""
    with sdk(p, session) as c:
        messages: Any = [{"role": "user", "content": text}]
        if not stream:
            r = c.chat.completions.create(model=model, messages=messages)
            assert r.choices[0].finish_reason == "stop"
            return r.choices[0].message.content or ""
        parts, finish = [], None
        for ch in c.chat.completions.create(model=model, messages=messages, stream=True):
            if ch.choices:
                parts.append(ch.choices[0].delta.content or "")
                finish = ch.choices[0].finish_reason or finish
        assert finish == "stop"
        return "".join(parts)


def command(p: ProxyProcess, text: str, session: str = "fo-cmd") -> str:
    with sdk(p, session) as c:
        r = c.chat.completions.create(model=O2, messages=[{"role": "user", "content": text}])
        return r.choices[0].message.content or ""


def status(p: ProxyProcess) -> str:
    return command(p, "!/status")


def cooling(p: ProxyProcess, backend: str, model: str) -> dict[str, tuple[int, str]]:
    """`!/status` cooldown lines for (backend, model): key name -> (seconds left, reason)."""
    pattern = re.compile(rf"^\s+{backend}:{re.escape(model)} (\S+): (\d+) s left \((.*)\)$", re.M)
    return {m[1]: (int(m[2]), m[3]) for m in pattern.finditer(status(p))}


def post(p: ProxyProcess, model: str, stream: bool = False, text: str = "hi") -> httpx.Response:
    """A raw request: status, headers and the whole body (an SSE stream is read to its end)."""
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
    return httpx.post(p.base_url + "/chat/completions", json=body, timeout=30, trust_env=False)


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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
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
    proxy: ProxyProcess,
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
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

    # ...and once its cooldown is over, it is back: a short one, then a wait that can only run long.
    model = fresh(backend)
    rest = 1.5
    _limit_once(backend, ofake, gfake, model, f"{rest}s" if backend == "gemini" else f"{rest}")
    assert chat(proxy, target(backend, model), "x", stream) == "echo: x"
    limited_at = time.monotonic()  # after the proxy rested the key
    limited = hits(ofake, gfake, model)[0].key
    assert [h.key for h in hits(ofake, gfake, model)] == [limited, after(backend, limited)]
    time.sleep(max(0.0, limited_at + rest + 0.2 - time.monotonic()))
    assert cooling(proxy, backend, model) == {}
    n = len(hits(ofake, gfake, model))
    for i in range(4):
        chat(proxy, target(backend, model), f"after{i}", stream)
    back = [h.key for h in hits(ofake, gfake, model)[n:]]
    assert sorted(back) == RING[backend]  # four requests, four keys: the rested one is in use again


def test_gemini_per_day_quota_rests_the_key_until_midnight_pacific(
    proxy: ProxyProcess, gfake: TracedGemini, ofake: KeyedOpenRouter
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
    if fault == "timeout":
        return Reply(header_delay=SLOW) if backend == "gemini" else Script(header_delay=SLOW, json_body={})
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
        ("timeout", False),
        ("timeout", True),
        ("dropped", False),
        ("dropped", True),
        ("broken-body", False),
    ],
)
def test_transient_failure_is_retried_on_the_next_key(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, fault: str, stream: bool
) -> None:
    model = fresh(backend)
    script = _fault(backend, fault, stream)
    if backend == "gemini":
        gfake.enqueue(script, model=model)
    else:
        assert isinstance(script, Script)
        ofake.enqueue(script)
    started = time.monotonic()
    assert chat(proxy, target(backend, model), "retry me", stream) == "echo: retry me"
    elapsed = time.monotonic() - started
    attempts = hits(ofake, gfake, model)
    assert len(attempts) == 2, attempts
    assert attempts[1].key == after(backend, attempts[0].key)
    if fault == "timeout":
        assert PROXY_TIMEOUT - 0.1 <= attempts[1].at - attempts[0].at < SLOW  # gave up at PROXY_TIMEOUT
        assert elapsed < SLOW  # ...not after the slow key's answer
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, status: int, stream: bool
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, stream: bool
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


def _make_route(p: ProxyProcess, name: str, policy: str, elements: list[str]) -> None:
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, policy: str, stream: bool
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, stream: bool
) -> None:
    assert f"{YAML_ROUTE} [mk]: openrouter:{O2}, gemini:{G3}" in command(proxy, "!/list-failover-routes")
    ofake.enqueue(*[Script(status=500, json_body={"error": {"code": 500, "message": "no"}})] * 4)
    gfake.enqueue(*[server_error(500) for _ in range(3)], model=G3)
    assert chat(proxy, YAML_ROUTE, "yaml", stream) == "echo: yaml"
    got = [h.where for h in hits(ofake, gfake)]
    o, g = rotation("openrouter", got[0][2]), rotation("gemini", got[1][2])
    assert got == [step for i in range(4) for step in (("openrouter", O2, o[i]), ("gemini", G3, g[i]))]


def test_route_as_session_model_override(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini
) -> None:
    name = "pol-session"
    _make_route(proxy, name, "m", [f"gemini:{G2}", f"openrouter:{O1}"])
    assert "model set to" in command(proxy, f"!/set(model={name})", session="routed")
    gfake.enqueue(server_error(503), model=G2)
    assert chat(proxy, "openai/whatever-the-client-says", "override", session="routed") == "echo: override"
    assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [("gemini", G2), ("openrouter", O1)]


def test_route_that_fails_everywhere_returns_the_last_failure(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini
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
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, stream: bool
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
    env = proxy_env(ofake, gfake)
    sets = {"llm_state": str(state)}
    with ProxyProcess(env=env, sets=sets) as p:
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

        saved = state.read_text()
        assert_no_key_values(saved)
        elements = [f"openrouter:{O1}", "gemini:gemini-2.5-flash", f"openrouter:{O2}"]
        assert json.loads(saved) == {"routes": {"r1": {"policy": "km", "elements": elements}}}
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"
    assert_no_key_in_log(p)

    with ProxyProcess(env=env, sets=sets) as p2:
        assert command(p2, "!/list-failover-routes") == shown
        assert chat(p2, "r1", "after restart", stream=True) == "echo: after restart"
        assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [("openrouter", O1)]
    assert_no_key_in_log(p2)


# -- 9. concurrency -------------------------------------------------------------------------------------


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


# -- 10. a failure after bytes reached the client ---------------------------------------------------------


@pytest.mark.parametrize("how", ["openrouter-drop", "gemini-drop", "gemini-error-event"])
def test_mid_stream_failure_ends_with_an_error_event_and_is_not_retried(
    proxy: ProxyProcess, ofake: KeyedOpenRouter, gfake: TracedGemini, how: str
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
    with ProxyProcess(env=proxy_env(ofake, gfake)) as p:
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
    assert_no_key_in_log(p)
