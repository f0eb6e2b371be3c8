"""The Gemini path end to end: real mitmdump + addon, FakeGemini, official openai SDK and raw httpx.

What only a real process shows: a stream relayed as it arrives, the async SDK, start-up (discovery,
LLM_BACKEND=gemini), explicit proxy mode and the process log. Translation, errors, failover and models
run in-process in tests/unit/pipeline/test_gemini_path.py.

One proxy serves the module (default backend openrouter, Gemini picked with `gemini:`); each test talks
in its own X-Session-ID (the `client`, `aclient` fixtures here shadow conftest's, which point at the
OpenRouter-only proxy). Proxies with other settings are started by the tests that need them.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import (
    DEFAULT_MODELS,
    FakeGemini,
    Reply,
    api_error,
    server_error,
)
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import read_held
from tests.harness import ProxyProcess

GEMINI_KEYS = (
    "AIzaSyqVb2lq9Mv6u716le-RGp9Ge78XAgwoRKX",
    "AIzaSyjHQtSUmhbaH2zAkahLMK4zcNzo-g1vFl1",
)
GENERATIVE = [name for name, methods in DEFAULT_MODELS if "generateContent" in methods]
FLASH = "gemini:gemini-2.5-flash"


def _leaks(log: str, keys: tuple[str, ...]) -> list[int]:
    """Indexes of keys that appear in the log, whole or nearly whole (never the keys themselves)."""
    return [i for i, k in enumerate(keys) if k in log or k[:-4] in log or k[4:] in log]


@pytest.fixture(scope="session")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS, DEFAULT_MODELS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def gproxy(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "5",
    }
    # Debug logging: the no-key-in-the-log check below then covers the chattiest output there is.
    with ProxyProcess(env=env, sets={"termlog_verbosity": "debug"}) as p:
        yield p
    assert not _leaks(p.log, GEMINI_KEYS + OPENROUTER_KEYS[:1]), "an API key appeared in the proxy log"


def _session(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]


@pytest.fixture
def client(gproxy: ProxyProcess, request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gproxy.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": _session(request)},
    ) as c:
        yield c


@pytest.fixture
def aclient(gproxy: ProxyProcess, request: pytest.FixtureRequest) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gproxy.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": _session(request)},
    )


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_async_client_plain_and_stream(aclient: openai.AsyncOpenAI) -> None:
    async def run() -> tuple[str, str]:
        async with aclient:
            plain, stream = await asyncio.gather(
                aclient.chat.completions.create(model=FLASH, messages=[user("async plain")]),
                aclient.chat.completions.create(model=FLASH, messages=[user("async stream")], stream=True),
            )
            text = ""
            async for c in stream:
                if c.choices:
                    text += c.choices[0].delta.content or ""
            return plain.choices[0].message.content or "", text

    assert asyncio.run(run()) == ("echo: async plain", "echo: async stream")


def test_stream_is_not_buffered(client: openai.OpenAI, gemini: FakeGemini) -> None:
    """50 events: Gemini holds back all but the first until the client has that one, so the first
    event reached the client while upstream had sent only one (whatever the machine's load)."""
    text = "".join(f"{i:02d} " for i in range(50))
    gemini.enqueue(Reply(text=text, chunks=50, delay=0.01))
    got, first_at, sent_by_then = read_held(
        gemini,
        lambda: (
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model=FLASH, messages=[user("x")], stream=True)
            if c.choices
        ),
    )
    assert got == text
    assert len(gemini.sent_at) == 50
    assert sent_by_then == 1  # not buffered: the first event arrived while upstream had sent only it
    assert first_at is not None and first_at < gemini.sent_at[-1] - 0.2


