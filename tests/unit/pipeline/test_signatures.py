"""addons/pipeline/signatures.py with the real backends and the end-to-end fakes, in-process: a conversation
with Gemini 3 tool calls (signatures, Gemini's own call ids) continued on an OpenRouter model and back.

Each turn does what the pipeline does around one attempt: `recall` before building the call, the backend's
translation into `saved.minted`, `keep` before the client gets the ids (streams: after every piece). The
strict FakeGemini refuses a model turn whose signed call comes back without its signature.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import pytest

from addons.backends.base import Backend, SavedCalls
from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import MAX_CALL_ID, OpenRouterBackend, short_call_id
from addons.pipeline.signatures import keep, recall, tool_call_ids
from addons.stores.signatures_memory import MemorySignatures
from tests.fakes.fake_gemini import DUMMY_SIGNATURE, FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter
from tests.unit.pipeline.inproc import GEMINI_HOST, OPENROUTER_HOST, offline, serve
from tests.unit.pipeline.mock_upstream import MockAnswer
from translators.gemini import encode_tool_call_id
from translators.openai.assemble import assemble_completion

GEMINI_KEY = "AIzaSyInproc-Sig9Kq2Zx7Vb1Nm4Lw8Rt3Yc5"
OR_KEY = "sk-or-v1-inproc-sig-4Hd7Kq1Zx6Vb9Nm2Lw5Rt8Yc"
GEMINI3 = "gemini-3-pro-preview"
OR_MODEL = "openai/gpt-4o-mini"
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {"q": {}}}}}
    for n in ("get_weather", "get_time", "get_news")
]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGemini, FakeOpenRouter]]:
    with offline(FakeGemini((GEMINI_KEY,))) as gemini, offline(FakeOpenRouter((OR_KEY,))) as openrouter:
        yield gemini, openrouter  # type: ignore[misc]


class Conversation:
    """A client's history, each turn answered by one attempt on the given backend."""

    def __init__(self, gemini: FakeGemini, openrouter: FakeOpenRouter, stream: bool) -> None:
        self.handler = serve({GEMINI_HOST: gemini, OPENROUTER_HOST: openrouter}, 30)
        self.gemini = GeminiBackend(f"https://{GEMINI_HOST}")
        self.openrouter = OpenRouterBackend(f"https://{OPENROUTER_HOST}/api/v1", "https://site.test", "t")
        self.store = MemorySignatures()
        self.stream = stream
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": "Weather, time and news in Paris?"}
        ]
        self.seen_ids: list[str] = []

    async def turn(self, backend: Backend, model: str, key: str) -> dict[str, Any]:
        request = {"model": model, "messages": self.messages, "tools": TOOLS, "stream": self.stream}
        saved = await recall(self.store, request)
        answer = self.handler(backend.build_call(request, model, key, self.stream, None, saved))
        assert isinstance(answer, MockAnswer) and answer.status == 200, answer
        if self.stream:
            translator = backend.stream_translator(request, model, saved)
            sent = b""
            async for raw in answer.chunks():
                for piece in translator.feed(raw):
                    await keep(self.store, saved)  # before the piece that hands out the ids
                    sent += piece
            sent += b"".join(translator.finish())
            message = assemble_completion(sent)["choices"][0]["message"]
        else:
            translated = backend.translate_response(
                answer.status, answer.headers, await answer.read(), model, saved
            )
            await keep(self.store, saved)
            message = json.loads(translated.body)["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        self.seen_ids += [c["id"] for c in calls]
        # What a plain OpenAI client sends back: the message as it came, then one result per call.
        self.messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")})
        self.messages += [
            {"role": "tool", "tool_call_id": c["id"], "content": f"{c['function']['name']} ok"} for c in calls
        ]
        return message


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_tool_calls_continue_on_openrouter_and_back(
    fakes: tuple[FakeGemini, FakeOpenRouter], stream: bool
) -> None:
    gemini, openrouter = fakes
    gemini.enqueue(
        Reply(tool_calls=[("get_weather", {"q": "Paris"}), ("get_time", {"q": "CET"})], call_ids=True),
        Reply(quote_tool_results=True),
    )
    openrouter.enqueue(ChatReply(tool_calls=[("get_news", {"q": "Paris"})]))
    talk = Conversation(gemini, openrouter, stream)

    async def go() -> None:
        await talk.turn(talk.gemini, GEMINI3, GEMINI_KEY)
        await talk.turn(talk.openrouter, OR_MODEL, OR_KEY)
        final = await talk.turn(talk.gemini, GEMINI3, GEMINI_KEY)
        assert final["content"] == 'tool results: {"content": "get_news ok"}'

    asyncio.run(go())
    assert len(talk.seen_ids) == 3 and all(len(i) <= 40 for i in talk.seen_ids)

    sent_or = openrouter.last("/chat/completions")
    text, body = sent_or.body.decode(), sent_or.json()
    assert "__ts__" not in text and "thoughtSignature" not in text and "fc-" not in text
    issued = json.loads(gemini.generate_requests()[1].body)["contents"][1]["parts"][0]["thoughtSignature"]
    assert issued not in text and len(issued) > 10
    assert all(not k.startswith("reasoning_") for m in body["messages"] for k in m)

    # Back on Gemini: its own signature and call ids, the placeholder for OpenRouter's call.
    (check,) = gemini.signature_checks
    assert check.function == "get_weather" and check.received == check.expected != DUMMY_SIGNATURE
    contents = json.loads(gemini.last_generate().body)["contents"]
    calls = [p for c in contents if c["role"] == "model" for p in c["parts"] if "functionCall" in p]
    assert [(p["functionCall"]["name"], p["functionCall"].get("id")) for p in calls] == [
        ("get_weather", "fc-1-0"),
        ("get_time", "fc-1-1"),
        ("get_news", None),
    ]
    assert calls[2]["thoughtSignature"] == DUMMY_SIGNATURE
    responses = [
        p["functionResponse"]
        for c in contents
        if c["role"] == "user"
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert [r.get("id") for r in responses] == ["fc-1-0", "fc-1-1", None]


def test_a_store_that_lost_the_signatures_falls_back_to_the_placeholder(
    fakes: tuple[FakeGemini, FakeOpenRouter],
) -> None:
    gemini, openrouter = fakes
    gemini.enqueue(Reply(tool_calls=[("get_weather", {"q": "Oslo"})], call_ids=True), Reply(text="done"))
    talk = Conversation(gemini, openrouter, stream=False)

    async def go() -> None:
        await talk.turn(talk.gemini, GEMINI3, GEMINI_KEY)
        talk.store = MemorySignatures()  # another proxy instance, or evicted
        assert (await talk.turn(talk.gemini, GEMINI3, GEMINI_KEY))["content"] == "done"

    asyncio.run(go())
    (check,) = gemini.signature_checks
    assert check.received == DUMMY_SIGNATURE and check.ok
    model_turn = json.loads(gemini.last_generate().body)["contents"][1]
    assert "id" not in model_turn["parts"][0]["functionCall"]


# -- the helpers -----------------------------------------------------------------------------------------


class Broken:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def put_many(self, items: Mapping[str, str]) -> None:
        raise OSError("store down")

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        self.asked.append(list(ids))
        raise OSError("store down")

    async def flush(self) -> None:
        pass


def test_tool_call_ids_are_the_assistant_calls_each_once() -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = {
        "messages": [
            {"role": "user", "content": "q", "tool_calls": [{"id": "not_assistant"}]},
            {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "call_b"}, call]},
            {"role": "tool", "tool_call_id": "call_a", "content": "1"},
            {"role": "assistant", "tool_calls": [{"id": ""}, {"id": 7}, "junk", {**call, "id": "call_c"}]},
            "junk",
        ]
    }
    assert tool_call_ids(request) == ["call_a", "call_b", "call_c"]
    assert tool_call_ids({"messages": "x"}) == [] and tool_call_ids({}) == []


