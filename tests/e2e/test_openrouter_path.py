"""The foundation end to end: real mitmdump + addon, fake OpenRouter, official openai SDK and httpx."""

from __future__ import annotations

import asyncio
import json
import ssl
import time

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter, stream_events
from tests.fakes.server import Script, read_held
from tests.harness import ProxyProcess, leaks

MODEL = "openai/gpt-4o-mini"


def test_non_streaming_completion(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage and r.usage.total_tokens == 12
    sent = openrouter.last("/chat/completions")
    assert sent.headers["authorization"] in {f"Bearer {k}" for k in OPENROUTER_KEYS}
    assert sent.headers["http-referer"] == "https://example.test/app"
    assert sent.headers["x-title"] == "intercept-tests"
    assert sent.json()["model"] == MODEL


def test_streaming_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream me"}], stream=True
    )
    parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(parts) == "echo: stream me"
    assert len(parts) >= 5  # arrived as several chunks, not one blob


def test_async_client_stream_and_plain(aclient: openai.AsyncOpenAI) -> None:
    async def run() -> tuple[str, str]:
        async with aclient:
            plain = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "async plain"}]
            )
            stream = await aclient.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "async stream"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text, usage = "", None
            async for c in stream:
                if c.choices:
                    text += c.choices[0].delta.content or ""
                if c.usage:
                    usage = c.usage
            assert usage is not None and usage.prompt_tokens == 7
            return plain.choices[0].message.content or "", text

    plain, streamed = asyncio.run(run())
    assert plain == "echo: async plain"
    assert streamed == "echo: async stream"


def test_keys_rotate_round_robin(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    for i in range(4):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"n{i}"}])
    used = [
        r.headers["authorization"][7:] for r in openrouter.requests if r.path.endswith("/chat/completions")
    ]
    assert sorted(used) == sorted(OPENROUTER_KEYS * 2)


def test_unknown_fields_pass_through(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    ]
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        tools=tools,
        response_format={"type": "json_object"},
        extra_body={"provider": {"order": ["Fake"], "allow_fallbacks": False}, "transforms": ["middle-out"]},
    )
    body = openrouter.last("/chat/completions").json()
    assert body["tools"] == tools
    assert body["response_format"] == {"type": "json_object"}
    assert body["provider"] == {"order": ["Fake"], "allow_fallbacks": False}
    assert body["transforms"] == ["middle-out"]


def test_stream_is_not_buffered(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    """50 chunks: upstream holds back all but the first until the client has that one, so the first
    reached the client while upstream had sent only one (whatever the machine's load)."""
    pieces = [f"w{i} " for i in range(48)]
    text = "".join(pieces)
    openrouter.enqueue(Script(events=stream_events(pieces, MODEL), delay=0.01))
    got, first_at, sent_by_then = read_held(
        openrouter,
        lambda: (
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
            if c.choices
        ),
    )
    assert got == text
    assert len(openrouter.sent_at) == 50
    assert sent_by_then == 1  # not buffered: the first chunk arrived while upstream had sent only it
    # The stream lasts ~0.5 s: the first chunk must be out long before upstream finishes
    # (the precise time to first chunk is measured in bench/, not asserted here).
    assert first_at is not None and first_at < openrouter.sent_at[-1] - 0.2


def test_sse_comments_from_upstream_do_not_break_clients(
    client: openai.OpenAI, openrouter: FakeOpenRouter
) -> None:
    events = [b": OPENROUTER PROCESSING\n\n", b": OPENROUTER PROCESSING\n\n", *stream_events("ok", MODEL, 2)]
    openrouter.enqueue(Script(events=events))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "ok"


def test_event_split_across_network_chunks(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    whole = b"".join(stream_events("split everywhere", MODEL, 4))
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    openrouter.enqueue(Script(events=pieces, delay=0.001))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "split everywhere"


# -- models ----------------------------------------------------------------------------------------


def test_models_listing(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == openrouter.models  # default backend: bare ids; gemini has no key, so nothing prefixed
    assert client.models.retrieve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no/such-model")


def test_backend_prefix_selects_backend(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    r = client.chat.completions.create(
        model="openrouter:meta-llama/llama-3.3-70b-instruct:free", messages=[{"role": "user", "content": "p"}]
    )
    assert r.choices[0].message.content == "echo: p"
    assert openrouter.last("/chat/completions").json()["model"] == "meta-llama/llama-3.3-70b-instruct:free"


# -- explicit proxy mode: api.openai.com is never contacted -------------------------------------------


def test_explicit_proxy_mode_redirects_api_openai_com(
    proxy: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    with httpx.Client(
        proxy=proxy.proxy_url, verify=ssl.create_default_context(cafile=proxy.ca_cert), trust_env=False
    ) as h:
        client = openai.OpenAI(api_key="sk-real-openai-key-of-the-user", http_client=h, max_retries=0)
        assert str(client.base_url).startswith("https://api.openai.com")
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "via proxy"}])
        assert r.choices[0].message.content == "echo: via proxy"
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "via proxy stream"}], stream=True
        )
        assert (
            "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: via proxy stream"
        )
        assert [m.id for m in client.models.list()] == openrouter.models
    # The user's OpenAI key is replaced, never forwarded.
    assert all("sk-real-openai" not in r.headers.get("authorization", "") for r in openrouter.requests)