def test_gemini_as_default_backend(gemini: FakeGemini, openrouter: FakeOpenRouter) -> None:
    env = {
        "LLM_BACKEND": "gemini",
        "GEMINI_API_KEY": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
    }
    with (
        ProxyProcess(env=env) as p,
        openai.OpenAI(base_url=p.base_url, api_key="k", max_retries=0, timeout=20) as c,
    ):
        ids = [m.id for m in c.models.list()]
        assert ids == GENERATIVE + [f"openrouter:{m}" for m in openrouter.models]
        assert c.models.retrieve("gemini-2.5-flash").id == "gemini-2.5-flash"
        assert (
            c.chat.completions.create(model="gemini-2.5-flash", messages=[user("bare")])
            .choices[0]
            .message.content
            == "echo: bare"
        )
        assert gemini.last_generate().path == "/v1beta/models/gemini-2.5-flash:generateContent"
        r = c.chat.completions.create(model="openrouter:openai/gpt-4o-mini", messages=[user("other")])
        assert r.choices[0].message.content == "echo: other"
        assert openrouter.last("/chat/completions").json()["model"] == "openai/gpt-4o-mini"
        stream = c.chat.completions.create(model="gemini-2.5-pro", messages=[user("s")], stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices) == "echo: s"
    # The key travels in x-goog-api-key only: never in a URL (discovery, plain and streamed calls).
    assert len(gemini.requests) >= 3
    for rec in gemini.requests:
        assert rec.headers["x-goog-api-key"] == GEMINI_KEYS[0]
        assert GEMINI_KEYS[0] not in rec.path and "key=" not in rec.path
    assert any(r.path.startswith("/v1beta/models?") for r in gemini.requests)  # discovery was seen
    assert not _leaks(p.log, GEMINI_KEYS + OPENROUTER_KEYS), "an API key appeared in the proxy log"


def test_discovery_failure_marks_gemini_unavailable(openrouter: FakeOpenRouter) -> None:
    with FakeGemini(GEMINI_KEYS) as broken:
        broken.enqueue_models(server_error(500))
        env = {
            "GEMINI_API_KEY": GEMINI_KEYS[1],
            "GEMINI_API_BASE_URL": broken.base_url,
            "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,
        }
        with (
            ProxyProcess(env=env) as p,
            openai.OpenAI(
                base_url=p.base_url,
                api_key="k",
                max_retries=0,
                timeout=20,
                default_headers={"X-Session-ID": "discovery"},
            ) as c,
        ):
            assert (
                "gemini: model discovery failed (GEMINI_API_KEY: HTTP 500); backend marked unavailable"
                in p.log
            )
            assert [m.id for m in c.models.list()] == openrouter.models
            r = c.chat.completions.create(model="openai/gpt-4o-mini", messages=[user("still here")])
            assert r.choices[0].message.content == "echo: still here"
            status = c.chat.completions.create(model="openai/gpt-4o-mini", messages=[user("!/status")])
            assert "gemini: 1 key(s), unavailable (GEMINI_API_KEY: HTTP 500)" in (
                status.choices[0].message.content or ""
            )
        assert not _leaks(p.log, GEMINI_KEYS + OPENROUTER_KEYS), "an API key appeared in the proxy log"


# -- explicit proxy mode, keys --------------------------------------------------------------------------


def test_explicit_proxy_mode_reaches_gemini(gproxy: ProxyProcess, gemini: FakeGemini) -> None:
    ctx = ssl.create_default_context(cafile=gproxy.ca_cert)
    with (
        httpx.Client(proxy=gproxy.proxy_url, verify=ctx, trust_env=False, timeout=20) as h,
        openai.OpenAI(api_key="sk-users-own-openai-key", http_client=h, max_retries=0) as c,
    ):
        r = c.chat.completions.create(model=FLASH, messages=[user("via api.openai.com")])
        assert r.choices[0].message.content == "echo: via api.openai.com"
    assert all("sk-users-own" not in json.dumps(rec.headers) for rec in gemini.requests)


def test_key_only_in_header_and_never_in_the_log(
    client: openai.OpenAI, gproxy: ProxyProcess, gemini: FakeGemini
) -> None:
    client.chat.completions.create(model=FLASH, messages=[user("a")])
    list(client.chat.completions.create(model=FLASH, messages=[user("b")], stream=True))
    gemini.enqueue(api_error(400, "INVALID_ARGUMENT", "bad"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=FLASH, messages=[user("c")])
    assert len(gemini.requests) == 3
    for rec in gemini.requests:
        assert rec.headers["x-goog-api-key"] in GEMINI_KEYS
        assert not any(k in rec.path for k in GEMINI_KEYS) and "key=" not in rec.path
    assert not _leaks(gproxy.log, GEMINI_KEYS), "an API key appeared in the proxy log"
