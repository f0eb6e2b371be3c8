"""The stream commit point, contentless answers and context limits on routes (issue 15), in-process.

A streamed attempt reaches the client only at its first event with content (addons/pipeline/commit.py):
an empty 200 stream, one that opens with an error event, one that stalls before content, and an answer
without content are failed attempts the next key or route element can still answer, and only the last
failure reaches the client, as a plain HTTP error in its dialect. A model that thinks past
`commit_timeout` is committed anyway and the client gets keep-alive comments until content comes.

FakeOpenRouter and FakeGemini (tests/fakes/keyed.py, two keys each) are served without sockets
(tests/unit/pipeline/inproc.py), so a stall is counted, never slept; what needs real time (the commit
timeout, a held upstream) uses answers of this module that wait on an event the test sets. Each test gets
a fresh core: its first attempt uses key 1, and its cooldowns are its own.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addons.frontends.base import KEEP_ALIVE
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.stores.base import ActiveCooldown
from tests.fakes.fake_gemini import error_json, rate_limit_body, raw_stream
from tests.fakes.fake_openrouter import DEFAULT_MODELS, completion, stream_events
from tests.fakes.keyed import (
    GEMINI_MODELS,
    GM_KEYS,
    OR_KEYS,
    KeyedOpenRouter,
    TracedGemini,
    hits,
)
from tests.fakes.server import Script
from tests.unit.pipeline.conftest import MakeCore, build_core, call, drain, run
from tests.unit.pipeline.inproc import (
    GEMINI_HOST,
    OPENROUTER_HOST,
    Transport,
    client_kwargs,
    core_for,
    offline,
)
from tests.unit.pipeline.mock_upstream import MockAnswer, MockUpstream

OR_MODEL, OR_OTHER = DEFAULT_MODELS[0], DEFAULT_MODELS[1]
GM_MODEL, GM_OTHER = "gemini-2.5-flash", "gemini-2.5-pro"
MODEL = {"openrouter": OR_MODEL, "gemini": GM_MODEL}
KEY_1 = {"openrouter": "OPENROUTER_API_KEY_1", "gemini": "GEMINI_API_KEY_1"}
KEY_2 = {"openrouter": "OPENROUTER_API_KEY_2", "gemini": "GEMINI_API_KEY_2"}
PROXY_TIMEOUT = 2.0
COMMIT_TIMEOUT = 30.0  # larger than PROXY_TIMEOUT: a stall is the upstream's timeout, not a commit
DEFAULT_COOLDOWN = 30
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}
PROCESSING = b": OPENROUTER PROCESSING\n\n"
SILENCE = b""  # in a scripted stream: nothing is written for the script's `delay` seconds

BACKENDS = pytest.mark.parametrize("backend", ["openrouter", "gemini"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
DIALECTS = pytest.mark.parametrize("dialect", ["chat", "messages", "responses"])


# -- fakes: streams that fall silent ------------------------------------------------------------------


class Silences:
    """A fake whose scripted streams may hold SILENCE: the headers go out, then nothing for `delay` s
    (the stock fakes pause only between events). In-process a silence as long as PROXY_TIMEOUT is the
    upstream client's stall; through a socket it is slept."""

    def send_stream(
        self,
        h: BaseHTTPRequestHandler,
        events: list[bytes],
        delay: float,
        status: int = 200,
        headers: dict[str, str] | None = None,
        drop_after: int | None = None,
    ) -> None:
        if SILENCE not in events:
            super().send_stream(h, events, delay, status, headers, drop_after)  # type: ignore[misc]
            return
        h.send_response(status)
        for name, value in {"content-type": "text/event-stream", "transfer-encoding": "chunked"}.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.flush()
        for ev in events:
            if ev == SILENCE:
                self.pause(delay)  # type: ignore[attr-defined]
                continue
            h.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


class SilentOpenRouter(Silences, KeyedOpenRouter):
    pass


class SilentGemini(Silences, TracedGemini):
    pass


# -- scripts in each provider's wire format ------------------------------------------------------------


def openrouter_error_chunk(code: int | str, message: str) -> bytes:
    return b"data: " + json.dumps({"error": {"code": code, "message": message}}).encode() + b"\n\n"


def gemini_event(parts: list[dict[str, Any]] | None, finish: str | None = None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts} if parts else {}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 0, "totalTokenCount": 3}
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": GM_MODEL, "responseId": "r-c"}


