"""The proxy's access token: as an API token on the proxy's own paths, as proxy credentials in proxy modes,
and never forwarded upstream. Every comparison is constant-time."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, MutableMapping

from addons.security.refusal import Refusal
from addons.settings import Settings


def token(settings: Settings) -> str | None:
    return settings.proxy_api_key.get_secret_value() if settings.proxy_api_key else None


def authorised(headers: Mapping[str, str], token: str | None) -> bool:
    """`Authorization: Bearer <token>` or `x-api-key: <token>`; everyone when no token is set."""
    if token is None:
        return True
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
    return same(given, token)


def same(given: str, token: str) -> bool:
    """Constant-time, on bytes: mitmproxy hands over header bytes that are no UTF-8 as surrogate escapes,
    which a strict encode would turn into an exception (and an addon error lets the request through)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def proxy_credentials_ok(value: str, token: str) -> bool:
    """`Proxy-Authorization: Basic base64(<any user>:<token>)` or `Bearer <token>`."""
    scheme, _, given = value.strip().partition(" ")
    given = given.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 (UnicodeDecodeError)
            return False
    elif scheme.lower() != "bearer":
        return False
    return same(given, token)


def proxy_auth_required() -> Refusal:
    return Refusal(
        407,
        "This proxy needs its access token as proxy credentials: use http://llm:<PROXY_API_KEY>@host:port "
        "as the proxy URL (Proxy-Authorization: Basic), or send 'Proxy-Authorization: Bearer <token>'.",
        "proxy_auth_required",
        (("proxy-authenticate", 'Basic realm="llm-intercept"'),),
    )


def strip_token(headers: MutableMapping[str, str], token: str | None) -> None:
    """Never forward the proxy's own token: drop proxy credentials, and Authorization / x-api-key when they
    carry it (a client's own upstream key passes untouched)."""
    headers.pop("proxy-authorization", None)
    if not token:
        return
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and same(auth[7:].strip(), token):
        del headers["authorization"]
    if same(headers.get("x-api-key", "").strip(), token):
        del headers["x-api-key"]
