"""Who may use the proxy, and what passes through it untouched."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess, free_port
from tests.security.netns import private_net

MODEL = "openai/gpt-4o-mini"
TOKEN = "llmi-proxy-token-Ehzx8ae6c5iyqPwj8FbCyKDZhYMu_Iw8"


@pytest.fixture(scope="module")
def guarded(openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_API_KEY": TOKEN,
    }
    with ProxyProcess(env=env) as p:
        yield p
    assert TOKEN not in p.log


def _chat(p: ProxyProcess, headers: dict[str, str]) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        p.base_url + "/chat/completions", json=body, headers=headers, trust_env=False, timeout=20
    )


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}])
def test_requests_without_the_token_are_refused(
    guarded: ProxyProcess, openrouter: FakeOpenRouter, headers: dict[str, str]
) -> None:
    r = _chat(guarded, headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_proxy_token"
    assert httpx.get(guarded.base_url + "/models", headers=headers, trust_env=False).status_code == 401
    assert openrouter.requests == []


def test_token_lets_requests_through_and_is_never_forwarded(
    guarded: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    client = openai.OpenAI(base_url=guarded.base_url, api_key=TOKEN, max_retries=0)
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "ok"}]).choices
    assert _chat(guarded, {"x-api-key": TOKEN}).status_code == 200
    sent = [r for r in openrouter.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 2
    assert all(TOKEN not in str(r.headers) and TOKEN not in r.body.decode() for r in sent)


def test_non_loopback_bind_without_token_is_refused() -> None:
    p = ProxyProcess(env={}, extra_args=["--listen-host", "0.0.0.0"], wait_ready=False).start()
    try:
        assert p.wait_exit(30) != 0
    finally:
        p.stop()
    assert "refusing to listen on 0.0.0.0 without an access token" in p.log and "PROXY_API_KEY" in p.log
    # Per-mode addresses are checked once listening; a token, or the explicit override, allows both.
    p = ProxyProcess(
        env={}, extra_args=["--mode", f"regular@0.0.0.0:{free_port()}"], wait_ready=False
    ).start()
    try:
        p.wait_exit(30)
    finally:
        p.stop()
    assert "refusing to listen on 0.0.0.0" in p.log
    with ProxyProcess(env={"PROXY_API_KEY": TOKEN}, extra_args=["--listen-host", "0.0.0.0"]) as p:
        assert "ready" in p.log


# -- explicit proxy: only the OpenAI hosts are intercepted --------------------------------------------


def _self_signed(tmp: Path, address: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# Runs inside the namespace: an HTTPS server on its non-loopback address, and a client that reaches it
# through the proxy trusting only the server's own certificate.
_TUNNEL = r"""
import ssl, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import httpx

class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *a):
        pass

server = ThreadingHTTPServer(({addr!r}, 0), Hello)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain({cert!r}, {key!r})
server.socket = ctx.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
verify = ssl.create_default_context(cafile={cert!r})
with httpx.Client(proxy={proxy!r}, verify=verify, trust_env=False, timeout=10) as h:
    r = h.get("https://%s:%d/" % ({addr!r}, server.server_address[1]))
print(r.status_code, r.text)
"""


def test_other_https_hosts_are_not_intercepted(tmp_path: Path) -> None:
    """The client trusts only the server's own certificate: this works only if the proxy tunnels the TLS
    connection untouched instead of intercepting it with its CA. The server is on a non-loopback address
    (loopback destinations are refused), so all of it runs in a private network namespace."""
    with private_net() as net:
        cert, key = _self_signed(tmp_path, net.address)
        with ProxyProcess(env={}, wrap=net.wrap([])) as p:
            script = _TUNNEL.format(addr=net.address, cert=str(cert), key=str(key), proxy=p.proxy_url)
            done = net.python(script, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "hello"]
