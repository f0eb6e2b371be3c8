"""The OpenAI Responses front-end end to end: real mitmdump + addon, both fake upstreams, the official
openai SDK's `client.responses` (sync, async, raw streams and the SDK's stream helpers).

Every body the proxy sends back is checked by the `rec` fixture (tests/e2e/responses_fixtures.py) when
the test ends: responses against `Response`, every event against `ResponseStreamEvent`, sequence numbers
from 0 and rising, errors as OpenAI error JSON, and no API key anywhere. Each test talks in its own
X-Session-ID.
"""

# The fixtures are imported from responses_fixtures, so test parameters "redefine" them by design.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import openai
import pytest

from tests.e2e.responses_fixtures import (  # noqa: F401  (fixtures: pytest finds them by name)
    FLASH,
    MAPPED,
    OR_MODEL,
    Recorder,
    client,
    dumped,
    gemini,
    gemini_signed,
    gemini_turns,
    or_finish,
    or_messages,
    or_tool_call,
    rec,
    rproxy,
    text_of,
    upstream_turns,
)
from tests.fakes.fake_gemini import FakeGemini, Reply, api_error, rate_limited
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Script

BACKENDS = pytest.mark.parametrize("model", [OR_MODEL, FLASH], ids=["openrouter", "gemini"])
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
SIG = base64.b64encode(b"gemini-signature-for-the-round-trip").decode()
TEXT_EVENTS = ["response.output_text.delta"]


def text_stream(deltas: int) -> list[str]:
    """The events of a plain text answer, in the order the API sends them."""
    head = ["response.created", "response.in_progress", "response.output_item.added"]
    return [*head, "response.content_part.added", *TEXT_EVENTS * deltas, "response.output_text.done",
            "response.content_part.done", "response.output_item.done", "response.completed"]  # fmt: skip


def upstream_calls(openrouter: FakeOpenRouter, gemini: FakeGemini) -> int:
    chats = [r for r in openrouter.requests if r.path.endswith("/chat/completions")]
    return len(chats) + len(gemini.generate_requests())


def script_weather(model: str, openrouter: FakeOpenRouter, gemini: FakeGemini, stream: bool = False) -> None:
    if model == FLASH:
        gemini.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    else:
        openrouter.enqueue(or_tool_call("get_weather", {"city": "Paris"}, stream=stream))


# -- create and stream -----------------------------------------------------------------------------------


@BACKENDS
def test_create(client: openai.OpenAI, model: str, openrouter: FakeOpenRouter, gemini: FakeGemini) -> None:
    r = client.responses.create(model=model, input="hello there", instructions="Be brief.")
    assert (r.output_text, r.status, r.object, r.model) == (
        "echo: hello there",
        "completed",
        "response",
        model,
    )
    assert r.id.startswith("resp_") and r.instructions == "Be brief."
    [message] = r.output
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    assert upstream_turns(model, openrouter, gemini) == [("system", "Be brief."), ("user", "hello there")]
    u = r.usage
    assert u is not None and u.total_tokens == u.input_tokens + u.output_tokens
    assert (u.input_tokens_details.cached_tokens, u.output_tokens_details.reasoning_tokens) == (0, 0)
    # FakeOpenRouter reports 7 + 5; FakeGemini counts words (4 in, 3 out).
    assert (u.input_tokens, u.output_tokens) == ((7, 5) if model == OR_MODEL else (4, 3))


@BACKENDS
def test_async_create_and_stream(rec: Recorder, model: str) -> None:
    async def run() -> tuple[str, str]:
        async with rec.aclient() as c:
            plain, stream = await asyncio.gather(
                c.responses.create(model=model, input="async plain"),
                c.responses.create(model=model, input="async stream", stream=True),
            )
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            return plain.output_text, "".join(deltas)

    assert asyncio.run(run()) == ("echo: async plain", "echo: async stream")


