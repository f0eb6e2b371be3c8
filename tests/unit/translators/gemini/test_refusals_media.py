"""Remote media without a file extension: never a 400 from the proxy; fetched and inlined when the proxy
can (addons/backends/media_fetch.py), else handed to Gemini as a URL. Media is served from 127.0.0.1 here,
with loopback allowed by the test's own MediaFetcher only."""

from __future__ import annotations

import asyncio
import base64
import copy
import ipaddress
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from addons.backends import media_fetch
from addons.backends.gemini import GeminiBackend
from addons.backends.media_fetch import MediaFetcher, allowed_ip
from tests.fakes.fake_gemini import validate_request
from tests.fakes.server import FakeServer, Recorded, Script
from tests.unit.translators.gemini.support import translate
from translators.gemini.media import remote_type_unknown, sniff_mime

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n" + b"x" * 40
LOCAL = MediaFetcher(allow_loopback=True, timeout=3.0)


class MediaServer(FakeServer):
    """Answers each request with the next script (a 404 when none is left)."""

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        self.play(h, self._next_script() or Script(status=404, raw_body=b"gone"))


@pytest.fixture(scope="module")
def media() -> Any:
    with MediaServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(media: MediaServer) -> None:
    media.reset()


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


def _request(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}],
    }


def _served(body: bytes, mime: str, **kw: Any) -> Script:
    return Script(raw_body=body, headers={"content-type": mime}, **kw)


def _inline(request: dict[str, Any], fetcher: MediaFetcher = LOCAL) -> dict[str, Any]:
    return asyncio.run(GeminiBackend("http://gemini.invalid").prepare(request, fetcher))


def _data(mime: str, body: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(body).decode()}"


def test_an_extensionless_url_reaches_gemini_as_file_data() -> None:
    """https://ai.google.dev/gemini-api/docs/file-input-methods: the Gemini API fetches public and signed
    HTTPS URLs given as fileData; https://ai.google.dev/api/caching#FileData: fileData carries a mimeType.
    When the proxy could not fetch a URL whose name tells no type, Gemini gets it with a guessed type
    instead of the client getting a 400."""
    url = "https://cdn.example.test/u/123/avatar?s=64&sig=abc"
    doc = {"type": "file", "file": {"file_data": "https://files.example.test/download?id=7"}}
    out = translate([{"role": "user", "content": [_image(url), doc]}])
    assert out["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/jpeg", "fileUri": url}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://files.example.test/download?id=7"}},
    ]
    validate_request(out)


@pytest.mark.parametrize(
    ("url", "filename", "unknown"),
    [
        ("https://cdn.example.test/avatar/7?s=64", "", True),
        ("http://example.test/download", "", True),
        ("https://example.test/download", "report.pdf", False),
        ("https://example.test/cat.png?sig=1", "", False),
        ("https://generativelanguage.googleapis.com/v1beta/files/abc", "", False),
        ("gs://bucket/object", "", False),
        ("data:image/png;base64,AAAA", "", False),
        ("https:///no-host", "", False),
    ],
)
def test_which_urls_are_worth_fetching(url: str, filename: str, unknown: bool) -> None:
    """https://ai.google.dev/gemini-api/docs/file-input-methods: Files API URIs need no type (Gemini knows
    its files); a URL or filename with a known extension tells it; only http(s) is fetched."""
    assert remote_type_unknown(url, filename) is unknown


def test_sniffing_names_the_common_formats() -> None:
    """https://ai.google.dev/gemini-api/docs/image-understanding lists PNG, JPEG, WEBP, HEIC, HEIF;
    https://ai.google.dev/gemini-api/docs/document-processing: PDF. The first bytes tell the common ones."""
    assert sniff_mime(PNG) == "image/png"
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"GIF89a...") == "image/gif"
    assert sniff_mime(PDF) == "application/pdf"
    assert sniff_mime(b"<html>") is None


def test_untyped_media_is_fetched_once_and_inlined(media: MediaServer) -> None:
    """https://ai.google.dev/gemini-api/docs/file-input-methods: inline data (base64 with its mimeType) is
    read by every model. The answer's Content-Type names the type; the client's request is left as it
    was (history keeps the URL), and a URL that names its type is not fetched."""
    base = f"http://127.0.0.1:{media.port}"
    avatar = f"{base}/avatar/7?sig=secret"
    request = _request(_image(avatar), _image(f"{base}/cat.png"), _image(avatar))
    call = {"id": "c", "type": "function", "function": {"name": "shoot", "arguments": "{}"}}
    request["messages"].append({"role": "assistant", "content": None, "tool_calls": [call]})
    request["messages"].append({"role": "tool", "tool_call_id": "c", "content": [_image(f"{base}/shot")]})
    request["messages"].append(
        {
            "role": "user",
            "content": [{"type": "file", "file": {"file_id": f"{base}/dl?id=1", "filename": "x"}}],
        }
    )
    before = copy.deepcopy(request)
    media.enqueue(_served(PNG, "image/png"), _served(PNG, "image/png"), _served(PDF, "application/pdf"))
    out = _inline(request)
    assert request == before
    assert [r.path for r in media.requests] == ["/avatar/7?sig=secret", "/shot", "/dl?id=1"]
    parts = out["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": _data("image/png", PNG), "detail": "low"}}
    assert parts[2] == before["messages"][0]["content"][2]
    assert parts[3] == parts[1]
    assert out["messages"][2]["content"][0]["image_url"]["url"] == _data("image/png", PNG)
    assert out["messages"][3]["content"][0] == {
        "type": "file",
        "file": {"filename": "x", "file_data": _data("application/pdf", PDF)},
    }
    gemini = translate(out["messages"])
    assert gemini["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}
    }
    validate_request(gemini)


