"""The Anthropic Messages front-end end to end: real mitmdump + addon, both fake upstreams, the official
`anthropic` SDK (sync, async, messages.stream, raw events) and raw httpx for what the SDK hides.

One proxy serves the module with a `model_map` (claude-* -> Gemini, gpt-* -> OpenRouter); each test talks
in its own X-Session-ID. Every answer is validated on its raw bytes against the SDK's own types
(anthropic_fixtures.message / replay), and no upstream key may reach a client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageTokensCount, ModelInfo
from anthropic.types.beta import BetaMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import OPENROUTER_KEYS
from tests.e2e.anthropic_fixtures import (
    ANSWERED_BY,
    ANTHROPIC_VERSION,
    BACKENDS,
    GEMINI_MODEL,
    LIMITED_MODEL,
    MODEL_MAP,
    OR_MODEL,
    PNG,
    SIGNATURE,
    STREAM,
    WEATHER_TOOL,
    CountingGemini,
    assert_no_key,
    assistant,
    blocks,
    error_body,
    gemini_answer,
    is_gemini,
    message,
    openrouter_answer,
    replay,
    root_url,
    sse_frames,
    strict,
    tool_call,
    upstream,
    user,
)
from tests.e2e.test_gemini_path import GEMINI_KEYS
from tests.fakes.fake_gemini import Reply, api_error, rate_limited, server_error
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Script
from tests.harness import ProxyProcess

Ask = Callable[..., Message]


@pytest.fixture(scope="module")
def gemini() -> Iterator[CountingGemini]:
    with CountingGemini(GEMINI_KEYS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def aproxy(gemini: CountingGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_KEY_2": OPENROUTER_KEYS[1],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "5",
    }
    with ProxyProcess(env=env, config_yaml=MODEL_MAP) as p:
        yield p


def _session(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]


def _sdk(proxy: ProxyProcess, request: pytest.FixtureRequest) -> dict[str, Any]:
    headers = {"X-Session-ID": _session(request)}
    return {"base_url": root_url(proxy), "api_key": "client-side-key", "max_retries": 0, "timeout": 20,
            "default_headers": headers}  # fmt: skip


@pytest.fixture
def client(aproxy: ProxyProcess, request: pytest.FixtureRequest) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(**_sdk(aproxy, request)) as c:
        yield c


@pytest.fixture
def aclient(aproxy: ProxyProcess, request: pytest.FixtureRequest) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(**_sdk(aproxy, request))


@pytest.fixture
def http(aproxy: ProxyProcess, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    headers = {**ANTHROPIC_VERSION, "x-api-key": "client-side-key", "X-Session-ID": _session(request)}
    with httpx.Client(base_url=root_url(aproxy), headers=headers, timeout=20, trust_env=False) as c:
        yield c


@pytest.fixture
def ask(client: anthropic.Anthropic, aproxy: ProxyProcess) -> Ask:
    """One Messages call through the SDK, as JSON or as SSE; the raw bytes validated, the Message back."""

    def run(stream: bool = False, **kw: Any) -> Message:
        kw.setdefault("max_tokens", 256)
        raw = client.messages.with_raw_response.create(stream=stream, **kw)
        body = raw.read()
        assert_no_key(aproxy, body, str(raw.headers))
        if not stream:
            assert raw.headers["content-type"].startswith("application/json")
            return message(body)
        assert raw.headers["content-type"].startswith("text/event-stream")
        return replay(sse_frames(body))

    return run


# -- plain calls ----------------------------------------------------------------------------------------


@BACKENDS
def test_create(client: anthropic.Anthropic, aproxy: ProxyProcess, model: str) -> None:
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=64, messages=[user("hello there")], system="Be brief."
    )
    msg = message(raw.read())
    assert blocks(msg) == [("text", "echo: hello there")]
    assert (msg.role, msg.stop_reason, msg.stop_sequence) == ("assistant", "end_turn", None)
    assert msg.model == model  # the name asked for; the header names what answered
    assert raw.headers["x-llm-intercept-model"] == ANSWERED_BY[model]
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.parse().content[0].text == "echo: hello there"  # type: ignore[union-attr]
    assert_no_key(aproxy, raw.read(), str(raw.headers))


def test_async_create_and_stream(aclient: anthropic.AsyncAnthropic) -> None:
    async def plain(model: str) -> str:
        msg = await aclient.messages.create(model=model, max_tokens=64, messages=[user(f"plain {model}")])
        return msg.content[0].text  # type: ignore[union-attr]

    async def streamed(model: str) -> tuple[str, str]:
        async with aclient.messages.stream(model=model, max_tokens=64, messages=[user(f"sse {model}")]) as s:
            text = "".join([t async for t in s.text_stream])
            final = await s.get_final_message()
        return text, final.content[0].text  # type: ignore[union-attr]

    async def run() -> list[Any]:
        async with aclient:
            return await asyncio.gather(
                plain(GEMINI_MODEL), plain(OR_MODEL), streamed(GEMINI_MODEL), streamed(OR_MODEL)
            )

    got = asyncio.run(run())
    assert got == [
        f"echo: plain {GEMINI_MODEL}",
        f"echo: plain {OR_MODEL}",
        (f"echo: sse {GEMINI_MODEL}",) * 2,
        (f"echo: sse {OR_MODEL}",) * 2,
    ]


@BACKENDS
def test_messages_stream_text_and_final_message(
    client: anthropic.Anthropic, gemini: CountingGemini, openrouter: FakeOpenRouter, model: str
) -> None:
    with client.messages.stream(model=model, max_tokens=64, messages=[user("stream me please")]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert "".join(pieces) == "echo: stream me please" and len(pieces) >= 2  # relayed piece by piece
    assert blocks(final) == [("text", "echo: stream me please")]
    assert (final.stop_reason, final.model) == ("end_turn", model)
    assert final.usage.output_tokens > 0
    if is_gemini(model):
        assert ":streamGenerateContent" in gemini.last_generate().path
    else:
        sent = openrouter.last("/chat/completions").json()
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@BACKENDS
def test_raw_events(
    client: anthropic.Anthropic, http: httpx.Client, aproxy: ProxyProcess, model: str
) -> None:
    """Every event has its `event:` line and is valid as the SDK's type, in Anthropic's order; the SDK's
    own stream=True sees the same events, and the events add up to what the JSON call answers."""
    body = {"model": model, "max_tokens": 64, "messages": [user("raw events")]}
    r = http.post("/v1/messages", json={**body, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-llm-intercept-model"] == ANSWERED_BY[model]
    assert_no_key(aproxy, r.content, str(r.headers))
    frames = sse_frames(r.content)
    streamed = replay(frames)
    assert blocks(streamed) == [("text", "echo: raw events")]
    assert (streamed.stop_reason, streamed.model) == ("end_turn", model)

    sdk_events = list(client.messages.create(**body, stream=True))
    assert [e.type for e in sdk_events] == [name for name, _ in frames if name != "ping"]
    plain = message(http.post("/v1/messages", json=body).content)
    assert [b.model_dump() for b in plain.content] == [b.model_dump() for b in streamed.content]
    assert plain.stop_reason == streamed.stop_reason


SPLIT_ANSWER = {
    "content": "Grüße, let me check…",
    "reasoning": "Zürich → weather tool.",
    "tool_calls": [tool_call("call_z", "get_weather", {"city": "Zürich"})],
}
WHOLE = b"".join(openrouter_answer(SPLIT_ANSWER, True, "tool_calls").events or [])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, len(WHOLE) - 1), max_size=12, unique=True))
def test_any_split_of_the_upstream_stream_gives_the_same_message(
    http: httpx.Client, openrouter: FakeOpenRouter, cuts: list[int]
) -> None:
    """The upstream's bytes cut anywhere (inside an event, a line ending, a UTF-8 character) reach the
    client as the same Messages events."""
    bounds = [0, *sorted(cuts), len(WHOLE)]
    openrouter.enqueue(Script(events=[WHOLE[a:b] for a, b in itertools.pairwise(bounds)]))
    body = {"model": OR_MODEL, "max_tokens": 64, "messages": [user("split")], "stream": True}
    msg = replay(sse_frames(http.post("/v1/messages", json=body).content))
    assert blocks(msg) == [
        ("thinking", "Zürich → weather tool."),
        ("text", "Grüße, let me check…"),
        ("tool_use", {"city": "Zürich"}),
    ]
    assert (msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens) == ("tool_use", 9, 3)


# -- tools, images, thinking ----------------------------------------------------------------------------


CITIES = ({"city": "Paris"}, {"city": "Rome"})


@BACKENDS
@STREAM
def test_tool_round_trip(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, model: str, stream: bool
) -> None:
    """Text, then two calls: tool_use blocks with their whole input and stop_reason tool_use; the
    results sent back reach the upstream paired with their calls (on Gemini with the call's thought
    signature, which the fake refuses to do without)."""
    if is_gemini(model):
        gemini.enqueue(Reply(text="Let me check.", tool_calls=[("get_weather", c) for c in CITIES]))
    else:
        calls = [tool_call(f"call_w{i}", "get_weather", c) for i, c in enumerate(CITIES)]
        answer = {"content": "Let me check.", "tool_calls": calls}
        openrouter.enqueue(openrouter_answer(answer, stream, "tool_calls"))
    first = ask(stream, model=model, tools=[WEATHER_TOOL], messages=[user("Weather in Paris and Rome?")])
    assert first.stop_reason == "tool_use"
    shown = [b for b in blocks(first) if b[0] != "thinking"]  # a signature may come as a thinking block
    assert shown == [("text", "Let me check."), *(("tool_use", c) for c in CITIES)]
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_weather"] * 2
    assert len({u.id for u in uses}) == 2

    results = [
        {"type": "tool_result", "tool_use_id": u.id, "content": f"{c['city']}: 18 C"}
        for u, c in zip(uses, CITIES, strict=True)
    ]
    history = [user("Weather in Paris and Rome?"), assistant(first), {"role": "user", "content": results}]
    second = ask(stream, model=model, tools=[WEATHER_TOOL], messages=history)
    assert second.stop_reason == "end_turn"
    sent = upstream(model, gemini, openrouter)
    if is_gemini(model):
        model_turn, answer_turn = sent["contents"][1], sent["contents"][2]
        assert [p["functionCall"]["args"] for p in model_turn["parts"] if "functionCall" in p] == list(CITIES)
        assert gemini.signature_checks and all(c.received == c.expected for c in gemini.signature_checks)
        responses = [p["functionResponse"] for p in answer_turn["parts"] if "functionResponse" in p]
        assert [r["name"] for r in responses] == ["get_weather"] * 2
        assert ["Paris: 18 C" in json.dumps(r["response"]) for r in responses] == [True, False]
        assert "Rome: 18 C" in second.content[0].text  # type: ignore[union-attr]
    else:
        assistant_turn, *tool_msgs = sent["messages"][-3:]
        fn_calls = assistant_turn["tool_calls"]
        assert [json.loads(f["function"]["arguments"]) for f in fn_calls] == list(CITIES)
        assert [(m["role"], m["tool_call_id"]) for m in tool_msgs] == [("tool", f["id"]) for f in fn_calls]
        assert ["Paris: 18 C" in json.dumps(m["content"]) for m in tool_msgs] == [True, False]
        assert sent["tools"][0]["function"]["name"] == "get_weather"


@BACKENDS
def test_images_reach_the_upstream(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, model: str
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    msg = ask(
        model=model, messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]
    )
    assert blocks(msg) == [("text", "echo: What is it?")]
    sent = upstream(model, gemini, openrouter)
    if is_gemini(model):
        assert {"inlineData": {"mimeType": "image/png", "data": PNG}} in sent["contents"][0]["parts"]
    else:
        url = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
        assert url in sent["messages"][-1]["content"]


@BACKENDS
def test_an_image_from_a_tool_reaches_the_upstream(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, model: str
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    shot = {"type": "tool_use", "id": "toolu_01shot", "name": "screenshot", "input": {"area": "full"}}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_01shot",
        "content": [{"type": "text", "text": "done"}, image],
    }
    tool = {
        "name": "screenshot",
        "input_schema": {"type": "object", "properties": {"area": {"type": "string"}}},
    }
    history = [
        user("Take a screenshot"),
        {"role": "assistant", "content": [shot]},
        {"role": "user", "content": [result]},
    ]
    ask(model=model, tools=[tool], messages=history)
    sent = upstream(model, gemini, openrouter)
    if is_gemini(model):
        parts = [p for c in sent["contents"][2:] for p in c["parts"]]
        assert {"inlineData": {"mimeType": "image/png", "data": PNG}} in parts
        assert any(p.get("functionResponse", {}).get("name") == "screenshot" for p in parts)
    else:
        kinds = [m["role"] for m in sent["messages"]]
        assert kinds[-3:] == ["assistant", "tool", "user"], kinds
        url = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
        assert url in sent["messages"][-1]["content"]


THOUGHT = {"text": "Two and two make four.", "thought": True}
SIGNED = {"text": "Four.", "thoughtSignature": SIGNATURE}


@STREAM
@pytest.mark.parametrize(
    "events",
    [[[THOUGHT], [SIGNED]], [[THOUGHT, SIGNED]], [[SIGNED]]],
    ids=["thoughts", "thoughts-and-text-in-one-event", "signature-only"],
)
def test_gemini_thinking_blocks_carry_the_signature_back(
    ask: Ask, gemini: CountingGemini, stream: bool, events: list[list[dict[str, Any]]]
) -> None:
    """Gemini's thought text becomes a thinking block; a signature without thought text a thinking block
    with empty text (as Anthropic sends omitted thinking); the text after the thoughts is all there;
    sent back, the signature reaches Gemini."""
    thought = THOUGHT["text"] if THOUGHT in events[0] else None
    gemini.enqueue(gemini_answer(events, stream))
    thinking = {"type": "enabled", "budget_tokens": 2048}
    first = ask(stream, model=GEMINI_MODEL, max_tokens=4096, thinking=thinking, messages=[user("2+2?")])
    config = gemini.last_generate().json()["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingBudget": 2048, "includeThoughts": True}
    assert blocks(first) == [("thinking", thought or ""), ("text", "Four.")]
    assert first.content[0].signature  # type: ignore[union-attr]

    history = [user("2+2?"), assistant(first), user("And 3+3?")]
    ask(stream, model=GEMINI_MODEL, max_tokens=4096, thinking=thinking, messages=history)
    model_turn = gemini.last_generate().json()["contents"][1]
    assert model_turn["role"] == "model"
    assert SIGNATURE in [p.get("thoughtSignature") for p in model_turn["parts"]]
    assert "Four." in [p.get("text") for p in model_turn["parts"]]


@STREAM
def test_openrouter_reasoning_is_a_thinking_block(ask: Ask, openrouter: FakeOpenRouter, stream: bool) -> None:
    openrouter.enqueue(openrouter_answer({"content": "Four.", "reasoning": "Adding two and two."}, stream))
    thinking = {"type": "enabled", "budget_tokens": 2048}
    msg = ask(stream, model=OR_MODEL, max_tokens=4096, thinking=thinking, messages=[user("2+2?")])
    assert openrouter.last("/chat/completions").json()["reasoning"]["max_tokens"] == 2048
    assert blocks(msg) == [("thinking", "Adding two and two."), ("text", "Four.")]


# -- stop reasons and usage -----------------------------------------------------------------------------


@STREAM
@pytest.mark.parametrize(
    ("model", "finish", "expected"),
    [
        (GEMINI_MODEL, "MAX_TOKENS", "max_tokens"),
        (GEMINI_MODEL, "SAFETY", "refusal"),
        (GEMINI_MODEL, "PROHIBITED_CONTENT", "refusal"),
        (OR_MODEL, "length", "max_tokens"),
        (OR_MODEL, "content_filter", "refusal"),
    ],
)
def test_stop_reasons(
    ask: Ask,
    gemini: CountingGemini,
    openrouter: FakeOpenRouter,
    model: str,
    finish: str,
    expected: str,
    stream: bool,
) -> None:
    if is_gemini(model):
        gemini.enqueue(gemini_answer([[{"text": "Partial"}], [{"text": " answer"}]], stream, finish))
    else:
        openrouter.enqueue(openrouter_answer({"content": "Partial answer"}, stream, finish))
    msg = ask(stream, model=model, max_tokens=5, messages=[user("Tell me everything")])
    assert (msg.stop_reason, msg.stop_sequence) == (expected, None)
    sent = upstream(model, gemini, openrouter)
    if is_gemini(model):
        assert sent["generationConfig"]["maxOutputTokens"] == 5
    else:
        assert 5 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))


@STREAM
def test_stop_sequence_named_when_the_upstream_says_which(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(openrouter_answer({"content": "one two"}, stream, "stop", stop_reason="END"))
    msg = ask(stream, model=OR_MODEL, stop_sequences=["END", "HALT"], messages=[user("count")])
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "END")
    assert openrouter.last("/chat/completions").json()["stop"] == ["END", "HALT"]
    # Gemini does not say which sequence matched: a plain end_turn, never a guess.
    msg = ask(stream, model=GEMINI_MODEL, stop_sequences=["END", "HALT"], messages=[user("count")])
    assert (msg.stop_reason, msg.stop_sequence) == ("end_turn", None)
    assert gemini.last_generate().json()["generationConfig"]["stopSequences"] == ["END", "HALT"]


@BACKENDS
@STREAM
def test_usage_arithmetic(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, model: str, stream: bool
) -> None:
    """input + cache reads + cache writes = the upstream's prompt tokens; output includes thinking."""
    if is_gemini(model):
        usage = {"promptTokenCount": 120, "cachedContentTokenCount": 100, "candidatesTokenCount": 5,
                 "thoughtsTokenCount": 7, "totalTokenCount": 132}  # fmt: skip
        gemini.enqueue(gemini_answer([[{"text": "cached"}]], stream, usage=usage))
        expected = (20, 100, 0, 12)
    else:
        usage = {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59,
                 "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 5},
                 "completion_tokens_details": {"reasoning_tokens": 4}}  # fmt: skip
        openrouter.enqueue(openrouter_answer({"content": "cached"}, stream, usage=usage))
        expected = (15, 30, 5, 9)
    u = ask(stream, model=model, messages=[user("usage")]).usage
    got = (
        u.input_tokens,
        u.cache_read_input_tokens or 0,
        u.cache_creation_input_tokens or 0,
        u.output_tokens,
    )
    assert got == expected


