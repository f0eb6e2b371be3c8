"""The stream commit point end to end (issue 15, acceptance 1): real mitmdump + addon, FakeOpenRouter and
FakeGemini on sockets, the official openai and anthropic SDKs and raw httpx.

What only a real process shows: the upstream client's own timeout on a stream that falls silent, the
status line held back until the commit, keep-alive comments on the wire while a slow model thinks, and
the first chunk relayed while upstream holds the rest, in the chat, Messages and Responses dialects. The
cases in full (every form of an empty stream, every dialect's error) run in-process in
tests/unit/pipeline/test_commit_point.py, whose fakes and scripts this module shares.

One proxy serves most tests; keys rotate across its requests, so a test that needs its failure on the
key the proxy will use first asks which one that is (`first_key`). Cooldowns rest (backend, model,
key): tests that rest keys use a model no other test uses (`fresh`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.fake_openrouter import DEFAULT_MODELS
from tests.fakes.keyed import GEMINI_MODELS, GM_KEYS, OR_KEYS, cooling_lines, fresh, hits
from tests.fakes.server import Script, read_held
from tests.harness import ProxyProcess
from tests.unit.pipeline.test_commit_point import (
    KEY_1,
    KEY_2,
    MODEL,
    PATHS,
    PROCESSING,
    SILENCE,
    WORDS,
    SilentGemini,
    SilentOpenRouter,
    body_for,
    contentless,
    context_error,
    data_events,
    empty_stream,
    error_first,
    queue,
    text_of,
    upstream_events,
)

PROXY_TIMEOUT = 1.5
STALL = 4.0  # a silence longer than PROXY_TIMEOUT
COMMIT_TIMEOUT = 0.3  # the slow proxy's; the main proxy's is larger than PROXY_TIMEOUT
THINKING = 1.5  # seconds before a slow thinker's first content
DEFAULT_COOLDOWN = 30
ROUTE = f"""
routes:
  ctx:
    policy: km
    elements: ["gemini:gemini-2.5-pro", "openrouter:{DEFAULT_MODELS[1]}"]
"""
PROMPT: Any = [{"role": "user", "content": "x"}]
BACKENDS = pytest.mark.parametrize("backend", ["openrouter", "gemini"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
DIALECTS = pytest.mark.parametrize("dialect", ["chat", "messages", "responses"])


@pytest.fixture(scope="module")
def ofake() -> Iterator[SilentOpenRouter]:
    with SilentOpenRouter(OR_KEYS, DEFAULT_MODELS) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gfake() -> Iterator[SilentGemini]:
    with SilentGemini(keys=GM_KEYS, models=GEMINI_MODELS) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(ofake: SilentOpenRouter, gfake: SilentGemini) -> None:
    ofake.reset()
    gfake.reset()


def start(ofake: SilentOpenRouter, gfake: SilentGemini, **env: str) -> ProxyProcess:
    return ProxyProcess(
        env={
            "OPENROUTER_API_KEY_1": OR_KEYS[0],
            "OPENROUTER_API_KEY_2": OR_KEYS[1],
            "OPENROUTER_API_BASE_URL": ofake.base_url,
            "GEMINI_API_KEY_1": GM_KEYS[0],
            "GEMINI_API_KEY_2": GM_KEYS[1],
            "GEMINI_API_BASE_URL": gfake.base_url,
            "LLM_COOLDOWN_SECONDS": str(DEFAULT_COOLDOWN),
            **env,
        },
        config_yaml=ROUTE,
    )


@pytest.fixture(scope="module")
def proxy(ofake: SilentOpenRouter, gfake: SilentGemini) -> Iterator[ProxyProcess]:
    with start(ofake, gfake, PROXY_TIMEOUT=str(PROXY_TIMEOUT), LLM_COMMIT_TIMEOUT="30") as p:
        yield p


@pytest.fixture(scope="module")
def slow_proxy(ofake: SilentOpenRouter, gfake: SilentGemini) -> Iterator[ProxyProcess]:
    """A proxy that commits after COMMIT_TIMEOUT without content (and waits long for upstream data)."""
    with start(ofake, gfake, PROXY_TIMEOUT="10", LLM_COMMIT_TIMEOUT=str(COMMIT_TIMEOUT)) as p:
        yield p


def root(p: ProxyProcess) -> str:
    return f"http://127.0.0.1:{p.reverse_port}"


def post(
    p: ProxyProcess, model: str, stream: bool = True, dialect: str = "chat", text: str = "hi"
) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01"} if dialect == "messages" else {}
    with httpx.Client(base_url=root(p), headers=headers, timeout=20, trust_env=False) as h:
        return h.post(PATHS[dialect], json=body_for(dialect, model, text, stream))


def sdk(p: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=p.base_url, api_key="client-side-key", max_retries=0, timeout=20)


def claude(p: ProxyProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=root(p), api_key="client-side-key", max_retries=0, timeout=20)


def chat(p: ProxyProcess, model: str, text: str, stream: bool) -> str:
    """The answer's text through the openai SDK, streamed or not."""
    messages: Any = [{"role": "user", "content": text}]
    with sdk(p) as c:
        if not stream:
            return c.chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
        chunks = c.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def keys(ofake: SilentOpenRouter, gfake: SilentGemini) -> list[str]:
    return [h.key for h in hits(ofake, gfake)]


