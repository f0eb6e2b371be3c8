"""Finding 5: non-canonical paths went to the reverse target untouched, unredacted, carrying the proxy token.

Every variant is sent as written (raw socket: HTTP clients would normalise it first) to a real mitmdump in
reverse mode; it must be answered by the proxy or refused, and the passthrough fake must see nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess
from tests.security import raw
from tests.unit.security.test_paths import CHAT_VARIANTS

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"
CHAT = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
# Not ours once decoded, and not canonical: refused rather than forwarded (a target may decode again).
SNEAKY_OTHERS = ["//v1/files", "/v1/./files", "/v1/chat%252Fcompletions", "/v1/%66iles",
                 "/v1/files;x", "/v1\\files", "/x/../v1/files"]  # fmt: skip


@pytest.fixture(scope="module")
def guarded(openrouter: FakeOpenRouter, passthrough_target: FakeOpenRouter) -> Iterator[ProxyProcess]:
    """Reverse mode with passthrough on and an access token: the configuration the attack used."""
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_API_KEY": TOKEN,
        "LLM_REVERSE_PASSTHROUGH": "true",
    }
    with ProxyProcess(env=env, reverse_target=f"http://127.0.0.1:{passthrough_target.port}") as p:
        yield p


def _post(p: ProxyProcess, path: str, body: bytes = CHAT, extra: str = "") -> raw.RawResponse:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{p.reverse_port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close{extra}"
    )
    return raw.send(p.reverse_port, head, body)


@pytest.mark.parametrize("path", CHAT_VARIANTS)
def test_chat_path_variants_are_served_by_the_proxy(
    guarded: ProxyProcess, openrouter: FakeOpenRouter, passthrough_target: FakeOpenRouter, path: str
) -> None:
    r = _post(guarded, path)
    assert r.status == 200, r.body[:300]
    assert r.json()["choices"][0]["message"]["content"] == "echo: hi"
    assert passthrough_target.requests == []
    sent = openrouter.last("/chat/completions")
    assert TOKEN not in str(sent.headers) and TOKEN not in sent.body.decode()


@pytest.mark.parametrize("path", SNEAKY_OTHERS)
def test_non_canonical_forms_of_other_paths_are_refused(
    guarded: ProxyProcess, passthrough_target: FakeOpenRouter, path: str
) -> None:
    r = _post(guarded, path, b'{"input": "x"}')
    assert r.status == 400 and r.json()["error"]["code"] == "non_canonical_path"
    assert passthrough_target.requests == []


def test_passthrough_never_carries_the_proxy_token(
    guarded: ProxyProcess, passthrough_target: FakeOpenRouter
) -> None:
    _post(guarded, "/v1/files", b'{"input": "x"}', f"\r\nx-api-key: {TOKEN}")
    head = (
        f"GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1:{guarded.reverse_port}\r\n"
        "Authorization: Bearer client-own-key\r\nConnection: close"
    )
    raw.send(guarded.reverse_port, head)
    first, second = passthrough_target.requests
    assert first.path == "/v1/files" and first.json() == {"input": "x"}
    assert all(TOKEN not in v for v in first.headers.values())
    assert second.headers["authorization"] == "Bearer client-own-key"  # a client's own key is its business
    assert TOKEN not in guarded.log


def test_without_passthrough_nothing_reaches_the_reverse_target(passthrough_target: FakeOpenRouter) -> None:
    with ProxyProcess(env={}, reverse_target=f"http://127.0.0.1:{passthrough_target.port}") as p:
        for path in ("/v1/files", "/", "/v1/files/x", "//v1/files"):
            r = raw.send(p.reverse_port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close")
            assert r.status == 404, (path, r.body[:200])
            err = r.json()["error"]
            assert err["code"] == "path_not_served" and "/v1/chat/completions" in err["message"]
        assert (
            raw.send(
                p.reverse_port, "GET //V1/models HTTP/1.1\r\nHost: localhost\r\nConnection: close"
            ).status
            == 200
        )
    assert passthrough_target.requests == []
