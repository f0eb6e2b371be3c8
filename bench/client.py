"""The load client's HTTP/1.1 side: one keep-alive connection, the request it sends and the checks on the
answer (a complete JSON body, or a complete SSE stream with the expected number of content events).

A stream's *content events* are the ones carrying one upstream chunk's text: every `data:` event in the
OpenAI and Gemini dialects, only `text_delta` events in Messages and `response.output_text.delta` events in
Responses (which wrap the text in more events: message_start, content_block_start, ...). Their arrival
times give the first-content latency; all events are counted too (`frames`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.wire import Wire


@dataclass(frozen=True, slots=True)
class Job:
    """One request to send and what a complete answer to it looks like."""

    request: bytes
    stream: bool
    expect_events: int  # content events in a complete stream
    wire: Wire
    chunks: int = 0  # chunks the upstream sends for it (the CPU-per-chunk denominator)


@dataclass(slots=True)
class StreamRecord:
    ttfb_ms: float
    total_ms: float
    events: int  # content events
    done: bool
    arrivals_ms: list[float]  # of the content events
    frames: int = 0  # all SSE events, the closing one included


class BadResponse(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def _head(self) -> dict[bytes, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if headers.get(b"connection", b"").lower() == b"close":
            self.reusable = False
        if len(status) < 2 or status[1] != b"200":
            body = await self._body(headers, None)
            self.reusable = False
            raise BadResponse(f"HTTP {b' '.join(status[1:]).decode(errors='replace')}: {body[:200]!r}")
        return headers

    async def _body(self, headers: dict[bytes, bytes], on_chunk: Callable[[bytes], None] | None) -> bytes:
        reader = self.reader
        if b"content-length" in headers:
            data = await reader.readexactly(int(headers[b"content-length"]))
            if on_chunk:
                on_chunk(data)
            return data
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            parts: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    return b"".join(parts)
                data = (await reader.readexactly(size + 2))[:-2]
                if on_chunk:
                    on_chunk(data)
                else:
                    parts.append(data)
        self.reusable = False
        data = await reader.read(-1)
        if on_chunk:
            on_chunk(data)
        return data

    async def complete(self, job: Job) -> None:
        """One non-streaming request; raises unless it is a complete 200 answer."""
        self.writer.write(job.request)
        headers = await self._head()
        body = await self._body(headers, None)
        if not body.endswith(b"}") or job.wire.complete_marker not in body:
            self.reusable = False
            raise BadResponse(f"incomplete answer body ({len(body)} bytes): {body[:120]!r}")

    async def stream(self, job: Job) -> StreamRecord:
        """One streaming request; records when each content event became complete."""
        wire = job.wire
        t0 = time.perf_counter()
        self.writer.write(job.request)
        headers = await self._head()
        arrivals: list[float] = []
        buf = bytearray()
        done, last, frames = False, b"", 0

        def on_chunk(data: bytes) -> None:
            nonlocal done, last, frames
            now = time.perf_counter()
            buf.extend(data)
            while True:
                end = buf.find(wire.event_sep)
                if end < 0:
                    return
                event = bytes(buf[:end])
                del buf[: end + len(wire.event_sep)]
                frames += 1
                # The closing event must be the last one: anything after it (an error event) spoils it.
                done = wire.done_event is not None and event.startswith(wire.done_event)
                if not done and event.startswith(wire.content_prefix) and wire.content_marker in event:
                    arrivals.append((now - t0) * 1000)
                    last = event

        await self._body(headers, on_chunk)
        total = (time.perf_counter() - t0) * 1000
        if wire.final_marker is not None:
            done = not buf.strip() and wire.final_marker in last
        if len(arrivals) != job.expect_events or not done:
            self.reusable = False
            raise BadResponse(f"stream incomplete: {len(arrivals)}/{job.expect_events} events, done={done}")
        return StreamRecord(arrivals[0], total, len(arrivals), done, arrivals, frames)

    async def run(self, job: Job, timeout: float) -> StreamRecord | None:
        async with asyncio.timeout(timeout):
            if job.stream:
                return await self.stream(job)
            await self.complete(job)
            return None
