"""A small threaded HTTP/1.1 server base for fake upstreams: scripted faults, recorded requests.

Fakes run in the test process (background thread, 127.0.0.1, port 0), so tests script them directly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Script:
    """One scripted answer. Exactly what a test needs; unset fields mean 'behave normally'."""

    status: int = 200
    json_body: Any = None  # a JSON answer (error bodies included)
    raw_body: bytes | None = None  # raw bytes, for garbage answers
    headers: dict[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None  # a stream: each item is written as one HTTP chunk
    delay: float = 0.0  # seconds between stream chunks
    header_delay: float = 0.0  # seconds before the status line (slow upstream)
    drop_after: int | None = None  # close the connection after N stream chunks (no terminator)
    drop_before_headers: bool = False  # close without answering at all
    echo_key: bool = False  # "{KEY}" in the body or events becomes the key the request carried


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripts: deque[Script] = deque()
        self.sent_at: list[float] = []  # time each stream chunk of the latest stream was written
        self.stream_ends: list[int] = []  # chunks each stream had written when it ended (done or cut off)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._dispatch(self)

            def do_POST(self) -> None:
                fake._dispatch(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.request_queue_size = 1024
        self._server.daemon_threads = True
        self._server.server_bind()
        self._server.server_activate()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------------------

    def enqueue(self, *scripts: Script) -> None:
        with self._lock:
            self.scripts.extend(scripts)

    def reset(self) -> None:
        with self._lock:
            self.scripts.clear()
            self.requests.clear()
            self.sent_at = []
            self.stream_ends = []

    def last(self, path_part: str = "") -> Recorded:
        with self._lock:
            return next(r for r in reversed(self.requests) if path_part in r.path)

    def pause(self, seconds: float) -> None:
        """Every wait a script asks for; in-process tests (tests/unit/pipeline/inproc.py) count it instead."""
        time.sleep(seconds)

    @contextlib.contextmanager
    def held_after_first_chunk(self, release: threading.Event, bound: float = 10.0) -> Iterator[None]:
        """Streams wait after their first chunk until `release` is set (`bound` only catches a proxy that
        buffers): a test proves the first chunk reached the client while upstream had sent only that one."""

        def pause(seconds: float) -> None:
            release.wait(bound)
            time.sleep(seconds)

        self.pause = pause  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self.pause

    def _next_script(self) -> Script | None:
        with self._lock:
            return self.scripts.popleft() if self.scripts else None

    # -- serving ------------------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Recorded(
            h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body, time.monotonic()
        )
        with self._lock:
            self.requests.append(rec)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.handle(h, rec)

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        """Subclasses answer here; `play` serves a Script."""
        raise NotImplementedError

    def play(self, h: BaseHTTPRequestHandler, s: Script, key: str | None = None) -> None:
        """Serve a Script; `key` is the request's API key, for scripts that echo it as providers do."""
        if s.echo_key:
            secret = (key or "").encode()
            s = replace(
                s,
                raw_body=(s.raw_body or json.dumps(s.json_body).encode()).replace(b"{KEY}", secret),
                events=None if s.events is None else [e.replace(b"{KEY}", secret) for e in s.events],
            )
        if s.header_delay:
            self.pause(s.header_delay)
        if s.drop_before_headers:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if s.events is not None:
            self.send_stream(h, s.events, s.delay, s.status, s.headers, s.drop_after)
            return
        body = s.raw_body if s.raw_body is not None else json.dumps(s.json_body).encode()
        self.send_body(h, s.status, body, {"content-type": "application/json", **s.headers})

    @staticmethod
    def send_body(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def send_json(
        self, h: BaseHTTPRequestHandler, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> None:
        self.send_body(
            h, status, json.dumps(obj).encode(), {"content-type": "application/json", **(headers or {})}
        )

    def send_stream(
        self,
        h: BaseHTTPRequestHandler,
        events: list[bytes],
        delay: float,
        status: int = 200,
        headers: dict[str, str] | None = None,
        drop_after: int | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("transfer-encoding", "chunked")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.flush()
        sent: list[float] = []
        self.sent_at = sent
        try:
            for i, ev in enumerate(events):
                if drop_after is not None and i >= drop_after:
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                if i and delay:
                    self.pause(delay)
                h.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                h.wfile.flush()
                sent.append(time.monotonic())
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        finally:
            self.stream_ends.append(len(sent))


def read_held(fake: FakeServer, pieces: Callable[[], Iterable[str]]) -> tuple[str, float | None, int | None]:
    """Read a stream (`pieces()`: the client's text deltas) while `fake` holds back all but its first
    chunk until the client has text: the text, when the first text arrived, and how many chunks upstream
    had sent by then (1 unless the proxy buffers)."""
    first_seen = threading.Event()
    first_at, sent_by_then, got = None, None, ""
    with fake.held_after_first_chunk(first_seen):
        for piece in pieces():
            if piece and first_at is None:
                first_at, sent_by_then = time.monotonic(), len(fake.sent_at)
                first_seen.set()
            got += piece
    return got, first_at, sent_by_then