def test_a_failing_store_costs_the_signatures_not_the_call(caplog: pytest.LogCaptureFixture) -> None:
    store = Broken()
    request = {"messages": [{"role": "assistant", "tool_calls": [{"id": "call_a"}]}]}

    async def go() -> None:
        assert (await recall(store, {"messages": [{"role": "user", "content": "hi"}]})).known == {}
        assert store.asked == []  # nothing to look up: the store is not asked
        with caplog.at_level(logging.WARNING):
            assert (await recall(store, request)).known == {}
            saved = SavedCalls(minted={"call_x": "v"})
            minted = saved.minted
            await keep(store, saved)
            assert saved.minted is minted and minted == {}  # the translators keep writing into it
        assert store.asked == [["call_a"]] and caplog.text.count("store down") == 2

    asyncio.run(go())


def test_keep_stores_only_what_is_new() -> None:
    store = MemorySignatures()
    saved = SavedCalls()

    async def go() -> None:
        await keep(store, saved)  # nothing minted: nothing to store
        saved.minted["call_a"] = "1"
        await keep(store, saved)
        saved.minted["call_b"] = "2"
        await keep(store, saved)
        assert await store.get_many(["call_a", "call_b"]) == {"call_a": "1", "call_b": "2"}
        assert saved.minted == {}

    asyncio.run(go())


