"""Fixtures for the Responses API end to end (tests/e2e/test_responses_sdk.py): one proxy on both fake
upstreams, official-SDK clients whose every exchange is recorded raw, and the checks every exchange
must pass (the SDK's own types, `sequence_number` order, OpenAI error JSON, no key in any byte).

The SDK builds its objects without validating them (`construct`), so validation runs here, on the bytes
the proxy sent: a recording transport keeps each body as it arrives and the `rec` fixture checks them all
when the test ends.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, get_args

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseItemList, ResponseStreamEvent
from pydantic import TypeAdapter, ValidationError

from tests.conftest import OPENROUTER_KEYS
from tests.e2e.test_gemini_path import GEMINI_KEYS, gemini
from tests.fakes.fake_gemini import FakeGemini, raw_stream
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Script
from tests.harness import ProxyProcess, response_leaks
from translators.sse import DONE, SSEDecoder, encode_data

__all__ = ["gemini"]  # re-exported: test modules import the fixtures they use from here

OR_MODEL = "openai/gpt-4o-mini"
FLASH = "gemini:gemini-2.5-flash"
MAPPED = "gpt-5-codex"  # a Codex model name; model_map sends it to Gemini
CONFIG = 'model_map:\n  "gpt-5*": "gemini:gemini-2.5-flash"\n'
EVENT = TypeAdapter(ResponseStreamEvent)
# Event type -> its class, only to name what is wrong when EVENT refuses an event (its union error
# lists every one of the ~60 event classes).
EVENT_CLASSES = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(ResponseStreamEvent)[0])
}
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
_RESPONSE_PATH = re.compile(r"/v1/responses(/[^/]+)?$")


@dataclass
class Exchange:
    """One request the SDK made and the body it got back, byte for byte (`complete`: read to its end)."""

    method: str
    path: str
    status: int
    headers: httpx.Headers
    raw: bytes = b""
    complete: bool = False

    @property
    def response(self) -> httpx.Response:
        """As httpx sees it: the body decoded if the proxy compressed it."""
        return httpx.Response(self.status, headers=self.headers, content=self.raw)

    def events(self) -> list[dict[str, Any]]:
        decoder = SSEDecoder()
        sse = [*decoder.feed(self.raw), *decoder.finish()]
        return [json.loads(e.data) for e in sse if e.data != "[DONE]"]


class _SyncTee(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, ex: Exchange) -> None:
        self._inner, self._ex = inner, ex

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._ex.raw += chunk
            yield chunk
        self._ex.complete = True

    def close(self) -> None:
        self._inner.close()


class _AsyncTee(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, ex: Exchange) -> None:
        self._inner, self._ex = inner, ex

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._ex.raw += chunk
            yield chunk
        self._ex.complete = True

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SyncRecording(httpx.HTTPTransport):
    def __init__(self, log: list[Exchange]) -> None:
        super().__init__()
        self.log = log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        ex = Exchange(request.method, request.url.path, response.status_code, response.headers)
        self.log.append(ex)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _SyncTee(response.stream, ex)
        return response


class _AsyncRecording(httpx.AsyncHTTPTransport):
    def __init__(self, log: list[Exchange]) -> None:
        super().__init__()
        self.log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        ex = Exchange(request.method, request.url.path, response.status_code, response.headers)
        self.log.append(ex)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncTee(response.stream, ex)
        return response


def _check_stream(ex: Exchange) -> None:
    events = ex.events()
    assert events, "an empty event stream"
    for e in events:
        try:
            EVENT.validate_python(e)
        except ValidationError:
            kind = EVENT_CLASSES.get(e.get("type"))
            assert kind is not None, f"no such event type: {e.get('type')!r}"
            kind.model_validate(e)  # raises the error of that one class
    numbers = [e["sequence_number"] for e in events]
    assert numbers[0] == 0 and all(a < b for a, b in itertools.pairwise(numbers)), numbers
    assert events[0]["type"] == "response.created", events[0]["type"]
    if ex.complete:
        assert events[-1]["type"] in TERMINAL, f"the stream ended with {events[-1]['type']}"


def _check_error(body: bytes) -> None:
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str), error
    assert "param" in error and "code" in error, error


def problems(ex: Exchange, secrets: list[str]) -> list[str]:
    """What is wrong with one exchange: an empty list when it is all right."""
    where = f"{ex.method} {ex.path} -> {ex.status}"
    resp = ex.response
    leaked = response_leaks(resp, secrets)
    found = [f"{where}: a key leaked ({', '.join(leaked)})"] if leaked else []
    try:
        if ex.status >= 400:
            _check_error(resp.content)
        elif resp.headers.get("content-type", "").startswith("text/event-stream"):
            _check_stream(ex)
        elif ex.method != "DELETE" and _RESPONSE_PATH.search(ex.path):
            Response.model_validate_json(resp.content)
        elif ex.path.endswith("/input_items"):
            ResponseItemList.model_validate_json(resp.content)
    except (AssertionError, ValidationError, ValueError, KeyError) as e:
        found.append(f"{where}: {e!r}"[:3000])
    return found


@dataclass
class Recorder:
    """Clients for one test; everything they received, checked at the end of the test."""

    proxy: ProxyProcess
    session: str
    exchanges: list[Exchange] = field(default_factory=list)

    def client(self, headers: dict[str, str] | None = None) -> openai.OpenAI:
        """A sync client; `headers` None means this test's X-Session-ID."""
        http = httpx.Client(transport=_SyncRecording(self.exchanges), trust_env=False, timeout=20)
        return openai.OpenAI(
            base_url=self.proxy.base_url,
            api_key="client-side-key",
            max_retries=0,
            http_client=http,
            default_headers={"X-Session-ID": self.session} if headers is None else headers,
        )

    def aclient(self) -> openai.AsyncOpenAI:
        http = httpx.AsyncClient(transport=_AsyncRecording(self.exchanges), trust_env=False, timeout=20)
        return openai.AsyncOpenAI(
            base_url=self.proxy.base_url,
            api_key="client-side-key",
            max_retries=0,
            http_client=http,
            default_headers={"X-Session-ID": self.session},
        )

    def last(self) -> Exchange:
        return self.exchanges[-1]

    def types(self) -> list[str]:
        """Event types of the last exchange, a stream."""
        return [e["type"] for e in self.last().events()]

    def problems(self) -> list[str]:
        return [p for ex in self.exchanges for p in problems(ex, self.proxy.secrets())]


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rproxy(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_KEY_2": OPENROUTER_KEYS[1],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "5",
    }
    with ProxyProcess(env=env, config_yaml=CONFIG, sets={"termlog_verbosity": "debug"}) as p:
        yield p


