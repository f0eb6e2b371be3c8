"""Low-overhead load client: raw asyncio streams, HTTP/1.1 keep-alive, one process per measurement.

`python -m bench.loadgen '<json spec>'` prints one JSON result line. Every loop is bounded by a
request/stream count *and* a deadline; every response is checked (status 200, complete body or
complete SSE stream) and failures are counted, never hidden.

Modes:
- `latency`: one connection, `count` sequential non-streaming requests; per-request latency in ms.
- `throughput`: `concurrency` connections looping non-streaming requests for `duration` seconds.
- `stream`: one connection, `count` sequential streams; TTFB, total and per-event arrival times.
- `stream_load`: `concurrency` connections looping streams for `duration` seconds; events counted.

With `cpu_pids` the result carries each process's CPU seconds (utime+stime from /proc) spent inside
the measurement window (after warm-up, before the connections close).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_ERROR_SAMPLES = 5
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant. Answer in one short sentence."},
    {"role": "user", "content": "Say hello to the benchmark, and mention that this is a test request."},
]


@dataclass(slots=True)
class Spec:
    mode: str
    port: int
    path: str
    host: str = "127.0.0.1"
    model: str = "openai/gpt-4o-mini"
    count: int = 100
    duration: float = 5.0
    concurrency: int = 1
    warmup: int = 20
    events: int = 50  # SSE chunk events a full stream must carry
    timeout: float = 10.0  # per request / per stream
    deadline: float = 60.0  # hard cap on the whole measurement, seconds
    cpu_pids: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StreamRecord:
    ttfb_ms: float
    total_ms: float
    events: int
    done: bool
    arrivals_ms: list[float]


@dataclass(slots=True)
class Result:
    mode: str
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    window_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)
    events: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)

    def fail(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(what[:300])


class BadResponse(Exception):
    pass


def cpu_seconds(pid: int) -> float:
    """utime+stime of a whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (from the first line of /proc/stat)."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuWindow:
    """CPU seconds per watched process, for the client itself, and for everything else on the machine."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.t0 = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["client"] = time.process_time()
        sample["machine"] = machine_busy_seconds()
        return sample

    def open(self) -> None:
        self.start = self._sample()
        self.t0 = time.perf_counter()

    def close(self, result: Result) -> None:
        result.window_s = time.perf_counter() - self.t0
        now = self._sample()
        cpu = {name: now[name] - self.start[name] for name in now}
        ours = {pid: cpu[name] for name, pid in self.pids.items()}  # a pid watched twice counts once
        cpu["others"] = max(0.0, cpu["machine"] - sum(ours.values()) - cpu["client"])
        result.cpu_s = cpu


def build_request(spec: Spec, stream: bool, max_tokens: int | None = None) -> bytes:
    body: dict[str, Any] = {"model": spec.model, "messages": MESSAGES, "stream": stream}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
        f"Content-Type: application/json\r\nAccept: {'text/event-stream' if stream else 'application/json'}"
        f"\r\nAuthorization: Bearer bench-client\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


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

    async def _body(self, headers: dict[bytes, bytes], on_chunk: Any) -> bytes:
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

    async def complete(self, request: bytes) -> None:
        """One non-streaming request; raises unless it is a complete 200 chat.completion."""
        self.writer.write(request)
        headers = await self._head()
        body = await self._body(headers, None)
        if not body.endswith(b"}") or b'"chat.completion"' not in body:
            self.reusable = False
            raise BadResponse(f"incomplete completion body ({len(body)} bytes): {body[:120]!r}")

    async def stream(self, request: bytes, expect_events: int) -> StreamRecord:
        """One streaming request; records when each SSE data event became complete."""
        t0 = time.perf_counter()
        self.writer.write(request)
        headers = await self._head()
        arrivals: list[float] = []
        buf = bytearray()
        done = False

        def on_chunk(data: bytes) -> None:
            nonlocal done
            now = time.perf_counter()
            buf.extend(data)
            while True:
                end = buf.find(b"\n\n")
                if end < 0:
                    return
                event = bytes(buf[:end])
                del buf[: end + 2]
                if event.startswith(b"data: [DONE]"):
                    done = True
                elif event.startswith(b"data: "):
                    arrivals.append((now - t0) * 1000)

        await self._body(headers, on_chunk)
        total = (time.perf_counter() - t0) * 1000
        if len(arrivals) != expect_events or not done:
            self.reusable = False
            raise BadResponse(f"stream incomplete: {len(arrivals)}/{expect_events} events, [DONE]={done}")
        return StreamRecord(arrivals[0], total, len(arrivals), done, arrivals)


async def _with_conn(spec: Spec, conn: Conn | None) -> Conn:
    if conn is not None and conn.reusable:
        return conn
    if conn is not None:
        conn.close()
    return await Conn.open(spec.host, spec.port)


def _drop(conn: Conn | None) -> Conn | None:
    """A failed exchange leaves the connection in an unknown state: close it, reconnect next time."""
    if conn is not None:
        conn.close()
    return None


async def _warm(spec: Spec, conn: Conn | None, stream: bool, n: int, result: Result) -> Conn | None:
    """Open the connection and the proxy's upstream connections; warm-up failures count as errors."""
    request = build_request(spec, stream, max_tokens=2 if stream else None)
    for _ in range(n):
        try:
            conn = await _with_conn(spec, conn)
            async with asyncio.timeout(spec.timeout):
                if stream:
                    await conn.stream(request, 2)
                else:
                    await conn.complete(request)
        except Exception as e:
            result.fail(f"warm-up: {type(e).__name__}: {e}")
            conn = _drop(conn)
    return conn


