"""Low-overhead load client: raw asyncio streams, HTTP/1.1 keep-alive, one process per measurement.

`python -m bench.loadgen '<json spec>'` prints one JSON result line. Every loop is bounded by a
request/stream count *and* a deadline; every response is checked (status 200, complete body or
complete SSE stream with the expected number of events) and failures are counted, never hidden.
`api` says which wire format the target speaks (OpenAI, or Gemini for the fake Gemini itself, or the
proxy's Messages and Responses front-ends); bench.client says what counts as a content event in each.

Modes:
- `latency`: one connection, `count` sequential non-streaming requests; per-request latency in ms.
- `throughput`: `concurrency` connections looping non-streaming requests for `duration` seconds.
- `stream`: one connection, `count` sequential streams; TTFB, total and per-event arrival times.
- `stream_load`: `concurrency` connections looping streams for `duration` seconds (worker starts
  `stagger` s apart); events and upstream chunks counted, and the TTFB of streams started once all
  workers were running.
- `failover`: one connection, `count` pairs: a normal request, then one whose first attempt the
  upstream answers 429 (see bench.wire.FAILOVER_USER); latencies of each kind.
- `sessions`: `count` requests, each with its own `X-Session-ID`, over `concurrency` connections.
- `soak`: `concurrency` connections for `duration` s cycling over `count` session ids and the `mix`
  of [model, stream, extra_events] variants (streams are short); `rss_pid`'s RSS sampled every
  `rss_every` s.

With `cpu_pids` the result carries each process's CPU seconds (utime+stime from /proc) spent inside
the measurement window (after warm-up, before the connections close).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.client import Conn, Job, StreamRecord
from bench.procfs import cpu_seconds, machine_busy_seconds, rss_mb
from bench.wire import (
    FAILOVER_USER,
    OPENAI_MODEL,
    WIRES,
    Api,
    Payload,
    chat_path,
    http_request,
    request_body,
)

MAX_ERROR_SAMPLES = 5
SHORT_STREAM = 2  # events in warm-up and soak streams (max_tokens)


@dataclass(slots=True)
class Spec:
    mode: str
    port: int
    path: str
    host: str = "127.0.0.1"
    api: Api = "openai"
    model: str = OPENAI_MODEL
    payload: Payload = "short"  # or "agent": a ~200 KB coding-agent turn
    count: int = 100
    duration: float = 5.0
    concurrency: int = 1
    warmup: int = 20
    events: int = 50  # SSE chunk events the upstream sends per full stream
    extra_events: int = 0  # events the target adds to them (the proxy's Gemini finish chunk)
    stagger: float = 0.0  # stream_load: seconds between worker starts
    timeout: float = 10.0  # per request / per stream
    deadline: float = 60.0  # hard cap on the whole measurement, seconds
    cpu_pids: dict[str, int] = field(default_factory=dict)
    mix: list[list[Any]] = field(default_factory=list)  # soak: [model, stream, extra_events]
    rss_pid: int = 0
    rss_every: float = 2.0

    def job(
        self,
        stream: bool,
        max_tokens: int | None = None,
        user: str | None = None,
        session: str | None = None,
        model: str | None = None,
        extra_events: int | None = None,
    ) -> Job:
        body = request_body(self.api, model or self.model, stream, self.payload, max_tokens, user)
        path = chat_path(self.api, self.path, stream)
        request = http_request(self.host, self.port, path, body, stream, session, self.api)
        extra = self.extra_events if extra_events is None else extra_events
        chunks = (max_tokens or self.events) if stream else 0
        return Job(request, stream, chunks + extra if stream else 0, WIRES[self.api], chunks)


@dataclass(slots=True)
class Result:
    mode: str
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    window_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failover_ms: list[float] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)
    ttfbs_ms: list[float] = field(default_factory=list)
    events: int = 0  # content events
    chunks: int = 0  # upstream chunks those events carried (without the events a target adds)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the window, MB)

    def fail(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(what[:300])


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
    job = spec.job(stream, max_tokens=SHORT_STREAM if stream else None)
    for _ in range(n):
        try:
            conn = await _with_conn(spec, conn)
            await conn.run(job, spec.timeout)
        except Exception as e:
            result.fail(f"warm-up: {type(e).__name__}: {e}")
            conn = _drop(conn)
    return conn


async def _sequential(
    spec: Spec, result: Result, count: int, jobs: Callable[[int], tuple[Job, list[float] | None]]
) -> None:
    """`count` exchanges on one connection, after warm-up; `jobs(i)` gives the i-th request and the
    list its latency goes to (None: a stream, recorded whole)."""
    first = jobs(0)[0]
    conn = await _warm(spec, None, first.stream, max(1, spec.warmup), result)
    window = CpuWindow(spec.cpu_pids)
    window.open()
    end = time.perf_counter() + spec.deadline
    for i in range(count):
        if time.perf_counter() > end:
            result.fail("deadline reached before all requests were sent")
            break
        job, latencies = jobs(i)
        try:
            conn = await _with_conn(spec, conn)
            t0 = time.perf_counter()
            record = await conn.run(job, spec.timeout)
            if record is not None:
                result.streams.append(record)
                result.events += record.events
                result.chunks += min(record.events, job.chunks)
            elif latencies is not None:
                latencies.append((time.perf_counter() - t0) * 1000)
            result.ok += 1
        except Exception as e:
            result.fail(f"{type(e).__name__}: {e}")
            conn = _drop(conn)
    window.close(result)
    if conn:
        conn.close()


async def run_latency(spec: Spec) -> Result:
    result = Result(spec.mode)
    job = spec.job(False)
    await _sequential(spec, result, spec.count, lambda _: (job, result.latencies_ms))
    return result


async def run_stream(spec: Spec) -> Result:
    result = Result(spec.mode)
    job = spec.job(True)
    await _sequential(spec, result, spec.count, lambda _: (job, None))
    return result


async def run_failover(spec: Spec) -> Result:
    """Normal and failing-over requests alternate on one connection, so both see the same conditions."""
    result = Result(spec.mode)
    normal = spec.job(False, user="bench-normal")

    def jobs(i: int) -> tuple[Job, list[float]]:
        if i % 2 == 0:
            return normal, result.latencies_ms
        return spec.job(False, user=f"{FAILOVER_USER}{time.time_ns()}-{i}"), result.failover_ms

    await _sequential(spec, result, 2 * spec.count, jobs)
    return result


async def run_load(spec: Spec, stream: bool) -> Result:
    """`concurrency` workers loop requests (or streams) until the window closes."""
    result = Result(spec.mode)
    job = spec.job(stream)
    start = asyncio.Event()
    warm = max(1, spec.warmup // spec.concurrency) if not stream else 1
    conns = await asyncio.gather(*(_warm(spec, None, stream, warm, result) for _ in range(spec.concurrency)))
    window = CpuWindow(spec.cpu_pids)
    stop_at = ramped_at = 0.0

    async def worker(n: int, conn: Conn | None) -> Conn | None:
        await start.wait()
        await asyncio.sleep(n * spec.stagger)
        while time.perf_counter() < stop_at:
            try:
                conn = await _with_conn(spec, conn)
                t0 = time.perf_counter()
                record = await conn.run(job, spec.timeout)
                if record is not None:
                    # Events that arrived inside the window, also from a stream still running at its end.
                    limit = (stop_at - t0) * 1000
                    arrived = sum(1 for a in record.arrivals_ms if a <= limit)
                    result.events += arrived
                    # An event a target adds (the Gemini path's finish chunk) comes last: the cap drops it.
                    result.chunks += min(arrived, job.chunks)
                    if ramped_at <= t0 < stop_at:
                        result.ttfbs_ms.append(record.ttfb_ms)
                if time.perf_counter() <= stop_at:
                    result.ok += 1
            except Exception as e:
                result.fail(f"{type(e).__name__}: {e}")
                conn = _drop(conn)
                await asyncio.sleep(0.01)  # no tight loop against a dead target
        return conn

    tasks = [asyncio.create_task(worker(n, c)) for n, c in enumerate(conns)]
    window.open()
    now = time.perf_counter()
    ramped_at = now + spec.stagger * spec.concurrency
    stop_at = now + min(spec.duration, spec.deadline)
    start.set()
    # Streams finish after the window: count only what completed inside it, close CPU window at stop_at.
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    window.close(result)
    finished = await asyncio.gather(*tasks)
    for c in finished:
        if c:
            c.close()
    return result


async def run_sessions(spec: Spec, soak: bool) -> Result:
    """Many sessions (`sessions`: each request a new one) or steady load over them (`soak`)."""
    result = Result(spec.mode)
    variants = spec.mix or [[spec.model, False, spec.extra_events]]
    counter = itertools.count()
    window = CpuWindow(spec.cpu_pids)
    window.open()
    stop_at = time.perf_counter() + min(spec.duration if soak else spec.deadline, spec.deadline)

    def next_job() -> Job | None:
        i = next(counter)
        if not soak and i >= spec.count:
            return None
        model, stream, extra = variants[i % len(variants)]
        session = f"bench-session-{i % spec.count:06d}"
        tokens = SHORT_STREAM if stream else None
        return spec.job(stream, tokens, session=session, model=model, extra_events=extra)

    async def worker() -> None:
        conn: Conn | None = None
        while time.perf_counter() < stop_at and (job := next_job()) is not None:
            try:
                conn = await _with_conn(spec, conn)
                await conn.run(job, spec.timeout)
                result.ok += 1
            except Exception as e:
                result.fail(f"{type(e).__name__}: {e}")
                conn = _drop(conn)
                await asyncio.sleep(0.01)
        if conn:
            conn.close()

    async def sample_rss() -> None:
        t0 = time.perf_counter()
        while True:
            result.rss_mb.append((round(time.perf_counter() - t0, 2), rss_mb(spec.rss_pid)))
            await asyncio.sleep(spec.rss_every)

    sampler = asyncio.create_task(sample_rss()) if spec.rss_pid else None
    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    window.close(result)
    if not soak and result.ok + result.errors < spec.count:
        result.fail(f"deadline reached after {result.ok + result.errors} of {spec.count} sessions")
    if sampler:
        sampler.cancel()
        result.rss_mb.append((round(result.window_s, 2), rss_mb(spec.rss_pid)))
    return result


async def run(spec: Spec) -> Result:
    if spec.mode == "latency":
        return await run_latency(spec)
    if spec.mode == "stream":
        return await run_stream(spec)
    if spec.mode == "failover":
        return await run_failover(spec)
    if spec.mode in ("throughput", "stream_load"):
        return await run_load(spec, stream=spec.mode == "stream_load")
    if spec.mode in ("sessions", "soak"):
        return await run_sessions(spec, soak=spec.mode == "soak")
    raise ValueError(f"unknown mode {spec.mode!r}")


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    result = asyncio.run(run(spec))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