@pytest.fixture
def rec(rproxy: ProxyProcess, request: pytest.FixtureRequest) -> Iterator[Recorder]:
    recorder = Recorder(rproxy, re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128])
    yield recorder
    assert not recorder.problems(), "\n".join(recorder.problems())


@pytest.fixture
def client(rec: Recorder) -> Iterator[openai.OpenAI]:
    with rec.client() as c:
        yield c


# -- scripted upstream answers ----------------------------------------------------------------------------


def or_tool_call(name: str, args: dict[str, Any], call_id: str = "call_or_1", stream: bool = False) -> Script:
    """OpenRouter answering with one tool call, as a completion or as a chunk stream."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return Script(json_body=_completion(message, "tool_calls", usage))
    arguments = call["function"]["arguments"]
    head = {**call, "index": 0, "function": {"name": name, "arguments": ""}}
    deltas = [{"role": "assistant", "tool_calls": [head]}]
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 4]}}]}
               for i in range(0, len(arguments), 4)]  # fmt: skip
    chunks = [_chunk(d, None) for d in deltas] + [_chunk({}, "tool_calls", usage)]
    return Script(events=[*(encode_data(c) for c in chunks), DONE])


def or_finish(text: str, finish_reason: str) -> Script:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return Script(json_body=_completion({"role": "assistant", "content": text}, finish_reason, usage))


def _completion(message: dict[str, Any], finish: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": "gen-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": OR_MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }


def _chunk(delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "gen-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": OR_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return chunk | ({"usage": usage} if usage else {})


def gemini_signed(text: str, signature: str, thoughts: str | None = None, stream: bool = False) -> Script:
    """A Gemini 2.5/3 answer whose signature rides on a text part (the fake's Reply signs only function
    calls): the proxy must hand it to the client in a reasoning item and get it back next turn."""
    parts: list[dict[str, Any]] = [{"text": thoughts, "thought": True}] if thoughts else []
    parts.append({"text": text})
    parts[0]["thoughtSignature"] = signature
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}
    return raw_stream([body]) if stream else Script(json_body=body)


# -- reading what the upstreams received ------------------------------------------------------------------


def text_of(content: Any) -> str:
    """A chat message's text, whether a string or a list of text parts."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def or_messages(fake: FakeOpenRouter) -> list[dict[str, Any]]:
    return fake.last("/chat/completions").json()["messages"]


def gemini_turns(fake: FakeGemini) -> list[tuple[str, str]]:
    """The last generate request as (role, text) pairs, system instruction first; tool parts read as
    `call:<name>` and `result:<name>`, thoughts are left out."""
    body = fake.last_generate().json()
    system = body.get("systemInstruction")
    out = [("system", "".join(p.get("text", "") for p in system["parts"]))] if system else []
    for content in body["contents"]:
        bits = []
        for part in content["parts"]:
            if "functionCall" in part:
                bits.append(f"call:{part['functionCall']['name']}")
            elif "functionResponse" in part:
                bits.append(f"result:{part['functionResponse']['name']}")
            elif not part.get("thought"):
                bits.append(part.get("text", ""))
        out.append((content["role"], "".join(bits)))
    return out


def upstream_turns(model: str, openrouter: FakeOpenRouter, gemini: FakeGemini) -> list[tuple[str, str]]:
    """The conversation the backend of `model` last received, as (role, text) in chat's role names."""
    if model.startswith("gemini:"):
        return [("assistant" if role == "model" else role, text) for role, text in gemini_turns(gemini)]
    return [(m["role"], text_of(m.get("content"))) for m in or_messages(openrouter)]


def dumped(items: list[Any]) -> list[dict[str, Any]]:
    """Output items as a client sends them back as input (the SDK's objects as JSON)."""
    return [item.model_dump(mode="json", exclude_none=True) for item in items]