# -- errors ---------------------------------------------------------------------------------------------


@STREAM
def test_unknown_model_is_not_found_naming_model_map(
    client: anthropic.Anthropic, aproxy: ProxyProcess, stream: bool
) -> None:
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="mystery-model-7", max_tokens=8, messages=[user("x")], stream=stream)
    text = error_body(e.value.body, "not_found_error")
    assert "mystery-model-7" in text and "model_map" in text
    assert_no_key(aproxy, json.dumps(e.value.body), str(e.value.response.headers))


@BACKENDS
@STREAM
def test_context_length_is_anthropics_prompt_too_long(
    client: anthropic.Anthropic,
    aproxy: ProxyProcess,
    gemini: CountingGemini,
    openrouter: FakeOpenRouter,
    model: str,
    stream: bool,
) -> None:
    """Claude Code compacts on exactly this wording instead of giving up."""
    if is_gemini(model):
        words = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        gemini.enqueue(api_error(400, "INVALID_ARGUMENT", words))
        expected = "prompt is too long: 1200000 tokens > 1048576 maximum"
    else:
        words = ("This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 "
                 "tokens (9000 of text input). Please reduce the length of either one.")  # fmt: skip
        openrouter.enqueue(Script(status=400, json_body={"error": {"code": 400, "message": words}}))
        expected = "prompt is too long: 9000 tokens > 8192 maximum"
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=model, max_tokens=8, messages=[user("long")], stream=stream)
    assert error_body(e.value.body, "invalid_request_error").startswith(expected)
    assert_no_key(aproxy, json.dumps(e.value.body), str(e.value.response.headers))