def other(backend: str, key: str) -> str:
    return KEY_2[backend] if key == KEY_1[backend] else KEY_1[backend]


def first_key(p: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str) -> str:
    """The key the proxy's next request on `backend` starts with: after the one a warm-up request used."""
    assert chat(p, f"{backend}:{MODEL[backend]}", "warm-up", False) == "echo: warm-up"
    used = keys(ofake, gfake)[-1]
    ofake.reset()
    gfake.reset()
    return other(backend, used)


def reserve(ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, key: str, *scripts: Script) -> None:
    queue(ofake, gfake, backend, *scripts, key=1 if key == KEY_1[backend] else 2)


def cooling(p: ProxyProcess, backend: str, model: str) -> dict[str, tuple[int, str]]:
    with sdk(p) as c:
        status = c.chat.completions.create(
            model=MODEL["openrouter"], messages=[{"role": "user", "content": "!/status"}]
        )
    return cooling_lines(status.choices[0].message.content or "", backend, model)


# -- 1. an empty 200 stream ----------------------------------------------------------------------------


@BACKENDS
def test_an_empty_stream_is_answered_by_the_next_key(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str
) -> None:
    key = first_key(proxy, ofake, gfake, backend)
    form = "done" if backend == "openrouter" else "none"
    reserve(ofake, gfake, backend, key, empty_stream(backend, form), empty_stream(backend, form))
    assert chat(proxy, f"{backend}:{MODEL[backend]}", "after empty", True) == "echo: after empty"
    used = keys(ofake, gfake)
    assert used[-1] == other(backend, key) and set(used[:-1]) == {key} and len(used) <= 3, used


@BACKENDS
@DIALECTS
def test_every_key_empty_is_a_plain_502_in_each_dialect(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str
) -> None:
    queue(ofake, gfake, backend, *[empty_stream(backend, "done")] * 4)
    r = post(proxy, f"{backend}:{MODEL[backend]}", dialect=dialect)
    assert r.status_code == 502 and r.headers["content-type"].startswith("application/json"), r.text
    err = r.json()["error"]
    if dialect == "messages":
        assert err["type"] == "api_error" and "empty answer" in err["message"], err
    else:
        assert err["code"] == "empty_answer", err


# -- 2. a 200 stream that opens with an error ---------------------------------------------------------


