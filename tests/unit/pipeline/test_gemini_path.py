"""The Gemini path through the real pipeline, backends and translators, in-process: FakeGemini and
FakeOpenRouter served without sockets (tests/unit/pipeline/inproc.py), the official openai SDK and httpx
talking to the core through an httpx transport. What needs a real mitmdump (incremental streaming, the
async SDK against the real server, start-up, explicit proxy mode, the process log) stays in
tests/e2e/test_gemini_path.py.

One core serves the module (default backend openrouter, Gemini picked with `gemini:`), as one proxy did;
each test talks in its own X-Session-ID.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from addons.pipeline.core import Core
from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import (
    DEFAULT_MODELS,
    GENERATE,
    FakeGemini,
    Reply,
    api_error,
    dropped,
    garbage,
    rate_limited,
    raw_stream,
    server_error,
)
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.unit.pipeline.inproc import (
    GEMINI_HOST,
    OPENROUTER_HOST,
    LogWatch,
    Transport,
    client_kwargs,
    core_for,
    offline,
)

GEMINI_KEYS = (
    "AIzaSyqVb2lq9Mv6u716le-RGp9Ge78XAgwoRKX",
    "AIzaSyjHQtSUmhbaH2zAkahLMK4zcNzo-g1vFl1",
)
# Models only the rate-limit tests use: a 429 rests (model, key) pairs, which must not slow other tests.
QUOTA_MODEL = "gemini-2.5-flash-quota"
DAILY_MODEL = "gemini-2.5-flash-daily"
COOL_MODEL = "gemini-2.5-flash-cool"
MODELS = (*DEFAULT_MODELS, (QUOTA_MODEL, GENERATE), (DAILY_MODEL, GENERATE), (COOL_MODEL, GENERATE))
GENERATIVE = [name for name, methods in MODELS if "generateContent" in methods]

FLASH = "gemini:gemini-2.5-flash"
GEMINI3 = "gemini:gemini-3-pro-preview"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "strict": True,
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": ["string", "null"], "enum": ["C", "F", None]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string", "default": "UTC"}},
                "required": ["tz"],
            },
        },
    },
]


def _leaks(log: str, keys: tuple[str, ...]) -> list[int]:
    """Indexes of keys that appear in the log, whole or nearly whole (never the keys themselves)."""
    return [i for i, k in enumerate(keys) if k in log or k[:-4] in log or k[4:] in log]


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with offline(FakeGemini(GEMINI_KEYS, MODELS)) as fake:
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
def gcore(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[Core]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "PROXY_TIMEOUT": "5",
    }
    # Debug logging: the no-key-in-the-log check below then covers the chattiest output there is.
    with LogWatch().installed() as watch:
        yield core_for({GEMINI_HOST: gemini, OPENROUTER_HOST: openrouter}, env)
    assert not _leaks(watch.text, GEMINI_KEYS + OPENROUTER_KEYS[:1]), "an API key appeared in the log"


def _session(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]


@pytest.fixture
def client(gcore: Core, request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="client-side-key",
        max_retries=0,
        default_headers={"X-Session-ID": _session(request)},
        **client_kwargs(gcore),
    ) as c:
        yield c


@pytest.fixture
def http(gcore: Core, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url="http://proxy.test", transport=Transport(gcore), headers={"X-Session-ID": _session(request)}
    ) as c:
        yield c


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def sent(gemini: FakeGemini) -> dict[str, Any]:
    """The GenerateContentRequest the proxy sent last."""
    return gemini.last_generate().json()


def extra(obj: Any, name: str) -> Any:
    """A field the SDK does not model (reasoning_content), as the SDK exposes it."""
    return (obj.model_extra or {}).get(name)


def sse_payloads(body: str) -> list[Any]:
    out = []
    for block in body.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            payload = block[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# -- plain chat, conversations, media ------------------------------------------------------------------


def test_plain_chat(client: openai.OpenAI, gemini: FakeGemini) -> None:
    r = client.chat.completions.create(model=FLASH, messages=[user("hello gemini")])
    assert r.choices[0].message.content == "echo: hello gemini"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model.endswith("gemini-2.5-flash")
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (2, 3, 5)
    rec = gemini.last_generate()
    assert rec.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert rec.headers["x-goog-api-key"] in GEMINI_KEYS
    assert "authorization" not in rec.headers  # the client's own key is not forwarded
    assert rec.json() == {"contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}]}


def test_system_prompt_and_multi_turn(client: openai.OpenAI, gemini: FakeGemini) -> None:
    r = client.chat.completions.create(
        model=FLASH,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            user("first question"),
            {"role": "assistant", "content": "first answer"},
            user("second question"),
        ],
        temperature=0.2,
        top_p=0.9,
        max_tokens=77,
        stop=["END"],
        seed=7,
    )
    assert r.choices[0].message.content == "echo: second question"
    body = sent(gemini)
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse.\n\nAnswer in English."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "first question"}]},
        {"role": "model", "parts": [{"text": "first answer"}]},
        {"role": "user", "parts": [{"text": "second question"}]},
    ]
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 77,
        "stopSequences": ["END"],
        "seed": 7,
    }


def test_image_input_data_url_and_http_url(client: openai.OpenAI, gemini: FakeGemini) -> None:
    r = client.chat.completions.create(
        model=FLASH,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in these pictures"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://img.example.test/cats/tabby.JPG"}},
                ],
            }
        ],
    )
    assert r.choices[0].message.content == "echo: what is in these pictures"
    assert sent(gemini)["contents"][0]["parts"] == [
        {"text": "what is in these pictures"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://img.example.test/cats/tabby.JPG"}},
    ]


def test_untranslatable_request_is_a_400_before_gemini_is_called(
    client: openai.OpenAI, gemini: FakeGemini
) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=FLASH,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://x.test/p.png"}}],
                }
            ],
        )
    assert "unsupported URL scheme" in e.value.message
    assert gemini.generate_requests() == []


def test_keys_rotate(client: openai.OpenAI, gemini: FakeGemini) -> None:
    for i in range(4):
        client.chat.completions.create(model=FLASH, messages=[user(f"n{i}")])
    assert sorted(gemini.keys_used()) == sorted(GEMINI_KEYS * 2)  # type: ignore[type-var]


# -- tools -------------------------------------------------------------------------------------------


def _as_message(msg: Any) -> dict[str, Any]:
    return msg.model_dump(exclude_none=True)


def test_parallel_tool_calls_round_trip_with_gemini3_signature(
    client: openai.OpenAI, gemini: FakeGemini
) -> None:
    gemini.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Paris", "unit": "C"}), ("get_time", {"tz": "CET"})])
    )
    messages: list[Any] = [user("weather and time in Paris?")]
    r = client.chat.completions.create(
        model=GEMINI3, messages=messages, tools=WEATHER_TOOLS, tool_choice="required"
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert len({c.id for c in calls}) == 2
    # Gemini 3 signed the first call; the signature stays in the proxy's store, the ids stay short.
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", c.id) for c in calls)

    first = sent(gemini)
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    decls = first["tools"][0]["functionDeclarations"]
    assert decls[0] == {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["C", "F"], "nullable": True},
            },
            "required": ["city", "unit"],
        },
    }
    assert decls[1]["parameters"]["properties"] == {"tz": {"type": "string"}}  # `default` dropped

    messages += [
        _as_message(choice.message),
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "14:05"},
    ]
    r2 = client.chat.completions.create(model=GEMINI3, messages=messages, tools=WEATHER_TOOLS)
    assert r2.choices[0].finish_reason == "stop"
    assert (
        r2.choices[0].message.content == 'echo: get_weather -> {"temp": 21} get_time -> {"content": "14:05"}'
    )
    (check,) = gemini.signature_checks  # the signed call came back once, with Gemini's own signature
    assert (check.function, check.received) == ("get_weather", check.expected)
    second = sent(gemini)
    model_turn, results_turn = second["contents"][1], second["contents"][2]
    assert model_turn["role"] == "model"
    assert [p["functionCall"]["name"] for p in model_turn["parts"]] == ["get_weather", "get_time"]
    assert all("id" not in p["functionCall"] for p in model_turn["parts"])  # our ids stay with the client
    assert results_turn == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
        ],
    }


def test_signature_survives_several_turns(client: openai.OpenAI, gemini: FakeGemini) -> None:
    """Each step of a multi-step tool loop is signed; every earlier signature must come back each turn."""
    gemini.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Oslo", "unit": "C"})]),
        Reply(tool_calls=[("get_time", {"tz": "CET"})]),
    )
    messages: list[Any] = [user("plan my day")]
    for _ in range(2):
        r = client.chat.completions.create(model=GEMINI3, messages=messages, tools=WEATHER_TOOLS)
        call = (r.choices[0].message.tool_calls or [])[0]
        messages += [
            _as_message(r.choices[0].message),
            {"role": "tool", "tool_call_id": call.id, "content": "ok"},
        ]
    r = client.chat.completions.create(model=GEMINI3, messages=messages, tools=WEATHER_TOOLS)
    assert r.choices[0].message.content == 'echo: get_time -> {"content": "ok"}'
    checks = gemini.signature_checks
    assert [c.function for c in checks] == ["get_weather", "get_weather", "get_time"]
    assert all(c.ok and c.received == c.expected for c in checks)


def test_native_call_ids_without_signature(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(tool_calls=[("get_time", {"tz": "UTC"})], signature=None, call_ids=True))
    r = client.chat.completions.create(model=FLASH, messages=[user("time?")], tools=WEATHER_TOOLS)
    (call,) = r.choices[0].message.tool_calls or []
    assert re.fullmatch(r"call_[0-9a-f]{24}", call.id)  # ours: Gemini's own id stays in the store
    assert r.choices[0].finish_reason == "tool_calls"


def test_streaming_tool_calls_round_trip(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(
        Reply(
            text="Let me check.",
            tool_calls=[("get_weather", {"city": "Rome", "unit": "C"}), ("get_time", {"tz": "CET"})],
        )
    )
    messages: list[Any] = [user("weather and time in Rome?")]
    stream = client.chat.completions.create(
        model=GEMINI3, messages=messages, tools=WEATHER_TOOLS, stream=True
    )
    chunks = list(stream)
    assert all(len(c.choices) == 1 for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Let me check."
    deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert [d.index for d in deltas] == [0, 1]
    assert all(d.id and d.type == "function" and d.function for d in deltas)
    assert [(d.function.name, json.loads(d.function.arguments or "")) for d in deltas if d.function] == [
        ("get_weather", {"city": "Rome", "unit": "C"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert [c.choices[0].finish_reason for c in chunks][-1] == "tool_calls"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    assert gemini.last_generate().path == "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"

    ids = [d.id or "" for d in deltas]
    messages += [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": i,
                    "type": "function",
                    "function": {"name": d.function.name, "arguments": d.function.arguments},
                }
                for i, d in zip(ids, deltas, strict=True)
                if d.function
            ],
        },
        {"role": "tool", "tool_call_id": ids[0], "content": "sunny"},
        {"role": "tool", "tool_call_id": ids[1], "content": "09:00"},
    ]
    stream = client.chat.completions.create(
        model=GEMINI3, messages=messages, tools=WEATHER_TOOLS, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == 'echo: get_weather -> {"content": "sunny"} get_time -> {"content": "09:00"}'
    (check,) = gemini.signature_checks
    assert (check.function, check.received) == ("get_weather", check.expected)


def test_tool_choice_function_and_none(client: openai.OpenAI, gemini: FakeGemini) -> None:
    client.chat.completions.create(
        model=FLASH,
        messages=[user("x")],
        tools=WEATHER_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert sent(gemini)["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }
    client.chat.completions.create(model=FLASH, messages=[user("x")], tools=WEATHER_TOOLS, tool_choice="none")
    assert sent(gemini)["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}


# -- structured output, reasoning, usage ---------------------------------------------------------------


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def test_json_schema_output(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(text='{"name": "Ada", "age": 36, "tags": ["math"]}'))
    r = client.chat.completions.parse(model=FLASH, messages=[user("who?")], response_format=Person)
    assert r.choices[0].message.parsed == Person(name="Ada", age=36, tags=["math"])
    gen = sent(gemini)["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseSchema"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "propertyOrdering": ["name", "age", "tags"],
    }


def test_json_object_output(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(text="{}"))
    r = client.chat.completions.create(
        model=FLASH, messages=[user("json please")], response_format={"type": "json_object"}
    )
    assert r.choices[0].message.content == "{}"
    gen = sent(gemini)["generationConfig"]
    assert gen == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        (FLASH, "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        (GEMINI3, "medium", {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini:gemini-2.0-flash", "high", None),
    ],
)
def test_reasoning_effort_reaches_gemini(
    client: openai.OpenAI, gemini: FakeGemini, model: str, effort: str, thinking: Any
) -> None:
    client.chat.completions.create(model=model, messages=[user("think")], reasoning_effort=effort)  # type: ignore[arg-type]
    assert (sent(gemini).get("generationConfig") or {}).get("thinkingConfig") == thinking


def test_reasoning_and_cached_tokens_non_stream(client: openai.OpenAI, gemini: FakeGemini) -> None:
    usage = {
        "promptTokenCount": 40,
        "cachedContentTokenCount": 32,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 11,
        "totalTokenCount": 56,
    }
    gemini.enqueue(Reply(text="the answer", thoughts="pondering deeply", usage=usage))
    r = client.chat.completions.create(model=FLASH, messages=[user("q")], reasoning_effort="high")
    msg = r.choices[0].message
    assert msg.content == "the answer"
    assert extra(msg, "reasoning_content") == "pondering deeply"
    u = r.usage
    assert u is not None and u.prompt_tokens_details and u.completion_tokens_details
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (40, 16, 56)
    assert u.prompt_tokens_details.cached_tokens == 32
    assert u.completion_tokens_details.reasoning_tokens == 11


def test_stream_include_usage(client: openai.OpenAI, gemini: FakeGemini) -> None:
    usage = {
        "promptTokenCount": 9,
        "cachedContentTokenCount": 4,
        "candidatesTokenCount": 3,
        "thoughtsTokenCount": 6,
        "totalTokenCount": 18,
    }
    gemini.enqueue(Reply(text="one two three", thoughts="hmm", usage=usage, chunks=3))
    chunks = list(
        client.chat.completions.create(
            model=FLASH, messages=[user("q")], stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert (
        last.usage is not None and last.usage.prompt_tokens_details and last.usage.completion_tokens_details
    )
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (9, 9, 18)
    assert last.usage.prompt_tokens_details.cached_tokens == 4
    assert last.usage.completion_tokens_details.reasoning_tokens == 6
    body = chunks[:-1]
    assert all(c.usage is None and len(c.choices) == 1 for c in body)
    assert "".join(c.choices[0].delta.content or "" for c in body) == "one two three"
    assert "".join(extra(c.choices[0].delta, "reasoning_content") or "" for c in body) == "hmm"
    assert body[-1].choices[0].finish_reason == "stop"


def test_stream_without_include_usage_has_no_usage_chunk(http: httpx.Client) -> None:
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": FLASH, "stream": True, "messages": [user("raw sse")]},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_payloads(r.read().decode())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo: raw sse"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# -- finish reasons and safety -------------------------------------------------------------------------


def test_blocked_prompt_is_a_content_filter_completion(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(block_reason="SAFETY"), Reply(block_reason="PROHIBITED_CONTENT"))
    r = client.chat.completions.create(model=FLASH, messages=[user("something bad")])
    assert r.choices[0].finish_reason == "content_filter"
    assert r.choices[0].message.content is None
    chunks = list(client.chat.completions.create(model=FLASH, messages=[user("bad")], stream=True))
    assert [c.choices[0].finish_reason for c in chunks] == ["content_filter"]
    assert chunks[0].choices[0].delta.role == "assistant"


@pytest.mark.parametrize(
    ("gemini_reason", "openai_reason"),
    [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter")],
)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons(
    client: openai.OpenAI, gemini: FakeGemini, gemini_reason: str, openai_reason: str, stream: bool
) -> None:
    gemini.enqueue(Reply(text="partial answer", finish_reason=gemini_reason))
    if stream:
        chunks = list(client.chat.completions.create(model=FLASH, messages=[user("x")], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        reason = chunks[-1].choices[0].finish_reason
    else:
        r = client.chat.completions.create(model=FLASH, messages=[user("x")])
        text, reason = r.choices[0].message.content or "", r.choices[0].finish_reason
    assert (text, reason) == ("partial answer", openai_reason)


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("script", "status", "exc", "code", "fragment"),
    [
        (
            api_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
            400,
            openai.BadRequestError,
            "INVALID_ARGUMENT",
            "invalid argument",
        ),
        (
            api_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            403,
            openai.PermissionDeniedError,
            "PERMISSION_DENIED",
            "unregistered callers",
        ),
    ],
    ids=["400", "403"],
)
def test_client_errors_pass_on_without_retry(
    client: openai.OpenAI,
    gemini: FakeGemini,
    script: Any,
    status: int,
    exc: type[openai.APIStatusError],
    code: str,
    fragment: str,
    stream: bool,
) -> None:
    gemini.enqueue(script)
    with pytest.raises(exc) as e:
        client.chat.completions.create(model=FLASH, messages=[user("x")], stream=stream)  # type: ignore[call-overload]
    assert e.value.status_code == status
    assert e.value.code == code
    assert fragment in e.value.message
    assert len(gemini.generate_requests()) == 1  # a client error is final: no second key is tried


def test_unknown_model_is_404(client: openai.OpenAI, gemini: FakeGemini) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gemini:gemini-9-ultra", messages=[user("x")])
    assert e.value.code == "NOT_FOUND"
    assert "gemini-9-ultra is not found" in e.value.message
    assert len(gemini.generate_requests()) == 1


def test_rate_limit_with_retry_info(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(rate_limited("17s"), rate_limited("17s"))
    model = f"gemini:{QUOTA_MODEL}"
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=model, messages=[user("x")])
    err = e.value
    assert err.status_code == 429
    assert err.code == "all_keys_cooling_down"  # every key answered 429: the message names them
    assert "GEMINI_API_KEY_1" in err.message and "GEMINI_API_KEY_2" in err.message
    assert "exceeded your current quota" in err.message  # ...and keeps Google's last word
    assert err.response.headers["x-should-retry"] == "false"
    assert 15 <= int(err.response.headers["retry-after"]) <= 17
    assert sorted(gemini.keys_used()) == sorted(GEMINI_KEYS)  # type: ignore[type-var]  # both keys tried
    # Both keys now rest for that model: the proxy answers itself, with the time left.
    with pytest.raises(openai.RateLimitError) as e2:
        client.chat.completions.create(model=model, messages=[user("x")], stream=True)
    assert e2.value.code == "all_keys_cooling_down"
    assert 1 <= int(e2.value.response.headers["retry-after"]) <= 17
    assert len(gemini.generate_requests()) == 2
    # ...while other models are unaffected.
    assert client.chat.completions.create(model=FLASH, messages=[user("y")]).choices[0].message.content


def test_daily_quota_is_named(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(rate_limited("5s", per_day=True), rate_limited("5s", per_day=True))
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=f"gemini:{DAILY_MODEL}", messages=[user("x")])
    assert "per-day quota" in e.value.message
    assert int(e.value.response.headers["retry-after"]) >= 60  # rests until midnight Pacific


def test_rate_limited_key_fails_over_to_the_other_key(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(rate_limited("30s"))
    model = f"gemini:{COOL_MODEL}"
    r = client.chat.completions.create(model=model, messages=[user("other key")])
    assert r.choices[0].message.content == "echo: other key"
    limited, fine = gemini.keys_used()
    assert {limited, fine} == set(GEMINI_KEYS)
    # The limited key rests for that model: the next calls use only the other one.
    for _ in range(2):
        client.chat.completions.create(model=model, messages=[user("again")])
    assert gemini.keys_used()[2:] == [fine, fine]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("status", "code"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_server_errors(
    client: openai.OpenAI, gemini: FakeGemini, status: int, code: str, stream: bool
) -> None:
    gemini.enqueue(server_error(status), server_error(status))
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=FLASH, messages=[user("x")], stream=stream)  # type: ignore[call-overload]
    assert (e.value.status_code, e.value.code) == (status, code)
    assert e.value.response.headers["x-should-retry"] == "false"
    assert len(gemini.generate_requests()) == 2  # the proxy already tried the other key


def test_server_error_on_one_key_is_invisible(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(server_error(503))
    r = client.chat.completions.create(model=FLASH, messages=[user("second key")])
    assert r.choices[0].message.content == "echo: second key"
    assert len(set(gemini.keys_used())) == 2


def test_garbage_error_body(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(garbage(), garbage())
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=FLASH, messages=[user("x")])
    assert e.value.status_code == 502
    assert "Gemini returned HTTP 502 with an unreadable error body" in e.value.message
    assert "502 Bad Gateway" in e.value.message


def test_garbage_success_body(http: httpx.Client, gemini: FakeGemini) -> None:
    gemini.enqueue(garbage(200, b"this is not json"), garbage(200, b"this is not json"))  # one per key
    r = http.post("/v1/chat/completions", json={"model": FLASH, "messages": [user("x")]})
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["code"] == "upstream_bad_response"
    assert "not a response" in err["message"]


def test_dropped_connection(http: httpx.Client, gemini: FakeGemini) -> None:
    gemini.enqueue(dropped(), dropped())
    r = http.post("/v1/chat/completions", json={"model": FLASH, "messages": [user("x")]})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"


def test_stream_broken_midway(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(text="aaaabbbbccccdddd", chunks=4, drop_after=2))
    got = ""
    with pytest.raises(openai.APIError) as e:
        for c in client.chat.completions.create(model=FLASH, messages=[user("x")], stream=True):
            if c.choices:
                got += c.choices[0].delta.content or ""
    assert got == "aaaabbbb"  # what arrived before the cut reached the client
    assert "broke off the stream" in e.value.message
    assert e.value.code == "upstream_error"


def test_stream_error_event_from_gemini(client: openai.OpenAI, gemini: FakeGemini) -> None:
    gemini.enqueue(Reply(text="aaaabbbbccccdddd", chunks=4, error_after=3))
    got = ""
    with pytest.raises(openai.APIError) as e:
        for c in client.chat.completions.create(model=FLASH, messages=[user("x")], stream=True):
            if c.choices:
                got += c.choices[0].delta.content or ""
    assert got == "aaaabbbbcccc"
    assert "overloaded" in e.value.message
    assert e.value.code == "UNAVAILABLE"


def test_stream_undecodable_event_and_missing_finish(http: httpx.Client, gemini: FakeGemini) -> None:
    good = {"candidates": [{"content": {"role": "model", "parts": [{"text": "fine "}]}, "index": 0}]}
    gemini.enqueue(
        raw_stream([good, b"data: {not json\r\n\r\n", good]),
        raw_stream([good]),  # a clean close before any finishReason
    )
    for fragment in ("undecodable stream event", "ended before it finished"):
        with http.stream(
            "POST", "/v1/chat/completions", json={"model": FLASH, "stream": True, "messages": [user("x")]}
        ) as r:
            events = sse_payloads(r.read().decode())
        assert events[0]["choices"][0]["delta"]["content"] == "fine "
        assert fragment in events[-1]["error"]["message"]
        assert "[DONE]" not in events
        assert sum("error" in e for e in events) == 1


# -- models ---------------------------------------------------------------------------------------------


def test_models_listing_with_openrouter_default(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == openrouter.models + [f"gemini:{m}" for m in GENERATIVE]
    assert "gemini:text-embedding-004" not in ids  # not a generateContent model
    m = client.models.retrieve("gemini:gemini-2.5-pro")
    assert (m.id, m.owned_by) == ("gemini:gemini-2.5-pro", "gemini")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gemini:gemini-9-ultra")


# -- a revoked key among good ones ----------------------------------------------------------------------

REVOKED_KEY = "AIzaSyD9L30orcmY-dWg24B5_HiwH2mtBz-yhF7"


@pytest.fixture(scope="module")
def revoked_first(gemini: FakeGemini) -> Iterator[tuple[Core, LogWatch]]:
    """Key 1 is one Google no longer accepts (API_KEY_INVALID), key 2 is fine."""
    env = {"LLM_BACKEND": "gemini", "GEMINI_API_KEY_1": REVOKED_KEY, "GEMINI_API_KEY_2": GEMINI_KEYS[0]}
    with LogWatch().installed() as watch:
        yield core_for({GEMINI_HOST: gemini}, env), watch
    assert not _leaks(watch.text, (REVOKED_KEY, GEMINI_KEYS[0])), "an API key appeared in the log"


def test_revoked_key_fails_over_and_is_retired(
    revoked_first: tuple[Core, LogWatch], gemini: FakeGemini
) -> None:
    with openai.OpenAI(api_key="k", max_retries=0, **client_kwargs(revoked_first[0])) as c:
        answers = []
        for i in range(4):
            try:
                r = c.chat.completions.create(model="gemini-2.5-flash", messages=[user(f"r{i}")])
                answers.append(r.choices[0].message.content)
            except openai.BadRequestError as e:
                answers.append(f"{e.code}")
    assert answers == [f"echo: r{i}" for i in range(4)]
    assert gemini.keys_used().count(REVOKED_KEY) <= 1  # retired after its first refusal


def test_discovery_does_not_depend_on_the_first_key(revoked_first: tuple[Core, LogWatch]) -> None:
    core, watch = revoked_first
    assert "gemini: model discovery failed" not in watch.text
    with openai.OpenAI(api_key="k", max_retries=0, **client_kwargs(core)) as c:
        assert [m.id for m in c.models.list()] == GENERATIVE


def test_a_configured_route_named_like_a_listed_model_is_switched_off(
    gemini: FakeGemini, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Commands refuse such names; one from mitm_config.yaml (or an old state file) must not capture the
    model's requests either (security issue, finding 4)."""
    env = {"GEMINI_API_KEY_1": GEMINI_KEYS[0], "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0]}
    shadow = {"policy": "m", "elements": ["openrouter:openai/gpt-4o-mini"]}
    model = MODELS[0][0]  # (id, methods)
    yaml = {"routes": {model.upper(): shadow, "fast": shadow}}
    with caplog.at_level("WARNING"):
        core = core_for({GEMINI_HOST: gemini, OPENROUTER_HOST: openrouter}, env, yaml)
    routes = asyncio.run(core.stores.config.get()).routes
    assert set(routes) == {"fast"}
    assert f"route '{model.upper()}' has the name of a model gemini lists" in caplog.text
