"""The network edge applied to mitmproxy flows: who may use the proxy, where it may connect, which paths and
pages may drive it.

The decisions themselves are plain functions in `addons.security` (access, destinations, browsers, paths);
`Edge` applies them to flows for llm_proxy's hooks. A decision against a request is a `Refusal`, rendered as
an OpenAI-shaped error and answered on the request's head: refused bodies are read and dropped, never kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.net.http import url
from mitmproxy.proxy.mode_specs import LocalMode, ProxyMode, ReverseMode, WireGuardMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from addons.mitm.relay import StreamRelay
from addons.netaddr import is_loopback
from addons.security.access import proxy_auth_required, proxy_credentials_ok, strip_token, token
from addons.security.browsers import (
    cors_headers,
    host_allowed,
    host_not_allowed,
    is_preflight,
    origin_refusal,
    preflight_headers,
)
from addons.security.destinations import destination_refusal, resolved_refusal
from addons.security.paths import is_canonical, non_canonical, not_served
from addons.security.refusal import Refusal
from addons.settings import Settings
from translators.openai.synthetic import error_json

# Methods whose requests carry no body unless they say so with a length.
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
PROXYAUTH_CLASH = (
    "llm-intercept: mitmproxy's proxyauth cannot be combined with PROXY_API_KEY: proxyauth takes the "
    "credentials off each request before this proxy sees them (Proxy-Authorization in proxy modes, "
    "Authorization in reverse mode), so no client could show the access token. Unset proxyauth: with "
    "PROXY_API_KEY, proxy clients authenticate as http://llm:<PROXY_API_KEY>@host:port."
)


# -- where the proxy listens, and who may use it ------------------------------------------------------


def exposed(mode: ProxyMode, listen_host: str) -> bool:
    """The listener this mode runs on is reachable from beyond loopback."""
    return not is_loopback(mode.listen_host(listen_host))


def needs_credentials(mode: ProxyMode, listen_host: str) -> bool:
    """Proxy modes beyond loopback, except those whose clients are authenticated already (WireGuard keys)
    or are local processes; reverse mode checks the API token instead."""
    return not isinstance(mode, (ReverseMode, WireGuardMode, LocalMode)) and exposed(mode, listen_host)


def refuse_proxyauth(settings: Settings) -> None:
    """mitmproxy's own `proxyauth` with the access token: refused, whichever of the two is set last."""
    if token(settings) and "proxyauth" in ctx.options and ctx.options.proxyauth:
        raise exceptions.OptionsError(PROXYAUTH_CLASH)


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
    """What the hooks need remembered: connections that showed proxy credentials or had a flow sent to the
    relay, and refused requests the relay is answering while their bodies are thrown away."""

    def __init__(self, relay: StreamRelay) -> None:
        self.relay = relay
        self._authenticated: set[str] = set()  # client connection ids
        self._relayed: set[str] = set()  # client connection ids with a flow pointed at the relay
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
        if (host, port) == ("127.0.0.1", self.relay.port):
            # Only flows the addon sent there (a refusal may answer a client without credentials); a raw
            # connection through SOCKS or transparent mode is not one, with credentials or without.
            if client.id not in self._relayed:
                server.error = "llm-intercept: the proxy's relay is not reachable through it"
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
        elif req.pretty_host.lower() in settings.intercept_hosts:
            # A provider host the proxy stands in for is never contacted, not even for paths it lacks.
            return render(not_served(served, stand_in=req.pretty_host.lower()))
        strip_token(req.headers, token(settings))
        req.stream = True
        return None

    def forget(self, client: connection.Client) -> None:
        self._authenticated.discard(client.id)
        self._relayed.discard(client.id)

    # -- answering before the body

    def to_relay(self, flow: http.HTTPFlow, source: AsyncIterator[bytes]) -> None:
        """Point `flow` at the relay, which answers it with what `source` yields."""
        self._relayed.add(flow.client_conn.id)
        flow.request.url = self.relay.register(source)

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
        self.to_relay(flow, _once(answer.content or b""))

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


def _listen_host() -> str:
    return ctx.options.listen_host


def _web_port() -> int | None:
    """mitmweb's UI port: the option exists only under mitmweb."""
    return ctx.options.web_port if "web_port" in ctx.options else None