# -- what OpenRouter gets of another backend's history ----------------------------------------------------


def _sent(request: dict[str, Any]) -> dict[str, Any]:
    backend = OpenRouterBackend("https://o.test", "s", "t")
    return json.loads(backend.build_call(request, OR_MODEL, OR_KEY, False).body)


def test_openrouter_gets_short_ids_for_ids_of_the_previous_version() -> None:
    legacy = encode_tool_call_id("call_0123456789abcdef01234567", "U2ln" * 500)
    long_plain = "toolu_" + "x" * 60
    calls = [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in (legacy, long_plain, "call_short")
    ]
    request = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": calls, "reasoning_signature": "U2ln"},
            {"role": "tool", "tool_call_id": legacy, "content": "1"},
            {
                "role": "tool",
                "tool_call_id": "call_0123456789abcdef01234567",
                "content": "1b",
            },  # suffix stripped
            {"role": "tool", "tool_call_id": long_plain, "content": "2"},
            {"role": "tool", "tool_call_id": "call_short", "content": "3"},
        ]
    }
    before = json.dumps(request)
    sent = _sent(request)
    assert json.dumps(request) == before
    ids = [c["id"] for c in sent["messages"][1]["tool_calls"]]
    assert ids == ["call_0123456789abcdef01234567", short_call_id(long_plain), "call_short"]
    assert [m["tool_call_id"] for m in sent["messages"][2:]] == [ids[0], ids[0], ids[1], ids[2]]
    assert all(len(i) <= MAX_CALL_ID for i in ids) and "__ts__" not in json.dumps(sent)
    assert "reasoning_signature" not in sent["messages"][1]
    assert short_call_id(long_plain) == short_call_id(long_plain) != short_call_id(long_plain + "y")


def test_openrouter_gets_its_own_reasoning_back_unchanged_and_gemini_never() -> None:
    details = [
        {
            "type": "reasoning.summary",
            "summary": "Looked it up.",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": "ZW5jcnlwdGVk",
            "id": "rs_1",
            "format": "openai-responses-v1",
        },
    ]
    assistant = {
        "role": "assistant",
        "content": None,
        "reasoning": "Looked it up.",
        "reasoning_details": details,
        "tool_calls": [{"id": "call_or_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    request = {
        "messages": [
            {"role": "user", "content": "q"},
            assistant,
            {"role": "tool", "tool_call_id": "call_or_1", "content": "1"},
        ]
    }
    assert _sent(request)["messages"][1] == assistant
    gemini = GeminiBackend("https://g.test").build_call(request, GEMINI3, GEMINI_KEY, False)
    text = gemini.body.decode()
    assert "ZW5jcnlwdGVk" not in text and "Looked it up" not in text and "reasoning" not in text
