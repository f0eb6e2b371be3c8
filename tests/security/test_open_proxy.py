"""Finding 2: an open proxy. Beyond loopback the token guarded only the LLM paths: anything else was forwarded
or tunnelled to any host, and on every bind a client of the proxy port reached 127.0.0.1-only services
(mitmweb's API, databases, the relay) through it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess, free_port
from tests.security import raw
from tests.security.netns import private_net

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"


def _via(proxy: ProxyProcess, authority: str, path: str = "/") -> raw.RawResponse:
    """An absolute-form request as written (httpx drops the brackets of IPv6 hosts)."""
    return raw.send(
        proxy.proxy_port, f"GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close"
    )


def _connect(proxy: ProxyProcess, authority: str) -> raw.RawResponse:
    return raw.send(proxy.proxy_port, f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}")


@pytest.fixture(scope="module")
def web() -> Iterator[ProxyProcess]:
    with ProxyProcess(env={}, web=True) as p:
        yield p


def test_web_ui_is_unreachable_through_the_proxy(web: ProxyProcess) -> None:
    """The attack: `--web --mode regular` on the default loopback bind; a client of the proxy port asks it
    for http://127.0.0.1:8081 (flows, options, the token)."""
    for authority, path in (
        (f"127.0.0.1:{web.web_port}", "/flows"),
        (f"localhost:{web.web_port}", "/options"),
        (f"10.254.0.1:{web.web_port}", "/"),  # the UI's port on any host: refused without connecting
    ):
        r = _via(web, authority, path)
        assert r.status == 403, (authority, r.body[:200])
        assert r.json()["error"]["code"] == "destination_not_allowed"
    tunnel = _connect(web, f"127.0.0.1:{web.web_port}")
    assert tunnel.status == 403 and tunnel.json()["error"]["code"] == "destination_not_allowed"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "127.1.2.3",
        "vm",
        "169.254.169.254",
        "[::ffff:127.0.0.1]",
    ],
)
def test_loopback_and_link_local_destinations_are_refused(
    proxy: ProxyProcess, passthrough_target: FakeOpenRouter, host: str
) -> None:
    """`vm` is a name this machine's /etc/hosts points at 127.0.0.1: a name resolving to loopback is
    refused like the address (DNS rebinding)."""
    if host == "vm" and _resolves(host) != "127.0.0.1":
        pytest.skip("no /etc/hosts name for 127.0.0.1 besides localhost here")
    r = _via(proxy, f"{host}:{passthrough_target.port}", "/v1/models")
    assert r.status == 403, r.body[:200]
    assert r.json()["error"]["code"] == "destination_not_allowed"
    assert _connect(proxy, f"{host}:{passthrough_target.port}").status == 403
    assert passthrough_target.requests == []


def _resolves(name: str) -> str | None:
    try:
        return socket.gethostbyname(name)
    except OSError:
        return None


def test_intercepted_hosts_are_still_answered(explicit_http: httpx.Client) -> None:
    assert explicit_http.get("https://api.openai.com/v1/models").status_code == 200


# -- beyond loopback, inside a private network namespace ----------------------------------------------

_ATTACK = r"""
import base64, json, socket, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import httpx

ADDR, PPORT, RPORT, TOKEN = {addr!r}, {pport}, {rport}, {token!r}
seen = []

class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append(dict((k.lower(), v) for k, v in self.headers.items()))
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *a):
        pass

server = ThreadingHTTPServer((ADDR, 0), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
target = "http://%s:%d/" % (ADDR, server.server_address[1])

def get(proxy, url, headers=None):
    with httpx.Client(proxy=proxy, trust_env=False, timeout=20) as c:
        r = c.get(url, headers=headers)
        return [r.status_code, r.headers.get("proxy-authenticate"), r.text[:400]]

def connect(extra=""):
    with socket.create_connection((ADDR, PPORT), timeout=20) as s:
        authority = "%s:%d" % (ADDR, server.server_address[1])
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority, extra)).encode())
        return int(s.recv(4096).split(b" ")[1])

plain = "http://%s:%d" % (ADDR, PPORT)
BASIC = base64.b64encode(("x:" + TOKEN).encode()).decode()
out = dict(
    none=get(plain, target),
    wrong=get("http://llm:wrong@%s:%d" % (ADDR, PPORT), target),
    basic=get("http://llm:%s@%s:%d" % (TOKEN, ADDR, PPORT), target),
    bearer=get(httpx.Proxy(plain, headers={{"proxy-authorization": "Bearer " + TOKEN}}), target),
    loopback=get("http://llm:%s@%s:%d" % (TOKEN, ADDR, PPORT), "http://127.0.0.1:%d/v1/models" % RPORT),
    connect_none=connect(),
    connect_basic=connect("Proxy-Authorization: Basic %s\r\n" % BASIC),
    reverse_none=httpx.get("http://%s:%d/v1/files" % (ADDR, RPORT), trust_env=False).status_code,
    reverse_token=httpx.get(
        "http://%s:%d/v1/files" % (ADDR, RPORT), headers={{"x-api-key": TOKEN}}, trust_env=False
    ).json()["error"]["code"],
    seen=seen,
)
print(json.dumps(out))
"""


