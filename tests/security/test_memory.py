"""Finding 6: request bodies were buffered before the token and the size limit applied (150 MB unauthenticated
chunked -> +464 MB RSS; 48 MB over the limit still read and kept; a headers-only request never answered)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import ProxyProcess
from tests.security import raw

TOKEN = "llmi-edge-token-Q7vXk2pL9sRt4wYz8bNc3dFh6jMa"
MB = 1024 * 1024
CHUNK = b"x" * MB
GROWTH_BOUND = 40 * MB  # far below any of the bodies sent


@pytest.fixture(scope="module")
def guarded() -> Iterator[ProxyProcess]:
    with ProxyProcess(env={"PROXY_API_KEY": TOKEN}) as p:  # default limit: 32 MB
        yield p


def _rss(p: ProxyProcess) -> int:
    assert p.proc is not None
    for line in Path(f"/proc/{p.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _upload(total_mb: int) -> Iterator[bytes]:
    for _ in range(total_mb):  # bounded, generated lazily
        yield CHUNK


def test_unauthenticated_chunked_upload_is_not_buffered(guarded: ProxyProcess) -> None:
    before = _rss(guarded)
    r = httpx.post(
        guarded.base_url + "/chat/completions",
        content=_upload(150),  # no length: chunked
        headers={"content-type": "application/json"},
        trust_env=False,
        timeout=120,
    )
    grown = _rss(guarded) - before
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_proxy_token"
    assert grown < GROWTH_BOUND, f"RSS grew by {grown // MB} MB for a 150 MB body"


def test_oversized_declared_length_is_answered_without_keeping_the_body(guarded: ProxyProcess) -> None:
    before = _rss(guarded)
    r = httpx.post(
        guarded.base_url + "/chat/completions",
        content=_upload(48),
        headers={"content-length": str(48 * MB), "authorization": f"Bearer {TOKEN}"},
        trust_env=False,
        timeout=120,
    )
    grown = _rss(guarded) - before
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert grown < GROWTH_BOUND, f"RSS grew by {grown // MB} MB for a 48 MB body"


@pytest.mark.parametrize(
    ("auth", "status"),
    [(f"Authorization: Bearer {TOKEN}\r\n", 413), ("", 401)],
    ids=["too-large", "no-token"],
)
def test_a_client_that_sends_only_headers_gets_its_answer(
    guarded: ProxyProcess, auth: str, status: int
) -> None:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {48 * MB}"
    )
    started = time.monotonic()
    r = raw.send(guarded.reverse_port, head, timeout=20)  # the body never comes
    assert r.status == status and r.json()["error"]["message"]
    assert time.monotonic() - started < 15


def test_chunked_body_of_unknown_length_is_refused_on_the_api_paths(guarded: ProxyProcess) -> None:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close"
    )
    with socket.create_connection(("127.0.0.1", guarded.reverse_port), timeout=20) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + b"2\r\n{}\r\n")  # the rest never comes
        r = raw.read_response(sock)
    assert r.status == 411 and r.json()["error"]["code"] == "length_required"
