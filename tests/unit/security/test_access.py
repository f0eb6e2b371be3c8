"""The access token (addons/security/access.py, and its length check in addons/settings.py)."""

from __future__ import annotations

import base64

import pytest

from addons.security import access
from addons.settings import MIN_TOKEN_LENGTH, SettingsError, load_settings

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"


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
    assert access.proxy_credentials_ok(value, TOKEN) is ok


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"authorization": f"Bearer {TOKEN}"}, True),
        ({"authorization": f"bearer {TOKEN} "}, True),
        ({"x-api-key": TOKEN}, True),
        ({"authorization": f"Bearer {TOKEN}x"}, False),
        ({"authorization": f"Basic {TOKEN}", "x-api-key": TOKEN}, True),  # not a Bearer: x-api-key counts
        ({"authorization": "Bearer wrong", "x-api-key": TOKEN}, False),  # a Bearer decides
        ({}, False),
    ],
)
def test_api_token(headers: dict[str, str], ok: bool) -> None:
    assert access.authorised(headers, TOKEN) is ok
    assert access.authorised(headers, None)  # no token set: everyone


def test_token_comes_from_the_settings() -> None:
    assert access.token(load_settings({}, {}, {})) is None
    assert access.token(load_settings({}, {"PROXY_API_KEY": TOKEN}, {})) == TOKEN


@pytest.mark.parametrize("weak", ["", "q7Z", "k" * (MIN_TOKEN_LENGTH - 1)])
def test_a_short_token_is_refused_naming_the_setting(weak: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"proxy_api_key": weak}, {}, {})
    message = str(raised.value)
    assert "PROXY_API_KEY" in message and f"at least {MIN_TOKEN_LENGTH} characters" in message
    assert "<hidden>" in message and (not weak or weak not in message)
    load_settings({"proxy_api_key": "y" * MIN_TOKEN_LENGTH}, {}, {})


def test_strip_token_removes_only_the_proxy_token() -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "x-api-key": TOKEN, "proxy-authorization": "Basic x"}
    access.strip_token(headers, TOKEN)
    assert headers == {}
    own = {"authorization": "Bearer sk-client-own", "x-api-key": "client-own"}
    access.strip_token(own, TOKEN)
    assert own == {"authorization": "Bearer sk-client-own", "x-api-key": "client-own"}


def test_header_bytes_that_are_no_utf8_are_a_wrong_token_not_an_error() -> None:
    """mitmproxy decodes header bytes with surrogate escapes; a strict encode raised, and an exception in
    a hook lets mitmproxy forward the request untouched."""
    token = "proxy-access-token-0123456789"
    escaped = token[:-1] + b"\xe9".decode("utf-8", "surrogateescape")
    assert not access.authorised({"x-api-key": escaped}, token)
    assert not access.authorised({"authorization": f"Bearer {escaped}"}, token)
    assert not access.proxy_credentials_ok(f"Bearer {escaped}", token)
    assert not access.proxy_credentials_ok(f"Basic {escaped}", token)
    assert not access.proxy_credentials_ok("Basic bGxtOnTDqXN0", token)  # "llm:tést": valid, wrong
    headers = {"x-api-key": escaped}
    access.strip_token(headers, token)
    assert headers == {"x-api-key": escaped}
