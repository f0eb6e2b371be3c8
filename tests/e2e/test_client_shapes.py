"""What the client gets is what OpenAI would send, as the openai SDK's helpers see it end to end.

- `chat.completions.stream()` concatenates string deltas, `role` included: a role repeated in every
  chunk (OpenRouter does that) becomes "assistantassistant...", and the next request is refused. Each
  path (OpenRouter passthrough, Gemini translator, the proxy's own answers) sends `role` once.
- Interactive mode's banner never lands in an answer the client parses (`chat.completions.parse()`),
  and a banner shown earlier is not sent upstream again when the client re-sends that answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.e2e.test_gemini_path import GEMINI_KEYS
from tests.fakes.fake_gemini import DEFAULT_MODELS, FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter
from tests.fakes.server import Script
from tests.harness import ProxyProcess

MODEL = "openai/gpt-4o-mini"
FLASH = "gemini:gemini-2.5-flash"
BANNER = "llm-intercept 0.1.0 · session"


class Pet(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS, DEFAULT_MODELS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


def _env(openrouter: FakeOpenRouter, gemini: FakeGemini) -> dict[str, str]:
    return {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "GEMINI_API_KEY": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
    }


@pytest.fixture(scope="module")
def plain(openrouter: FakeOpenRouter, gemini: FakeGemini) -> Iterator[ProxyProcess]:
    with ProxyProcess(env=_env(openrouter, gemini)) as p:
        yield p


@pytest.fixture(scope="module")
def interactive(openrouter: FakeOpenRouter, gemini: FakeGemini) -> Iterator[ProxyProcess]:
    with ProxyProcess(env={**_env(openrouter, gemini), "INTERACTIVE_MODE": "true"}) as p:
        yield p


def _client(proxy: ProxyProcess, request: pytest.FixtureRequest) -> openai.OpenAI:
    session = re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]
    return openai.OpenAI(
        base_url=proxy.base_url,
        api_key="k",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": session},
    )


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def streamed(client: openai.OpenAI, model: str, messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(role, text) of the message the SDK's stream helper assembles."""
    with client.chat.completions.stream(model=model, messages=messages) as stream:  # type: ignore[arg-type]
        message = stream.get_final_completion().choices[0].message
    return message.role, message.content or ""