def test_a_generic_content_type_is_sniffed_and_a_redirect_followed(media: MediaServer) -> None:
    """https://ai.google.dev/api/caching#Blob: inline data needs its real IANA type; an
    application/octet-stream answer is typed by its bytes. Redirects (CDNs, signed URLs) are followed."""
    media.enqueue(
        Script(status=302, raw_body=b"", headers={"location": "/real"}),
        _served(PNG, "application/octet-stream"),
    )
    out = _inline(_request(_image(f"http://127.0.0.1:{media.port}/go")))
    assert out["messages"][0]["content"][1]["image_url"]["url"] == _data("image/png", PNG)
    assert [r.path for r in media.requests] == ["/go", "/real"]


@pytest.mark.parametrize(
    "script",
    [
        Script(status=404, raw_body=b"nope"),
        Script(raw_body=b"<html>login</html>", headers={"content-type": "text/html"}),
        Script(raw_body=b"\x00\x01\x02", headers={"content-type": "application/octet-stream"}),
        Script(raw_body=PNG * 10, headers={"content-type": "image/png"}),
        Script(status=302, raw_body=b"", headers={"location": "http://169.254.169.254/latest/meta-data"}),
    ],
    ids=["error status", "a web page", "unknown bytes", "too big", "redirect to link-local"],
)
def test_what_cannot_be_inlined_goes_to_gemini_as_the_url(media: MediaServer, script: Script) -> None:
    """https://ai.google.dev/gemini-api/docs/file-input-methods: Gemini fetches URLs itself; when the
    proxy's fetch fails, the part stays the client's URL and Gemini decides."""
    media.enqueue(script)
    request = _request(_image(f"http://127.0.0.1:{media.port}/a"))
    assert _inline(request, MediaFetcher(allow_loopback=True, max_bytes=200, timeout=3.0)) is request
    assert len(media.requests) == 1


def test_a_slow_server_costs_at_most_the_time_budget(media: MediaServer) -> None:
    """The fetch happens before the attempts, so it has a deadline for all the request's media."""
    media.enqueue(_served(PNG, "image/png", header_delay=2.0))
    request = _request(_image(f"http://127.0.0.1:{media.port}/slow"))
    started = time.monotonic()
    assert _inline(request, MediaFetcher(allow_loopback=True, timeout=0.3)) is request
    assert time.monotonic() - started < 1.5


def test_loopback_and_local_names_are_never_fetched_by_default(media: MediaServer) -> None:
    """Only global addresses are fetched: a client must not read the proxy host's own services."""
    request = _request(_image(f"http://127.0.0.1:{media.port}/a"), _image(f"http://localhost:{media.port}/b"))
    assert _inline(request, MediaFetcher()) is request
    assert asyncio.run(GeminiBackend("http://gemini.invalid").prepare(request)) is request
    assert media.requests == []


class _Resolves:
    """Stands in for the system resolver: every name is 127.0.0.1 (no DNS in tests)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def test_names_are_checked_on_the_address_the_connection_uses(
    media: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to a refused address is refused in the lookup the connection itself makes,
    so it cannot answer differently between a check and the connect (DNS rebinding)."""
    monkeypatch.setattr(media_fetch, "ThreadedResolver", _Resolves)
    request = _request(_image(f"http://media.test:{media.port}/a"))
    assert _inline(request, MediaFetcher(timeout=3.0)) is request
    assert media.requests == []
    media.enqueue(_served(PNG, "image/png"))
    out = _inline(request)
    assert out["messages"][0]["content"][1]["image_url"]["url"] == _data("image/png", PNG)
    assert media.requests[0].headers["host"] == f"media.test:{media.port}"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("127.0.0.1", False), ("::1", False),
        ("::ffff:127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("100.64.0.1", False), ("169.254.169.254", False), ("fe80::1", False), ("fd00::1", False),
        ("0.0.0.0", False), ("224.0.0.1", False),
    ],
)  # fmt: skip
def test_only_global_addresses_are_fetched_from(address: str, allowed: bool) -> None:
    """Loopback, private (RFC 1918, ULA), shared, link-local (cloud metadata), unspecified and multicast
    addresses are refused; loopback only opens with the tests' explicit flag."""
    ip = ipaddress.ip_address(address)
    assert allowed_ip(ip) is allowed
    assert allowed_ip(ip, allow_loopback=True) is (allowed or ip.is_loopback or address == "::ffff:127.0.0.1")