async def run_latency(spec: Spec) -> Result:
    result = Result("latency")
    conn = await _warm(spec, None, False, spec.warmup, result)
    request = build_request(spec, False)
    window = CpuWindow(spec.cpu_pids)
    window.open()
    end = time.perf_counter() + spec.deadline
    for _ in range(spec.count):
        if time.perf_counter() > end:
            result.fail("deadline reached before all requests were sent")
            break
        try:
            conn = await _with_conn(spec, conn)
            t0 = time.perf_counter()
            async with asyncio.timeout(spec.timeout):
                await conn.complete(request)
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            result.ok += 1
        except Exception as e:
            result.fail(f"{type(e).__name__}: {e}")
            conn = _drop(conn)
    window.close(result)
    if conn:
        conn.close()
    return result


async def run_stream(spec: Spec) -> Result:
    result = Result("stream")
    conn = await _warm(spec, None, True, max(1, spec.warmup), result)
    request = build_request(spec, True)
    window = CpuWindow(spec.cpu_pids)
    window.open()
    end = time.perf_counter() + spec.deadline
    for _ in range(spec.count):
        if time.perf_counter() > end:
            result.fail("deadline reached before all streams were run")
            break
        try:
            conn = await _with_conn(spec, conn)
            async with asyncio.timeout(spec.timeout):
                record = await conn.stream(request, spec.events)
            result.streams.append(record)
            result.events += record.events
            result.ok += 1
        except Exception as e:
            result.fail(f"{type(e).__name__}: {e}")
            conn = _drop(conn)
    window.close(result)
    if conn:
        conn.close()
    return result


async def run_load(spec: Spec, stream: bool) -> Result:
    """`concurrency` workers loop requests (or streams) until the window closes."""
    result = Result("stream_load" if stream else "throughput")
    request = build_request(spec, stream)
    start = asyncio.Event()
    warm = max(1, spec.warmup // spec.concurrency) if not stream else 1
    conns = await asyncio.gather(*(_warm(spec, None, stream, warm, result) for _ in range(spec.concurrency)))
    window = CpuWindow(spec.cpu_pids)
    stop_at = 0.0

    async def worker(conn: Conn | None) -> Conn | None:
        await start.wait()
        while time.perf_counter() < stop_at:
            try:
                conn = await _with_conn(spec, conn)
                t0 = time.perf_counter()
                async with asyncio.timeout(spec.timeout):
                    if stream:
                        record = await conn.stream(request, spec.events)
                        # Events that arrived inside the window, also from a stream still running at its end.
                        limit = (stop_at - t0) * 1000
                        result.events += sum(1 for a in record.arrivals_ms if a <= limit)
                    else:
                        await conn.complete(request)
                if time.perf_counter() <= stop_at:
                    result.ok += 1
            except Exception as e:
                result.fail(f"{type(e).__name__}: {e}")
                conn = _drop(conn)
                await asyncio.sleep(0.01)  # no tight loop against a dead target
        return conn

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    window.open()
    stop_at = time.perf_counter() + min(spec.duration, spec.deadline)
    start.set()
    # Streams finish after the window: count only what completed inside it, close CPU window at stop_at.
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    window.close(result)
    finished = await asyncio.gather(*tasks)
    for c in finished:
        if c:
            c.close()
    return result


async def run(spec: Spec) -> Result:
    if spec.mode == "latency":
        return await run_latency(spec)
    if spec.mode == "stream":
        return await run_stream(spec)
    if spec.mode in ("throughput", "stream_load"):
        return await run_load(spec, stream=spec.mode == "stream_load")
    raise ValueError(f"unknown mode {spec.mode!r}")


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    result = asyncio.run(run(spec))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