@pytest.mark.parametrize(
    ("model", "busy"),
    [
        ("gemini:gemini-2.5-flash-lite", server_error(503)),
        ("openrouter:meta-llama/llama-3.3-70b-instruct:free",
         Script(status=503, json_body={"error": {"code": 503, "message": "No instances available"}})),
    ],
    ids=["gemini", "openrouter"],
)  # fmt: skip
@STREAM
def test_upstream_503_is_overloaded_529(
    client: anthropic.Anthropic,
    aproxy: ProxyProcess,
    gemini: CountingGemini,
    openrouter: FakeOpenRouter,
    model: str,
    busy: Script,
    stream: bool,
) -> None:
    fake = gemini if model.startswith("gemini:") else openrouter
    fake.enqueue(busy, busy, busy)  # every key (and one more) answers 503
    with pytest.raises(anthropic.InternalServerError) as e:
        client.messages.create(model=model, max_tokens=8, messages=[user("busy?")], stream=stream)
    assert e.value.status_code == 529
    error_body(e.value.body, "overloaded_error")
    assert_no_key(aproxy, json.dumps(e.value.body), str(e.value.response.headers))


def test_all_keys_rate_limited_is_429_with_retry_after(
    client: anthropic.Anthropic, aproxy: ProxyProcess, gemini: CountingGemini
) -> None:
    gemini.enqueue(rate_limited("20s"), rate_limited("20s"), model="gemini-2.0-flash")  # claude-limited-*
    for _ in range(2):  # the second finds every key resting: the same answer without asking upstream
        with pytest.raises(anthropic.RateLimitError) as e:
            client.messages.create(model=LIMITED_MODEL, max_tokens=8, messages=[user("again")])
        error_body(e.value.body, "rate_limit_error")
        assert 1 <= int(e.value.response.headers["retry-after"]) <= 20
        assert_no_key(aproxy, json.dumps(e.value.body), str(e.value.response.headers))
    assert len(gemini.generate_requests()) == 2
    assert all("/gemini-2.0-flash:" in r.path for r in gemini.generate_requests())