@BACKENDS
def test_stream_helper(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(model=model, input="stream me") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: stream me"
    assert len(deltas) >= 2  # relayed piece by piece, not as one blob
    assert final.status == "completed" and final.usage and final.usage.output_tokens > 0


@BACKENDS
def test_raw_stream_events_in_order(client: openai.OpenAI, rec: Recorder, model: str) -> None:
    events = list(client.responses.create(model=model, input="order please", stream=True))
    n = rec.types().count("response.output_text.delta")
    assert n >= 2 and rec.types() == text_stream(n)
    assert events[0].response.status == "in_progress"
    item_id = events[2].item.id
    assert {e.item_id for e in events if e.type.startswith("response.output_text")} == {item_id}
    assert events[-1].response.output_text == "echo: order please" and events[-1].response.usage


def test_model_map_sends_codex_names_to_gemini(
    client: openai.OpenAI, rec: Recorder, gemini: FakeGemini
) -> None:
    r = client.responses.create(model=MAPPED, input="mapped")
    assert (r.model, r.output_text) == (MAPPED, "echo: mapped")
    assert gemini.last_generate().path.startswith("/v1beta/models/gemini-2.5-flash:")
    assert rec.last().headers["x-llm-intercept-model"] == FLASH


def test_settings_are_forwarded_and_echoed(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    r = client.responses.create(
        model=OR_MODEL, input="x", instructions="Be brief.", temperature=0.3, top_p=0.9,
        max_output_tokens=100, metadata={"ticket": "42"}, tools=[WEATHER], tool_choice="auto",
        parallel_tool_calls=False,
        text={"format": {"type": "json_object"}}, reasoning={"effort": "low"}, user="u-1",
    )  # type: ignore[call-overload]  # fmt: skip
    sent = openrouter.last("/chat/completions").json()
    assert (sent["temperature"], sent["top_p"], sent["tool_choice"], sent["parallel_tool_calls"]) == (
        0.3, 0.9, "auto", False)  # fmt: skip
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 100
    assert sent["response_format"] == {"type": "json_object"}
    assert sent.get("reasoning", {}).get("effort", sent.get("reasoning_effort")) == "low"
    assert (r.temperature, r.top_p, r.max_output_tokens, r.metadata) == (0.3, 0.9, 100, {"ticket": "42"})
    assert (r.tool_choice, r.parallel_tool_calls, r.instructions) == ("auto", False, "Be brief.")
    assert r.text and r.text.format and r.text.format.type == "json_object"
    assert r.reasoning and r.reasoning.effort == "low"
    assert [t.name for t in r.tools if t.type == "function"] == ["get_weather"]


def test_gemini_thoughts_become_a_reasoning_summary(
    client: openai.OpenAI, rec: Recorder, gemini: FakeGemini
) -> None:
    gemini.enqueue(Reply(thoughts="Weighing the options.", text="the answer"))
    kw: Any = {"reasoning": {"effort": "low", "summary": "auto"}}
    with client.responses.stream(model=FLASH, input="think", **kw) as stream:
        final = stream.get_final_response()
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and [p.text for p in reasoning.summary] == ["Weighing the options."]
    assert message.type == "message" and final.output_text == "the answer"
    assert final.usage and final.usage.output_tokens_details.reasoning_tokens == 3
    types = rec.types()
    summary = ["response.reasoning_summary_part.added", "response.reasoning_summary_text.delta"]
    assert all(t in types for t in summary)
    assert types.index("response.reasoning_summary_text.done") < types.index("response.output_text.delta")
    assert gemini.last_generate().json()["generationConfig"]["thinkingConfig"].get("includeThoughts") is True


# -- tools ---------------------------------------------------------------------------------------------


@BACKENDS
@pytest.mark.parametrize("continuation", ["previous_response_id", "replay"])
def test_function_call_round_trip(
    client: openai.OpenAI, model: str, continuation: str, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    script_weather(model, openrouter, gemini)
    question = {"role": "user", "content": "weather in Paris?"}
    r1 = client.responses.create(model=model, input=[question], tools=[WEATHER])  # type: ignore[list-item]
    [call] = [item for item in r1.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"} and call.call_id
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}
    if continuation == "replay":
        kw: Any = {"input": [question, *dumped(r1.output), result]}
    else:
        kw = {"input": [result], "previous_response_id": r1.id}
    r2 = client.responses.create(model=model, tools=[WEATHER], **kw)
    assert r2.status == "completed"
    if model == FLASH:
        assert gemini_turns(gemini) == [("user", "weather in Paris?"), ("model", "call:get_weather"),
                                        ("user", "result:get_weather")]  # fmt: skip
        assert [c.ok for c in gemini.signature_checks] == [True]  # the thought signature came back
        assert r2.output_text.startswith("echo: get_weather -> ") and "sunny, 21 C" in r2.output_text
        return
    sent = or_messages(openrouter)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[1]["tool_calls"][0]["id"] == call.call_id == sent[2]["tool_call_id"]
    assert text_of(sent[2]["content"]) == "sunny, 21 C"
    assert r2.output_text == "echo: weather in Paris?"


@BACKENDS
def test_streamed_function_call(
    client: openai.OpenAI, rec: Recorder, model: str, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    script_weather(model, openrouter, gemini, stream=True)
    with client.responses.stream(model=model, input="weather in Paris?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    events = rec.last().events()
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert (
        json.loads(deltas) == json.loads(done["arguments"]) == json.loads(call.arguments) == {"city": "Paris"}
    )
    added = next(e["item"] for e in events if e["type"] == "response.output_item.added")
    assert (added["type"], added["call_id"], added["name"]) == ("function_call", call.call_id, "get_weather")
    assert rec.types()[-1] == "response.completed"


def test_namespace_tools_are_callable(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    lookup = {"type": "function", "name": "lookup", "description": "Find a customer",
              "parameters": {"type": "object", "properties": {"email": {"type": "string"}}}}  # fmt: skip
    crm: Any = {"type": "namespace", "name": "crm", "description": "Customer records", "tools": [lookup]}
    client.responses.create(model=OR_MODEL, input="who is ada?", tools=[crm])
    [upstream_name] = [t["function"]["name"] for t in openrouter.last("/chat/completions").json()["tools"]]
    assert upstream_name.endswith("lookup")
    openrouter.enqueue(or_tool_call(upstream_name, {"email": "ada@example.com"}))
    r = client.responses.create(model=OR_MODEL, input="who is ada?", tools=[crm])
    [call] = r.output
    assert call.type == "function_call"
    assert (call.namespace, call.name) == ("crm", "lookup")  # Codex dispatches on that pair
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "Ada Lovelace"}
    client.responses.create(model=OR_MODEL, input=[result], previous_response_id=r.id, tools=[crm])  # type: ignore[list-item]
    sent = or_messages(openrouter)
    assert sent[-2]["tool_calls"][0]["function"]["name"] == upstream_name
    assert (sent[-1]["role"], text_of(sent[-1]["content"])) == ("tool", "Ada Lovelace")


def test_custom_tool_call_round_trip(client: openai.OpenAI, gemini: FakeGemini) -> None:
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"}
    tool: Any = {"type": "custom", "name": "apply_patch", "description": "Apply a patch", "format": grammar}
    gemini.enqueue(Reply(tool_calls=[("apply_patch", {"input": patch})]))
    r1 = client.responses.create(model=FLASH, input="add hello.txt", tools=[tool])
    [decl] = gemini.last_generate().json()["tools"][0]["functionDeclarations"]
    assert decl["name"] == "apply_patch" and decl["parameters"]["required"] == ["input"]
    assert decl["parameters"]["properties"]["input"]["type"].lower() == "string"
    [call] = r1.output
    assert call.type == "custom_tool_call" and (call.name, call.input) == ("apply_patch", patch)
    result: Any = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"}
    r2 = client.responses.create(model=FLASH, input=[result], previous_response_id=r1.id, tools=[tool])
    assert gemini_turns(gemini)[-2:] == [("model", "call:apply_patch"), ("user", "result:apply_patch")]
    assert [c.ok for c in gemini.signature_checks] == [True]
    assert r2.output_text.startswith("echo: apply_patch -> ") and "Done!" in r2.output_text


def test_builtin_tools_are_left_out(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    builtin: list[Any] = [
        {"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
    ]  # fmt: skip
    r = client.responses.create(model=OR_MODEL, input="search", tools=[*builtin, WEATHER])
    assert r.output_text == "echo: search"
    assert [t["function"]["name"] for t in openrouter.last("/chat/completions").json()["tools"]] == [
        "get_weather"
    ]
    client.responses.create(model=OR_MODEL, input="only web", tools=[{"type": "web_search"}])
    assert not openrouter.last("/chat/completions").json().get("tools")


# -- the response store ------------------------------------------------------------------------------------


@BACKENDS
def test_previous_response_id_continues_the_conversation(
    client: openai.OpenAI, model: str, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    r1 = client.responses.create(model=model, input="my name is Ada", instructions="Be kind.")
    r2 = client.responses.create(model=model, input="what is my name?", previous_response_id=r1.id)
    assert (r2.previous_response_id, r2.output_text) == (r1.id, "echo: what is my name?")
    r3 = client.responses.create(model=model, input="thanks", previous_response_id=r2.id, instructions="Hi.")
    # Instructions are per request: the earlier ones are not carried over (as OpenAI does).
    assert upstream_turns(model, openrouter, gemini) == [
        ("system", "Hi."), ("user", "my name is Ada"), ("assistant", "echo: my name is Ada"),
        ("user", "what is my name?"), ("assistant", "echo: what is my name?"), ("user", "thanks"),
    ]  # fmt: skip
    assert r3.output_text == "echo: thanks"


def test_unknown_previous_response_id_is_404(
    client: openai.OpenAI, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model=OR_MODEL, input="x", previous_response_id="resp_never_made_1")
    assert "resp_never_made_1" in e.value.message
    assert upstream_calls(openrouter, gemini) == 0


@BACKENDS
def test_retrieve_input_items_and_delete(client: openai.OpenAI, model: str) -> None:
    asked: Any = [{"role": "user", "content": [{"type": "input_text", "text": "keep me"}]}]
    r = client.responses.create(model=model, input=asked, metadata={"k": "v"})
    got = client.responses.retrieve(r.id)
    assert (got.id, got.output_text, got.status, got.metadata, got.model) == (
        r.id, "echo: keep me", "completed", {"k": "v"}, model)  # fmt: skip
    items = client.responses.input_items.list(r.id)
    [item] = items.data
    assert item.type == "message" and item.role == "user"
    assert [(c.type, getattr(c, "text", None)) for c in item.content] == [("input_text", "keep me")]
    client.responses.delete(r.id)
    for gone in (client.responses.retrieve, client.responses.delete, client.responses.input_items.list):
        with pytest.raises(openai.NotFoundError) as e:
            gone(r.id)
        assert r.id in e.value.message


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    r = client.responses.create(model=OR_MODEL, input="forget me", store=False)
    assert r.store is False and r.output_text == "echo: forget me"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=OR_MODEL, input="x", previous_response_id=r.id)


@pytest.mark.parametrize("thoughts", [None, "Pondering."], ids=["signature-only", "with-thoughts"])
def test_encrypted_reasoning_round_trip_is_stateless(
    client: openai.OpenAI, gemini: FakeGemini, thoughts: str | None
) -> None:
    gemini.enqueue(gemini_signed("signed answer", SIG, thoughts))
    first: list[Any] = [{"role": "user", "content": "think hard"}]
    # What Codex sends: no server-side state, the reasoning comes back sealed in the next request.
    kw: Any = {"model": FLASH, "store": False, "include": ["reasoning.encrypted_content"],
               "reasoning": {"effort": "medium", "summary": "auto"}}  # fmt: skip
    r1 = client.responses.create(input=first, **kw)
    [reasoning] = [item for item in r1.output if item.type == "reasoning"]
    sealed = reasoning.encrypted_content
    assert sealed and SIG not in sealed and "gemini-signature" not in sealed  # unreadable to the client
    assert [p.text for p in reasoning.summary] == ([thoughts] if thoughts else [])
    assert r1.output_text == "signed answer"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r1.id)
    r2 = client.responses.create(
        input=[*first, *dumped(r1.output), {"role": "user", "content": "again"}], **kw
    )
    assert r2.output_text == "echo: again"
    model_turn = [c for c in gemini.last_generate().json()["contents"] if c["role"] == "model"]
    assert [p.get("thoughtSignature") for c in model_turn for p in c["parts"] if "thoughtSignature" in p] == [
        SIG
    ]


@pytest.mark.parametrize("forge", ["tampered", "foreign"])
def test_forged_encrypted_content_is_400_naming_the_item(
    client: openai.OpenAI, gemini: FakeGemini, forge: str
) -> None:
    gemini.enqueue(gemini_signed("signed answer", SIG))
    first: list[Any] = [{"role": "user", "content": "think hard"}]
    kw: Any = {"model": FLASH, "store": False, "include": ["reasoning.encrypted_content"]}
    items = dumped(client.responses.create(input=first, **kw).output)
    reasoning = next(i for i in items if i["type"] == "reasoning")
    blob, mid = reasoning["encrypted_content"], len(reasoning["encrypted_content"]) // 2
    flipped = blob[:mid] + ("A" if blob[mid] != "A" else "B") + blob[mid + 1 :]
    reasoning["encrypted_content"] = flipped if forge == "tampered" else "gAAAAABoOpenAIsOwnOpaqueBlob=="
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(input=[*first, *items, {"role": "user", "content": "again"}], **kw)
    assert reasoning["id"] in e.value.message or "input[1]" in e.value.message
    assert len(gemini.generate_requests()) == 1


# -- statuses and errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_max_output_tokens_makes_it_incomplete(
    client: openai.OpenAI, rec: Recorder, gemini: FakeGemini, stream: bool
) -> None:
    gemini.enqueue(Reply(text="partial answer", finish_reason="MAX_TOKENS"))
    kw: Any = {"model": FLASH, "input": "a long story", "max_output_tokens": 16}
    if stream:
        events = list(client.responses.create(stream=True, **kw))
        assert rec.types()[-1] == "response.incomplete"
        r = events[-1].response
    else:
        r = client.responses.create(**kw)
    assert (
        r.status == "incomplete"
        and r.incomplete_details
        and r.incomplete_details.reason == "max_output_tokens"
    )
    assert (r.output_text, r.max_output_tokens) == ("partial answer", 16)
    assert gemini.last_generate().json()["generationConfig"]["maxOutputTokens"] == 16


@BACKENDS
def test_content_filter_makes_it_incomplete(
    client: openai.OpenAI, model: str, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    if model == FLASH:
        gemini.enqueue(Reply(text="partial", finish_reason="SAFETY"))
    else:
        openrouter.enqueue(or_finish("partial", "content_filter"))
    r = client.responses.create(model=model, input="x")
    assert (
        r.status == "incomplete" and r.incomplete_details and r.incomplete_details.reason == "content_filter"
    )


def test_rate_limit_is_an_openai_error(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(rate_limited("17s"), rate_limited("17s"))  # both keys
    with pytest.raises(openai.RateLimitError) as e:  # a model of its own: its keys now cool down
        client.responses.create(model="gemini:gemini-2.0-flash", input="x")
    assert "exceeded your current quota" in e.value.message
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 17


@BACKENDS
@pytest.mark.parametrize("stream", [False, True])
def test_context_length_exceeded(
    client: openai.OpenAI, model: str, stream: bool, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    if model == FLASH:
        too_long = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        gemini.enqueue(api_error(400, "INVALID_ARGUMENT", too_long))
        expected = (1048576, 1200000)
    else:
        too_long = (
            "This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens."
        )
        openrouter.enqueue(Script(status=400, json_body={"error": {"code": 400, "message": too_long}}))
        expected = (8192, 9000)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=model, input="x", stream=stream)  # type: ignore[call-overload]
    assert e.value.code == "context_length_exceeded"
    wording = r"maximum context length is (\d+) tokens\. However, your messages resulted in (\d+) tokens"
    m = re.search(wording, e.value.message)
    assert m and (int(m[1]), int(m[2])) == expected


@pytest.mark.parametrize("failure", ["error_event", "dropped"])
def test_mid_stream_failure_ends_with_response_failed(
    client: openai.OpenAI, rec: Recorder, gemini: FakeGemini, failure: str
) -> None:
    cut = {"error_after": 2} if failure == "error_event" else {"drop_after": 2}
    gemini.enqueue(Reply(text="one two three four", chunks=4, **cut))  # type: ignore[arg-type]
    events = list(client.responses.create(model=FLASH, input="x", stream=True))
    types = rec.types()
    assert "response.output_text.delta" in types and types[-1] == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error and failed.error.message


# -- commands and sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_command_only_message_is_a_responses_result(
    rec: Recorder, openrouter: FakeOpenRouter, gemini: FakeGemini, stream: bool
) -> None:
    with rec.client() as c:
        if stream:
            events = list(c.responses.create(model=OR_MODEL, input="!/status", stream=True))
            assert rec.types() == text_stream(rec.types().count("response.output_text.delta"))
            r = events[-1].response
        else:
            r = c.responses.create(model=OR_MODEL, input="!/status")
    assert r.status == "completed" and r.model == OR_MODEL
    assert f"this session: {rec.session}:" in r.output_text and "GEMINI_API_KEY_1" in r.output_text
    assert upstream_calls(openrouter, gemini) == 0


@pytest.mark.parametrize("header", ["session-id", "session_id"])
def test_codex_session_header_picks_the_session(
    rec: Recorder, header: str, openrouter: FakeOpenRouter, gemini: FakeGemini
) -> None:
    codex = f"codex-{header}-{rec.session}"[:128]
    with rec.client({header: codex}) as c, rec.client({header: codex, "X-Session-ID": rec.session}) as both:
        assert "gemini" in c.responses.create(model=OR_MODEL, input=f"!/set(model={FLASH})").output_text
        assert f"this session: {codex}:" in c.responses.create(model=OR_MODEL, input="!/status").output_text
        assert c.responses.create(model=OR_MODEL, input="to gemini").output_text == "echo: to gemini"
        assert len(gemini.generate_requests()) == 1
        both.responses.create(model=OR_MODEL, input="X-Session-ID wins")  # its session has no model set
        assert text_of(or_messages(openrouter)[-1]["content"]) == "X-Session-ID wins"
