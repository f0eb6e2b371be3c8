"""Which requests a web page may make (addons/security/browsers.py)."""

from __future__ import annotations

import pytest

from addons.security import browsers


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
    assert browsers.host_allowed(host, ("llm.internal",)) is ok


def test_origins() -> None:
    allowed = ("https://app.example",)
    assert browsers.origin_refusal(None, allowed) is None
    assert browsers.origin_refusal("https://APP.example/", allowed) is None
    for origin in ("https://evil.example", "null", "https://app.example.evil.example"):
        refusal = browsers.origin_refusal(origin, allowed)
        assert refusal is not None and refusal.code == "origin_not_allowed"
    assert browsers.origin_refusal("https://app.example", ()) is not None
    headers = browsers.preflight_headers(
        "https://app.example", {"access-control-request-headers": "x-session-id"}
    )
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-headers"] == "x-session-id" and headers["vary"] == "Origin"
    assert browsers.is_preflight("OPTIONS", {"origin": "o", "access-control-request-method": "POST"})
    assert not browsers.is_preflight("OPTIONS", {"origin": "o"})
