"""Loop guards and tool-call repair through the real pipeline, in-process: both fakes served without
sockets, the official openai and anthropic SDKs talking to the core through an httpx transport.

One core serves the module; each test talks in its own X-Session-ID.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from addons.frontends.base import Reply
from addons.mitm.flowview import comment
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.upstream import UpstreamCall, UpstreamError
from tests import guard_scenarios as sc
from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_gemini import Reply as GeminiReply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter
from tests.long_texts import long_texts, looping
from tests.unit.pipeline.inproc import (
    GEMINI_HOST,
    OPENROUTER_HOST,
    client_kwargs,
    core_for,
    offline,
)
from tests.unit.pipeline.mock_upstream import MockAnswer
from tests.unit.pipeline.test_commit_point import anthropic_sdk

GEMINI_KEYS = ("AIzaSyGuardInproc-7kQ2xV9mWp4Lr8Tz1Hc6", "AIzaSyGuardInproc-3Nf5Bq8Yd2Js7Gx0Ke4")
OR = "openrouter:openai/gpt-4o-mini"
GM = "gemini:gemini-2.5-flash"
BACKENDS = pytest.mark.parametrize("model", [OR, GM], ids=["openrouter", "gemini"])
LOOP = looping("I need to check the configuration file again before answering.\n", 500)


@dataclass
class Counted(MockAnswer):
    """An upstream answer that counts the chunks the proxy read."""

    read_chunks: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        async for data in super().chunks():
            self.read_chunks += 1
            yield data


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with offline(FakeGemini(GEMINI_KEYS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def openrouter() -> Iterator[FakeOpenRouter]:
    with offline(FakeOpenRouter(OPENROUTER_KEYS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _fresh(gemini: FakeGemini, openrouter: FakeOpenRouter) -> None:
    gemini.reset()
    openrouter.reset()


@pytest.fixture(scope="module")
def answers() -> list[Counted]:
    return []


@pytest.fixture(scope="module")
def core(gemini: FakeGemini, openrouter: FakeOpenRouter, answers: list[Counted]) -> Core:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "PROXY_TIMEOUT": "5",
    }
    core = core_for({GEMINI_HOST: gemini, OPENROUTER_HOST: openrouter}, env)
    serve = core.upstream.handler  # type: ignore[attr-defined]

    def counted(call: UpstreamCall) -> MockAnswer | UpstreamError:
        answer = serve(call)
        if isinstance(answer, MockAnswer):
            answer = Counted(
                answer.status, answer.body, answer.headers, answer.fail_after, answer.host, cut=answer.cut
            )
            answers.append(answer)
        return answer

    core.upstream.handler = counted  # type: ignore[attr-defined]
    return core


@pytest.fixture
def session(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]


@pytest.fixture
def client(core: Core, session: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="k", max_retries=0, default_headers={"X-Session-ID": session}, **client_kwargs(core)
    ) as c:
        yield c


@pytest.fixture
def claude(core: Core, session: str) -> anthropic.Anthropic:
    return anthropic_sdk(core).with_options(default_headers={"X-Session-ID": session})


def send(
    core: Core, session: str, body: dict[str, Any], path: str = "/v1/chat/completions"
) -> tuple[Reply, bytes]:
    """A raw call: the reply (with its call record) and its whole body, a stream read to its end."""

    async def go() -> tuple[Reply, bytes]:
        headers = {"x-session-id": session, "anthropic-version": "2023-06-01"}
        reply = await dispatch.handle(core, "POST", path, headers, json.dumps(body).encode())
        assert reply is not None
        data = reply.body if reply.stream is None else b"".join([c async for c in reply.stream])
        return reply, data

    return asyncio.run(go())


def script_text(
    model: str, text: str, gemini: FakeGemini, openrouter: FakeOpenRouter, chunk: int = 24
) -> None:
    """The next answer of `model`'s fake: `text`, streamed in pieces of about `chunk` characters."""
    if model == OR:
        openrouter.enqueue(ChatReply(text=text, chunks=max(1, len(text) // chunk)))
    else:
        gemini.enqueue(GeminiReply(text=text, chunks=max(1, len(text) // chunk)))


def streamed(client: openai.OpenAI, model: str, **kw: Any) -> tuple[str, str | None]:
    """(the text, the finish reason) of a streamed chat answer."""
    text, finish = "", None
    for ch in client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "go"}], **kw
    ):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
            finish = ch.choices[0].finish_reason or finish
    return text, finish


# -- repetition ------------------------------------------------------------------------------------


@BACKENDS
def test_a_looping_stream_is_cut_with_a_note_and_upstream_closed(
    client: openai.OpenAI, model: str, gemini: FakeGemini, openrouter: FakeOpenRouter, answers: list[Counted]
) -> None:
    script_text(model, LOOP, gemini, openrouter)
    text, finish = streamed(client, model)
    answer, _, note = text.partition("\n\n[llm-intercept: output stopped because it was repeating itself")
    assert note and finish == "stop"
    assert LOOP.startswith(answer) and 3000 <= len(answer) < len(LOOP) // 4
    upstream = answers[-1]
    assert upstream.closed and upstream.read_chunks < len(upstream.body) // 4  # not read on, nor paid for


@BACKENDS
def test_a_looping_answer_is_cut_where_a_stream_would_have_been(
    core: Core, session: str, model: str, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    script_text(model, LOOP, gemini, openrouter)
    reply, body = send(core, session, {"model": model, "messages": [{"role": "user", "content": "go"}]})
    choice = json.loads(body)["choices"][0]
    answer, _, note = choice["message"]["content"].partition("\n\n[llm-intercept: output stopped")
    assert note and LOOP.startswith(answer) and len(answer) < len(LOOP) // 4
    assert choice["finish_reason"] == "stop"
    assert reply.record is not None and reply.record.guards == ["repetition"]
    assert "guard repetition" in comment(reply.record)


@BACKENDS
@pytest.mark.parametrize("name", list(long_texts()))
def test_real_long_answers_are_not_cut(
    client: openai.OpenAI, model: str, name: str, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    text = long_texts()[name]
    script_text(model, text, gemini, openrouter)
    got, finish = streamed(client, model)
    assert got == text and finish == "stop"


def test_a_session_can_switch_the_loop_guard_off_and_back(
    client: openai.OpenAI, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    said = client.chat.completions.create(
        model=OR, messages=[{"role": "user", "content": "!/set(loop-guard=off)"}]
    )
    assert "loop guards off (this session)" in (said.choices[0].message.content or "")
    status = client.chat.completions.create(model=OR, messages=[{"role": "user", "content": "!/status"}])
    assert "loop guards: off (this session's choice)" in (status.choices[0].message.content or "")
    script_text(OR, LOOP, gemini, openrouter)
    assert streamed(client, OR) == (LOOP, "stop")
    client.chat.completions.create(model=OR, messages=[{"role": "user", "content": "!/unset(loop-guard)"}])
    script_text(OR, LOOP, gemini, openrouter)
    assert "[llm-intercept: output stopped" in streamed(client, OR)[0]


# -- the tool-call loop -------------------------------------------------------------------------------


@BACKENDS
def test_the_seventh_identical_round_gets_a_note_the_eighth_an_error(
    client: openai.OpenAI, model: str, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(ChatReply(quote_tool_results=True), ChatReply(quote_tool_results=True))
    gemini.enqueue(GeminiReply(quote_tool_results=True), GeminiReply(quote_tool_results=True))
    six = client.chat.completions.create(model=model, messages=sc.chat_history(6), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    assert sc.RESULT in (six.choices[0].message.content or "") and "loop guard" not in str(six)
    seven = client.chat.completions.create(model=model, messages=sc.chat_history(7), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    quoted = seven.choices[0].message.content or ""
    assert f"{sc.RESULT}\n\n[llm-intercept loop guard: read_file(" in quoted.replace("\\n", "\n")
    assert "has now been called 7 times in a row" in quoted
    calls = len(openrouter.requests) + len(gemini.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=sc.chat_history(8), tools=sc.CHAT_TOOLS)  # type: ignore[arg-type]
    err = refused.value.body
    assert isinstance(err, dict) and err["code"] == "tool_call_loop"
    assert 'read_file({"path": "src/app.py"}) 8 times in a row' in err["message"]
    assert "!/set(loop-guard=off)" in err["message"]
    assert len(openrouter.requests) + len(gemini.requests) == calls  # no provider was asked


def test_the_loop_refusal_comes_in_each_dialect(core: Core, session: str) -> None:
    messages, body = send(
        core,
        session,
        {"model": OR, "max_tokens": 100, "messages": sc.messages_history(8), "tools": sc.MESSAGES_TOOLS},
        "/v1/messages",
    )
    assert messages.status == 400
    err = json.loads(body)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert "read_file" in err["error"]["message"] and "8 times in a row" in err["error"]["message"]
    assert messages.record is not None and messages.record.guards == ["tool_loop_refused"]
    assert "answered by llm-intercept" in comment(messages.record)
    responses, body = send(
        core,
        session,
        {"model": OR, "input": sc.responses_input(8), "tools": sc.RESPONSES_TOOLS},
        "/v1/responses",
    )
    assert responses.status == 400
    assert json.loads(body)["error"]["code"] == "tool_call_loop"


def test_the_note_reaches_the_model_on_messages_and_history_keeps_it(
    claude: anthropic.Anthropic, gemini: FakeGemini
) -> None:
    gemini.enqueue(GeminiReply(quote_tool_results=True))
    msg = claude.messages.create(
        model=GM, max_tokens=100, messages=sc.messages_history(7), tools=sc.MESSAGES_TOOLS
    )  # type: ignore[arg-type]
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert "[llm-intercept loop guard: read_file(" in text
    responses = [
        p["functionResponse"]
        for c in gemini.last_generate().json()["contents"]
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert "loop guard" in json.dumps(responses[-1]) and "loop guard" not in json.dumps(responses[:-1])


# -- tool-call repair ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", list(sc.REPAIRED))
def test_malformed_arguments_are_repaired_on_chat(
    client: openai.OpenAI, openrouter: FakeOpenRouter, case: str, stream: bool
) -> None:
    sent, meant = sc.REPAIRED[case]
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sent)]))
    args = _chat_arguments(client, stream)
    assert json.loads(args) == meant


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", list(sc.UNCHANGED))
def test_unrepairable_arguments_pass_unchanged(
    client: openai.OpenAI, openrouter: FakeOpenRouter, case: str, stream: bool
) -> None:
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sc.UNCHANGED[case])]))
    assert _chat_arguments(client, stream) == sc.UNCHANGED[case]


def _chat_arguments(client: openai.OpenAI, stream: bool) -> str:
    ask = {"model": OR, "messages": [{"role": "user", "content": sc.ASK}], "tools": sc.CHAT_TOOLS}
    if not stream:
        calls = client.chat.completions.create(**ask).choices[0].message.tool_calls  # type: ignore[call-overload]
        assert calls is not None
        return calls[0].function.arguments  # type: ignore[union-attr]
    args = ""
    for ch in client.chat.completions.create(**ask, stream=True):  # type: ignore[call-overload]
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args += (tc.function.arguments or "") if tc.function else ""
    return args


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_repair_is_counted_on_the_record_and_the_flow_comment(
    core: Core, session: str, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(
        ChatReply(
            tool_calls=[("read_file", sc.REPAIRED["trailing comma"][0]), ("read_file", "{'path': 'b'}")]
        )
    )
    body = {
        "model": OR,
        "stream": stream,
        "messages": [{"role": "user", "content": sc.ASK}],
        "tools": sc.CHAT_TOOLS,
    }
    reply, _ = send(core, session, body)
    assert reply.record is not None and reply.record.repairs == 2
    assert "repaired 2 tool call(s)" in comment(reply.record)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_tool_use_input_is_the_repaired_object_on_messages(
    claude: anthropic.Anthropic, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sc.REPAIRED["trailing comma"][0])]))
    ask: dict[str, Any] = {
        "model": OR,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": sc.ASK}],
        "tools": sc.MESSAGES_TOOLS,
    }
    if stream:
        with claude.messages.stream(**ask) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(**ask)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [sc.REPAIRED["trailing comma"][1]] and msg.stop_reason == "tool_use"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_function_call_arguments_are_repaired_on_responses(
    client: openai.OpenAI, openrouter: FakeOpenRouter, stream: bool
) -> None:
    openrouter.enqueue(ChatReply(tool_calls=[("read_file", sc.REPAIRED["single quotes"][0])]))
    ask: dict[str, Any] = {"model": OR, "input": sc.ASK, "tools": sc.RESPONSES_TOOLS}
    if stream:
        with client.responses.stream(**ask) as s:
            out = s.get_final_response().output
    else:
        out = client.responses.create(**ask).output
    calls = [o for o in out if o.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [sc.REPAIRED["single quotes"][1]]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_whole_calls_from_gemini_pass_as_they_came(
    core: Core, session: str, gemini: FakeGemini, stream: bool
) -> None:
    gemini.enqueue(GeminiReply(tool_calls=[("read_file", {"path": "a.py", "lines": 3})]))
    body = {
        "model": GM,
        "stream": stream,
        "messages": [{"role": "user", "content": sc.ASK}],
        "tools": sc.CHAT_TOOLS,
    }
    reply, data = send(core, session, body)
    assert reply.record is not None and reply.record.repairs == 0
    assert b'\\"path\\": \\"a.py\\"' in data or b'\\"path\\":\\"a.py\\"' in data