@BACKENDS
def test_failure_after_the_stream_started_is_an_error_event(
    client: anthropic.Anthropic,
    http: httpx.Client,
    gemini: CountingGemini,
    openrouter: FakeOpenRouter,
    model: str,
) -> None:
    if is_gemini(model):
        gemini.enqueue(*[Reply(text="one two three four five six", chunks=3, error_after=1)] * 2)
        kind = "overloaded_error"  # Gemini's mid-stream 503 UNAVAILABLE
    else:
        cut = replace(openrouter_answer({"content": "one two three four five six"}, True), drop_after=3)
        openrouter.enqueue(cut, cut)
        kind = "api_error"  # the upstream connection broke
    with (
        pytest.raises(anthropic.APIStatusError) as e,
        client.messages.stream(model=model, max_tokens=64, messages=[user("x")]) as s,
    ):
        for _ in s.text_stream:
            pass
    assert isinstance(e.value.body, dict) and e.value.body["error"]["type"] == kind

    r = http.post(
        "/v1/messages", json={"model": model, "max_tokens": 64, "messages": [user("x")], "stream": True}
    )
    frames = sse_frames(r.content)
    names = [name for name, _ in frames if name != "ping"]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names, names
    error_body(frames[-1][1], kind)
    text = "".join(d["delta"].get("text", "") for n, d in frames if n == "content_block_delta")
    assert text.startswith("one")  # what upstream sent before failing reached the client


