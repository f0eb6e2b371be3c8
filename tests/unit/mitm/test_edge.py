"""The edge applied to mitmproxy flows (addons/mitm/edge.py), in-process with mitmproxy's test helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.proxyauth import ProxyAuth
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow

from addons.mitm import edge
from addons.mitm.relay import StreamRelay
from addons.security.access import proxy_auth_required
from addons.settings import load_settings

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"
RELAY_PORT = 47123


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


def test_refusals_render_as_openai_errors() -> None:
    status, body, headers = edge.render(proxy_auth_required())
    assert status == 407 and headers["proxy-authenticate"].startswith("Basic")
    assert headers["content-type"] == "application/json"
    assert b'"code":"proxy_auth_required"' in body.replace(b" ", b"")


async def _nothing() -> AsyncIterator[bytes]:
    yield b""


def _connect(gate: edge.Edge, mode: str, client_id: str, token: str | None) -> str | None:
    client = tflow.tclient_conn()
    client.id, client.proxy_mode = client_id, ProxyMode.parse(mode)
    server = tflow.tserver_conn()
    server.address = ("127.0.0.1", RELAY_PORT)
    asyncio.run(gate.server_connect(ServerConnectionHookData(server=server, client=client), token))
    return server.error


@pytest.mark.parametrize(
    ("mode", "token"), [("socks5@10.254.0.1:1080", TOKEN), ("socks5@1080", None), ("transparent", None)]
)
def test_the_relay_is_reached_only_by_flows_sent_there(mode: str, token: str | None) -> None:
    """A raw connection through SOCKS or transparent mode to the relay's address is never opened, beyond
    loopback with a token (credentials are checked after) or on loopback without one."""
    with taddons.context():
        relay = StreamRelay()
        relay.port = RELAY_PORT
        gate = edge.Edge(relay)
        assert _connect(gate, mode, "raw-client", token)
        flow = tflow.tflow()
        flow.client_conn.proxy_mode = ProxyMode.parse(mode)
        gate.to_relay(flow, _nothing())  # e.g. a 407 with a body: the client has no credentials
        assert flow.request.port == RELAY_PORT
        assert _connect(gate, mode, flow.client_conn.id, token) is None
        gate.forget(flow.client_conn)
        assert _connect(gate, mode, flow.client_conn.id, token)
        relay.close()


def test_mitmproxys_proxyauth_is_refused_with_the_access_token() -> None:
    """proxyauth takes Proxy-Authorization (or, in reverse mode, Authorization) before this addon reads it:
    with the token as well no client could get through."""
    guarded, open_ = load_settings({}, {"PROXY_API_KEY": TOKEN}, {}), load_settings({}, {}, {})
    with taddons.context(ProxyAuth()) as tctx:
        edge.refuse_proxyauth(guarded)
        tctx.options.update(proxyauth="llm:secret")
        with pytest.raises(exceptions.OptionsError, match="proxyauth cannot be combined with PROXY_API_KEY"):
            edge.refuse_proxyauth(guarded)
        edge.refuse_proxyauth(open_)
