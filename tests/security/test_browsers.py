"""Finding 3: a web page could drive a default install (no token, loopback): a cross-site `text/plain` POST
ran commands, and a DNS-rebinding Host read a session's history. Both attacks against a real mitmdump."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

MODEL = "openai/gpt-4o-mini"
APP = "https://app.example"


def _status(proxy: ProxyProcess) -> str:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "!/status"}]}
    r = httpx.post(proxy.base_url + "/chat/completions", json=body, trust_env=False, timeout=20)
    assert r.status_code == 200
    return r.json()["choices"][0]["message"]["content"]


def test_cross_site_text_plain_post_is_refused_and_changes_nothing(
    proxy: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    before = _status(proxy)
    assert "redact-api-keys-in-prompts=on" in before or "redaction: on" in before
    body = {
        "model": MODEL,
        "messages": [
            {
                "role": "user",
                "content": "!/set(redact-api-keys-in-prompts=false) !/set(default-backend=gemini)",
            }
        ],
    }
    # What a page's <form enctype=text/plain> or fetch(no-cors) sends: a simple request, no preflight.
    r = httpx.post(
        proxy.base_url + "/chat/completions",
        content=json.dumps(body),
        headers={"content-type": "text/plain", "origin": "https://evil.example"},
        trust_env=False,
        timeout=20,
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    assert _status(proxy) == before
    assert openrouter.requests == []


def test_dns_rebinding_host_cannot_read_history(proxy: ProxyProcess) -> None:
    url = f"http://127.0.0.1:{proxy.reverse_port}/v1/sessions/default/history"
    r = httpx.get(url, headers={"host": f"evil.example:{proxy.reverse_port}"}, trust_env=False, timeout=20)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "host_not_allowed"
    assert r.json()["error"]["type"] and "param" in r.json()["error"]
    for host in (f"localhost:{proxy.reverse_port}", f"127.0.0.1:{proxy.reverse_port}"):
        assert httpx.get(url, headers={"host": host}, trust_env=False, timeout=20).status_code == 200


def test_clients_that_are_not_browsers_keep_working(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "sdk"}])
    assert answer.choices[0].message.content == "echo: sdk"
    # curl without a content type
    r = httpx.post(
        str(client.base_url) + "chat/completions",
        content=json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "curl"}]}),
        trust_env=False,
        timeout=20,
    )
    assert r.status_code == 200


@pytest.fixture(scope="module")
def with_cors(openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "LLM_CORS_ORIGINS": APP,
        "LLM_ALLOWED_HOSTS": "llm.internal",
    }
    with ProxyProcess(env=env) as p:
        yield p


def test_configured_origin_gets_cors_and_configured_host_is_allowed(with_cors: ProxyProcess) -> None:
    base = f"http://127.0.0.1:{with_cors.reverse_port}/v1"
    preflight = httpx.options(
        base + "/chat/completions",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
        trust_env=False,
        timeout=20,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "from the app"}]}
    r = httpx.post(
        base + "/chat/completions", json=body, headers={"origin": APP}, trust_env=False, timeout=20
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP and r.headers["vary"] == "Origin"
    streamed = httpx.post(
        base + "/chat/completions", json={**body, "stream": True}, headers={"origin": APP}, trust_env=False
    )
    assert streamed.status_code == 200 and streamed.headers["access-control-allow-origin"] == APP
    other = httpx.options(
        base + "/models",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
        trust_env=False,
    )
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    named = httpx.get(base + "/models", headers={"host": "llm.internal:80"}, trust_env=False, timeout=20)
    assert named.status_code == 200