def test_bad_proxy_token_is_authentication_error(gemini: CountingGemini, openrouter: FakeOpenRouter) -> None:
    token = "pxy-7f3c9a1e5b2d8f60c4a7e91b3d5f2a8c"
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_API_KEY": token,
    }
    with ProxyProcess(env=env, config_yaml=MODEL_MAP) as p:
        base = {
            "base_url": root_url(p),
            "max_retries": 0,
            "timeout": 20,
            "default_headers": {"X-Session-ID": "auth"},
        }
        with anthropic.Anthropic(api_key="not-the-token", **base) as bad:  # type: ignore[arg-type]
            with pytest.raises(anthropic.AuthenticationError) as e:
                bad.messages.create(model=OR_MODEL, max_tokens=8, messages=[user("x")])
            error_body(e.value.body, "authentication_error")
            with pytest.raises(anthropic.AuthenticationError):
                bad.messages.count_tokens(model=OR_MODEL, messages=[user("x")])
        assert not openrouter.requests or all("/chat/" not in r.path for r in openrouter.requests)
        for creds in ({"api_key": token}, {"auth_token": token, "api_key": None}):  # x-api-key, Bearer
            with anthropic.Anthropic(**creds, **base) as good:  # type: ignore[arg-type]
                msg = good.messages.create(model=OR_MODEL, max_tokens=8, messages=[user("let me in")])
                assert blocks(msg) == [("text", "echo: let me in")]
        assert openrouter.last("/chat/completions").headers["authorization"] == f"Bearer {OPENROUTER_KEYS[0]}"


