"""A conversation that moves between backends, end to end: Gemini 3 tool calls (thought signatures,
Gemini's own call ids, thought text) continued on an OpenRouter model and back on Gemini.

Every tool call id the client sees is at most 40 characters (OpenAI's limit); OpenRouter receives none of
Gemini's artefacts; back on Gemini, the strict fake sees its own signatures and call ids again, from the
signature store, with history on (the store in the history file) and off (in memory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.e2e.test_gemini_path import GEMINI_KEYS
from tests.fakes.fake_gemini import DEFAULT_MODELS, DUMMY_SIGNATURE, FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter
from tests.harness import ProxyProcess

GEMINI3 = "gemini:gemini-3-pro-preview"
OR_MODEL = "openrouter:openai/gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} for a place",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
    for name in ("get_weather", "get_time", "get_news")
]


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS, DEFAULT_MODELS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module", params=["auto", "off"], ids=["history", "memory"])
def xproxy(
    request: pytest.FixtureRequest, gemini: FakeGemini, openrouter: FakeOpenRouter
) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "LLM_HISTORY": request.param,
        "PROXY_TIMEOUT": "5",
    }
    with ProxyProcess(env=env) as p:
        yield p


@pytest.fixture
def client(xproxy: ProxyProcess, request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    session = re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]
    with openai.OpenAI(
        base_url=xproxy.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": session},
    ) as c:
        yield c


class Agent:
    """An agent loop as the openai SDK runs it: the answer goes back as it came, one result per call."""

    def __init__(self, client: openai.OpenAI, stream: bool) -> None:
        self.client = client
        self.stream = stream
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": "Weather, time and news in Paris?"}
        ]
        self.seen_ids: list[str] = []

    def turn(self, model: str) -> dict[str, Any]:
        if self.stream:
            message = self._streamed(model)
        else:
            r = self.client.chat.completions.create(model=model, messages=self.messages, tools=TOOLS)  # type: ignore[arg-type]
            message = r.choices[0].message.model_dump(exclude_none=True)  # extra fields included
        calls = message.get("tool_calls") or []
        self.seen_ids += [c["id"] for c in calls]
        self.messages.append(message)
        self.messages += [
            {"role": "tool", "tool_call_id": c["id"], "content": f"{c['function']['name']} ok"} for c in calls
        ]
        return message

    def _streamed(self, model: str) -> dict[str, Any]:
        stream = self.client.chat.completions.create(
            model=model,
            messages=self.messages,
            tools=TOOLS,
            stream=True,  # type: ignore[arg-type]
        )
        message: dict[str, Any] = {"role": "assistant", "content": None}
        calls: dict[int, dict[str, Any]] = {}
        for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                message["content"] = (message["content"] or "") + delta.content
            for extra, value in (delta.model_extra or {}).items():  # reasoning_content, as clients keep it
                if isinstance(value, str):
                    message[extra] = message.get(extra, "") + value
            for tc in delta.tool_calls or []:
                call = calls.setdefault(
                    tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                call["id"] += tc.id or ""
                if tc.function:
                    call["function"]["name"] += tc.function.name or ""
                    call["function"]["arguments"] += tc.function.arguments or ""
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return message


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_tool_calls_continue_on_openrouter_and_back(
    client: openai.OpenAI, gemini: FakeGemini, openrouter: FakeOpenRouter, stream: bool
) -> None:
    gemini.enqueue(
        Reply(
            thoughts="Three lookups.",
            tool_calls=[("get_weather", {"q": "Paris"}), ("get_time", {"q": "CET"})],
            call_ids=True,
        ),
        Reply(quote_tool_results=True),
    )
    openrouter.enqueue(ChatReply(tool_calls=[("get_news", {"q": "Paris"})]), ChatReply(text="All done."))
    agent = Agent(client, stream)

    first = agent.turn(GEMINI3)
    assert [c["function"]["name"] for c in first["tool_calls"]] == ["get_weather", "get_time"]
    assert first.get("reasoning_content") == "Three lookups."
    agent.turn(OR_MODEL)
    final = agent.turn(GEMINI3)
    assert final["content"] == 'tool results: {"content": "get_news ok"}'
    assert agent.turn(OR_MODEL)["content"] == "All done."  # the whole history, Gemini turns included

    assert len(agent.seen_ids) == 3 and all(len(i) <= 40 for i in agent.seen_ids), agent.seen_ids
    gemini_requests = gemini.generate_requests()
    signature = gemini_requests[-1].json()["contents"][1]["parts"][0]["thoughtSignature"]
    for sent in openrouter.requests[-2:]:
        text = sent.body.decode()
        assert "__ts__" not in text and "thoughtSignature" not in text and signature not in text
        assert "fc-" not in text and "Three lookups." not in text
        body = sent.json()
        assert all(not key.startswith("reasoning_") for m in body["messages"] for key in m)
        ids = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or []]
        ids += [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
        assert ids and all(len(i) <= 40 for i in ids)

    # Back on Gemini: its own signature (from the store, not the placeholder) and its own call ids.
    (check,) = gemini.signature_checks
    assert check.function == "get_weather" and check.received == check.expected != DUMMY_SIGNATURE
    contents = gemini_requests[-1].json()["contents"]
    calls = [p for c in contents if c["role"] == "model" for p in c["parts"] if "functionCall" in p]
    native = [p["functionCall"].get("id") for p in calls]
    assert re.fullmatch(r"fc-\d+-0", native[0]) and native[1] == native[0][:-1] + "1"
    assert native[2] is None and calls[2]["thoughtSignature"] == DUMMY_SIGNATURE  # OpenRouter's call
    responses = [
        p["functionResponse"]
        for c in contents
        if c["role"] == "user"
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert [r.get("id") for r in responses] == native
    assert json.dumps(contents).count("Three lookups.") == 0  # thought text never goes back
