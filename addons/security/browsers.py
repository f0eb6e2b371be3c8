"""Which requests a web page may make: a Host an attacker's page cannot produce (DNS rebinding), only the
configured origins (CORS). Clients that are not browsers send no Origin and are not affected."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping

from addons.netaddr import local_name
from addons.security.refusal import Refusal

PREFLIGHT_MAX_AGE = "600"


def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """An IP literal, localhost, or a name the user configured. (DNS rebinding points the attacker's own
    name at this machine; its Host stays that name.)"""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".")
    return bool(host) and (_literal_or_local(host) or host in allowed)


@functools.lru_cache(maxsize=256)  # asked on every request, mostly of one or two Hosts; ip_address is slow
def _literal_or_local(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return local_name(host)


def host_not_allowed(host: str) -> Refusal:
    return Refusal(
        403,
        f"Host {host!r} is not allowed: use an IP address or localhost, or add the name to LLM_ALLOWED_HOSTS "
        "(allowed_hosts).",
        "host_not_allowed",
    )


def origin_refusal(origin: str | None, allowed: Iterable[str]) -> Refusal | None:
    """Browsers send Origin on cross-site requests; only the configured origins may use the proxy."""
    if origin is None or origin.strip().lower().rstrip("/") in {o.rstrip("/") for o in allowed}:
        return None
    return Refusal(
        403,
        f"Requests from the web origin {origin!r} are not allowed: add it to LLM_CORS_ORIGINS (cors_origins) "
        "to let that page use the proxy.",
        "origin_not_allowed",
    )


def cors_headers(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"}


def preflight_headers(origin: str, request_headers: Mapping[str, str]) -> dict[str, str]:
    """The answer to an allowed origin's CORS preflight."""
    wanted = request_headers.get("access-control-request-headers", "")
    return {
        **cors_headers(origin),
        "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",  # DELETE: /v1/responses/{id}
        "access-control-allow-headers": wanted or "authorization, content-type, x-api-key, x-session-id",
        "access-control-max-age": PREFLIGHT_MAX_AGE,
    }


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers
