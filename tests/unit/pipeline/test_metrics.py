"""`GET /metrics` through the real pipeline in-process: the route, its token, the cooldowns a failover
starts, time to first token on streams, and one registry across option changes."""

from __future__ import annotations

import asyncio
import json

from prometheus_client.parser import text_string_to_metric_families

from addons import app
from addons.frontends.base import KEEP_ALIVE, Reply
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from tests.fakes.fake_openrouter import completion, stream_events
from tests.unit.pipeline.conftest import OR_KEYS, MakeCore, call, run
from tests.unit.pipeline.mock_upstream import json_answer, sse_answer
from tests.unit.pipeline.test_commit_point import gated
from tests.unit.pipeline.test_failover import by_key

MODEL = "openai/gpt-4o-mini"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
TOKEN = "Jw4t-8Rn2vQ6-hX3kM9p-Fd7Bs1"


def get(
    core: Core, path: str = "/metrics", method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    reply = run(dispatch.handle(core, method, path, headers or {}, b""))
    assert reply is not None
    return reply


def samples(core: Core) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = get(core)
    assert reply.status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.body.decode())
        for s in family.samples
    }


def test_metrics_is_a_get_route_of_its_own() -> None:
    assert dispatch.route("GET", "/metrics") == "metrics"
    assert dispatch.route("GET", "/metrics/") == "metrics"
    assert dispatch.route("POST", "/metrics") == "method"
    assert dispatch.route("GET", "/v1/metrics") is None


def test_a_scrape_answers_the_text_format_and_other_methods_get_a_405(make_core: MakeCore) -> None:
    core, _ = make_core(lambda c: json_answer(200, completion("ok", MODEL)))
    reply = get(core)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(reply.body.decode())}
    assert {"llm_intercept_requests", "llm_intercept_cooldowns_active"} <= names
    refused = get(core, method="POST")
    assert refused.status == 405 and "use GET" in json.loads(refused.body)["error"]["message"]


def test_with_an_access_token_a_scrape_needs_it(make_core: MakeCore) -> None:
    core, _ = make_core(lambda c: json_answer(200, completion("ok", MODEL)), env={"PROXY_API_KEY": TOKEN})
    refused = get(core)
    assert refused.status == 401 and b"llm_intercept" not in refused.body
    assert get(core, headers={"authorization": f"Bearer {TOKEN}"}).status == 200
    assert get(core, headers={"x-api-key": TOKEN}).status == 200


def test_a_failover_counts_the_cooldown_it_started_and_a_scrape_shows_it_running(make_core: MakeCore) -> None:
    limited = json_answer(429, {"error": {"message": "slow down"}}, **{"retry-after": "60"})
    core, _ = make_core(by_key({OR_KEYS[0]: limited, OR_KEYS[1]: json_answer(200, completion("ok", MODEL))}))
    assert call(core, HELLO).status == 200
    keyed = {("backend", "openrouter"), ("model", MODEL), ("key", "OPENROUTER_API_KEY_1")}
    seen = samples(core)
    assert seen[("llm_intercept_cooldowns_total", frozenset({*keyed, ("kind", "cooldown")}))] == 1
    assert seen[("llm_intercept_cooldowns_active", frozenset(keyed))] == 1
    assert not any(name == "llm_intercept_cooldowns_active" and ("key", "OPENROUTER_API_KEY_2") in labels
                   for name, labels in seen)  # fmt: skip


def test_a_key_out_of_credits_is_counted_as_a_retirement(make_core: MakeCore) -> None:
    broke = json_answer(402, {"error": {"message": "Insufficient credits", "code": 402}})
    core, _ = make_core(by_key({OR_KEYS[0]: broke, OR_KEYS[1]: json_answer(200, completion("ok", MODEL))}))
    assert call(core, HELLO).status == 200
    labels = {("backend", "openrouter"), ("model", "*"), ("key", "OPENROUTER_API_KEY_1")}
    seen = samples(core)
    assert seen[("llm_intercept_cooldowns_total", frozenset({*labels, ("kind", "retirement")}))] == 1
    assert seen[("llm_intercept_cooldowns_active", frozenset(labels))] == 1


def test_time_to_first_token_is_when_the_client_is_handed_content(make_core: MakeCore) -> None:
    core, _ = make_core(lambda c: sse_answer(stream_events("Alpha beta", MODEL)))

    async def go() -> float | None:
        reply = await dispatch.handle(
            core, "POST", "/v1/chat/completions", {}, json.dumps({**HELLO, "stream": True}).encode()
        )
        assert reply is not None and reply.stream is not None and reply.record is not None
        await asyncio.sleep(0.3)  # committed, but the client has nothing yet
        assert reply.record.ttft_ms is None
        [_ async for _ in reply.stream]
        return reply.record.ttft_ms

    ttft = run(go())
    assert ttft is not None and ttft >= 300


def test_after_a_timed_out_commit_keep_alives_are_no_first_token(make_core: MakeCore) -> None:
    answer = gated("openrouter", held_from=1, wait=0.4)  # the keep-alive comment only, then content
    core, _ = make_core(lambda c: answer, env={"LLM_COMMIT_TIMEOUT": "0.05"})
    body = json.dumps({"model": "openrouter:" + MODEL, "stream": True, "messages": HELLO["messages"]})

    async def go() -> tuple[list[bytes], float | None]:
        reply = await dispatch.handle(core, "POST", "/v1/chat/completions", {}, body.encode())
        assert reply is not None and reply.stream is not None and reply.record is not None
        return [p async for p in reply.stream], reply.record.ttft_ms

    pieces, ttft = run(go())
    first = next(i for i, p in enumerate(pieces) if b"Alpha" in p)
    assert KEEP_ALIVE in pieces[:first]  # keep-alives (and the provider's comment) went out before it
    assert ttft is not None and ttft >= 400


def test_the_registry_survives_an_option_change(make_core: MakeCore) -> None:
    core, _ = make_core(lambda c: json_answer(200, completion("ok", MODEL)))
    core.metrics.cooldown_started("openrouter", MODEL, "OPENROUTER_API_KEY_1", "cooldown")
    rebuilt = app.build(core.settings, core, upstream=core.upstream)
    assert rebuilt.metrics is core.metrics
    assert app.build(core.settings, upstream=core.upstream).metrics is not core.metrics
