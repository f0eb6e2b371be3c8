"""An HTTP(S) proxy on 127.0.0.1 that forwards nothing: it refuses every request and notes its target.

A CLI run with HTTPS_PROXY/HTTP_PROXY pointing here (and NO_PROXY for loopback) cannot reach the
internet through any client that honours those variables, and the test sees every attempt:

    with Sink() as sink:
        ... run the CLI with via=sink.url ...
    assert sink.targets == []
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink:
    def __init__(self) -> None:
        self.targets: list[str] = []  # "CONNECT host:443", "GET http://host/path"
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def refuse(self) -> None:
                sink.targets.append(f"{self.command} {self.path}")
                body = b"refused: the agent tests allow no traffic beyond 127.0.0.1\n"
                self.send_response(403)
                self.send_header("content-length", str(len(body)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            do_CONNECT = do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = refuse

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
