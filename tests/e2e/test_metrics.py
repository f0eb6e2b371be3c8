"""`GET /metrics` end to end: a real mitmdump with an access token in front of both fakes, driven by the
openai and anthropic SDKs and raw httpx; what it sent is read back with prometheus_client's own parser.

One proxy serves the module; each test compares the scrape after its requests with the scrape before, so
the tests do not depend on each other's traffic.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.fake_gemini import DEFAULT_KEYS as GEMINI_KEYS
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FAKE_INPUT_PRICE, FAKE_OUTPUT_PRICE, FakeOpenRouter
from tests.fakes.server import Script
from tests.harness import ProxyProcess

OR_KEYS = (
    "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",
    "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",
)
TOKEN = "Zq7v-3Kp9xW2-mT5rB8n-Lc4Yh6"  # no 8-character run in common with other text (leak scan)
MINI, SONNET = "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"
FLASH = "gemini-2.5-flash"
MAX_BYTES = 4096
# Gemini's price here, per 1M tokens: the cost of a Gemini call is known to the cent.
PRICES = f"prices:\n  {FLASH}: {{input: 2.0, output: 10.0}}\n"

Sample = tuple[str, frozenset[tuple[str, str]]]


@pytest.fixture(scope="module")
def orfake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(OR_KEYS) as fake:
        yield fake


@pytest.fixture(scope="module")
def gmfake() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def mproxy(orfake: FakeOpenRouter, gmfake: FakeGemini) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY_1": OR_KEYS[0],
        "OPENROUTER_API_KEY_2": OR_KEYS[1],
        "OPENROUTER_API_BASE_URL": orfake.base_url,
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gmfake.base_url,
        "PROXY_API_KEY": TOKEN,
        "PROXY_TIMEOUT": "5",
        "LLM_MAX_REQUEST_BYTES": str(MAX_BYTES),
        "LLM_COOLDOWN_SECONDS": "600",  # a cooldown outlasts the test, so a scrape sees it running
    }
    with ProxyProcess(env=env, config_yaml=PRICES) as p:
        yield p


@pytest.fixture
def http(mproxy: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{mproxy.reverse_port}", timeout=20, trust_env=False) as c:
        yield c


@pytest.fixture
def oai(mproxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mproxy.base_url, api_key=TOKEN, max_retries=0, timeout=20) as c:
        yield c


def scrape(http: httpx.Client) -> dict[Sample, float]:
    r = http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def delta(
    before: dict[Sample, float], after: dict[Sample, float], name: str, *by: str
) -> Counter[tuple[str, ...]]:
    """How much `name` grew between two scrapes, summed over every label but `by`."""
    out: Counter[tuple[str, ...]] = Counter()
    for (sample, labels), value in after.items():
        if sample == name and (grown := value - before.get((sample, labels), 0.0)):
            out[tuple(dict(labels)[label] for label in by)] += grown
    return +out


def or_calls(fake: FakeOpenRouter, since: int) -> list[tuple[str, str]]:
    """(model, key name) of each chat call the fake got after its first `since` requests."""
    names = {f"Bearer {k}": f"OPENROUTER_API_KEY_{i}" for i, k in enumerate(OR_KEYS, 1)}
    with fake._lock:
        recs = [
            r for r in fake.requests[since:] if r.method == "POST" and r.path.endswith("/chat/completions")
        ]
    return [(r.json()["model"], names[r.headers["authorization"]]) for r in recs]


def test_the_counters_match_the_requests_sent(
    mproxy: ProxyProcess, http: httpx.Client, oai: openai.OpenAI, orfake: FakeOpenRouter, gmfake: FakeGemini
) -> None:
    before, seen = scrape(http), len(orfake.requests)
    hi = [{"role": "user", "content": "hello"}]
    prompt = completion = 0

    def tally(p: int | None, c: int | None) -> None:
        nonlocal prompt, completion
        prompt, completion = prompt + (p or 0), completion + (c or 0)

    for _ in range(2):
        r = oai.chat.completions.create(model=MINI, messages=hi)  # type: ignore[arg-type]
        tally(r.usage and r.usage.prompt_tokens, r.usage and r.usage.completion_tokens)
    chunks = list(oai.chat.completions.create(model=MINI, messages=hi, stream=True,  # type: ignore[arg-type]
                                              stream_options={"include_usage": True}))  # fmt: skip
    usage = next(c.usage for c in chunks if c.usage)
    tally(usage.prompt_tokens, usage.completion_tokens)
    g = oai.chat.completions.create(model=f"gemini:{FLASH}", messages=hi)  # type: ignore[arg-type]
    assert g.usage is not None
    tally(g.usage.prompt_tokens, g.usage.completion_tokens)
    ant = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{mproxy.reverse_port}", api_key=TOKEN, max_retries=0
    )
    m = ant.messages.create(model=MINI, max_tokens=50, messages=hi)  # type: ignore[arg-type]
    tally(m.usage.input_tokens, m.usage.output_tokens)
    with ant.messages.stream(model=MINI, max_tokens=50, messages=hi) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    tally(final.usage.input_tokens, final.usage.output_tokens)
    resp = oai.responses.create(model=MINI, input="hello")
    assert resp.usage is not None
    tally(resp.usage.input_tokens, resp.usage.output_tokens)
    # The first key is rate limited: the next one answers.
    orfake.enqueue(Script(status=429, json_body={"error": {"code": 429, "message": "slow down"}}))
    r = oai.chat.completions.create(model=SONNET, messages=hi)  # type: ignore[arg-type]
    tally(r.usage and r.usage.prompt_tokens, r.usage and r.usage.completion_tokens)
    # Refused before the pipeline or by it.
    auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    assert http.post("/v1/chat/completions", content=b"{not json", headers=auth).status_code == 400
    big = json.dumps({"model": MINI, "messages": [{"role": "user", "content": "x" * MAX_BYTES}]})
    assert http.post("/v1/chat/completions", content=big, headers=auth).status_code == 413
    assert http.post("/v1/chat/completions", json={"model": MINI, "messages": hi}).status_code == 401
    assert http.post("/metrics", headers=auth).status_code == 405
    after = scrape(http)

    assert delta(before, after, "llm_intercept_requests_total", "endpoint", "code") == {
        ("chat", "200"): 5, ("messages", "200"): 2, ("responses", "200"): 1,
        ("chat", "400"): 1, ("chat", "413"): 1, ("chat", "401"): 1, ("other", "405"): 1,
    }  # fmt: skip
    assert delta(before, after, "llm_intercept_request_duration_seconds_count", "endpoint") == {
        ("chat",): 8,
        ("messages",): 2,
        ("responses",): 1,
        ("other",): 1,
    }
    assert delta(before, after, "llm_intercept_time_to_first_token_seconds_count", "endpoint") == {
        ("chat",): 1,
        ("messages",): 1,
    }
    assert delta(before, after, "llm_intercept_errors_total", "endpoint", "backend", "class") == {
        ("chat", "", "client_error"): 1, ("chat", "", "too_large"): 1, ("chat", "", "unauthorised"): 1,
        ("other", "", "client_error"): 1,
    }  # fmt: skip
    # Which key answered which call, as the fakes saw it (the 429 is the one failed attempt).
    calls = or_calls(orfake, seen)
    limited = next(key for model, key in calls if model == SONNET)
    answered = Counter(calls) - Counter({(SONNET, limited): 1})
    by_key = delta(before, after, "llm_intercept_requests_total", "backend", "model", "key", "code")
    assert by_key == {("openrouter", model, key, "200"): n for (model, key), n in answered.items()} | {
        ("gemini", FLASH, "GEMINI_API_KEY_1", "200"): 1, ("", "", "", "400"): 1, ("", "", "", "413"): 1,
        ("", "", "", "401"): 1, ("", "", "", "405"): 1,
    }  # fmt: skip
    assert delta(before, after, "llm_intercept_failovers_total", "backend", "model", "key", "code") == {
        ("openrouter", SONNET, limited, "429"): 1
    }
    assert delta(before, after, "llm_intercept_cooldowns_total", "model", "key", "kind") == {
        (SONNET, limited, "cooldown"): 1
    }
    active = {("llm_intercept_cooldowns_active", frozenset({("backend", "openrouter"), ("model", SONNET),
                                                            ("key", limited)}))}  # fmt: skip
    assert active <= {k for k, v in after.items() if v == 1}
    tokens = delta(before, after, "llm_intercept_tokens_total", "kind")
    assert (tokens["prompt",], tokens["completion",]) == (prompt, completion) and prompt > 0
    # Cost: OpenRouter's own report (the fake's prices), Gemini's from the configured price; none unknown.
    gemini_cost = (g.usage.prompt_tokens * 2.0 + g.usage.completion_tokens * 10.0) / 1e6
    or_prompt, or_completion = prompt - g.usage.prompt_tokens, completion - g.usage.completion_tokens
    or_cost = (or_prompt * FAKE_INPUT_PRICE + or_completion * FAKE_OUTPUT_PRICE) / 1e6
    cost = delta(before, after, "llm_intercept_cost_usd_total", "backend")
    assert cost.keys() == {("gemini",), ("openrouter",)} and gemini_cost > 0
    assert (cost["gemini",], cost["openrouter",]) == (pytest.approx(gemini_cost), pytest.approx(or_cost))
    assert delta(before, after, "llm_intercept_unpriced_requests_total", "backend") == {}


def test_a_scrape_needs_the_access_token_and_is_not_counted(http: httpx.Client) -> None:
    r = http.get("/metrics")
    assert r.status_code == 401 and "llm_intercept" not in r.text
    assert r.json()["error"]["code"] == "invalid_proxy_token"
    before = scrape(http)
    scrape(http)
    assert http.get("/metrics", headers={"x-api-key": "wrong-token-of-some-length"}).status_code == 401
    after = scrape(http)
    assert delta(before, after, "llm_intercept_requests_total", "endpoint") == {}


def test_a_client_that_hangs_up_mid_stream_is_counted_once(
    http: httpx.Client, orfake: FakeOpenRouter
) -> None:
    before = scrape(http)
    orfake.delay, orfake.chunks = 0.3, 20  # six seconds of stream: the client leaves long before its end
    try:
        body = {"model": MINI, "stream": True, "messages": [{"role": "user", "content": "a long story"}]}
        with http.stream(
            "POST", "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {TOKEN}"}
        ) as r:
            assert r.status_code == 200
            got = b""
            for piece in r.iter_bytes():  # (the provider's comment may come first)
                got += piece
                if b'"content"' in got:
                    break  # the first content: then the client hangs up
        after = settled(http, before)
    finally:
        orfake.delay, orfake.chunks = 0.0, 5
    assert delta(before, after, "llm_intercept_requests_total", "endpoint", "code") == {("chat", "499"): 1}
    assert delta(before, after, "llm_intercept_errors_total", "class") == {("client_closed",): 1}
    assert delta(before, after, "llm_intercept_time_to_first_token_seconds_count", "endpoint") == {
        ("chat",): 1
    }
    assert delta(before, after, "llm_intercept_unpriced_requests_total", "backend") == {("openrouter",): 1}


def settled(http: httpx.Client, before: dict[Sample, float]) -> dict[Sample, float]:
    """The first scrape that counts a request more than `before` (the proxy sees a hang-up a moment after
    the client leaves); at most 10 s."""
    deadline = time.monotonic() + 10
    while (
        not delta(before, after := scrape(http), "llm_intercept_requests_total")
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    return after


def test_a_budget_refusal_is_budget_exceeded_in_any_dialect(
    http: httpx.Client, oai: openai.OpenAI, mproxy: ProxyProcess
) -> None:
    """The Messages refusal carries no error code: the class comes from the status and no provider called."""
    session = {"x-session-id": "metrics-budget"}
    before = scrape(http)
    told = oai.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": "!/set(budget=10 tokens)"}], extra_headers=session
    )
    assert "10 tokens" in (told.choices[0].message.content or "")
    oai.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": "hi"}], extra_headers=session
    )
    ant = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{mproxy.reverse_port}", api_key=TOKEN, max_retries=0
    )
    with pytest.raises(anthropic.APIStatusError) as refused:
        ant.messages.create(model=MINI, max_tokens=50, messages=[{"role": "user", "content": "more"}],
                            extra_headers=session)  # fmt: skip
    assert refused.value.status_code == 402
    after = scrape(http)
    assert delta(before, after, "llm_intercept_requests_total", "endpoint", "backend", "code") == {
        ("chat", "", "200"): 1, ("chat", "openrouter", "200"): 1, ("messages", "", "402"): 1
    }  # fmt: skip
    assert delta(before, after, "llm_intercept_errors_total", "endpoint", "class") == {
        ("messages", "budget_exceeded"): 1
    }
