"""Fast fake OpenRouter and Gemini for the benchmark: raw asyncio HTTP/1.1, keep-alive, TCP_NODELAY.

Run as its own process (`python -m bench.upstream --gap 0.01`) so it never shares a GIL with the
load client; it prints `PORT <n>` once listening and serves until SIGINT/SIGTERM. Credentials are
not checked.

OpenRouter (OpenAI wire format):
- `GET /api/v1/models`: a small model list.
- `POST /api/v1/chat/completions`: a canned ~600-byte chat.completion, or with `"stream": true` an
  OpenAI SSE stream of `events` chunk events (fewer when `max_tokens` is smaller), then `data: [DONE]`.
  A request whose `user` starts with `bench.wire.FAILOVER_USER` is answered 429 (`Retry-After: 0`)
  the first time that exact `user` value is seen, and normally after that.

Gemini (v1beta wire format, as tests/fakes/fake_gemini.py speaks it):
- `GET /v1beta/models`: one page, `models/gemini-2.5-flash`.
- `POST /v1beta/models/gemini-2.5-flash:generateContent`: a canned GenerateContentResponse.
- `POST /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`: `events` events (fewer when
  `generationConfig.maxOutputTokens` is smaller) framed `data: <json>\\r\\n\\r\\n`, no [DONE]; the last
  carries `finishReason` and `usageMetadata`.

Every stream is one HTTP chunk per event, `gap` seconds apart on an absolute schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import Any

from bench.wire import (
    FAILOVER_USER,
    GEMINI_MODEL,
    GEMINI_MODEL_PATH,
    GEMINI_MODELS,
    OPENAI_MODEL,
    OPENROUTER_CHAT,
    OPENROUTER_MODELS,
)

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
ANSWER = (
    "Hello! This is a canned answer from the benchmark upstream. It is long enough to look like "
    "a short real reply, so the proxy has a realistic body to carry back to the client."
)
MAX_REMEMBERED = 100_000  # failover probes already answered 429 (bounded memory)


def _response(status: str, body: bytes, extra_headers: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status.encode(), len(body), extra_headers)
        + body
    )


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _openai_completion() -> dict[str, Any]:
    return {
        "id": "gen-bench-0000000000000000000000",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": OPENAI_MODEL,
        "provider": "BenchProvider",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 42, "total_tokens": 66},
    }


def _gemini_response(text: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    obj: dict[str, Any] = {"candidates": [candidate]}
    if final:
        candidate["finishReason"] = "STOP"
        obj["usageMetadata"] = {"promptTokenCount": 24, "candidatesTokenCount": 42, "totalTokenCount": 66}
    obj.update(modelVersion=GEMINI_MODEL, responseId="bench-0000000000000000")
    return obj


COMPLETION = _response("200 OK", _json(_openai_completion()))
GENERATE = _response("200 OK", _json(_gemini_response(ANSWER, final=True)))
MODELS = _response(
    "200 OK", _json({"data": [{"id": OPENAI_MODEL, "name": OPENAI_MODEL, "context_length": 128000}]})
)
GEMINI_LIST = _response(
    "200 OK",
    _json(
        {"models": [{"name": f"models/{GEMINI_MODEL}", "supportedGenerationMethods": ["generateContent"]}]}
    ),
)
RATE_LIMITED = _response(
    "429 Too Many Requests",
    b'{"error":{"code":429,"message":"Rate limit exceeded: bench failover probe"}}',
    b"retry-after: 0\r\n",
)
NOT_FOUND = _response("404 Not Found", b'{"error":{"code":404,"message":"no such route"}}')
BAD_REQUEST = _response("400 Bad Request", b'{"error":{"code":400,"message":"bad request body"}}')


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _framed(events: list[bytes], tail: bytes = b"") -> tuple[bytes, ...]:
    """One HTTP chunk per SSE event; `tail` (more events) and the end of the body ride the last."""
    out = [_chunk(e) for e in events]
    out[-1] += (_chunk(tail) if tail else b"") + b"0\r\n\r\n"
    return tuple(out)


@cache
def openai_stream(events: int) -> tuple[bytes, ...]:
    """An OpenAI SSE stream with `events` chunk events; [DONE] rides the last."""
    out: list[bytes] = []
    for i in range(events):
        delta: dict[str, str] = (
            {"role": "assistant", "content": "tok000"} if i == 0 else {"content": f" tok{i:03d}"}
        )
        obj = {
            "id": "gen-bench-0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": OPENAI_MODEL,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": "stop" if i == events - 1 else None,
                    "logprobs": None,
                }
            ],
        }
        out.append(b"data: " + _json(obj) + b"\n\n")
    return _framed(out, b"data: [DONE]\n\n")


@cache
def gemini_stream(events: int) -> tuple[bytes, ...]:
    """A Gemini SSE stream: `events` GenerateContentResponse events, the last one final, no [DONE]."""
    out = [
        b"data: " + _json(_gemini_response(f" tok{i:03d}", final=i == events - 1)) + b"\r\n\r\n"
        for i in range(events)
    ]
    return _framed(out)


def _limit(wanted: Any, most: int) -> int:
    return min(most, wanted) if isinstance(wanted, int) and wanted > 0 else most


class Upstream:
    def __init__(self, gap: float, events: int) -> None:
        self.gap = gap
        self.events = events
        self._limited: OrderedDict[str, None] = OrderedDict()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, length, chunked = _parse_head(head)
                body = await _read_body(reader, length, chunked)
                await self._route(method, path, body, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down with keep-alive connections still open
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, method: bytes, path: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if method == b"GET":
            listing = {OPENROUTER_MODELS.encode(): MODELS, GEMINI_MODELS.encode(): GEMINI_LIST}
            writer.write(listing.get(path, NOT_FOUND))
        elif method != b"POST":
            writer.write(NOT_FOUND)
        elif path == OPENROUTER_CHAT.encode():
            await self._answer(body, writer, self._openai)
        elif path.startswith(GEMINI_MODEL_PATH.encode() + b":"):
            await self._answer(body, writer, self._gemini(path.endswith(b":streamGenerateContent")))
        else:
            writer.write(NOT_FOUND)

    async def _answer(
        self,
        body: bytes,
        writer: asyncio.StreamWriter,
        pick: Callable[[dict[str, Any]], bytes | tuple[bytes, ...]],
    ) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            writer.write(BAD_REQUEST)
            return
        answer = pick(request)
        if isinstance(answer, bytes):
            writer.write(answer)
        else:
            await self._stream(answer, writer)

    def _openai(self, request: dict[str, Any]) -> bytes | tuple[bytes, ...]:
        user = request.get("user")
        if isinstance(user, str) and user.startswith(FAILOVER_USER) and user not in self._limited:
            self._limited[user] = None
            if len(self._limited) > MAX_REMEMBERED:
                self._limited.popitem(last=False)
            return RATE_LIMITED
        if not request.get("stream"):
            return COMPLETION
        return openai_stream(_limit(request.get("max_tokens"), self.events))

    def _gemini(self, stream: bool) -> Callable[[dict[str, Any]], bytes | tuple[bytes, ...]]:
        def pick(request: dict[str, Any]) -> bytes | tuple[bytes, ...]:
            if not stream:
                return GENERATE
            config = request.get("generationConfig") or {}
            return gemini_stream(_limit(config.get("maxOutputTokens"), self.events))

        return pick

    async def _stream(self, chunks: tuple[bytes, ...], writer: asyncio.StreamWriter) -> None:
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
