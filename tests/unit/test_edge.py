"""The network edge's decisions, without mitmproxy running (addons/mitm/edge.py)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress

import pytest

from addons.mitm import edge
from addons.pipeline.dispatch import route

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"

# Every form of the chat path a server might read as /v1/chat/completions.
CHAT_VARIANTS = [
    "//v1/chat/completions",
    "/v1//chat/completions",
    "/v1/./chat/completions",
    "/v1/x/../chat/completions",
    "/../v1/chat/completions",
    "/v1%2Fchat%2Fcompletions",
    "/v1%2fchat/completions",
    "/V1/Chat/Completions",
    "/v1/chat/completions;x",
    "/v1;a=b/chat/completions",
    "/v1\\chat\\completions",
    "/v1/%63hat/completions",
    "/v1/chat/completions/",
    "/v1/chat/completions/.",
]


@pytest.mark.parametrize("path", CHAT_VARIANTS)
def test_every_variant_routes_to_chat_and_is_not_canonical(path: str) -> None:
    assert route("POST", edge.canonical_path(path)) == "chat"
    if path != "/V1/Chat/Completions" and path != "/v1/chat/completions/":
        assert not edge.is_canonical(path)


@pytest.mark.parametrize(
    "path",
    ["/v1/embeddings", "/v1/files/file-abc/content?x=%2F", "/v1/files/a%20b", "/v1/models/ft:gpt:org:1"],
)
def test_plain_paths_are_canonical(path: str) -> None:
    assert edge.is_canonical(path)


@pytest.mark.parametrize(
    "path", ["/v1/chat%252Fcompletions", "/v1/%2e%2e/admin", "/v1/a%5cb", "/v1/a%00", "*", "v1/models"]
)
def test_escapes_that_hide_structure_are_not_canonical(path: str) -> None:
    assert not edge.is_canonical(path)


def test_canonical_path_keeps_case_and_parameters_of_the_last_segment() -> None:
    assert edge.canonical_path("/V1/models/openai%2FGPT-4o?x=1") == "/V1/models/openai/GPT-4o"
    assert edge.canonical_path("/v1/sessions/AbC/history") == "/v1/sessions/AbC/history"
    assert edge.canonical_path("/a/../../..") == "/"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (_basic("llm", TOKEN), True),
        (_basic("", TOKEN), True),
        (f"Bearer {TOKEN}", True),
        (f"bearer  {TOKEN} ", True),
        (_basic(TOKEN, "x"), False),
        (_basic("llm", TOKEN + "x"), False),
        ("Bearer wrong", False),
        ("Basic !!!not-base64", False),
        (f"Digest {TOKEN}", False),
        ("", False),
    ],
)
def test_proxy_credentials(value: str, ok: bool) -> None:
    assert edge.proxy_credentials_ok(value, TOKEN) is ok


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "0.0.0.0", "::", "0.1.2.3", "169.254.169.254", "fe80::1",
     "::ffff:127.0.0.1", "localhost", "LOCALHOST.", "api.localhost"],
)  # fmt: skip
def test_local_destinations_are_refused(host: str) -> None:
    refusal = edge.destination_refusal(host, 80, None)
    assert refusal is not None and refusal.status == 403 and refusal.code == "destination_not_allowed"


@pytest.mark.parametrize("host", ["10.254.1.2", "192.168.1.1", "93.184.216.34", "example.com", "2001:db8::1"])
def test_other_destinations_pass_the_literal_check(host: str) -> None:
    assert edge.destination_refusal(host, 443, 8081) is None


def test_the_web_ui_port_is_refused_on_any_host() -> None:
    assert edge.destination_refusal("10.254.1.2", 8081, 8081) is not None
    assert edge.destination_refusal("10.254.1.2", 8081, None) is None


def test_names_that_resolve_to_loopback_are_refused_and_others_pinned() -> None:
    refusal, pinned = asyncio.run(edge.resolved_refusal("localhost", 80))
    assert refusal is not None and pinned is None and "resolves to" in refusal.message
    assert asyncio.run(edge.resolved_refusal("10.254.1.2", 80)) == (None, None)  # literals: decided earlier
    assert asyncio.run(edge.resolved_refusal("no-such-name.invalid", 80)) == (None, None)


def test_forbidden_ip_sees_through_ipv4_mapped_addresses() -> None:
    assert edge.forbidden_ip(ipaddress.ip_address("::ffff:169.254.1.1"))
    assert not edge.forbidden_ip(ipaddress.ip_address("::ffff:10.0.0.1"))


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("10.254.1.2", True),
        ("localhost:8000", True),
        ("app.localhost", True),
        ("llm.internal:8000", True),
        ("LLM.Internal.", True),
        ("evil.example:8000", False),
        ("evil.example", False),
        ("", False),
    ],
)
def test_host_allowed(host: str, ok: bool) -> None:
    assert edge.host_allowed(host, ("llm.internal",)) is ok


def test_origins() -> None:
    allowed = ("https://app.example",)
    assert edge.origin_refusal(None, allowed) is None
    assert edge.origin_refusal("https://APP.example/", allowed) is None
    for origin in ("https://evil.example", "null", "https://app.example.evil.example"):
        refusal = edge.origin_refusal(origin, allowed)
        assert refusal is not None and refusal.code == "origin_not_allowed"
    assert edge.origin_refusal("https://app.example", ()) is not None
    headers = edge.preflight_headers(
        "https://app.example", {"access-control-request-headers": "x-session-id"}
    )
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-headers"] == "x-session-id" and headers["vary"] == "Origin"
    assert edge.is_preflight("OPTIONS", {"origin": "o", "access-control-request-method": "POST"})
    assert not edge.is_preflight("OPTIONS", {"origin": "o"})


@pytest.mark.parametrize(
    ("method", "headers", "http1", "size"),
    [
        ("POST", {"content-length": "12"}, True, 12),
        ("POST", {"transfer-encoding": "chunked"}, True, None),
        ("POST", {"transfer-encoding": "chunked", "content-length": "3"}, True, None),
        ("POST", {}, True, 0),
        ("GET", {}, False, 0),
        ("POST", {}, False, None),
        ("POST", {"content-length": "7"}, False, 7),
    ],
)
def test_declared_length(method: str, headers: dict[str, str], http1: bool, size: int | None) -> None:
    assert edge.declared_length(method, headers, http1) == size


def test_strip_token_removes_only_the_proxy_token() -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "x-api-key": TOKEN, "proxy-authorization": "Basic x"}
    edge.strip_token(headers, TOKEN)
    assert headers == {}
    own = {"authorization": "Bearer sk-client-own", "x-api-key": "client-own"}
    edge.strip_token(own, TOKEN)
    assert own == {"authorization": "Bearer sk-client-own", "x-api-key": "client-own"}


def test_refusals_render_as_openai_errors() -> None:
    status, body, headers = edge.render(edge.proxy_auth_required())
    assert status == 407 and headers["proxy-authenticate"].startswith("Basic")
    assert headers["content-type"] == "application/json"
    assert b'"code":"proxy_auth_required"' in body.replace(b" ", b"")