# -- the proxy's own answers and endpoints --------------------------------------------------------------


@STREAM
def test_status_command_answered_by_the_proxy(
    ask: Ask, gemini: CountingGemini, openrouter: FakeOpenRouter, stream: bool
) -> None:
    msg = ask(stream, model=GEMINI_MODEL, messages=[user("!/status")])
    assert msg.stop_reason == "end_turn" and msg.model == GEMINI_MODEL
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert "gemini: 2 key(s)" in text and "openrouter: 2 key(s)" in text
    assert not gemini.generate_requests() and not any("/chat/" in r.path for r in openrouter.requests)


def test_beta_path_and_unknown_fields(client: anthropic.Anthropic, openrouter: FakeOpenRouter) -> None:
    """Claude Code's `?beta=true`, `anthropic-beta` values and new top-level fields: never a 400."""
    raw = client.beta.messages.with_raw_response.create(
        model=OR_MODEL,
        max_tokens=64,
        messages=[user("beta hello")],
        betas=["interleaved-thinking-2025-05-14", "context-management-2025-06-27"],
        extra_body={"context_management": {"edits": []}, "output_config": {"effort": "high"}},
        extra_query={"beta": "true"},  # as Claude Code sends it (this SDK version leaves it off)
    )
    assert raw.http_request.url.params["beta"] == "true"
    assert "interleaved-thinking-2025-05-14" in raw.http_request.headers["anthropic-beta"]
    msg = BetaMessage.model_validate(json.loads(raw.read()))
    strict(msg)
    assert msg.content[0].text == "echo: beta hello"  # type: ignore[union-attr]
    sent = openrouter.last("/chat/completions").json()
    assert "context_management" not in sent and "output_config" not in sent


