"""The network edge: who may use the proxy, where it may connect, which paths and pages may drive it.

Pure decisions on plain values first (unit-tested without mitmproxy running), then `Edge`, which applies them
to flows for llm_proxy's hooks. A decision against a request is a `Refusal`, rendered as an OpenAI-shaped
error and answered on the request's head: refused bodies are read and dropped, never kept.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import re
import socket
import string
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from urllib.parse import unquote

from mitmproxy import connection, ctx, http
from mitmproxy.net.http import url
from mitmproxy.proxy.mode_specs import LocalMode, ProxyMode, ReverseMode, WireGuardMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from addons.mitm.relay import StreamRelay
from addons.netaddr import is_loopback, local_name
from addons.settings import Settings
from translators.synthetic import error_json

# Methods whose requests carry no body unless they say so with a length.
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
# Escaped characters that hide a separator, a dot, a parameter or an escape, or that need no escaping at all:
# the forms a path check is dodged with. A canonical path escapes none of them.
_SNEAKY = frozenset(string.ascii_letters + string.digits + "-._~/\\;%") | {chr(c) for c in (*range(32), 127)}
_ZERO_NET = ipaddress.ip_network("0.0.0.0/8")
PREFLIGHT_MAX_AGE = "600"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    code: str
    headers: tuple[tuple[str, str], ...] = ()


# -- where the proxy listens, and who may use it ------------------------------------------------------


def exposed(mode: ProxyMode, listen_host: str) -> bool:
    """The listener this mode runs on is reachable from beyond loopback."""
    return not is_loopback(mode.listen_host(listen_host))


def needs_credentials(mode: ProxyMode, listen_host: str) -> bool:
    """Proxy modes beyond loopback, except those whose clients are authenticated already (WireGuard keys)
    or are local processes; reverse mode checks the API token instead."""
    return not isinstance(mode, (ReverseMode, WireGuardMode, LocalMode)) and exposed(mode, listen_host)


def proxy_credentials_ok(value: str, token: str) -> bool:
    """`Proxy-Authorization: Basic base64(<any user>:<token>)` or `Bearer <token>`; constant-time compare."""
    scheme, _, given = value.strip().partition(" ")
    given = given.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.encode(), token.encode())


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
    if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        del headers["authorization"]
    if hmac.compare_digest(headers.get("x-api-key", "").strip().encode(), token.encode()):
        del headers["x-api-key"]


# -- where the proxy may connect ------------------------------------------------------------------------


def forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or (ip.version == 4 and ip in _ZERO_NET)


def destination_refusal(host: str, port: int, web_port: int | None) -> Refusal | None:
    """Destinations a client of the proxy may not reach through it: this machine's loopback services
    (mitmweb, databases, the relay), link-local addresses (cloud metadata) and the web UI on any host."""
    if web_port and port == web_port:
        return _unreachable(f"port {port} (mitmweb's UI)")
    if local_name(host):
        return _unreachable(host)
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return _unreachable(host) if forbidden_ip(ip) else None


async def resolved_refusal(host: str, port: int) -> tuple[Refusal | None, str | None]:
    """Resolves a name: a refusal when any of its addresses is forbidden (a name pointed at 127.0.0.1), else
    the address to connect to, so that a second lookup cannot answer differently (DNS rebinding).
    (None, None) when the name does not resolve: the connection then fails by itself."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None, None  # a literal: destination_refusal decided
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None, None
    ips = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not ips:
        return None, None
    if any(forbidden_ip(ip) for ip in ips):
        return _unreachable(f"{host} (resolves to a loopback or link-local address)"), None
    # IPv4 first: a pinned address has no fallback, and broken IPv6 routes are the commoner failure.
    return None, str(min(ips, key=lambda ip: ip.version))


def _unreachable(what: str) -> Refusal:
    return Refusal(
        403,
        f"This proxy does not connect to {what}: loopback, link-local and unspecified addresses, localhost "
        "names and the web UI's port are not reachable through it.",
        "destination_not_allowed",
    )


# -- which requests a browser page may make -------------------------------------------------------------


def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """A Host an attacker's page cannot produce: an IP literal, localhost, or a name the user configured.
    (DNS rebinding points the attacker's own name at this machine; its Host stays that name.)"""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".")
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return local_name(host) or host in allowed


def host_not_allowed(host: str) -> Refusal:
    return Refusal(
        403,
        f"Host {host!r} is not allowed: use an IP address or localhost, or add the name to LLM_ALLOWED_HOSTS "
        "(allowed_hosts).",
        "host_not_allowed",
    )


