"""Fast fake OpenRouter for the benchmark: raw asyncio HTTP/1.1, keep-alive, TCP_NODELAY.

Run as its own process (`python -m bench.upstream --gap 0.01`) so it never shares a GIL with the
load client; it prints `PORT <n>` once listening and serves until SIGINT/SIGTERM.

- `GET /api/v1/models`: a small model list.
- `POST /api/v1/chat/completions`: a canned ~600-byte chat.completion, or with `"stream": true` an
  OpenAI SSE stream of `events` chunk events (fewer when `max_tokens` is smaller), one HTTP chunk
  per event, `gap` seconds apart on an absolute schedule, then `data: [DONE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
from functools import cache

MODEL = "openai/gpt-4o-mini"
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
        % (status.encode(), content_type, len(body))
        + body
    )


def _completion_body() -> bytes:
    content = (
        "Hello! This is a canned answer from the benchmark upstream. It is long enough to look like "
        "a short real reply, so the proxy has a realistic body to carry back to the client."
    )
    obj = {
        "id": "gen-bench-0000000000000000000000",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "provider": "BenchProvider",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 42, "total_tokens": 66},
    }
    return json.dumps(obj, separators=(",", ":")).encode()


COMPLETION = _response("200 OK", _completion_body())
MODELS = _response(
    "200 OK",
    json.dumps({"data": [{"id": MODEL, "name": MODEL, "context_length": 128000}]}).encode(),
)
NOT_FOUND = _response("404 Not Found", b'{"error":{"code":404,"message":"no such route"}}')
BAD_REQUEST = _response("400 Bad Request", b'{"error":{"code":400,"message":"bad request body"}}')


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@cache
def stream_chunks(events: int) -> tuple[bytes, ...]:
    """HTTP chunks (already framed) of an SSE stream with `events` chunk events; [DONE] rides the last."""
    out: list[bytes] = []
    for i in range(events):
        delta: dict[str, str] = {"content": f" tok{i:03d}"}
        if i == 0:
            delta = {"role": "assistant", "content": "tok000"}
        obj = {
            "id": "gen-bench-0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": "stop" if i == events - 1 else None,
                    "logprobs": None,
                }
            ],
        }
        out.append(_chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"))
    out[-1] += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    return tuple(out)


class Upstream:
    def __init__(self, gap: float, events: int) -> None:
        self.gap = gap
        self.events = events

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, length, chunked = _parse_head(head)
                body = await _read_body(reader, length, chunked)
                if method == b"POST" and path == b"/api/v1/chat/completions":
                    await self._chat(body, writer)
                elif method == b"GET" and path == b"/api/v1/models":
                    writer.write(MODELS)
                else:
                    writer.write(NOT_FOUND)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down with keep-alive connections still open
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _chat(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            writer.write(BAD_REQUEST)
            return
        if not request.get("stream"):
            writer.write(COMPLETION)
            return
        wanted = request.get("max_tokens")
        n = min(self.events, wanted) if isinstance(wanted, int) and wanted > 0 else self.events
        chunks = stream_chunks(n)
        loop = asyncio.get_running_loop()
        start = loop.time()
        writer.write(STREAM_HEAD + chunks[0])
        await writer.drain()
        for i, chunk in enumerate(chunks[1:], start=1):
            delay = start + i * self.gap - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()


def _parse_head(head: bytes) -> tuple[bytes, bytes, int, bool]:
    lines = head.split(b"\r\n")
    method, path, _ = lines[0].split(b" ", 2)
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return method, path.split(b"?", 1)[0], length, chunked


async def _read_body(reader: asyncio.StreamReader, length: int, chunked: bool) -> bytes:
    if not chunked:
        return await reader.readexactly(length) if length else b""
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def serve(port: int, gap: float, events: int) -> None:
    upstream = Upstream(gap, events)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--gap", type=float, default=0.010, help="seconds between stream events")
    parser.add_argument("--events", type=int, default=50, help="chunk events per stream")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.gap, args.events))


if __name__ == "__main__":
    main()