@BACKENDS
def test_an_error_first_stream_rests_the_key_and_the_next_key_answers(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str
) -> None:
    model = fresh(backend)
    key = first_key(proxy, ofake, gfake, backend)
    reserve(ofake, gfake, backend, key, error_first(backend, 429))
    assert chat(proxy, f"{backend}:{model}", "second key", True) == "echo: second key"
    assert keys(ofake, gfake) == [key, other(backend, key)]
    rests = cooling(proxy, backend, model)
    assert set(rests) == {key}, rests
    expected = 37 if backend == "gemini" else DEFAULT_COOLDOWN  # RetryInfo, else LLM_COOLDOWN_SECONDS
    assert expected - 10 <= rests[key][0] <= expected and "429" in rests[key][1], rests


@BACKENDS
def test_every_key_error_first_is_a_429_with_retry_after(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str
) -> None:
    queue(ofake, gfake, backend, error_first(backend, 429), error_first(backend, 429))
    with sdk(proxy) as c, pytest.raises(openai.RateLimitError) as e:
        list(c.chat.completions.create(model=f"{backend}:{fresh(backend)}", messages=PROMPT, stream=True))
    assert e.value.code == "all_keys_cooling_down"
    assert e.value.response.headers["content-type"].startswith("application/json")
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 37
    assert len(hits(ofake, gfake)) == 2


# -- 3. a stall before content -------------------------------------------------------------------------


@BACKENDS
def test_a_stall_before_content_is_given_up_and_the_client_hears_only_the_next_key(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str
) -> None:
    key = first_key(proxy, ofake, gfake, backend)
    first = [PROCESSING] if backend == "openrouter" else []
    reserve(ofake, gfake, backend, key, Script(events=[*first, SILENCE, b"data: [DONE]\n\n"], delay=STALL))
    body = body_for("chat", f"{backend}:{MODEL[backend]}", "after the stall", True)
    started = time.monotonic()
    with (
        httpx.Client(base_url=root(proxy), timeout=20, trust_env=False) as h,
        h.stream("POST", PATHS["chat"], json=body) as r,
    ):
        headers_at = time.monotonic() - started
        raw = r.read()
    assert r.status_code == 200
    # The status line waited for the commit, which came only after the stall was given up.
    assert headers_at >= PROXY_TIMEOUT - 0.2, headers_at
    assert all("error" not in ev for ev in data_events(raw) if ev != "[DONE]")
    assert text_of("chat", httpx.Response(200, headers=r.headers, content=raw)) == "echo: after the stall"
    assert keys(ofake, gfake) == [key, other(backend, key)]


# -- 4. a contentless finish ---------------------------------------------------------------------------


@BACKENDS
@STREAM
def test_a_contentless_finish_is_retried_on_the_same_key_then_the_next(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool
) -> None:
    key = first_key(proxy, ofake, gfake, backend)
    reserve(ofake, gfake, backend, key, contentless(backend, stream), contentless(backend, stream))
    assert chat(proxy, f"{backend}:{MODEL[backend]}", "finally", stream) == "echo: finally"
    assert keys(ofake, gfake) == [key, key, other(backend, key)]


@STREAM
def test_every_attempt_malformed_is_a_502_quoting_the_reason(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, stream: bool
) -> None:
    queue(ofake, gfake, "gemini", *[contentless("gemini", stream)] * 4)
    r = post(proxy, f"gemini:{MODEL['gemini']}", stream)
    assert r.status_code == 502 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json()["error"]["code"] == "empty_answer"
    assert "MALFORMED_FUNCTION_CALL" in r.json()["error"]["message"], r.text
    assert len(hits(ofake, gfake)) == 4


# -- 5. commit_timeout: keep-alives while a slow model thinks -------------------------------------------


def slow_thinker(backend: str) -> Script:
    first = [PROCESSING] if backend == "openrouter" else []
    return Script(events=[*first, SILENCE, *upstream_events(backend)[len(first) :]], delay=THINKING)