def empty_stream(backend: str, form: str) -> Script:
    """A 200 event stream without content: no event at all, only `[DONE]`, or only keep-alive comments."""
    eol = b"\n\n" if backend == "openrouter" else b"\r\n\r\n"
    events = {"none": [], "done": [b"data: [DONE]" + eol], "comments": [b": keep-alive" + eol] * 3}[form]
    if backend == "openrouter" and form == "comments":
        events = [PROCESSING] * 3
    return Script(events=events)


def error_first(backend: str, status: int, message: str = "") -> Script:
    """A 200 whose first event is an error: Gemini's own error object, or OpenRouter's error chunk after
    its processing comments."""
    if backend == "gemini":
        body = rate_limit_body("37s") if status == 429 else error_json(500, "INTERNAL", "internal error")
        return raw_stream([body])
    chunk = openrouter_error_chunk(status, message or "Rate limit exceeded: free-models-per-min")
    return Script(events=[PROCESSING, PROCESSING, chunk])


def contentless(backend: str, stream: bool, reason: str = "stop") -> Script:
    """An answer without content: Gemini's MALFORMED_FUNCTION_CALL (or `reason`) with no parts, an empty
    OpenRouter completion."""
    if backend == "gemini":
        native = {"stop": "MALFORMED_FUNCTION_CALL", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
        event = gemini_event(None, native[reason])
        if native[reason] == "MALFORMED_FUNCTION_CALL":
            event["candidates"][0]["finishMessage"] = "Malformed function call: print(default_api.x("
        return raw_stream([event]) if stream else Script(json_body=event)
    if not stream:
        body = completion("", OR_MODEL)
        body["choices"][0]["finish_reason"] = reason
        return Script(json_body=body)
    events = stream_events("", OR_MODEL)
    events[1] = events[1].replace(b'"stop"', json.dumps(reason).encode())
    return Script(events=[PROCESSING, *events])


def context_error(backend: str) -> Script:
    """Each provider's own context-length failure (HTTP 400)."""
    if backend == "gemini":
        message = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        return Script(status=400, json_body=error_json(400, "INVALID_ARGUMENT", message))
    message = (
        "This endpoint's maximum context length is 8192 tokens. However, you requested about 12000 tokens "
        "(11000 of text input, 1000 in the output). Please reduce the length of either one."
    )
    return Script(status=400, json_body={"error": {"code": 400, "message": message}})


# -- cores and requests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ofake() -> Iterator[SilentOpenRouter]:
    with offline(SilentOpenRouter(OR_KEYS, DEFAULT_MODELS)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gfake() -> Iterator[SilentGemini]:
    with offline(SilentGemini(keys=GM_KEYS, models=GEMINI_MODELS)) as fake:
        yield fake  # type: ignore[misc]


def proxy_env(**extra: str) -> dict[str, str]:
    return {
        "OPENROUTER_API_KEY_1": OR_KEYS[0],
        "OPENROUTER_API_KEY_2": OR_KEYS[1],
        "GEMINI_API_KEY_1": GM_KEYS[0],
        "GEMINI_API_KEY_2": GM_KEYS[1],
        "PROXY_TIMEOUT": str(PROXY_TIMEOUT),
        "LLM_COMMIT_TIMEOUT": str(COMMIT_TIMEOUT),
        "LLM_COOLDOWN_SECONDS": str(DEFAULT_COOLDOWN),
        **extra,
    }


@pytest.fixture
def core(ofake: SilentOpenRouter, gfake: SilentGemini) -> Core:
    """A fresh core (key 1 first, no cooldowns), then fakes with no scripts and no requests."""
    made = core_for({OPENROUTER_HOST: ofake, GEMINI_HOST: gfake}, proxy_env())
    ofake.reset()
    gfake.reset()
    return made


def queue(ofake: KeyedOpenRouter, gfake: TracedGemini, backend: str, *scripts: Script, key: int = 0) -> None:
    """Scripts for the backend's next calls (key 0), or reserved for key 1 or 2."""
    if backend == "gemini":
        gfake.enqueue(*scripts, key=GM_KEYS[key - 1] if key else None)
    elif key:
        ofake.enqueue_for(OR_KEYS[key - 1], *scripts)
    else:
        ofake.enqueue(*scripts)


def body_for(dialect: str, model: str, text: str, stream: bool) -> dict[str, Any]:
    if dialect == "messages":
        return {
            "model": model,
            "max_tokens": 256,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        }
    if dialect == "responses":
        return {"model": model, "stream": stream, "input": text}
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def post(
    core: Core, model: str, text: str = "hi", stream: bool = True, dialect: str = "chat"
) -> httpx.Response:
    """A raw request in `dialect`: status, headers and the whole body (a stream read to its end)."""
    headers = {"anthropic-version": "2023-06-01"} if dialect == "messages" else {}
    with httpx.Client(base_url="http://proxy.test", transport=Transport(core), headers=headers) as h:
        return h.post(PATHS[dialect], json=body_for(dialect, model, text, stream))


def data_events(body: bytes) -> list[Any]:
    """The JSON of every SSE data event (any dialect); `[DONE]` as the string."""
    lines = body.decode().splitlines()
    return [json.loads(ln[6:]) if ln[6:] != "[DONE]" else "[DONE]" for ln in lines if ln.startswith("data: ")]


def text_of(dialect: str, r: httpx.Response) -> str:
    """The answer's text, streamed or not, in any dialect."""
    if not r.headers.get("content-type", "").startswith("text/event-stream"):
        data = r.json()
        if dialect == "messages":
            return "".join(b.get("text", "") for b in data["content"])
        if dialect == "responses":
            return "".join(c["text"] for o in data["output"] for c in o.get("content") or [] if "text" in c)
        return data["choices"][0]["message"]["content"] or ""
    out = ""
    for ev in data_events(r.content):
        if ev == "[DONE]":
            continue
        if dialect == "chat":
            out += "".join((c.get("delta") or {}).get("content") or "" for c in ev.get("choices") or [])
        elif dialect == "messages" and ev.get("type") == "content_block_delta":
            out += ev["delta"].get("text", "")
        elif dialect == "responses" and ev.get("type") == "response.output_text.delta":
            out += ev["delta"]
    return out


def chat_hits(ofake: KeyedOpenRouter, gfake: TracedGemini) -> list[tuple[str, str, str]]:
    """(backend, model, key name) of every chat attempt, in order."""
    return [h.where for h in hits(ofake, gfake)]


def keys(ofake: KeyedOpenRouter, gfake: TracedGemini) -> list[str]:
    """The key name of every chat attempt, in order."""
    return [h.key for h in hits(ofake, gfake)]


def cooldowns(core: Core) -> list[ActiveCooldown]:
    return asyncio.run(core.stores.cooldowns.active())


def assert_plain_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """A failure before the commit is an HTTP error with a JSON body, never a 200 event stream."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    return r.json()


# -- 1. an empty 200 stream ----------------------------------------------------------------------------


@BACKENDS
@pytest.mark.parametrize("form", ["none", "done", "comments"])
def test_an_empty_stream_is_a_failed_attempt_and_the_next_key_answers(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, form: str
) -> None:
    queue(ofake, gfake, backend, empty_stream(backend, form), empty_stream(backend, form), key=1)
    r = post(core, f"{backend}:{MODEL[backend]}", "after the empty one")
    assert r.status_code == 200
    assert text_of("chat", r) == "echo: after the empty one"
    assert all("error" not in ev for ev in data_events(r.content) if ev != "[DONE]")
    used = keys(ofake, gfake)
    # Key 1 answered empty (once, or twice when the empty stream counts as a contentless finish).
    assert used[-1] == KEY_2[backend] and set(used[:-1]) == {KEY_1[backend]} and len(used) <= 3, used
    assert cooldowns(core) == []  # an empty answer says nothing about the key's quota


@BACKENDS
@pytest.mark.parametrize("form", ["none", "done", "comments"])
def test_every_key_empty_is_a_plain_502_empty_answer(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, form: str
) -> None:
    queue(ofake, gfake, backend, *[empty_stream(backend, form)] * 4)
    r = post(core, f"{backend}:{MODEL[backend]}")
    err = assert_plain_error(r, 502)["error"]
    assert err["code"] == "empty_answer", err
    assert set(keys(ofake, gfake)) == {KEY_1[backend], KEY_2[backend]}


@BACKENDS
@pytest.mark.parametrize("dialect", ["messages", "responses"])
def test_every_key_empty_is_the_same_failure_in_messages_and_responses(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str
) -> None:
    queue(ofake, gfake, backend, *[empty_stream(backend, "done")] * 4)
    body = assert_plain_error(post(core, f"{backend}:{MODEL[backend]}", dialect=dialect), 502)
    if dialect == "messages":
        assert body["type"] == "error" and body["error"]["type"] == "api_error", body
        assert "empty answer" in body["error"]["message"]
    else:
        assert body["error"]["code"] == "empty_answer", body


# -- 2. a 200 stream that opens with an error ---------------------------------------------------------


@BACKENDS
@pytest.mark.parametrize("status", [429, 500])
def test_an_error_first_stream_rests_the_key_as_the_error_says_and_the_next_key_answers(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, status: int
) -> None:
    queue(
        ofake, gfake, backend, error_first(backend, status, "" if status == 429 else "upstream broke"), key=1
    )
    r = post(core, f"{backend}:{MODEL[backend]}", "second key")
    assert r.status_code == 200 and text_of("chat", r) == "echo: second key"
    assert keys(ofake, gfake) == [KEY_1[backend], KEY_2[backend]]
    rests = cooldowns(core)
    if status == 500:
        assert rests == []  # a server error rests nothing
        return
    assert [(c.backend, c.model, c.key) for c in rests] == [(backend, MODEL[backend], KEY_1[backend])]
    expected = 37 if backend == "gemini" else DEFAULT_COOLDOWN  # RetryInfo, else LLM_COOLDOWN_SECONDS
    assert expected - 5 <= rests[0].left <= expected, rests
    assert "429" in rests[0].reason


def test_a_gemini_error_event_rests_the_key_for_its_retry_info(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini
) -> None:
    """Google's RetryInfo.retryDelay says how long, even when the message does not repeat it."""
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}]
    error = error_json(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", details)
    queue(ofake, gfake, "gemini", raw_stream([error]), key=1)
    assert post(core, f"gemini:{GM_MODEL}").status_code == 200
    rests = cooldowns(core)
    assert [c.key for c in rests] == [KEY_1["gemini"]]
    assert 36 <= rests[0].left <= 41, rests


@BACKENDS
@DIALECTS
def test_every_key_error_first_429_is_a_429_with_retry_after(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str
) -> None:
    queue(ofake, gfake, backend, error_first(backend, 429), error_first(backend, 429))
    r = post(core, f"{backend}:{MODEL[backend]}", dialect=dialect)
    body = assert_plain_error(r, 429)
    expected = 37 if backend == "gemini" else DEFAULT_COOLDOWN
    assert expected - 5 <= int(r.headers["retry-after"]) <= expected, r.headers
    if dialect == "messages":
        assert body["error"]["type"] == "rate_limit_error", body
    else:
        assert body["error"]["code"] == "all_keys_cooling_down", body
    assert keys(ofake, gfake) == [KEY_1[backend], KEY_2[backend]]
    assert {c.key for c in cooldowns(core)} == {KEY_1[backend], KEY_2[backend]}


# -- 3. a stall before content -------------------------------------------------------------------------


@BACKENDS
def test_a_stall_before_content_fails_over_and_nothing_of_it_reaches_the_client(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str
) -> None:
    first = [PROCESSING] if backend == "openrouter" else []
    stalled = Script(events=[*first, SILENCE, b"data: [DONE]\n\n"], delay=PROXY_TIMEOUT + 1)
    queue(ofake, gfake, backend, stalled, key=1)
    r = post(core, f"{backend}:{MODEL[backend]}", "after the stall")
    assert r.status_code == 200
    events = data_events(r.content)
    assert all("error" not in ev for ev in events if ev != "[DONE]")
    assert text_of("chat", r) == "echo: after the stall"
    assert keys(ofake, gfake) == [KEY_1[backend], KEY_2[backend]]


# -- 4. a contentless finish ---------------------------------------------------------------------------


@BACKENDS
@STREAM
def test_a_contentless_finish_is_tried_once_more_on_the_same_key(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool
) -> None:
    queue(ofake, gfake, backend, contentless(backend, stream), key=1)
    r = post(core, f"{backend}:{MODEL[backend]}", "second try", stream)
    assert r.status_code == 200 and text_of("chat", r) == "echo: second try"
    assert keys(ofake, gfake) == [KEY_1[backend]] * 2


@BACKENDS
@STREAM
def test_a_contentless_finish_twice_moves_on_to_the_next_key(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool
) -> None:
    queue(ofake, gfake, backend, contentless(backend, stream), contentless(backend, stream), key=1)
    r = post(core, f"{backend}:{MODEL[backend]}", "next key", stream)
    assert r.status_code == 200 and text_of("chat", r) == "echo: next key"
    assert keys(ofake, gfake) == [KEY_1[backend]] * 2 + [KEY_2[backend]]
    assert cooldowns(core) == []


@BACKENDS
@STREAM
def test_every_attempt_contentless_is_a_502_quoting_the_reason(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool
) -> None:
    queue(ofake, gfake, backend, *[contentless(backend, stream)] * 4)
    err = assert_plain_error(post(core, f"{backend}:{MODEL[backend]}", stream=stream), 502)["error"]
    assert err["code"] == "empty_answer", err
    reason = "MALFORMED_FUNCTION_CALL" if backend == "gemini" else "stop"
    assert reason in err["message"], err
    assert keys(ofake, gfake) == [KEY_1[backend]] * 2 + [KEY_2[backend]] * 2


@BACKENDS
@STREAM
@pytest.mark.parametrize("reason", ["content_filter", "length"])
def test_a_filtered_or_cut_answer_without_content_is_an_answer(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool, reason: str
) -> None:
    queue(ofake, gfake, backend, contentless(backend, stream, reason))
    r = post(core, f"{backend}:{MODEL[backend]}", stream=stream)
    assert r.status_code == 200
    if stream:
        events = [ev for ev in data_events(r.content) if ev != "[DONE]"]
        finishes = [
            c["finish_reason"] for ev in events for c in ev.get("choices") or [] if c["finish_reason"]
        ]
    else:
        finishes = [r.json()["choices"][0]["finish_reason"]]
    assert finishes == [reason]
    assert len(chat_hits(ofake, gfake)) == 1  # not retried: the client must see it


# -- 5. the commit timeout, and 6. healthy streams: answers that wait for the test ---------------------

SSE_HEADERS = {"content-type": "text/event-stream"}
HEADERS = {"chat": {}, "messages": {"anthropic-version": "2023-06-01"}, "responses": {}}
WORDS = ["Alpha ", "beta ", "gamma"]


@dataclass
class GatedAnswer(MockAnswer):
    """A 200 event stream in two halves: `body` at once, `later` once `gate` is set (or after `wait` s).
    A gate nobody sets opens after `bound` s and says so (`forced`): a proxy that buffered got there."""

    later: list[bytes] = field(default_factory=list)
    wait: float | None = None
    bound: float = 10.0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    opened: bool = False
    forced: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for c in self.body if isinstance(self.body, list) else [self.body]:
            yield c
        if self.wait is not None:
            await asyncio.sleep(self.wait)
        else:
            try:
                await asyncio.wait_for(self.gate.wait(), self.bound)
            except TimeoutError:
                self.forced = True
        self.opened = True
        for c in self.later:
            yield c


def upstream_events(backend: str, words: list[str] = WORDS) -> list[bytes]:
    """A healthy answer (by default `Alpha beta gamma`) in the backend's wire format, one event per word."""
    if backend == "openrouter":
        return [PROCESSING, *stream_events(words, OR_MODEL)]
    last = len(words) - 1
    return (
        raw_stream(
            [gemini_event([{"text": w}], "STOP" if i == last else None) for i, w in enumerate(words)]
        ).events
        or []
    )


def gated(backend: str, held_from: int, wait: float | None = None) -> GatedAnswer:
    events = upstream_events(backend)
    return GatedAnswer(200, events[:held_from], SSE_HEADERS, later=events[held_from:], wait=wait)


def model_of(backend: str) -> str:
    return "openrouter:openai/gpt-4o-mini" if backend == "openrouter" else "gemini:gemini-2.5-flash"


async def _next(it: AsyncIterator[bytes]) -> bytes:
    return await asyncio.wait_for(anext(it), 15)


@BACKENDS
@DIALECTS
def test_a_slow_thinker_is_committed_at_the_commit_timeout_with_keep_alives(
    make_core: MakeCore, backend: str, dialect: str
) -> None:
    """Nothing with content before the gate opens: the client has its 200 and keep-alives meanwhile."""
    answer = gated(backend, held_from=1 if backend == "openrouter" else 0)
    core, _ = make_core(lambda call: answer, env={"LLM_COMMIT_TIMEOUT": "0.05"})
    body = json.dumps(body_for(dialect, model_of(backend), "think", True)).encode()

    async def go() -> tuple[bytes, bytes]:
        reply = await dispatch.handle(core, "POST", PATHS[dialect], HEADERS[dialect], body)
        assert reply is not None and reply.stream is not None
        assert reply.status == 200 and not answer.opened  # committed while upstream has no content
        it, before = aiter(reply.stream), b""
        while (piece := await _next(it)) is not KEEP_ALIVE:
            before += piece
        before += piece
        answer.gate.set()
        return before, b"".join([p async for p in it])

    before, after = run(go())
    assert b"Alpha" not in before and not answer.forced
    assert before.endswith(KEEP_ALIVE) and b"keep-alive" not in after.split(b"Alpha")[1]
    assert b"Alpha" in after and b"gamma" in after


@BACKENDS
@DIALECTS
def test_the_first_content_reaches_the_client_while_upstream_holds_the_rest(
    make_core: MakeCore, backend: str, dialect: str
) -> None:
    first_content = 2 if backend == "openrouter" else 1
    answer = gated(backend, held_from=first_content)
    core, _ = make_core(lambda call: answer)
    body = json.dumps(body_for(dialect, model_of(backend), "quick", True)).encode()

    async def go() -> bytes:
        reply = await dispatch.handle(core, "POST", PATHS[dialect], HEADERS[dialect], body)
        assert reply is not None and reply.stream is not None and reply.status == 200
        it, seen = aiter(reply.stream), b""
        while b"Alpha" not in seen:
            seen += await _next(it)
        assert not answer.opened  # the first word is out while upstream has sent only it
        answer.gate.set()
        return seen + b"".join([p async for p in it])

    whole = run(go())
    assert not answer.forced
    assert KEEP_ALIVE not in whole  # a healthy stream has no keep-alives
    assert all(w.strip().encode() in whole for w in WORDS)


def anthropic_sdk(core: Core) -> anthropic.Anthropic:
    """The Anthropic SDK talking to `core` in-process, on the HTTP library it is built on (httpx2 in newer
    releases, which refuses an httpx transport)."""
    base = importlib.import_module("anthropic._base_client")
    http = next(getattr(base, name) for name in ("httpx2", "httpx") if hasattr(base, name))

    def handler(request: Any) -> Any:
        headers = {k.lower(): v for k, v in request.headers.items()}

        async def go() -> tuple[int, dict[str, str], bytes]:
            reply = await dispatch.handle(core, request.method, request.url.path, headers, request.read())
            assert reply is not None
            body = reply.body if reply.stream is None else b"".join([c async for c in reply.stream])
            return reply.status, reply.headers, body

        status, reply_headers, body = asyncio.run(go())
        return http.Response(status, headers=reply_headers, content=body)

    client = http.Client(transport=http.MockTransport(handler))
    return anthropic.Anthropic(api_key="k", base_url="http://proxy.test", http_client=client, max_retries=0)


@DIALECTS
@BACKENDS
def test_the_sdks_parse_a_stream_with_keep_alives(make_core: MakeCore, backend: str, dialect: str) -> None:
    core, _ = make_core(lambda call: gated(backend, 1 if backend == "openrouter" else 0, wait=0.3),
                        env={"LLM_COMMIT_TIMEOUT": "0.05"})  # fmt: skip
    model, prompt = model_of(backend), [{"role": "user", "content": "think"}]
    if dialect == "messages":
        with anthropic_sdk(core) as c, c.messages.stream(model=model, max_tokens=64, messages=prompt) as s:  # type: ignore[arg-type]
            text = "".join(s.text_stream)
            assert s.get_final_message().stop_reason == "end_turn"
    else:
        with openai.OpenAI(api_key="k", max_retries=0, **client_kwargs(core)) as oc:
            if dialect == "responses":
                events = list(oc.responses.create(model=model, input="think", stream=True))
                text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
                assert events[-1].type == "response.completed"
            else:
                chunks = oc.chat.completions.create(model=model, messages=prompt, stream=True)  # type: ignore[arg-type]
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(WORDS)


# -- any split of an upstream stream: the same commit decision, the same answer ----------------------


SECOND = "from key two"


def upstream_bytes(backend: str, case: str) -> bytes:
    if case == "healthy":
        return b"".join(upstream_events(backend))
    if case == "error-first":
        script = error_first(backend, 500, "upstream broke")
    else:
        script = empty_stream(backend, "done")
    return b"".join(script.events or [])


def pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(raw), *(c for c in cuts if 0 < c < len(raw))})
    return [raw[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    backend=st.sampled_from(["openrouter", "gemini"]),
    case=st.sampled_from(["healthy", "error-first", "empty"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_split_of_the_upstream_stream_gives_the_same_answer(
    backend: str, case: str, cuts: list[int]
) -> None:
    raw, second = upstream_bytes(backend, case), upstream_events(backend, [SECOND])
    first_key: list[str] = []

    def handler(call: Any) -> MockAnswer:
        key = call.headers.get("authorization") or call.headers.get("x-goog-api-key")
        first_key[:] = first_key or [key]
        split = pieces(raw, cuts) if key == first_key[0] else second
        return MockAnswer(200, split, SSE_HEADERS)

    core = build_core(handler)
    reply = call(core, body_for("chat", model_of(backend), "x", True))
    out = drain(reply)
    assert reply.status == 200
    events = [ev for ev in data_events(out) if ev != "[DONE]"]
    assert all("error" not in ev for ev in events), out
    text = "".join((c.get("delta") or {}).get("content") or "" for ev in events for c in ev["choices"])
    assert text == ("".join(WORDS) if case == "healthy" else SECOND)
    upstream = core.upstream
    assert isinstance(upstream, MockUpstream)
    assert (len(upstream.calls) == 1) == (case == "healthy")


# -- 7. context limits ---------------------------------------------------------------------------------


def route_core(ofake: SilentOpenRouter, gfake: SilentGemini, elements: list[str]) -> Core:
    routes = {"routes": {"ctx": {"policy": "km", "elements": elements}}}
    made = core_for({OPENROUTER_HOST: ofake, GEMINI_HOST: gfake}, proxy_env(), routes)
    ofake.reset()
    gfake.reset()
    return made


@pytest.mark.parametrize("first", ["gemini", "openrouter"])
@STREAM
def test_a_context_length_failure_moves_to_the_next_route_element_not_the_next_key(
    ofake: SilentOpenRouter, gfake: SilentGemini, first: str, stream: bool
) -> None:
    """Policy km would try every key of the first element: a too-long input skips them all."""
    second = "openrouter" if first == "gemini" else "gemini"
    model_1 = GM_OTHER if first == "gemini" else OR_OTHER
    core = route_core(ofake, gfake, [f"{first}:{model_1}", f"{second}:{MODEL[second]}"])
    queue(ofake, gfake, first, context_error(first))
    r = post(core, "ctx", "a long conversation", stream)
    assert r.status_code == 200 and text_of("chat", r) == "echo: a long conversation"
    assert [(b, m) for b, m, _ in chat_hits(ofake, gfake)] == [(first, model_1), (second, MODEL[second])]
    assert cooldowns(core) == []  # the key is fine: the input was too long for the model


CONTEXT_NUMBERS = {"gemini": (1200000, 1048576), "openrouter": (12000, 8192)}


@BACKENDS
@DIALECTS
@STREAM
def test_a_context_length_failure_without_a_route_is_the_dialects_own_error_after_one_call(
    core: Core, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str, stream: bool
) -> None:
    queue(ofake, gfake, backend, context_error(backend), context_error(backend))
    body = assert_plain_error(post(core, f"{backend}:{MODEL[backend]}", stream=stream, dialect=dialect), 400)
    n, m = CONTEXT_NUMBERS[backend]
    if dialect == "messages":
        assert body["error"] == {
            "type": "invalid_request_error",
            "message": f"prompt is too long: {n} tokens > {m} maximum",
        }
    else:
        assert body["error"]["code"] == "context_length_exceeded", body
        openai_words = (
            f"This model's maximum context length is {m} tokens. However, your messages resulted in"
        )
        assert body["error"]["message"].startswith(f"{openai_words} {n} tokens."), body
    assert len(chat_hits(ofake, gfake)) == 1
    assert cooldowns(core) == []