def origin_refusal(origin: str | None, allowed: Iterable[str]) -> Refusal | None:
    """Browsers send Origin on cross-site requests; only the configured origins may use the proxy.
    Clients that are not browsers send none and are not affected."""
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
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": wanted or "authorization, content-type, x-api-key, x-session-id",
        "access-control-max-age": PREFLIGHT_MAX_AGE,
    }


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


# -- which path a request is for ------------------------------------------------------------------------


def canonical_path(path: str) -> str:
    """The path a server could take `path` for: decoded once, backslashes as slashes, `;params` dropped,
    empty and dot segments resolved; case kept (routing compares case-insensitively). No query."""
    raw = path.split("?", 1)[0]
    decoded = unquote(raw, errors="replace").replace("\\", "/")
    out: list[str] = []
    for segment in decoded.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    trailing = "/" if decoded.endswith("/") and out else ""
    return "/" + "/".join(out) + trailing


def is_canonical(path: str) -> bool:
    """Nothing a server might read differently from us: no escaped separators, dots or plain characters,
    no dot or empty segments, `;params` or backslashes."""
    raw = path.split("?", 1)[0]
    if not raw.startswith("/") or any(chr(int(h, 16)) in _SNEAKY for h in _ESCAPE.findall(raw)):
        return False
    return canonical_path(raw) == unquote(raw, errors="replace")


def non_canonical(path: str) -> Refusal:
    return Refusal(
        400,
        f"The path {path.split('?', 1)[0][:200]!r} is not in canonical form (escaped separators or dots, "
        "'//', '/./', '/../', ';' parameters or backslashes); send it plainly.",
        "non_canonical_path",
    )


def not_served(served: str) -> Refusal:
    return Refusal(
        404,
        f"This proxy serves {served}; other paths are not forwarded unless the proxy runs with "
        "--reverse-target URL (LLM_REVERSE_PASSTHROUGH=true).",
        "path_not_served",
    )


# -- request bodies -------------------------------------------------------------------------------------


def declared_length(method: str, headers: Mapping[str, str], http1: bool) -> int | None:
    """The body length a request announces in its head; None when it has a body of unknown length
    (chunked, or HTTP/2 without content-length on a method that carries one)."""
    if http1 and "transfer-encoding" in headers:
        return None
    size = headers.get("content-length", "").strip()
    if size.isdigit():
        return int(size)
    if http1 or method in _BODYLESS:
        return 0
    return None


def length_required() -> Refusal:
    return Refusal(
        411,
        "A request body of unknown length (chunked) is not accepted here: send Content-Length.",
        "length_required",
    )


def drop(_chunk: bytes) -> bytes:
    """`flow.request.stream` for a refused request: its body is read and thrown away, never kept."""
    return b""


# -- applying the decisions to mitmproxy flows ----------------------------------------------------------


Answer = tuple[int, bytes, dict[str, str]]  # status, body, headers


def render(refusal: Refusal) -> Answer:
    return (
        refusal.status,
        error_json(refusal.message, refusal.status, code=refusal.code),
        {
            "content-type": "application/json",
            **dict(refusal.headers),
        },
    )


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


