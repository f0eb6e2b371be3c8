"""Usage and cost through the real pipeline, in-process, against both fakes: what each front-end's client
sees (the openai SDK's chat and Responses, the anthropic SDK's Messages, streamed or not) is the upstream's
numbers, and what the proxy counts (`/v1/usage`, `!/usage`) is those numbers priced: OpenRouter's own
cost, the price table's for Gemini, unknown where neither knows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from addons.pipeline import dispatch
from addons.pipeline.core import Core
from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter, FakeUsage, completion
from tests.fakes.server import Script
from tests.unit.pipeline.conftest import MakeCore, run
from tests.unit.pipeline.inproc import BASE_URL, Transport, client_kwargs, core_for, offline, sse_events
from tests.unit.pipeline.test_commit_point import anthropic_sdk
from tests.unit.pipeline.test_embeddings import provider as embeddings_provider

GEMINI_KEYS = ("AIzaUsage-7Hd8Kq1Zx6Vb9Nm2Lw5Rt7Yc0Pq", "AIzaUsage-2Fj2Pm5Qs1Wd4Gk7Xn0Bv3Ht9Lm")
FLASH = "gemini:gemini-2.5-flash"
GPT = "openrouter:openai/gpt-4o-mini"
UNPRICED = "openrouter:anthropic/claude-3.5-sonnet"  # priced below: OpenRouter reports no cost for it here
M = 1_000_000
# Gemini: 1,200 prompt tokens (1,000 of them cached), 40 answer + 300 thought tokens.
GEMINI_USAGE = {"promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 300,
                "cachedContentTokenCount": 1000, "totalTokenCount": 1540}  # fmt: skip
GEMINI_COST = (200 * 0.30 + 1000 * 0.03 + 340 * 2.50) / M  # gemini-2.5-flash's shipped prices
OR_USAGE = FakeUsage(prompt=194, completion=30, cached=100, reasoning=12, cost=0.0042)
EXPECTED = {FLASH: (1200, 340, 1000, 300, GEMINI_COST), GPT: (194, 30, 100, 12, 0.0042)}


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with offline(FakeGemini(GEMINI_KEYS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def openrouter() -> Iterator[FakeOpenRouter]:
    with offline(FakeOpenRouter(OPENROUTER_KEYS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def core(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Core:
    env = {"GEMINI_API_KEY_1": GEMINI_KEYS[0], "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0]}
    prices = {"prices": {"anthropic/claude-3.5-sonnet": {"input": 3.0, "output": 15.0, "cached_input": 0.3}}}
    return core_for({"generativelanguage.googleapis.com": gemini, "openrouter.ai": openrouter}, env, prices)


@pytest.fixture(autouse=True)
def _fresh(gemini: FakeGemini, openrouter: FakeOpenRouter) -> None:
    gemini.reset()
    openrouter.reset()


def script(model: str, gemini: FakeGemini, openrouter: FakeOpenRouter, text: str = "the answer") -> None:
    if model == FLASH:
        gemini.enqueue(Reply(text=text, thoughts="pondering", usage=GEMINI_USAGE))
    else:
        openrouter.enqueue(ChatReply(text=text, usage=OR_USAGE))


def usage_of(core: Core, **params: str) -> dict[str, Any]:
    with httpx.Client(transport=Transport(core), base_url=BASE_URL) as http:
        r = http.get("/usage", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def counted(core: Core, session: str) -> tuple[int, int, int, int, int, float | None]:
    t = usage_of(core, session=session, group_by="")["total"]
    names = (
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
    )
    return tuple(t[n] for n in names)  # type: ignore[return-value]


def chat(core: Core, session: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="k", max_retries=0, default_headers={"X-Session-ID": session}, **client_kwargs(core)
    )


MODELS = pytest.mark.parametrize("model", [FLASH, GPT], ids=["gemini", "openrouter"])


@MODELS
def test_chat_answer_usage_and_its_cost(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter, model: str
) -> None:
    session = f"chat-{model}"
    script(model, gemini, openrouter)
    u = (
        chat(core, session)
        .chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        .usage
    )
    p, c, cached, reasoning, cost = EXPECTED[model]
    assert u is not None and (u.prompt_tokens, u.completion_tokens) == (p, c)
    assert u.prompt_tokens_details and u.prompt_tokens_details.cached_tokens == cached
    assert u.completion_tokens_details and u.completion_tokens_details.reasoning_tokens == reasoning
    assert counted(core, session) == (1, p, c, cached, reasoning, pytest.approx(cost))
    if model == GPT:  # the proxy asked OpenRouter for the cost
        assert openrouter.last("/chat/completions").json()["usage"] == {"include": True}


@MODELS
@pytest.mark.parametrize("asked", [True, False], ids=["include_usage", "no_usage_asked"])
def test_a_stream_is_counted_and_shows_usage_only_when_asked(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter, model: str, asked: bool
) -> None:
    session = f"stream-{model}-{asked}"
    script(model, gemini, openrouter, "one two three four")
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}
    stream = chat(core, session).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True, **extra
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three four"
    with_usage = [c for c in chunks if c.usage is not None]
    p, c, cached, reasoning, cost = EXPECTED[model]
    if asked:
        (last,) = with_usage  # Gemini's on a chunk of its own, OpenRouter's on the finish chunk
        assert last is chunks[-1]
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (p, c)
    else:
        assert with_usage == [] and all(ch.choices for ch in chunks)  # no usage chunk at all
    assert counted(core, session) == (1, p, c, cached, reasoning, pytest.approx(cost))  # counted either way
    if model == GPT:
        sent = openrouter.last("/chat/completions").json()
        assert sent["stream_options"] == {"include_usage": True} and sent["usage"] == {"include": True}


def test_a_raw_stream_without_usage_asked_has_no_usage_field_at_all(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    for model in (FLASH, GPT):
        script(model, gemini, openrouter)
        with httpx.Client(transport=Transport(core), base_url=BASE_URL) as http:
            body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            raw = http.post("/chat/completions", json=body, headers={"X-Session-ID": "raw"}).text
        events = sse_events(raw)
        assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1]), raw
    assert counted(core, "raw")[0] == 2


@MODELS
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_messages_usage(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter, model: str, stream: bool
) -> None:
    session = f"messages-{model}-{stream}"
    script(model, gemini, openrouter)
    claude = anthropic_sdk(core).with_options(default_headers={"X-Session-ID": session})
    args: dict[str, Any] = {
        "model": model,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        with claude.messages.stream(**args) as s:
            u = s.get_final_message().usage
    else:
        u = claude.messages.create(**args).usage
    p, c, cached, reasoning, cost = EXPECTED[model]
    # Anthropic counts cache reads apart from input_tokens; output includes thinking.
    assert (u.input_tokens, u.cache_read_input_tokens, u.output_tokens) == (p - cached, cached, c)
    assert counted(core, session) == (1, p, c, cached, reasoning, pytest.approx(cost))
    assert usage_of(core, session=session, group_by="")["groups"][0]["cost_complete"] is True


@MODELS
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_responses_usage(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter, model: str, stream: bool
) -> None:
    session = f"responses-{model}-{stream}"
    script(model, gemini, openrouter)
    client = chat(core, session)
    if stream:
        events = list(client.responses.create(model=model, input="hi", stream=True))
        (done,) = [e for e in events if e.type == "response.completed"]
        u = done.response.usage
    else:
        u = client.responses.create(model=model, input="hi").usage
    p, c, cached, reasoning, cost = EXPECTED[model]
    assert u is not None and (u.input_tokens, u.output_tokens) == (p, c)
    assert (u.input_tokens_details.cached_tokens, u.output_tokens_details.reasoning_tokens) == (
        cached,
        reasoning,
    )
    assert counted(core, session) == (1, p, c, cached, reasoning, pytest.approx(cost))


def test_legacy_completions_are_counted(core: Core, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(ChatReply(text="done", usage=OR_USAGE))
    with httpx.Client(transport=Transport(core), base_url=BASE_URL) as http:
        r = http.post("/completions", json={"model": GPT, "prompt": "hi"}, headers={"X-Session-ID": "legacy"})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 194
    assert counted(core, "legacy") == (1, 194, 30, 100, 12, pytest.approx(0.0042))


def test_embeddings_are_counted_and_unreported_tokens_cost_unknown(make_core: MakeCore) -> None:
    core, _ = make_core(embeddings_provider)
    headers = {"x-session-id": "embed"}
    for model in ("gemini:gemini-embedding-001", "openrouter:openai/text-embedding-3-small"):
        reply = run(dispatch.handle(core, "POST", "/v1/embeddings", headers, json.dumps(
            {"model": model, "input": "hello"}).encode()))  # fmt: skip
        assert reply is not None and reply.status == 200 and reply.record is not None
        assert reply.record.cost_usd is None  # Gemini counted no tokens; OpenRouter's model has no price
    total = usage_of(core, session="embed", group_by="")["total"]
    assert (total["requests"], total["prompt_tokens"], total["cost_usd"], total["unknown_cost"]) == (
        2,
        4,
        None,
        2,
    )


def test_without_a_reported_cost_the_price_table_decides_and_unknown_stays_unknown(
    core: Core, openrouter: FakeOpenRouter
) -> None:
    """OpenRouter answering without `cost` (the proxy asked): an unpriced model's cost is unknown, a model
    priced in the settings is priced, cached tokens at its cached price."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
             "prompt_tokens_details": {"cached_tokens": 400}}  # fmt: skip
    for model in ("meta-llama/llama-3.3-70b-instruct:free", "anthropic/claude-3.5-sonnet"):
        openrouter.enqueue(Script(json_body=completion("ok", model, usage)))
        chat(core, f"priced-{model}").chat.completions.create(
            model=f"openrouter:{model}", messages=[{"role": "user", "content": "x"}]
        )
    unknown = usage_of(core, session="priced-meta-llama/llama-3.3-70b-instruct:free", group_by="")["total"]
    assert (unknown["requests"], unknown["cost_usd"], unknown["unknown_cost"]) == (1, None, 1)
    assert unknown["cost_complete"] is False
    priced = usage_of(core, session="priced-anthropic/claude-3.5-sonnet", group_by="")["total"]
    assert priced["cost_usd"] == pytest.approx((600 * 3.0 + 400 * 0.3 + 100 * 15.0) / M)
    assert priced["unknown_cost"] == 0