def test_count_tokens_on_gemini_is_geminis_count(client: anthropic.Anthropic, gemini: CountingGemini) -> None:
    raw = client.messages.with_raw_response.count_tokens(
        model=GEMINI_MODEL,
        system="You are terse.",
        tools=[WEATHER_TOOL],
        messages=[user("count these words")],
    )
    counted = MessageTokensCount.model_validate(json.loads(raw.read()))
    strict(counted)
    assert gemini.counted and counted.input_tokens == gemini.counted[-1]
    rec = gemini.count_requests()[-1]
    assert "/models/gemini-2.5-flash:countTokens" in rec.path
    inner = rec.json()["generateContentRequest"]  # system instruction and tools counted too
    assert inner["systemInstruction"] and inner["tools"]
    assert not gemini.generate_requests()


def test_count_tokens_elsewhere_is_an_estimate_that_grows(
    client: anthropic.Anthropic, openrouter: FakeOpenRouter
) -> None:
    short = client.messages.count_tokens(model=OR_MODEL, messages=[user("a few words")]).input_tokens
    long = client.messages.count_tokens(
        model=OR_MODEL, messages=[user("many more words here " * 200)]
    ).input_tokens
    assert 0 < short < long
    assert not any("/chat/" in r.path for r in openrouter.requests)


def test_models_in_anthropics_shape(
    client: anthropic.Anthropic, http: httpx.Client, aproxy: ProxyProcess
) -> None:
    listing = http.get("/v1/models").json()
    models = [ModelInfo.model_validate(m) for m in listing["data"]]
    for m in models:
        strict(m)
    ids = [m.id for m in models]
    assert (listing["has_more"], listing["first_id"], listing["last_id"]) == (False, ids[0], ids[-1])
    assert "gemini:gemini-2.5-flash" in ids and "openai/gpt-4o-mini" in ids
    assert [m.id for m in client.models.list()] == ids
    with httpx.Client(base_url=root_url(aproxy), trust_env=False, timeout=20) as plain:
        openai_shape = plain.get("/v1/models").json()
    assert openai_shape["object"] == "list" and [m["id"] for m in openai_shape["data"]] == ids