class Edge:
    """What the hooks need remembered: connections that showed proxy credentials, and refused requests the
    relay is answering while their bodies are thrown away."""

    def __init__(self, relay: StreamRelay) -> None:
        self.relay = relay
        self._authenticated: set[str] = set()  # client connection ids
        self._answers: dict[str, http.Response] = {}  # flow id -> the answer the relay's reply becomes
        self._set_target_host = False

    # -- proxy modes: credentials and destinations

    def credentials(self, flow: http.HTTPFlow, token: str | None) -> Refusal | None:
        """Beyond loopback with a token, a proxy-mode client shows it once per connection (CONNECT, or its
        first absolute-form request). The header is never forwarded."""
        value = flow.request.headers.pop("proxy-authorization", "")
        client = flow.client_conn
        if (
            not token
            or client.id in self._authenticated
            or not needs_credentials(client.proxy_mode, _listen_host())
        ):
            return None
        if proxy_credentials_ok(value, token):
            self._authenticated.add(client.id)
            return None
        return proxy_auth_required()

    async def destination(self, host: str, port: int) -> Refusal | None:
        return destination_refusal(host, port, _web_port()) or (await resolved_refusal(host, port))[0]

    async def server_connect(self, data: ServerConnectionHookData, token: str | None) -> None:
        """The last word on every connection a proxy mode opens, whatever the protocol (raw TCP through
        SOCKS or transparent mode included): unauthenticated or forbidden ones are not opened, and a name is
        connected to at the address it was checked at."""
        client, server = data.client, data.server
        if isinstance(client.proxy_mode, ReverseMode) or server.address is None:
            return
        host, port = server.address
        if (host, port) == ("127.0.0.1", self.relay.port):  # where the addon itself sends flows
            return
        if (
            token
            and client.id not in self._authenticated
            and needs_credentials(client.proxy_mode, _listen_host())
        ):
            server.error = "llm-intercept: proxy credentials required"
            return
        refusal = destination_refusal(host, port, _web_port())
        pinned = None
        if refusal is None and server.via is None:  # through an upstream proxy, that proxy resolves
            refusal, pinned = await resolved_refusal(host, port)
        if refusal is not None:
            server.error = f"llm-intercept: {refusal.message}"
        elif pinned is not None:
            server.address = (pinned, port)

    # -- before the body: who, from where, to where

    def keep_client_host(self, modes: Iterable[ProxyMode]) -> None:
        """mitmproxy replaces a reverse-mode request's Host with the target's before any hook sees it; the
        Host check needs the client's, so the replacement moves to `screen` (unless the user keeps Hosts)."""
        if any(isinstance(m, ReverseMode) for m in modes) and not ctx.options.keep_host_header:
            self._set_target_host = True
            ctx.options.update(keep_host_header=True)

    async def screen(self, flow: http.HTTPFlow, settings: Settings, ours: bool) -> Answer | None:
        """Proxy credentials and destinations (proxy modes), Host (reverse mode) and Origin (all the proxy
        answers itself): an answer now, or None to go on."""
        req = flow.request
        mode = flow.client_conn.proxy_mode
        reverse = isinstance(mode, ReverseMode)
        if reverse:
            host = req.host_header or ""
            if not host_allowed(host, settings.allowed_hosts):
                return render(host_not_allowed(host))
            if self._set_target_host:
                req.host_header = url.hostport(mode.scheme, *mode.address)
        else:
            refusal = self.credentials(flow, token(settings))
            if refusal is None and not ours and req.pretty_host.lower() not in settings.intercept_hosts:
                refusal = await self.destination(req.host, req.port)
            if refusal is not None:
                return render(refusal)
        origin = req.headers.get("origin")
        if not (ours or reverse) or origin is None:
            return None
        if refusal := origin_refusal(origin, settings.cors_origins):
            return render(refusal)
        flow.metadata["llm_cors_origin"] = origin
        if is_preflight(req.method, req.headers):
            return 204, b"", preflight_headers(origin, req.headers)
        return None

    def forward(self, flow: http.HTTPFlow, settings: Settings, served: str) -> Answer | None:
        """A request the proxy does not serve: reverse mode forwards only what the user asked for, in
        canonical form; nothing forwarded carries the proxy token, and its body streams through unkept."""
        req = flow.request
        if isinstance(flow.client_conn.proxy_mode, ReverseMode):
            if not settings.reverse_passthrough:
                return render(not_served(served))
            if not is_canonical(req.path):
                return render(non_canonical(req.path))
        strip_token(req.headers, token(settings))
        req.stream = True
        return None

    def forget(self, client: connection.Client) -> None:
        self._authenticated.discard(client.id)

    # -- answering before the body

    def refuse(self, flow: http.HTTPFlow, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        """Answer now. A request with a body is answered by the relay while mitmproxy reads and drops the
        body: a response set here would only go out after the whole body was buffered."""
        req = flow.request
        answer = http.Response.make(status, b"" if req.method == "HEAD" else body, dict(headers))
        http1 = req.http_version.startswith("HTTP/1")
        bodyless = req.method == "CONNECT" or declared_length(req.method, req.headers, http1) == 0
        if bodyless or not self.relay.port:  # (the relay starts with the proxy, just after it listens)
            flow.response = answer
            return
        req.stream = drop
        req.headers.pop("transfer-encoding", None)
        req.headers["content-length"] = "0"  # what the relay is told; the client's body never reaches it
        self._answers[flow.id] = answer
        req.url = self.relay.register(_once(answer.content or b""))

    def response_headers(self, flow: http.HTTPFlow) -> None:
        """The relay's generic stream head becomes the refusal's; CORS headers for allowed origins."""
        answer = self._answers.pop(flow.id, None)
        resp = flow.response
        if resp is None:
            return
        if answer is not None:
            resp.status_code, resp.reason, resp.headers = answer.status_code, answer.reason, answer.headers
            resp.stream = True
        origin = flow.metadata.get("llm_cors_origin")
        if origin:
            resp.headers.update(cors_headers(origin))

    def discard(self, flow: http.HTTPFlow) -> None:
        if self._answers.pop(flow.id, None) is not None:
            self.relay.discard(flow.request.url)


def token(settings: Settings) -> str | None:
    return settings.proxy_api_key.get_secret_value() if settings.proxy_api_key else None


def _listen_host() -> str:
    return ctx.options.listen_host


def _web_port() -> int | None:
    """mitmweb's UI port: the option exists only under mitmweb."""
    return ctx.options.web_port if "web_port" in ctx.options else None
