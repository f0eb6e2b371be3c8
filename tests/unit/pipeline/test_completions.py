"""Legacy `POST /v1/completions` on the chat pipeline: the pure translation (translators/openai/
completions.py) and the whole path in-process (MockUpstream), on both backends, with commands and the
openai SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.frontends.base import Reply
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.upstream import UpstreamCall
from tests.fakes.fake_gemini import sse_event
from tests.fakes.fake_openrouter import completion, stream_events
from tests.unit.pipeline.conftest import MakeCore, drain, run
from tests.unit.pipeline.inproc import client_kwargs, sse_events
from tests.unit.pipeline.mock_upstream import MockAnswer, json_answer, sse_answer
from translators.openai.completions import CompletionsStream, parse, text_completion
from translators.openai.types import RequestError

MODEL = "openai/gpt-4o-mini"
GEMINI = "gemini:gemini-2.5-flash"


def request(**fields: Any) -> bytes:
    return json.dumps({"model": MODEL, "prompt": "Say hi", **fields}).encode()


def post(core: Core, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    async def go() -> Reply:
        reply = await dispatch.handle(
            core, "POST", "/v1/completions", headers or {}, json.dumps(body).encode()
        )
        assert reply is not None
        return reply

    return run(go())


# -- requests -------------------------------------------------------------------------------------------


def test_a_prompt_becomes_one_user_message_with_the_shared_fields() -> None:
    fields = {"max_tokens": 5, "temperature": 0.2, "top_p": 0.9, "stop": ["\n"], "seed": 3, "user": "u"}
    parsed = parse(request(**fields, presence_penalty=None, echo=False, n=1, best_of=1, suffix=""))
    assert parsed.chat == {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}], **fields}
    assert (parsed.model, parsed.stream, parsed.include_usage) == (MODEL, False, False)
    assert parse(request(prompt=["only one"])).chat["messages"][0]["content"] == "only one"


def test_a_stream_always_asks_the_pipeline_for_usage_and_remembers_what_the_client_asked() -> None:
    parsed = parse(request(stream=True))
    assert parsed.chat["stream"] is True and parsed.chat["stream_options"] == {"include_usage": True}
    assert parsed.stream and not parsed.include_usage
    assert parse(request(stream=True, stream_options={"include_usage": True})).include_usage


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"prompt": None}, "prompt", "Missing required parameter"),
        ({"prompt": ["a", "b"]}, "prompt", "one prompt per request"),
        ({"prompt": [1, 2, 3]}, "prompt", "Token arrays"),
        ({"prompt": [[1, 2], [3]]}, "prompt", "Token arrays"),
        ({"prompt": {"text": "a"}}, "prompt", "must be a string"),
        ({"n": 2}, "n", "must be 1"),
        ({"best_of": 3}, "best_of", "must be 1"),
        ({"suffix": "end"}, "suffix", "not supported"),
        ({"echo": True}, "echo", "not supported"),
        ({"logprobs": 0}, "logprobs", "not supported"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"model": 5}, "model", "string"),
    ],
)
def test_what_a_chat_model_cannot_do_is_a_400_naming_the_field(
    fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(RequestError) as e:
        parse(request(**fields))
    assert e.value.param == param and words in str(e.value) and e.value.status == 400


# -- answers --------------------------------------------------------------------------------------------


def test_a_chat_completion_becomes_a_text_completion() -> None:
    answer = completion("Hello!", MODEL) | {"id": "chatcmpl-abc"}
    out = text_completion(answer, "asked")
    assert out["id"] == "cmpl-abc" and out["object"] == "text_completion" and out["model"] == MODEL
    assert out["choices"] == [{"text": "Hello!", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert out["usage"] == answer["usage"]


@pytest.mark.parametrize(
    ("finish", "shown"),
    [("length", "length"), ("content_filter", "content_filter"), ("tool_calls", "stop"), (None, "stop")],
)
def test_finish_reasons_are_those_a_text_completion_has(finish: str | None, shown: str) -> None:
    answer = completion("x", MODEL)
    answer["choices"][0]["finish_reason"] = finish
    answer["choices"][0]["message"]["content"] = None
    del answer["usage"]
    out = text_completion(answer, "asked")
    assert out["choices"][0]["finish_reason"] == shown and out["choices"][0]["text"] == ""
    assert out["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _rendered(chunks: list[bytes], include_usage: bool) -> bytes:
    stream = CompletionsStream("asked", include_usage)
    return b"".join([b for c in chunks for b in stream.feed(c)] + stream.finish())


USAGE_BODY = {"stream_options": {"include_usage": True}}


def test_a_chunk_stream_becomes_completions_chunks_then_done() -> None:
    events = stream_events("Hello there, world", MODEL, chunks=3, body=USAGE_BODY)
    out = sse_events(_rendered(events, include_usage=False).decode())
    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    assert all(c["object"] == "text_completion" and c["id"] == "cmpl-gen-fake-1" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello there, world"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)  # the client did not ask for it
    with_usage = sse_events(_rendered(events, include_usage=True).decode())
    assert with_usage[-2]["choices"] == [] and with_usage[-2]["usage"]["prompt_tokens"] == 7


def test_an_error_event_passes_unchanged_and_ends_the_stream() -> None:
    error = b'data: {"error":{"message":"boom","type":"api_error","param":null,"code":"x"}}\n\n'
    events = stream_events("Hello", MODEL, chunks=1)
    out = sse_events(_rendered([events[0], error, *events[1:]], include_usage=False).decode())
    assert out[-1] == {"error": {"message": "boom", "type": "api_error", "param": None, "code": "x"}}
    assert len(out) == 2  # nothing after the error, no [DONE]


@pytest.mark.parametrize(
    ("tail", "code"), [([], "upstream_truncated"), ([b"data: {not json\n\n"], "upstream_bad_response")]
)
def test_a_stream_cut_short_or_undecodable_ends_with_an_error_event(tail: list[bytes], code: str) -> None:
    events = stream_events("Hello", MODEL, chunks=2)[:-1]  # no [DONE]
    out = sse_events(_rendered([*events[:1], *tail, *events[1:]], include_usage=False).decode())
    assert out[-1]["error"]["code"] == code
    assert sum(1 for e in out if "error" in e) == 1


@settings(max_examples=60)
@given(st.data())
def test_any_split_of_the_chunk_stream_gives_the_same_output(data: st.DataObject) -> None:
    whole = b"".join(stream_events("Grüße aus 東京, world!", MODEL, chunks=4, body=USAGE_BODY))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=12)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert _rendered(pieces, include_usage=True) == _rendered([whole], include_usage=True)


# -- the whole path -------------------------------------------------------------------------------------


def test_openrouter_answers_as_a_text_completion(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: json_answer(200, completion("Hi!", MODEL)))
    reply = post(core, {"model": MODEL, "prompt": "Say hi", "max_tokens": 7, "stop": "\n"})
    out = json.loads(reply.body)
    assert reply.status == 200 and out["object"] == "text_completion" and out["choices"][0]["text"] == "Hi!"
    sent = json.loads(up.calls[0].body)
    assert sent["messages"] == [{"role": "user", "content": "Say hi"}]
    assert (sent["max_tokens"], sent["stop"]) == (7, "\n")
    assert reply.record is not None and reply.record.frontend == "openai_completions"
    assert reply.headers["x-llm-intercept-model"] == f"openrouter:{MODEL}"


def test_openrouter_streams_as_completions_chunks(make_core: MakeCore) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        return sse_answer(stream_events("Hello there", MODEL, chunks=2, body=json.loads(c.body)))

    core, up = make_core(handler)
    reply = post(core, {"model": MODEL, "prompt": "x", "stream": True})
    out = sse_events(drain(reply).decode())
    assert out[-1] == "[DONE]" and "".join(c["choices"][0]["text"] for c in out[:-1]) == "Hello there"
    assert json.loads(up.calls[0].body)["stream_options"] == {"include_usage": True}
    assert reply.transcript is not None and reply.transcript.shown is not None
    assert reply.transcript.shown["choices"][0]["text"] == "Hello there"
    assert reply.transcript.shown["object"] == "text_completion"


def _gemini_part(text: str, finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    return {"candidates": [candidate], **({"usageMetadata": usage} if finish else {})}


def test_gemini_answers_and_streams_as_text_completions(make_core: MakeCore) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        if "streamGenerateContent" in c.url:
            return sse_answer([sse_event(_gemini_part("Bon")), sse_event(_gemini_part("jour", "MAX_TOKENS"))])
        return json_answer(200, _gemini_part("Bonjour", "STOP"))

    core, up = make_core(handler)
    out = json.loads(post(core, {"model": GEMINI, "prompt": "Say hi in French"}).body)
    assert out["choices"][0]["text"] == "Bonjour" and out["usage"]["total_tokens"] == 5
    contents = json.loads(up.calls[0].body)["contents"]
    assert contents == [{"role": "user", "parts": [{"text": "Say hi in French"}]}]
    body = {"model": GEMINI, "prompt": "x", "stream": True, "stream_options": {"include_usage": True}}
    streamed = sse_events(drain(post(core, body)).decode())
    texts = [c["choices"][0]["text"] for c in streamed[:-1] if c["choices"]]
    assert "".join(texts) == "Bonjour" and streamed[-1] == "[DONE]"
    assert [c["choices"][0]["finish_reason"] for c in streamed[:-1] if c["choices"]][-1] == "length"
    assert streamed[-2]["usage"]["total_tokens"] == 5


def test_commands_run_on_the_prompt_and_are_answered_in_the_completions_shape(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: json_answer(500, {"error": {"message": "unused"}}))
    headers = {"x-session-id": "s1"}
    reply = post(core, {"model": MODEL, "prompt": "!/set(project=alpha)"}, headers)
    out = json.loads(reply.body)
    assert out["object"] == "text_completion" and "project set to alpha" in out["choices"][0]["text"]
    streamed = drain(post(core, {"model": MODEL, "prompt": "!/status", "stream": True}, headers))
    events = sse_events(streamed.decode())
    assert events[-1] == "[DONE]" and all(e["object"] == "text_completion" for e in events[:-1])
    assert "alpha" in "".join(e["choices"][0]["text"] for e in events[:-1] if e["choices"])
    assert up.calls == [] and run(core.stores.sessions.get("s1")).project == "alpha"


def test_refused_requests_are_openai_errors_and_never_reach_a_backend(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: json_answer(200, completion("unused", MODEL)))
    reply = post(core, {"model": MODEL, "prompt": ["a", "b"]})
    err = json.loads(reply.body)["error"]
    assert reply.status == 400 and err["param"] == "prompt" and err["type"] == "invalid_request_error"
    upstream_error = json_answer(404, {"error": {"message": "No such model", "code": 404}})
    core, up = make_core(lambda c: upstream_error)
    reply = post(core, {"model": MODEL, "prompt": "x"})
    assert reply.status == 404 and json.loads(reply.body)["error"]["message"] == "No such model"
    assert len(up.calls) == 1


def test_the_openai_sdk_creates_and_streams_completions(make_core: MakeCore) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        body = json.loads(c.body)
        if body.get("stream"):
            return sse_answer(stream_events("streamed text", MODEL, chunks=3, body=body))
        return json_answer(200, completion("whole text", MODEL))

    core, _ = make_core(handler)
    with openai.OpenAI(api_key="k", max_retries=0, **client_kwargs(core)) as client:
        whole = client.completions.create(model=MODEL, prompt="hi", max_tokens=20)
        assert whole.choices[0].text == "whole text" and whole.choices[0].finish_reason == "stop"
        assert whole.usage is not None and whole.usage.total_tokens == 12
        chunks = list(
            client.completions.create(
                model=MODEL, prompt="hi", stream=True, stream_options={"include_usage": True}
            )
        )
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "streamed text"
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 7
        with pytest.raises(openai.BadRequestError, match="echo"):
            client.completions.create(model=MODEL, prompt="hi", echo=True)
