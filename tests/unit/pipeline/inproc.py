"""The end-to-end fakes (FakeOpenRouter, FakeGemini), served in-process: no sockets, no mitmdump.

`serve(fakes, timeout)` is a MockUpstream handler that hands each call to the fake for its host, catches
what the fake writes, and turns it into the answer or error `UpstreamClient` would give: a wait before
the status line of at least `timeout` is a timeout, a pause between stream chunks as long is a stall, a
closed connection is a cut. Waits are counted, never slept. `transport(core)` is an httpx transport that
hands requests to the pipeline, so the openai SDK and httpx talk to the core as they talk to the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from addons import app
from addons.frontends.base import Reply
from addons.pipeline import discovery, dispatch
from addons.pipeline.core import Core
from addons.settings import load_settings
from addons.upstream import UpstreamCall, UpstreamError
from tests.fakes.server import FakeServer, Recorded
from tests.unit.pipeline.mock_upstream import Handler, MockAnswer, MockUpstream

OPENROUTER_HOST = "openrouter.ai"
GEMINI_HOST = "generativelanguage.googleapis.com"


class _Wire:
    """Stands in for the BaseHTTPRequestHandler a fake writes to (and for its socket and wfile)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.raw = bytearray()
        self.waited = 0.0  # before the status line
        self.stalled = False
        self.cut = False
        self.close_connection = False
        self.connection = self
        self.wfile = self

    def pause(self, seconds: float) -> None:
        if self.status is None:
            self.waited += seconds
        elif seconds >= self.timeout:
            self.stalled = True  # the client gave up: what follows never reaches it

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, name: str, value: str) -> None:
        self.headers[name.lower()] = value

    def end_headers(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        if not (self.stalled or self.cut):
            self.raw += data

    def flush(self) -> None:
        pass

    def shutdown(self, how: int) -> None:
        self.cut = True

    def chunks(self) -> list[bytes]:
        """The body as the pieces the fake wrote (HTTP chunked framing undone)."""
        if self.headers.get("transfer-encoding") != "chunked":
            return [bytes(self.raw)]
        out, rest = [], bytes(self.raw)
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out.append(rest[:size])
            rest = rest[size + 2 :]
        return out

    def answer(self, host: str) -> MockAnswer | UpstreamError:
        if self.waited >= self.timeout:
            return UpstreamError(
                504, f"Upstream {host} sent no response within {self.timeout:g} s.", "upstream_timeout"
            )
        if self.status is None:
            return UpstreamError(
                502, f"Upstream {host} failed before answering: Server disconnected.", "upstream_error"
            )
        framing = ("transfer-encoding", "content-length")
        headers = {k: v for k, v in self.headers.items() if k not in framing}
        stall = UpstreamError(
            504, f"Upstream {host} stalled: no data for {self.timeout:g} s.", "upstream_timeout"
        )
        return MockAnswer(
            self.status, self.chunks(), headers, stall if self.stalled else None, host, cut=self.cut
        )


def serve(fakes: dict[str, FakeServer], timeout: float) -> Handler:
    """A handler answering each call with the fake for its host (OPENROUTER_HOST, GEMINI_HOST)."""

    def handler(call: UpstreamCall) -> MockAnswer | UpstreamError:
        url = urlsplit(call.url)
        host = url.hostname or "?"
        fake = fakes[host]
        target = url.path + (f"?{url.query}" if url.query else "")
        headers = {k.lower(): v for k, v in call.headers.items()}
        rec = Recorded(call.method, target, headers, call.body, time.monotonic())
        with fake._lock:
            fake.requests.append(rec)
        wire = _Wire(timeout)
        fake.pause = wire.pause  # type: ignore[method-assign]
        fake.handle(wire, rec)  # type: ignore[arg-type]
        return wire.answer(host)

    return handler


@contextlib.contextmanager
def offline(fake: FakeServer) -> Iterator[FakeServer]:
    """A fake that never serves a socket (its listening one is closed again)."""
    try:
        yield fake
    finally:
        fake._server.server_close()


async def _respond(core: Core, request: httpx.Request) -> httpx.Response:
    body = await request.aread()
    headers = {k.lower(): v for k, v in request.headers.items()}
    path = request.url.raw_path.decode()
    reply = await dispatch.handle(core, request.method, path, headers, body)
    if reply is None:
        return httpx.Response(404, json={"error": {"message": "not a proxy path", "code": "passthrough"}})
    return httpx.Response(reply.status, headers=reply.headers, content=await _drain(reply))


async def _drain(reply: Reply) -> bytes:
    if reply.stream is None:
        return reply.body
    return b"".join([c async for c in reply.stream])


class Transport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Requests go to the pipeline of `core`, as mitmproxy's glue hands them on (sync or async clients)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return asyncio.run(_respond(self.core, request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await _respond(self.core, request)


BASE_URL = "http://proxy.test/v1"


def client_kwargs(core: Core, asynchronous: bool = False) -> dict[str, Any]:
    """What openai.OpenAI / AsyncOpenAI need to talk to `core` in-process."""
    http = httpx.AsyncClient if asynchronous else httpx.Client
    return {"base_url": BASE_URL, "http_client": http(transport=Transport(core), timeout=30)}


def sse_events(text: str) -> list[Any]:
    """The data events of an SSE body; every one must be JSON except the final [DONE]."""
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in datas]


def core_for(fakes: dict[str, FakeServer], env: dict[str, str], yaml: dict[str, Any] | None = None) -> Core:
    """A core on `env` alone (no defaults added), served by `fakes`, after start-up model discovery."""
    settings = load_settings({}, {"LLM_HISTORY": "off", **env}, yaml or {})
    core = app.build(settings, upstream=MockUpstream(serve(fakes, settings.proxy_timeout)))
    asyncio.run(discovery.discover(core))
    return core


class LogWatch(logging.Handler):
    """Every log line the pipeline writes while installed, at debug level (a leak check reads them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogWatch]:
        root = logging.getLogger()
        level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(level)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