def test_explicit_proxy_chat_path_without_v1(explicit_http: httpx.Client) -> None:
    r = explicit_http.post(
        "https://api.openai.com/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "short path"}]},
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "echo: short path"


def test_other_paths_pass_through_untouched(http: httpx.Client, passthrough_target: FakeOpenRouter) -> None:
    r = http.post("/v1/files", json={"input": "x"}, headers={"authorization": "Bearer client-own"})
    assert r.status_code == 401  # the plain upstream's own answer
    rec = passthrough_target.last("/v1/files")
    assert rec.headers["authorization"] == "Bearer client-own"
    assert rec.json() == {"input": "x"}


# -- errors ----------------------------------------------------------------------------------------


def _error(r: httpx.Response) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"}
    assert "Traceback" not in r.text
    return err


def test_malformed_json(http: httpx.Client) -> None:
    r = http.post(
        "/v1/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert "not valid JSON" in _error(r)["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": "hi"}, "messages"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ([1, 2], None),
    ],
)
def test_invalid_requests(http: httpx.Client, body: object, param: str | None) -> None:
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = _error(r)
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"


def test_sdk_sees_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[])
    assert "messages" in str(e.value)


def test_wrong_method(http: httpx.Client) -> None:
    r = http.get("/v1/chat/completions")
    assert r.status_code == 405
    assert "POST" in _error(r)["message"]


def test_upstream_500_is_passed_on_in_openai_shape(client: openai.OpenAI, openrouter: FakeOpenRouter) -> None:
    boom = Script(status=500, json_body={"error": {"code": 500, "message": "provider exploded"}})
    openrouter.enqueue(boom, boom)  # one per key: the proxy tries the second key before giving up
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert "provider exploded" in str(e.value)
    assert e.value.code == "500"
    # ...and the proxy keeps serving
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y"}]).choices


def test_upstream_garbage_error(http: httpx.Client, openrouter: FakeOpenRouter) -> None:
    garbage = Script(status=503, raw_body=b"<html>Service Unavailable</html>")
    openrouter.enqueue(garbage, garbage)
    r = http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 503
    assert "OpenRouter returned HTTP 503" in _error(r)["message"]


# Providers echo the key they were sent ("Incorrect API key provided: sk-or-…"), in the message, in
# OpenRouter's metadata, or in a body that is not JSON at all.
_ECHO = f"Incorrect API key provided: {OPENROUTER_KEYS[0]} (or {OPENROUTER_KEYS[1]})."
_ECHO_JSON = {"error": {"message": _ECHO, "metadata": {"raw": f"key {OPENROUTER_KEYS[1]} refused"}}}


