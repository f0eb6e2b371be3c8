"""What the agent tests script on the fake upstreams: a tool call in each provider's wire format, an
answer quoting the tool results a request carries, and fake Gemini's countTokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter, tool_call_events
from translators.sse import SSEDecoder

ARGS = {"cmd": "printf 'MARKER-%s\\n' 123", "yield_time_ms": 500}
HISTORY = [
    {"role": "user", "content": "run it"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function", "function": {}}]},
    {"role": "tool", "tool_call_id": "a", "content": "old output"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "b", "type": "function", "function": {}}]},
    {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "MARKER-123"}]},
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fake_or() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(OPENROUTER_KEYS) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def fake_gm() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake  # type: ignore[misc]


@given(args=st.dictionaries(st.text(max_size=8), json_values, max_size=4), chunks=st.integers(1, 9))
def test_streamed_tool_arguments_reassemble_to_the_call(args: dict[str, Any], chunks: int) -> None:
    deltas = []
    for event in tool_call_events(
        [("exec_command", args)], "m", chunks, {"stream_options": {"include_usage": True}}
    ):
        data = event.removeprefix(b"data: ").strip()
        if data != b"[DONE]":
            deltas.append(json.loads(data))
    calls = [c for d in deltas for c in d["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["id"] and calls[0]["function"]["name"] == "exec_command"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == args
    assert deltas[-1]["choices"][0]["finish_reason"] == "tool_calls" and deltas[-1]["usage"]


@pytest.mark.parametrize("stream", [False, True])
def test_openrouter_tool_call_then_quoted_results_through_the_sdk(
    fake_or: FakeOpenRouter, stream: bool
) -> None:
    fake_or.reset()
    fake_or.enqueue(ChatReply(tool_calls=[("exec_command", ARGS)]), ChatReply(quote_tool_results=True))
    client = openai.OpenAI(base_url=fake_or.base_url, api_key=OPENROUTER_KEYS[0], max_retries=0)
    messages: Any = [{"role": "user", "content": "run it"}]
    if stream:
        with client.chat.completions.stream(model="m", messages=messages) as s:
            call = s.get_final_completion().choices[0]
    else:
        call = client.chat.completions.create(model="m", messages=messages).choices[0]
    assert call.finish_reason == "tool_calls"
    (tc,) = call.message.tool_calls or []
    assert tc.function.name == "exec_command" and json.loads(tc.function.arguments) == ARGS
    if stream:
        chunks = client.chat.completions.create(model="m", messages=HISTORY, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model="m", messages=HISTORY).choices[0].message.content or ""
    assert text == "tool results: MARKER-123"  # the latest turn's result only


def test_gemini_quotes_the_function_responses_of_the_latest_turn(fake_gm: FakeGemini) -> None:
    fake_gm.reset()
    fake_gm.enqueue(Reply(quote_tool_results=True))

    def turn(out: str) -> dict[str, Any]:
        return {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"o": out}}}]}

    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    contents = [{"role": "user", "parts": [{"text": "go"}]}, call, turn("old"), call, turn("MARKER-123")]
    r = httpx.post(
        f"{fake_gm.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json={"contents": contents},
        headers={"x-goog-api-key": next(iter(fake_gm.keys))},
    )
    events = SSEDecoder().feed(r.content)
    text = "".join(
        p.get("text", "") for e in events for p in json.loads(e.data)["candidates"][0]["content"]["parts"]
    )
    assert text == 'tool results: {"o": "MARKER-123"}'


def test_gemini_count_tokens_grows_with_the_request(fake_gm: FakeGemini) -> None:
    def count(body: dict[str, Any], model: str = "gemini-2.5-flash") -> httpx.Response:
        url = f"{fake_gm.base_url}/v1beta/models/{model}:countTokens"
        return httpx.post(url, json=body, headers={"x-goog-api-key": next(iter(fake_gm.keys))})

    short = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    whole = {"generateContentRequest": {"model": "models/gemini-2.5-flash", **short}}
    tools = [{"functionDeclarations": [{"name": "f", "description": "a tool " * 40}]}]
    with_tools = {"generateContentRequest": whole["generateContentRequest"] | {"tools": tools}}
    counts = [count(b).json()["totalTokens"] for b in (short, whole, with_tools)]
    assert 0 < counts[0] < counts[1] < counts[2]
    no_model = {"generateContentRequest": short}
    assert count(no_model).json()["error"]["status"] == "INVALID_ARGUMENT"
    assert count({"contents": [{"role": "user", "parts": []}]}).status_code == 400
    assert count(short, model="no-such-model").status_code == 404