def openrouter_stream(pieces: list[str]) -> list[bytes]:
    """OpenRouter's own chunks: compact JSON, `role` in every delta, a keep-alive comment first."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": finish}
        body = {"id": "gen-1", "provider": "OpenAI", "model": MODEL, "object": "chat.completion.chunk",
                "created": 1, "choices": [choice]}  # fmt: skip
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    return [
        b": OPENROUTER PROCESSING\n\n",
        *(chunk({"content": p}) for p in pieces),
        chunk({"content": ""}, "stop"),
        b"data: [DONE]\n\n",
    ]


# -- role once ------------------------------------------------------------------------------------


def test_openrouter_repeated_role_reaches_the_sdk_once(
    plain: ProxyProcess, openrouter: FakeOpenRouter, request: pytest.FixtureRequest
) -> None:
    openrouter.enqueue(Script(events=openrouter_stream(["Hel", "lo", "!"])))
    client = _client(plain, request)
    role, text = streamed(client, MODEL, [user("hi")])
    assert (role, text) == ("assistant", "Hello!")
    # The assembled message goes back as the next turn's history, and upstream accepts its role.
    streamed(client, MODEL, [user("hi"), {"role": role, "content": text}, user("again")])
    assert [m["role"] for m in openrouter.last("/chat/completions").json()["messages"]] == [
        "user", "assistant", "user",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "reply",
    [Reply(text="plain text", chunks=4), Reply(thoughts="thinking", text="after thought", chunks=3)],
    ids=["text", "thoughts"],
)
def test_gemini_stream_sends_role_once(
    plain: ProxyProcess, gemini: FakeGemini, reply: Reply, request: pytest.FixtureRequest
) -> None:
    gemini.enqueue(reply)
    assert streamed(_client(plain, request), FLASH, [user("hi")]) == ("assistant", reply.text)


def test_gemini_tool_call_stream_sends_role_once(
    plain: ProxyProcess, gemini: FakeGemini, request: pytest.FixtureRequest
) -> None:
    gemini.enqueue(Reply(tool_calls=[("lookup", {"q": "x"}), ("lookup", {"q": "y"})]))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object",
              "properties": {"q": {"type": "string"}}}}}]  # fmt: skip
    with _client(plain, request).chat.completions.stream(
        model=FLASH,
        messages=[user("look")],
        tools=tools,  # type: ignore[arg-type]
    ) as stream:
        message = stream.get_final_completion().choices[0].message
    assert message.role == "assistant"
    assert [json.loads(c.function.arguments) for c in message.tool_calls or []] == [{"q": "x"}, {"q": "y"}]


def test_the_proxys_own_stream_sends_role_once(plain: ProxyProcess, request: pytest.FixtureRequest) -> None:
    role, text = streamed(_client(plain, request), MODEL, [user("!/help(status)")])
    assert role == "assistant" and "!/status" in text


# -- interactive mode and parsed answers ------------------------------------------------------------


def _parse(client: openai.OpenAI, messages: list[dict[str, Any]]) -> Any:
    return client.chat.completions.parse(model=MODEL, messages=messages, response_format=Pet)  # type: ignore[arg-type]


def test_parse_works_from_the_first_reply_and_the_banner_never_goes_back(
    interactive: ProxyProcess, openrouter: FakeOpenRouter, request: pytest.FixtureRequest
) -> None:
    client = _client(interactive, request)
    pet = '{"name": "Rex", "age": 3}'
    openrouter.enqueue(ChatReply(text=pet))
    first = _parse(client, [user("a dog")]).choices[0].message
    assert first.parsed == Pet(name="Rex", age=3) and first.content == pet
    # The banner waited for the first plain reply.
    hello = client.chat.completions.create(model=MODEL, messages=[user("hello")]).choices[0].message.content
    assert hello is not None and hello.startswith(BANNER) and hello.endswith("echo: hello")
    history = [user("a dog"), {"role": "assistant", "content": first.content}, user("hello"),
               {"role": "assistant", "content": hello}, user("a cat")]  # fmt: skip
    openrouter.enqueue(ChatReply(text='{"name": "Tom", "age": 5}'))
    assert _parse(client, history).choices[0].message.parsed == Pet(name="Tom", age=5)
    sent = openrouter.last("/chat/completions").json()["messages"]
    assert sent[1] == {"role": "assistant", "content": pet}
    assert sent[3] == {"role": "assistant", "content": "echo: hello"}  # the banner stayed behind
    assert "llm-intercept" not in json.dumps(sent)


def test_streamed_parse_in_interactive_mode(
    interactive: ProxyProcess, openrouter: FakeOpenRouter, request: pytest.FixtureRequest
) -> None:
    openrouter.enqueue(Script(events=openrouter_stream(['{"name": "Rex",', ' "age": 3}'])))
    with _client(interactive, request).chat.completions.stream(
        model=MODEL,
        messages=[user("a dog")],
        response_format=Pet,  # type: ignore[arg-type]
    ) as stream:
        message = stream.get_final_completion().choices[0].message
    assert (message.role, message.parsed) == ("assistant", Pet(name="Rex", age=3))


def test_interactive_banner_stream_sends_role_once(
    interactive: ProxyProcess, openrouter: FakeOpenRouter, request: pytest.FixtureRequest
) -> None:
    openrouter.enqueue(Script(events=openrouter_stream(["Hel", "lo"])))
    role, text = streamed(_client(interactive, request), MODEL, [user("hi")])
    assert text.startswith(BANNER) and text.endswith("\n\nHello")
    assert role == "assistant"