@pytest.mark.parametrize(
    ("status", "stream", "script"),
    [
        pytest.param(401, False, Script(status=401, json_body=_ECHO_JSON), id="final-401"),
        pytest.param(401, True, Script(status=401, json_body=_ECHO_JSON), id="final-401-stream"),
        pytest.param(500, False, Script(status=500, json_body=_ECHO_JSON), id="every-key-500"),
        pytest.param(502, True, Script(status=502, raw_body=_ECHO.encode()), id="every-key-502-not-json"),
    ],
)
def test_configured_key_echoed_in_provider_error_is_redacted(
    http: httpx.Client, openrouter: FakeOpenRouter, status: int, stream: bool, script: Script
) -> None:
    openrouter.enqueue(script, script)  # one per key: a 5xx is tried on the second key too
    body = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    assert not leaks(r.content, list(OPENROUTER_KEYS)), r.text
    error = _error(r)
    assert "Incorrect API key provided: [REDACTED_API_KEY] (or [REDACTED_API_KEY])." in error["message"]
    if script.json_body:
        assert error["metadata"]["raw"] == "key [REDACTED_API_KEY] refused"


def test_client_error_on_streaming_request_is_final(
    client: openai.OpenAI, openrouter: FakeOpenRouter
) -> None:
    bad = {"error": {"code": 400, "message": "x-ai/grok is not a valid model ID"}}
    openrouter.enqueue(Script(status=400, json_body=bad))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    assert "not a valid model ID" in str(e.value)
    assert len(openrouter.requests) == 1  # a client error is final: no other key is tried


def test_upstream_timeout_fails_over_then_504(http: httpx.Client, openrouter: FakeOpenRouter) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "slow"}]}
    openrouter.enqueue(Script(header_delay=4.0, json_body={}))
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "echo: slow"
    # Far slower than the timeout, so that the bound below holds on a loaded machine and still proves it.
    openrouter.enqueue(Script(header_delay=30.0, json_body={}), Script(header_delay=30.0, json_body={}))
    started = time.monotonic()
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 504
    assert "within 3 s" in _error(r)["message"]
    assert time.monotonic() - started < 20.0  # two attempts of 3 s, not the fake's 2 x 30 s


def test_upstream_drop_mid_stream_ends_with_sse_error(
    client: openai.OpenAI, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(Script(events=stream_events(["one ", "two ", "three ", "four"], MODEL), drop_after=2))
    got = ""
    with pytest.raises(openai.APIError) as e:
        for c in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            if c.choices:
                got += c.choices[0].delta.content or ""
    assert got == "one two "  # what arrived before the cut reached the client
    assert "broke off the stream" in str(e.value)


def test_upstream_stall_mid_stream_ends_with_sse_error(
    http: httpx.Client, openrouter: FakeOpenRouter
) -> None:
    events = stream_events("slow", MODEL, 1)
    openrouter.enqueue(Script(events=[events[0], *events[1:]], delay=4.0))
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ) as r:
        body = r.read().decode()
    last = [line for line in body.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["code"] == "upstream_timeout"


def test_unreachable_upstream_and_no_keys() -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/api/v1"
    with ProxyProcess(
        env={
            "OPENROUTER_API_KEY": "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",
            "OPENROUTER_API_BASE_URL": dead,
        }
    ) as p:
        assert "openrouter: model discovery failed" in p.log
        with httpx.Client(base_url=f"http://127.0.0.1:{p.reverse_port}", trust_env=False, timeout=20) as h:
            for stream in (False, True):
                r = h.post(
                    "/v1/chat/completions",
                    json={"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "x"}]},
                )
                assert r.status_code == 502
                assert "Cannot connect to upstream 127.0.0.1" in _error(r)["message"]
            assert h.get("/v1/models").json() == {"object": "list", "data": []}
    with ProxyProcess(env={}) as p:
        assert "openrouter: no API key configured" in p.log
        with httpx.Client(base_url=f"http://127.0.0.1:{p.reverse_port}", trust_env=False, timeout=20) as h:
            r = h.post(
                "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
            )
            assert r.status_code == 503
            assert "OPENROUTER_API_KEY" in _error(r)["message"]


def test_oversized_body_is_refused(http: httpx.Client) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (33 * 1024 * 1024)}]}
    r = http.post("/v1/chat/completions", content=json.dumps(big).encode())
    assert r.status_code == 413
    assert "at most" in _error(r)["message"]


def _closed_port() -> int:
    from tests.harness import free_port

    return free_port()