def test_beyond_loopback_every_request_needs_the_token() -> None:
    with private_net() as net:
        with ProxyProcess(env={"PROXY_API_KEY": TOKEN}, listen_host=net.address, wrap=net.wrap([])) as p:
            script = _ATTACK.format(addr=net.address, pport=p.proxy_port, rport=p.reverse_port, token=TOKEN)
            done = net.python(script, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout)
    for case in ("none", "wrong"):
        status, challenge, body = out[case]
        assert status == 407 and challenge and challenge.startswith("Basic")
        assert json.loads(body)["error"]["code"] == "proxy_auth_required"
    assert out["basic"][0] == 200 and out["basic"][2] == "hello"
    assert out["bearer"][0] == 200
    assert out["connect_none"] == 407 and out["connect_basic"] == 200
    status, _, body = out["loopback"]  # credentials do not open loopback
    assert status == 403 and json.loads(body)["error"]["code"] == "destination_not_allowed"
    assert out["reverse_none"] == 401  # every path of an exposed reverse listener needs the token
    assert out["reverse_token"] == "path_not_served"
    assert len(out["seen"]) == 2  # the two authorised requests, without the proxy's credentials
    assert all("proxy-authorization" not in h and TOKEN not in json.dumps(h) for h in out["seen"])
    assert TOKEN not in p.log


_RAW_TO_RELAY = r"""
import socket, struct, time

ADDR, SPORT = {addr!r}, {sport}

def relay_port():
    # The only loopback listener in this namespace is the proxy's relay.
    for _ in range(100):
        for line in open("/proc/net/tcp").read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local.startswith("0100007F:"):
                return int(local.split(":")[1], 16)
        time.sleep(0.1)
    raise SystemExit("no relay listening")

with socket.create_connection((ADDR, SPORT), timeout=20) as s:
    s.sendall(b"\x05\x01\x00")  # SOCKS5, no authentication
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", relay_port()))
    s.recv(10)
    s.sendall(b"\x00\x01 not http, so mitmproxy relays it as raw TCP\r\n\r\n")
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except OSError:
        pass
print(repr(got))
"""


def test_a_raw_connection_beyond_loopback_does_not_reach_the_relay() -> None:
    """SOCKS5 (or transparent mode) carries raw TCP, which no request hook screens: an unauthenticated
    client asking for 127.0.0.1:<relay port> used to be let through to the relay, before any token check."""
    with private_net() as net:
        sport = free_port()
        with ProxyProcess(
            env={"PROXY_API_KEY": TOKEN},
            listen_host=net.address,
            wrap=net.wrap([]),
            extra_args=["--mode", f"socks5@{sport}"],
        ) as p:
            done = net.python(_RAW_TO_RELAY.format(addr=net.address, sport=sport), timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "b''", done.stdout  # the relay would answer "400 Bad Request"
    assert "the proxy's relay is not reachable through it" in p.log


def test_mitmproxys_proxyauth_with_the_token_stops_startup() -> None:
    """proxyauth takes Proxy-Authorization (reverse mode: Authorization) off each request before the
    addon reads it, so with PROXY_API_KEY no client could show the token: refused with a clear message."""
    p = ProxyProcess(env={"PROXY_API_KEY": TOKEN}, sets={"proxyauth": "llm:secret"}, wait_ready=False).start()
    try:
        assert p.wait_exit(30) != 0
    finally:
        p.stop()
    assert "proxyauth cannot be combined with PROXY_API_KEY" in p.log
    assert TOKEN not in p.log