@BACKENDS
@DIALECTS
def test_a_slow_thinker_gets_its_200_and_keep_alives_before_the_content(
    slow_proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str
) -> None:
    queue(ofake, gfake, backend, slow_thinker(backend))
    headers = {"anthropic-version": "2023-06-01"} if dialect == "messages" else {}
    body = body_for(dialect, f"{backend}:{MODEL[backend]}", "think", True)
    with (
        httpx.Client(base_url=root(slow_proxy), headers=headers, timeout=20, trust_env=False) as h,
        h.stream("POST", PATHS[dialect], json=body) as r,
    ):
        assert r.status_code == 200
        pieces = list(r.iter_raw())
    raw = b"".join(pieces)
    before = raw.split(WORDS[0].encode())[0]
    assert b": keep-alive" in before, raw[:300]  # comments every client skips, before the content
    assert text_of(dialect, httpx.Response(200, headers=r.headers, content=raw)) == "".join(WORDS)


@DIALECTS
def test_the_sdks_parse_a_slow_thinkers_stream(
    slow_proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, dialect: str
) -> None:
    backend = "gemini" if dialect == "messages" else "openrouter"
    queue(ofake, gfake, backend, slow_thinker(backend))
    assert "".join(text_pieces(slow_proxy, dialect, f"{backend}:{MODEL[backend]}")) == "".join(WORDS)


# -- 6. healthy streams: the first chunk is not held back -----------------------------------------------


@BACKENDS
@DIALECTS
def test_the_first_chunk_reaches_the_client_while_upstream_holds_the_rest(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, dialect: str
) -> None:
    words = [f"w{i:02d} " for i in range(12)]
    # Content in the first chunk (no processing comment): the fake holds back everything after it.
    events = [ev for ev in upstream_events(backend, words) if ev != PROCESSING]
    fake = ofake if backend == "openrouter" else gfake
    queue(ofake, gfake, backend, Script(events=events, delay=0.01))
    model = f"{backend}:{MODEL[backend]}"
    got, first_at, sent_by_then = read_held(fake, lambda: text_pieces(proxy, dialect, model))
    assert got == "".join(words)
    assert sent_by_then == 1 and first_at is not None  # the first text arrived while upstream had sent one


def text_pieces(p: ProxyProcess, dialect: str, model: str) -> Iterator[str]:
    """The text deltas of a stream in `dialect`, as the SDK hands them over."""
    if dialect == "messages":
        with claude(p) as ac, ac.messages.stream(model=model, max_tokens=64, messages=PROMPT) as s:
            yield from s.text_stream
        return
    with sdk(p) as c:
        if dialect == "responses":
            for e in c.responses.create(model=model, input="x", stream=True):
                if e.type == "response.output_text.delta":
                    yield e.delta
            return
        for ch in c.chat.completions.create(model=model, messages=PROMPT, stream=True):
            if ch.choices:
                yield ch.choices[0].delta.content or ""


# -- 7. context limits ---------------------------------------------------------------------------------


@STREAM
def test_a_context_length_failure_moves_to_the_next_route_element(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, stream: bool
) -> None:
    queue(ofake, gfake, "gemini", context_error("gemini"))
    assert chat(proxy, "ctx", "long input", stream) == "echo: long input"
    assert [(h.backend, h.model) for h in hits(ofake, gfake)] == [
        ("gemini", "gemini-2.5-pro"),
        ("openrouter", DEFAULT_MODELS[1]),
    ]  # policy km, but no other key of the first model was tried


@BACKENDS
@STREAM
def test_a_context_length_failure_without_a_route_is_final(
    proxy: ProxyProcess, ofake: SilentOpenRouter, gfake: SilentGemini, backend: str, stream: bool
) -> None:
    queue(ofake, gfake, backend, context_error(backend), context_error(backend))
    model = f"{backend}:{MODEL[backend]}"
    with sdk(proxy) as c, pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=model, messages=PROMPT, stream=stream)
    assert e.value.code == "context_length_exceeded"
    assert "This model's maximum context length is" in e.value.message
    with claude(proxy) as ac, pytest.raises(anthropic.BadRequestError) as ae:
        ac.messages.create(model=model, max_tokens=64, messages=PROMPT, stream=stream)
    assert "prompt is too long:" in ae.value.message
    assert len(hits(ofake, gfake)) == 2  # one call for each client