def test_usage_query_errors_are_openai_shaped(core: Core) -> None:
    with httpx.Client(transport=Transport(core), base_url=BASE_URL) as http:
        r = http.get("/usage", params={"since": "last tuesday"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "since"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_usage_command(core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter) -> None:
    client = chat(core, "cmd")
    client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "!/set(project=acme)"}])
    script(GPT, gemini, openrouter)
    client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "work"}])
    script(FLASH, gemini, openrouter)
    client.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "more work"}])
    answer = client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "!/usage"}])
    text = answer.choices[0].message.content or ""
    cost = f"${0.0042 + GEMINI_COST:.6f}"
    both = f"2 calls · 1,394 in (1,100 cached) + 370 out (312 reasoning) = 1,764 tokens · {cost}"
    assert text.splitlines()[:3] == ["usage · session cmd", f"this session: {both}", f"project acme: {both}"]
    assert "today (" in text and "UTC, all sessions)" in text
    assert counted(core, "cmd")[0] == 2  # commands answered by the proxy are no calls
    bad = client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "!/usage(now)"}])
    assert "takes no arguments" in (bad.choices[0].message.content or "")


def test_grouping_by_backend_model_and_key(
    core: Core, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    client = chat(core, "groups")
    for model in (FLASH, GPT, GPT):
        script(model, gemini, openrouter)
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    out = usage_of(core, session="groups")
    assert out["group_by"] == ["backend", "model"]
    assert [(g["group"], g["requests"]) for g in out["groups"]] == [
        ({"backend": "gemini", "model": "gemini-2.5-flash"}, 1),
        ({"backend": "openrouter", "model": "openai/gpt-4o-mini"}, 2),
    ]
    keys = usage_of(core, session="groups", group_by="key")
    assert {g["group"]["key"] for g in keys["groups"]} == {"GEMINI_API_KEY_1", "OPENROUTER_API_KEY_1"}
    assert json.dumps(keys).count("AIza") == 0  # key names, never keys
