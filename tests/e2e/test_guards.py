"""Loop guards and tool-call repair end to end: a real mitmdump with the addon, both fake upstreams in
their own wire formats (OpenRouter streams tool arguments in pieces; Gemini sends calls whole), and the
official clients: the openai SDK (chat and Responses) and the anthropic SDK (Messages), every Messages
body validated against the SDK's own types.

One proxy serves the module; each test talks in its own X-Session-ID.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests import guard_scenarios as sc
from tests.conftest import OPENROUTER_KEYS
from tests.e2e.anthropic_fixtures import message, replay, sse_frames
from tests.e2e.test_gemini_path import GEMINI_KEYS
from tests.fakes.fake_gemini import FakeGemini, raw_stream, sse_event
from tests.fakes.fake_gemini import Reply as GeminiReply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter, stream_events
from tests.fakes.server import FakeServer, Script
from tests.harness import ProxyProcess, wait_for
from tests.long_texts import long_texts, looping, pieces

OR = "openrouter:openai/gpt-4o-mini"
GM = "gemini:gemini-2.5-flash"
BACKENDS = pytest.mark.parametrize("model", [OR, GM], ids=["openrouter", "gemini"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
LOOP_BLOCK = "Let me open the configuration file once more to be sure it is right.\n"
NOTE = "\n\n[llm-intercept: output stopped because it was repeating itself"


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def gproxy(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "10",
    }
    with ProxyProcess(env=env) as p:
        yield p


@pytest.fixture
def session(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]


@pytest.fixture
def client(gproxy: ProxyProcess, session: str) -> Iterator[openai.OpenAI]:
    headers = {"X-Session-ID": session}
    with openai.OpenAI(
        base_url=gproxy.base_url, api_key="k", max_retries=0, timeout=30, default_headers=headers
    ) as c:
        yield c


@pytest.fixture
def claude(gproxy: ProxyProcess, session: str) -> Iterator[anthropic.Anthropic]:
    url, headers = f"http://127.0.0.1:{gproxy.reverse_port}", {"X-Session-ID": session}
    with anthropic.Anthropic(
        base_url=url, api_key="k", max_retries=0, timeout=30, default_headers=headers
    ) as c:
        yield c


def streamed(client: openai.OpenAI, model: str) -> tuple[str, str | None]:
    """(the text, the finish reason) of a streamed chat answer."""
    text, finish = "", None
    for ch in client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "go"}]
    ):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
            finish = ch.choices[0].finish_reason or finish
    return text, finish


def gemini_text_event(text: str) -> bytes:
    return sse_event({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]})


def looping_stream(model: str) -> tuple[Script, int]:
    """A stream that loops for far longer than the guard lets it: its first write already holds enough of
    the loop to trip the guard; the rest is written only after the test releases the fake. (script, the
    number of writes it would make if read to its end)"""
    text = looping(LOOP_BLOCK, 300)
    head, tail = pieces(text[:8000]), [LOOP_BLOCK] * 400
    if model == OR:
        first = b"".join(stream_events(head, "openai/gpt-4o-mini")[:-2])
        rest = [b"".join(stream_events(["x", p], "openai/gpt-4o-mini")[1:2]) for p in tail]
        events = [first, *rest, b"data: [DONE]\n\n"]
        return Script(events=events, delay=0.005), len(events)
    frames: list[dict[str, Any] | bytes] = [b"".join(gemini_text_event(p) for p in head)]
    frames += [gemini_text_event(p) for p in tail]
    script = raw_stream(frames, delay=0.005)
    return script, len(frames)


@BACKENDS
def test_a_looping_stream_is_cut_and_the_upstream_stream_closed(
    gproxy: ProxyProcess, session: str, model: str, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    """Read as a plain HTTP client reads (to the end of the body, not just to [DONE]), so only the proxy
    itself can have closed the upstream stream."""
    fake: FakeServer = openrouter if model == OR else gemini
    script, writes = looping_stream(model)
    if model == OR:
        openrouter.enqueue(script)
    else:
        gemini.enqueue(script)
    release, text, finish = threading.Event(), "", None
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with (
        fake.held_after_first_chunk(release),
        httpx.Client(timeout=30, trust_env=False) as http,
        http.stream(
            "POST", f"{gproxy.base_url}/chat/completions", json=body, headers={"X-Session-ID": session}
        ) as r,
    ):
        for line in r.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                text += choice["delta"].get("content") or ""
                finish = choice["finish_reason"] or finish
            release.set()  # from the first event on, the fake may write the rest of its loop
    answer, _, note = text.partition(NOTE)
    assert note and finish == "stop"
    assert looping(LOOP_BLOCK, 300).startswith(answer) and len(answer) >= 3000
    # The proxy closed the upstream stream: the fake's next writes failed long before its end.
    assert wait_for(lambda: bool(fake.stream_ends), timeout=30)
    assert fake.stream_ends[-1] < writes // 2


@BACKENDS
@pytest.mark.parametrize("name", list(long_texts()))
def test_real_long_answers_stream_through_uncut(
    client: openai.OpenAI, model: str, name: str, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    text = long_texts()[name]
    chunks = max(1, len(text) // 24)  # about 24 characters per event, as models stream
    if model == OR:
        openrouter.enqueue(ChatReply(text=text, chunks=chunks))
    else:
        gemini.enqueue(GeminiReply(text=text, chunks=chunks))
    assert streamed(client, model) == (text, "stop")


@BACKENDS
def test_the_tool_call_loop_is_steered_then_refused_on_chat(
    client: openai.OpenAI,
    gproxy: ProxyProcess,
    session: str,
    model: str,
    gemini: FakeGemini,
    openrouter: FakeOpenRouter,
) -> None:
    openrouter.enqueue(ChatReply(quote_tool_results=True))
    gemini.enqueue(GeminiReply(quote_tool_results=True))
    seven = client.chat.completions.create(model=model, messages=sc.chat_history(7), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    assert "[llm-intercept loop guard: read_file(" in (seven.choices[0].message.content or "")
    upstream = openrouter.last("/chat/completions").json() if model == OR else gemini.last_generate().json()
    assert "loop guard" in json.dumps(upstream)
    # History keeps the request as it was forwarded: the note on the latest result only.
    url = f"http://127.0.0.1:{gproxy.reverse_port}/v1/sessions/{session}/history"
    assert wait_for(lambda: bool(httpx.get(url, timeout=10).json()["data"]), timeout=10)
    (row,) = httpx.get(url, timeout=10).json()["data"]  # the forwarded call (the refusal comes later)
    results = [m["content"] for m in row["prompt"] if m["role"] == "tool"]
    assert len(results) == 7 and "loop guard" in results[-1] and "loop guard" not in "".join(results[:-1])
    before = len(openrouter.requests) + len(gemini.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=sc.chat_history(8), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "tool_call_loop"
    assert 'read_file({"path": "src/app.py"}) 8 times in a row' in body["message"]
    assert len(openrouter.requests) + len(gemini.requests) == before  # no provider was asked


def test_the_tool_call_loop_is_steered_then_refused_on_messages(
    claude: anthropic.Anthropic, gemini: FakeGemini
) -> None:
    gemini.enqueue(GeminiReply(quote_tool_results=True))
    ask = {"model": GM, "max_tokens": 100, "tools": sc.MESSAGES_TOOLS}
    seven = claude.messages.with_raw_response.create(messages=sc.messages_history(7), **ask)  # type: ignore[call-overload]
    text = "".join(b.text for b in message(seven.read()).content if b.type == "text")
    assert "[llm-intercept loop guard: read_file(" in text
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(messages=sc.messages_history(8), **ask)  # type: ignore[call-overload]
    body = refused.value.body
    assert (
        isinstance(body, dict)
        and body["type"] == "error"
        and body["error"]["type"] == "invalid_request_error"
    )
    assert "read_file" in body["error"]["message"] and "loop-guard=off" in body["error"]["message"]


def test_the_tool_call_loop_is_refused_on_responses(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=OR, input=sc.responses_input(8), tools=sc.RESPONSES_TOOLS)  # type: ignore[arg-type]
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "tool_call_loop"


def test_the_loop_guard_can_be_switched_off_for_a_session(
    client: openai.OpenAI, openrouter: FakeOpenRouter
) -> None:
    said = client.chat.completions.create(
        model=OR, messages=[{"role": "user", "content": "!/set(loop-guard=off)"}]
    )
    assert "loop guards off" in (said.choices[0].message.content or "")
    openrouter.enqueue(ChatReply(text="ok"))
    eight = client.chat.completions.create(model=OR, messages=sc.chat_history(8), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    assert eight.choices[0].message.content == "ok"
    assert "loop guard" not in json.dumps(openrouter.last("/chat/completions").json())


def chat_arguments(client: openai.OpenAI, model: str, stream: bool) -> list[str]:
    ask: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": sc.ASK}],
        "tools": sc.CHAT_TOOLS,
    }
    if not stream:
        calls = client.chat.completions.create(**ask).choices[0].message.tool_calls or []
        return [c.function.arguments for c in calls]  # type: ignore[union-attr]
    args: dict[int, str] = {}
    for ch in client.chat.completions.create(**ask, stream=True):
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args[tc.index] = args.get(tc.index, "") + ((tc.function.arguments or "") if tc.function else "")
    return [args[i] for i in sorted(args)]


@STREAM
def test_malformed_arguments_are_repaired_and_unrepairable_ones_left_alone_on_chat(
    client: openai.OpenAI, openrouter: FakeOpenRouter, stream: bool
) -> None:
    sent = [*(s for s, _ in sc.REPAIRED.values()), *sc.UNCHANGED.values()]
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", s) for s in sent]))
    got = chat_arguments(client, OR, stream)
    assert [json.loads(a) for a in got[: len(sc.REPAIRED)]] == [meant for _, meant in sc.REPAIRED.values()]
    assert got[len(sc.REPAIRED) :] == list(sc.UNCHANGED.values())


@STREAM
def test_whole_calls_from_gemini_pass_as_they_came(
    client: openai.OpenAI, gemini: FakeGemini, stream: bool
) -> None:
    gemini.enqueue(GeminiReply(tool_calls=[("read_file", {"path": "a.py", "lines": 3})]))
    assert [json.loads(a) for a in chat_arguments(client, GM, stream)] == [{"path": "a.py", "lines": 3}]


@STREAM
def test_tool_use_input_is_the_repaired_object_on_messages(
    claude: anthropic.Anthropic, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sc.REPAIRED["trailing comma"][0])]))
    raw = claude.messages.with_raw_response.create(
        model=OR,
        max_tokens=100,
        stream=stream,
        messages=[{"role": "user", "content": sc.ASK}],
        tools=sc.MESSAGES_TOOLS,  # type: ignore[arg-type]
    )
    body = raw.read()
    msg = replay(sse_frames(body)) if stream else message(body)
    assert [b.input for b in msg.content if b.type == "tool_use"] == [sc.REPAIRED["trailing comma"][1]]
    assert msg.stop_reason == "tool_use"


@STREAM
def test_function_call_arguments_are_repaired_on_responses(
    client: openai.OpenAI, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sc.REPAIRED["code fence"][0])]))
    ask: dict[str, Any] = {"model": OR, "input": sc.ASK, "tools": sc.RESPONSES_TOOLS}
    if stream:
        with client.responses.stream(**ask) as s:
            out = s.get_final_response().output
    else:
        out = client.responses.create(**ask).output
    assert [json.loads(o.arguments) for o in out if o.type == "function_call"] == [
        sc.REPAIRED["code fence"][1]
    ]
