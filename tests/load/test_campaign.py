"""The load and fault campaign: a real mitmdump with the addon, fake OpenRouter and fake Gemini, many clients.

    .venv/bin/python -m pytest tests/load -q                  # SHORT, part of the normal suite (~1 min)
    LLM_LOAD=full .venv/bin/python -m pytest tests/load -q    # FULL: 200 streaming clients for 60 s, …

What it proves (numbers are printed in the run's summary and saved to <pytest tmp>/load-report.txt):

* Load: N concurrent streaming clients (a fifth on Gemini, a tenth through the official openai SDK, the
  rest a minimal keep-alive HTTP/1.1 client, so the load generator does not need more CPU than the proxy)
  for T seconds. Each prompt carries a unique token; the reply must be exactly `echo: <prompt>`,
  complete, ending with [DONE]: 0 errors, 0 truncated or interleaved streams. The proxy's RSS stays
  flat once warm.
* Faults at the upstreams, mixed with normal traffic: 429 (Retry-After / RetryInfo), 500, 503, headers
  later than PROXY_TIMEOUT, connection reset before headers and mid-answer, malformed JSON on a 200,
  truncated SSE, a wrong content type. Each request ends with the right answer (rotation/failover over
  the keys) or a well-formed OpenAI error; never a hang. A slow upstream does not slow other clients.
* Client faults: clients hanging up mid-stream release their upstream within seconds (also while the
  upstream is silent); clients sending their body byte by byte do not stall the others; an oversized
  body gets 413 with a clear message; `Connection: close` is honoured.
* No configured key in any response body (and, via tests/conftest.py, in anything the proxy left), and
  no traceback in the proxies' logs.

Sizes: SHORT by default; `LLM_LOAD=full` for the full campaign (minutes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.harness import ProxyProcess
from tests.load.support import (
    FULL,
    GEMINI_ALIAS,
    PROXY_TIMEOUT,
    REPORT,
    SIZE,
    Campaign,
    LoadGemini,
    LoadOpenRouter,
    Result,
    RssSampler,
    async_client,
    bad_lines,
    chat,
    cpu_seconds,
    env_for,
    judge_error_body,
    judge_plain,
    judge_stream,
    ms,
    pct,
    read_response,
    run_clients,
    summarise,
)


@dataclass(frozen=True)
class Size:
    clients: int  # concurrent streaming clients in the load run
    duration: float  # seconds of the load run (after warm-up)
    warmup: float
    rss_growth_mb: float  # allowed RSS growth (SHORT: end - start; FULL: last third - middle third)
    timeout: float  # per request, whole answer included: longer means a hang
    fault_reps: int  # each fault x backend x stream/plain, this many times
    fault_workers: int  # fault requests in flight at once
    background: int  # normal clients running during fault and client-fault runs
    phase: float  # seconds of each phase in the with/without comparisons
    slow_clients: int  # clients stuck on a slow upstream during the slow phase
    hangups: int  # clients hanging up mid-stream
    slowloris: int  # clients dripping their request body


SIZES = {
    "short": Size(
        clients=50, duration=8, warmup=2, rss_growth_mb=30, timeout=20, fault_reps=1, fault_workers=14,
        background=12, phase=3, slow_clients=10, hangups=12, slowloris=20,
    ),
    "full": Size(
        clients=200, duration=60, warmup=5, rss_growth_mb=15, timeout=30, fault_reps=10, fault_workers=40,
        background=40, phase=15, slow_clients=40, hangups=60, slowloris=100,
    ),
}  # fmt: skip
S = SIZES[SIZE]
MAX_BYTES = 64 * 1024
LONG = pytest.mark.timeout(900 if FULL else 120)


@pytest.fixture(scope="module")
def load_proxy(fakes: tuple[LoadOpenRouter, LoadGemini]) -> Iterator[ProxyProcess]:
    env = env_for(*fakes, PROXY_TIMEOUT="10", LLM_MAX_REQUEST_BYTES=str(MAX_BYTES))
    with ProxyProcess(env=env) as p:
        yield p


@pytest.fixture(scope="module")
def fault_proxy(fakes: tuple[LoadOpenRouter, LoadGemini]) -> Iterator[ProxyProcess]:
    env = env_for(*fakes, PROXY_TIMEOUT=f"{PROXY_TIMEOUT:g}", LLM_COOLDOWN_SECONDS="2")
    with ProxyProcess(env=env) as p:
        yield p


def _client(p: ProxyProcess, connections: int) -> httpx.AsyncClient:
    return async_client(f"http://127.0.0.1:{p.reverse_port}", connections + 20, S.timeout)


def _latencies(results: list[Result]) -> list[float]:
    return [r.latency for r in results if r.outcome == "ok"]


def _no_leaks(camp: Campaign) -> None:
    assert camp.scanned > 0
    assert not camp.leaks, f"configured keys in {len(camp.leaks)} response bodies: {sorted(set(camp.leaks))}"


# ---------------------------------------------------------------------------------------------------
# 1. Many streaming clients: exact answers, flat memory
# ---------------------------------------------------------------------------------------------------


@LONG
def test_concurrent_streams_exact_and_memory_flat(load_proxy: ProxyProcess) -> None:
    camp = Campaign(load_proxy.secrets())
    pid = load_proxy.proc.pid  # type: ignore[union-attr]

    async def run() -> tuple[list[Result], RssSampler, float]:
        # Light raw clients (httpx would cost more CPU than the proxy it measures), and every tenth one
        # the official openai SDK.
        async with _client(load_proxy, S.clients) as client:
            port = load_proxy.reverse_port
            sdk = openai.AsyncOpenAI(
                base_url=load_proxy.base_url, api_key="x", max_retries=0, http_client=client
            )
            await run_clients(port, camp, "warmup", S.clients, S.warmup, timeout=S.timeout)
            sampler = RssSampler(pid, interval=0.25 if not FULL else 0.5)
            sampling = asyncio.create_task(sampler.run())
            t0, cpu0, own0 = time.monotonic(), cpu_seconds(pid), cpu_seconds(os.getpid())
            results = await run_clients(
                port, camp, "load", S.clients, S.duration, timeout=S.timeout, sdk=sdk, sdk_every=10
            )
            wall = time.monotonic() - t0
            cpu[:] = [(cpu_seconds(pid) - cpu0) / wall, (cpu_seconds(os.getpid()) - own0) / wall]
            await asyncio.sleep(0.5)  # let the last streams' buffers go
            sampler.stop()
            await sampling
            return results, sampler, wall

    cpu = [0.0, 0.0]  # proxy, this process (clients and fake upstreams): CPU seconds per second
    results, sampler, wall = asyncio.run(run())
    rss = [v for _, v in sampler.samples]
    lat = _latencies(results)
    bad = [r for r in camp.results if r.outcome != "ok"]
    gemini = sum(1 for r in results if r.backend == "gemini")
    via_sdk = sum(1 for r in results if r.via == "sdk")
    third = max(1, len(rss) // 3)
    middle, last = rss[third : 2 * third], rss[-third:]
    growth = statistics.median(last) - statistics.median(middle) if FULL else rss[-1] - rss[0]
    REPORT.add(
        f"load: {S.clients} streaming clients x {S.duration:g} s: {len(results)} requests "
        f"({gemini} via Gemini, {via_sdk} through the openai SDK; {len(results) / wall:.0f}/s), "
        f"{len(bad)} not exact; "
        f"latency p50 {ms(pct(lat, 0.5))}, p99 {ms(pct(lat, 0.99))}, max {ms(max(lat, default=0))}; "
        f"CPU: proxy {cpu[0]:.0%} of a core, clients + fakes {cpu[1]:.0%}"
    )
    REPORT.add(
        f"load: proxy RSS {rss[0]:.1f} MB after warm-up -> {rss[-1]:.1f} MB at the end "
        f"(max {max(rss):.1f}; medians middle/last third {statistics.median(middle):.1f}/"
        f"{statistics.median(last):.1f}); growth counted {growth:+.1f} MB, limit {S.rss_growth_mb:g}"
    )
    assert not bad, f"{len(bad)} of {len(camp.results)} answers not exact:\n{bad_lines(bad)}"
    assert len(results) >= S.clients * 3, f"only {len(results)} requests in {S.duration:g} s"
    assert growth < S.rss_growth_mb, f"proxy RSS grew {growth:.1f} MB under steady load: {rss}"
    _no_leaks(camp)
    assert load_proxy.proc.poll() is None  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------------
# 2. Upstream faults under load
# ---------------------------------------------------------------------------------------------------

# label -> (what a request must end with, for streamed and for plain requests). "ok": the exact answer
# (another key answered); "error:<status>": a well-formed OpenAI error with that status (for a stream
# before any byte, or an SSE error event at the end when status is "sse"); "any": ok or any
# well-formed error.
FAULTS: dict[str, tuple[str, str]] = {
    "429": ("ok", "ok"),  # Retry-After / RetryInfo on the first key: the next key answers
    "429*": ("error:429", "error:429"),  # every key: 429 with Retry-After
    "500": ("ok", "ok"),
    "503": ("ok", "ok"),
    "503*": ("error:503", "error:503"),
    "slow": ("ok", "ok"),  # headers later than PROXY_TIMEOUT: the next key answers
    "slow*": ("error:504", "error:504"),
    "reset": ("ok", "ok"),  # connection closed before any answer
    "reset*": ("error:502", "error:502"),
    "midreset": ("error:sse", "ok"),  # cut mid-answer: a stream has sent bytes; a plain answer can retry
    "badjson": ("any", "any"),  # 200 with a malformed JSON body
    "truncated": ("any", "any"),  # SSE ending cleanly without finish/[DONE] (plain: SSE where JSON was asked)
    "wrongtype": ("any", "any"),  # 200 text/html
}


@dataclass(frozen=True)
class FaultJob:
    label: str
    backend: str
    stream: bool
    rep: int


def _fault_request(label: str, backend: str, token: str) -> tuple[str, str]:
    """(prompt, model) for a fault request; rate-limit faults get a model of their own (see GEMINI_ALIAS)."""
    prompt = f"FAULT:{label} {backend} {token}"
    if label.startswith("429"):
        # `openrouter:` names the backend outright: a model no catalog lists is taken at its word then.
        model = f"openrouter:load/rl-{token}" if backend == "openrouter" else f"gemini:{GEMINI_ALIAS}{token}"
    else:
        model = "openai/gpt-4o-mini" if backend == "openrouter" else "gemini:gemini-2.5-flash"
    return prompt, model


@pytest.fixture(scope="module")
def fault_run(fault_proxy: ProxyProcess) -> Campaign:
    """One run: every fault x backend x stream/plain, `fault_reps` times, shuffled, `fault_workers` at a
    time, while `background` normal clients keep asking. Tests below judge it one fault at a time."""
    camp = Campaign(fault_proxy.secrets())
    jobs = [
        FaultJob(label, backend, stream, rep)
        for label in FAULTS
        for backend in ("openrouter", "gemini")
        for stream in (True, False)
        for rep in range(S.fault_reps)
    ]
    random.Random(7).shuffle(jobs)

    async def run() -> float:
        queue: asyncio.Queue[FaultJob] = asyncio.Queue()
        for j in jobs:
            queue.put_nowait(j)
        done = asyncio.Event()

        async with _client(fault_proxy, S.background + S.fault_workers) as client:

            async def worker() -> None:
                while not queue.empty():
                    job = queue.get_nowait()
                    prompt, model = _fault_request(job.label, job.backend, os.urandom(6).hex())
                    await chat(
                        client, camp, job.label, prompt,
                        stream=job.stream, backend=job.backend, model=model, timeout=S.timeout,
                    )  # fmt: skip

            async def faults() -> None:
                await asyncio.gather(*(worker() for _ in range(S.fault_workers)))
                done.set()

            t0 = time.monotonic()
            limit = 30 + 3 * len(jobs)  # hard cap; the fault jobs end well before
            await asyncio.gather(
                faults(),
                run_clients(
                    fault_proxy.reverse_port, camp, "normal", S.background, limit,
                    timeout=S.timeout, plain_every=3, stop=done,
                ),
            )  # fmt: skip
            return time.monotonic() - t0

    wall = asyncio.run(run())
    normal = camp.of("normal")
    faulty = [r for r in camp.results if r.label != "normal"]
    REPORT.add(
        f"faults: {len(faulty)} fault requests ({len(FAULTS)} kinds x 2 backends x stream/plain x "
        f"{S.fault_reps}) with {len(normal)} normal requests from {S.background} clients in {wall:.1f} s; "
        f"outcomes {summarise(camp.results)}"
    )
    lat = _latencies(normal)
    REPORT.add(f"faults: normal requests meanwhile p50 {ms(pct(lat, 0.5))}, p99 {ms(pct(lat, 0.99))}")
    return camp


def _expectation_met(r: Result, expect: str) -> str | None:
    if r.outcome == "bad":
        return r.reason
    if expect == "any":
        return None
    if expect == "ok":
        return None if r.outcome == "ok" else f"expected the answer via another key, got {r.reason}"
    want = expect.split(":")[1]
    if r.outcome != "error":
        return f"expected an error ({want}), got the answer"
    if want == "sse":
        return None if r.status == 200 else f"expected an SSE error event, got HTTP {r.status}"
    if str(r.status) != want:
        return f"expected HTTP {want}, got {r.status}: {r.reason}"
    if r.headers.get("x-should-retry") != "false":
        return f"HTTP {r.status} after every key failed, without x-should-retry: false"
    if r.status == 429 and not r.headers.get("retry-after", "").isdigit():
        return f"429 without a Retry-After in seconds: {r.headers}"
    return None


@LONG
@pytest.mark.parametrize("label", list(FAULTS))
def test_upstream_fault_under_load(fault_run: Campaign, label: str) -> None:
    results = fault_run.of(label)
    assert len(results) == 2 * 2 * S.fault_reps
    wrong = []
    for r in results:
        why = _expectation_met(r, FAULTS[label][0 if r.stream else 1])
        if why:
            wrong.append(dataclasses.replace(r, outcome="bad", reason=why))
    assert not wrong, f"FAULT:{label}: {len(wrong)} of {len(results)} requests wrong:\n{bad_lines(wrong)}"


def test_normal_traffic_unharmed_by_faults(fault_run: Campaign, fault_proxy: ProxyProcess) -> None:
    normal = fault_run.of("normal")
    bad = [r for r in normal if r.outcome != "ok"]
    assert len(normal) >= S.background * 3
    assert not bad, f"{len(bad)} of {len(normal)} normal requests hurt by others' faults:\n{bad_lines(bad)}"
    _no_leaks(fault_run)
    assert fault_proxy.proc.poll() is None  # type: ignore[union-attr]


@LONG
def test_slow_upstream_does_not_slow_other_clients(fault_proxy: ProxyProcess) -> None:
    """Phase A: normal clients alone. Phase B: the same, while `slow_clients` wait on an upstream that
    never answers in time (every key: each request ends in 504 after all keys timed out)."""
    camp = Campaign(fault_proxy.secrets())

    async def run() -> tuple[list[Result], list[Result], list[Result]]:
        async with _client(fault_proxy, S.background + S.slow_clients) as client:
            port = fault_proxy.reverse_port
            base = await run_clients(port, camp, "baseline", S.background, S.phase, timeout=S.timeout)
            stop = asyncio.Event()

            async def stuck(i: int) -> None:
                for n in range(1000):
                    if stop.is_set():
                        return
                    prompt, model = _fault_request("slow*", "gemini", f"s{i}-{n}-{os.urandom(4).hex()}")
                    await chat(client, camp, "slow", prompt, stream=n % 2 == 0, backend="gemini",
                               model=model, timeout=S.timeout)  # fmt: skip

            slow = [asyncio.create_task(stuck(i)) for i in range(S.slow_clients)]
            await asyncio.sleep(0.5)  # they are all waiting on the upstream now
            during = await run_clients(port, camp, "during-slow", S.background, S.phase, timeout=S.timeout)
            stop.set()
            await asyncio.gather(*slow)
            return base, during, camp.of("slow")

    base, during, slow = asyncio.run(run())
    p50_a, p50_b = statistics.median(_latencies(base)), statistics.median(_latencies(during))
    REPORT.add(
        f"slow upstream: normal p50 {ms(p50_a)} alone ({len(base)} requests) vs {ms(p50_b)} while "
        f"{S.slow_clients} clients wait on an upstream slower than PROXY_TIMEOUT ({len(during)} requests); "
        f"slow ones: {summarise(slow)}"
    )
    bad = [r for r in [*base, *during] if r.outcome != "ok"]
    assert not bad, bad_lines(bad)
    wrong = [r for r in slow if r.outcome != "error" or r.status != 504]
    assert not wrong, bad_lines(wrong)
    assert slow, "no request reached the slow upstream"
    assert p50_b < max(3 * p50_a, p50_a + 0.25), f"p50 {ms(p50_a)} -> {ms(p50_b)} while an upstream was slow"
    _no_leaks(camp)


# ---------------------------------------------------------------------------------------------------
# 3. Client faults
# ---------------------------------------------------------------------------------------------------


def _hangups(
    proxy: ProxyProcess, fakes: tuple[LoadOpenRouter, LoadGemini], kind: str, waves: int
) -> tuple[list[str], list[Result], Campaign]:
    """`waves` x `hangups` clients read the first bytes of a long stream and hang up (kind "mute": hang up
    while still waiting for the answer's head), while normal clients keep asking. Returns what was not
    released within 3 s (how long each release took goes to the report), and the normal results."""
    camp = Campaign(proxy.secrets())
    gone_at: dict[str, tuple[str, float]] = {}  # prompt -> (backend, when the client hung up)
    problems: list[str] = []

    async def hangup(client: httpx.AsyncClient, i: int) -> None:
        backend = "gemini" if i % 3 == 0 else "openrouter"
        prompt, model = _fault_request(kind, backend, f"h{i}-{os.urandom(4).hex()}")
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        if kind == "mute":  # nothing will come: hang up after half a second of waiting for the head
            try:
                async with (
                    asyncio.timeout(0.5),
                    client.stream("POST", "/v1/chat/completions", json=body) as r,
                ):
                    await r.aread()
                problems.append(
                    f"hang-up client {i}: answered {r.status_code} although the upstream was mute"
                )
            except TimeoutError:
                gone_at[prompt] = (backend, time.monotonic())
            except httpx.HTTPError as e:
                problems.append(f"hang-up client {i}: {type(e).__name__} {e}")
            return
        try:
            async with asyncio.timeout(S.timeout):
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    seen = b""
                    async for part in r.aiter_raw():
                        seen += part
                        if b"echo" in seen:
                            break
                    camp.scan(seen)
                    gone_at[prompt] = (backend, time.monotonic())
                    # leaving the block closes the half-read response: the connection is dropped
        except (TimeoutError, httpx.HTTPError) as e:
            problems.append(f"hang-up client {i}: {type(e).__name__} {e}")

    async def run() -> list[Result]:
        async with _client(proxy, S.background + S.hangups) as client:
            normal = asyncio.create_task(
                run_clients(proxy.reverse_port, camp, "normal", S.background, S.phase, timeout=S.timeout)
            )
            for wave in range(waves):
                await asyncio.gather(*(hangup(client, wave * S.hangups + i) for i in range(S.hangups)))
            results = await normal
            # the proxy still serves after all that
            results.append(
                await chat(client, camp, "after", "after hang-ups", stream=True, timeout=S.timeout)
            )
            return results

    results = asyncio.run(run())
    assert not problems, problems
    assert len(gone_at) == waves * S.hangups
    watches = {**fakes[0].watches, **fakes[1].watches}
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and any(
        watches[p].broken is None and not watches[p].finished for p in gone_at if p in watches
    ):
        time.sleep(0.1)
    delays, stuck = [], []
    for prompt, (backend, at) in gone_at.items():
        w = watches.get(prompt)
        if w is not None and w.finished:
            stuck.append(f"{backend}: {prompt}: the upstream call ran to its end although the client hung up")
        elif w is None or w.broken is None:
            stuck.append(f"{backend}: {prompt} not released 12 s after the client hung up")
        else:
            delays.append(w.broken - at)
            if w.broken - at > 3:
                stuck.append(f"{backend}: {prompt} released {w.broken - at:.1f} s after the client hung up")
    REPORT.add(
        f"hang-ups ({kind}): {len(gone_at)} clients hung up; upstream connection closed after "
        f"median {ms(statistics.median(delays)) if delays else '-'}, max {ms(max(delays, default=0))}; "
        f"{len(gone_at) - len(delays)} never released (ran to the end, or 12 s); "
        f"{len(results)} normal requests meanwhile"
    )
    return stuck, results, camp


@LONG
@pytest.mark.parametrize(
    ("kind", "waves"),
    [
        # The upstream keeps sending (an event every 50 ms).
        pytest.param("watch", 3, id="mid-stream"),
        # The upstream sends its first event, then nothing for 8 s (a model thinking) while the client
        # hangs up: released now, not when it speaks again.
        pytest.param("quiet", 1, id="while-upstream-thinks"),
        # The upstream sends nothing at all for 8 s (a queued request) and the client gives up after
        # 0.5 s: released now, not after doing the whole call for nobody.
        pytest.param("mute", 1, id="before-upstream-answers"),
    ],
)
def test_client_hangup_releases_upstream(
    load_proxy: ProxyProcess, fakes: tuple[LoadOpenRouter, LoadGemini], kind: str, waves: int
) -> None:
    """Clients hang up: the upstream must see its connection closed within 3 s."""
    stuck, results, camp = _hangups(load_proxy, fakes, kind, waves)
    assert not stuck, "\n".join(stuck[:10])
    bad = [r for r in results if r.outcome != "ok"]
    assert not bad, bad_lines(bad)
    _no_leaks(camp)


def _raw_request(port: int, body: bytes, extra: str = "") -> tuple[bytes, bytes]:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode()
    return head, body


def _chat_body(prompt: str, stream: bool) -> bytes:
    return json.dumps(
        {"model": "openai/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    ).encode()


async def _drip(port: int, prompt: str, seconds: float, camp: Campaign) -> str | None:
    """A client sending its request body 4 bytes at a time over `seconds`; returns what went wrong."""
    head, body = _raw_request(port, _chat_body(prompt, stream=True))
    pieces = [body[i : i + 4] for i in range(0, len(body), 4)]
    try:
        async with asyncio.timeout(seconds + S.timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head)
                for p in pieces:
                    writer.write(p)
                    await writer.drain()
                    await asyncio.sleep(seconds / len(pieces))
                status, headers, raw = await read_response(reader)
            finally:
                writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
        return f"slow client: {type(e).__name__} {e}"
    camp.scan(raw)
    outcome, reason, _ = judge_stream(status, headers.get("content-type", ""), raw, "echo: " + prompt)
    return None if outcome == "ok" else f"slow client: {reason}"


@LONG
def test_slow_body_clients_do_not_stall_others(load_proxy: ProxyProcess) -> None:
    camp = Campaign(load_proxy.secrets())

    async def run() -> tuple[list[Result], list[Result], list[str | None]]:
        port = load_proxy.reverse_port
        base = await run_clients(port, camp, "baseline", S.background, S.phase, timeout=S.timeout)
        drips = [
            asyncio.create_task(_drip(port, f"slowloris {i} ✓", S.phase + 1, camp))
            for i in range(S.slowloris)
        ]
        await asyncio.sleep(0.3)
        during = await run_clients(port, camp, "during", S.background, S.phase, timeout=S.timeout)
        return base, during, await asyncio.gather(*drips)

    base, during, drips = asyncio.run(run())
    p50_a, p50_b = statistics.median(_latencies(base)), statistics.median(_latencies(during))
    failed = [d for d in drips if d]
    REPORT.add(
        f"slow bodies: normal p50 {ms(p50_a)} alone vs {ms(p50_b)} while {S.slowloris} clients drip their "
        f"bodies over {S.phase + 1:g} s; {len(drips) - len(failed)}/{len(drips)} of those answered exactly"
    )
    bad = [r for r in [*base, *during] if r.outcome != "ok"]
    assert not bad, bad_lines(bad)
    assert not failed, failed[:5]
    assert p50_b < max(3 * p50_a, p50_a + 0.25), f"p50 {ms(p50_a)} -> {ms(p50_b)} with slow-body clients"
    _no_leaks(camp)


def test_oversized_body_gets_413(load_proxy: ProxyProcess) -> None:
    camp = Campaign(load_proxy.secrets())
    big = json.dumps(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (MAX_BYTES * 4)}]}
    ).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    async def run() -> list[tuple[str, int, str, bytes]]:
        async with _client(load_proxy, S.background) as client:
            port = load_proxy.reverse_port
            normal = asyncio.create_task(run_clients(port, camp, "normal", 4, 3, timeout=S.timeout))
            got = []
            for how in ("content-length", "chunked", "stream", "content-length", "chunked"):
                body = big.replace(b'"messages"', b'"stream": true, "messages"') if how == "stream" else big
                async with asyncio.timeout(S.timeout):
                    # an async iterator is sent chunked, without content-length: refused after reading
                    content = _aiter(chunks()) if how == "chunked" else body
                    r = await client.post("/v1/chat/completions", content=content)
                camp.scan(r.content)
                got.append((how, r.status_code, r.headers.get("content-type", ""), r.content))
            await normal
            return got

    async def same_connection() -> tuple[int, int, bytes]:
        """413 for an oversized body, then a normal request on the same connection still works."""
        port = load_proxy.reverse_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(S.timeout):
                head, body = _raw_request(port, big)
                writer.write(head + body)
                first, _, _ = await read_response(reader)
                head, body = _raw_request(port, _chat_body("after 413", False))
                writer.write(head + body)
                second, _, raw = await read_response(reader)
                return first, second, raw
        finally:
            writer.close()

    got = asyncio.run(run())
    first, second, raw = asyncio.run(same_connection())
    assert (first, second) == (413, 200), (first, second, raw[:200])
    assert json.loads(raw)["choices"][0]["message"]["content"] == "echo: after 413"
    for how, status, ctype, raw in got:
        outcome, reason, code = judge_error_body(status, ctype, raw)
        message = json.loads(raw)["error"]["message"]
        if how == "chunked":  # unknown length: refused before any byte is kept (security issue, finding 6)
            assert (status, code) == (411, "length_required"), f"{how}: HTTP {status}: {raw[:200]!r}"
            assert outcome == "error" and "Content-Length" in message, f"{how}: {reason}"
            continue
        assert status == 413, f"{how}: HTTP {status}: {raw[:200]!r}"
        assert outcome == "error" and code == "request_too_large", f"{how}: {reason}"
        assert f"at most {MAX_BYTES} bytes" in message and "LLM_MAX_REQUEST_BYTES" in message, message
    bad = [r for r in camp.results if r.outcome != "ok"]
    assert not bad, bad_lines(bad)
    _no_leaks(camp)
    REPORT.add(
        f"oversized: {len(got)} bodies of {len(big)} bytes (limit {MAX_BYTES}) -> 413 request_too_large"
    )


@pytest.mark.parametrize(
    "stream",
    [
        False,
        True,
    ],
    ids=["plain", "stream"],
)
def test_connection_close_is_honoured(load_proxy: ProxyProcess, stream: bool) -> None:
    """A client that sends `Connection: close` and reads to the end of the connection (HTTP/1.0 style,
    many scripts and simple clients) must get the connection closed after its answer, not hang."""
    camp = Campaign(load_proxy.secrets())
    port = load_proxy.reverse_port

    async def run() -> tuple[int, dict[str, str], bytes, bytes | None]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head, body = _raw_request(port, _chat_body("close me", stream), "connection: close\r\n")
            writer.write(head + body)
            async with asyncio.timeout(S.timeout):
                status, headers, raw = await read_response(reader)
            try:
                async with asyncio.timeout(S.timeout):  # a bound for a hang: the close comes at once
                    rest: bytes | None = await reader.read()
            except TimeoutError:
                rest = None
            return status, headers, raw, rest
        finally:
            writer.close()

    status, headers, raw, rest = asyncio.run(run())
    camp.scan(raw)
    judge = judge_stream if stream else judge_plain
    outcome, reason, _ = judge(status, headers.get("content-type", ""), raw, "echo: close me")
    assert outcome == "ok", reason
    assert rest is not None, f"connection open {S.timeout:g} s after answering a `Connection: close` request"
    assert rest == b""
    _no_leaks(camp)


async def _aiter(it: Iterator[bytes]):  # type: ignore[no-untyped-def]
    for x in it:
        yield x


def _tracebacks(p: ProxyProcess) -> list[str]:
    """The last line (the exception) of every traceback in a proxy's log, with the place it was raised."""
    out, lines = [], p.lines
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        j = i + 1
        while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
            j += 1
        where = next((x.strip() for x in reversed(lines[i:j]) if x.strip().startswith("File ")), "?")
        out.append(f"{lines[j] if j < len(lines) else '?'} at {where}")
    return out


def test_campaign_left_no_tracebacks(load_proxy: ProxyProcess, fault_proxy: ProxyProcess) -> None:
    """After everything above: both proxies alive, and no traceback (an unhandled error) in their logs."""
    found: dict[str, int] = {}
    for p in (load_proxy, fault_proxy):
        assert p.proc is not None and p.proc.poll() is None, "a proxy died"
        for tb in _tracebacks(p):
            found[tb] = found.get(tb, 0) + 1
    listing = "\n".join(f"  {n} x {tb}" for tb, n in sorted(found.items(), key=lambda kv: -kv[1]))
    assert not found, f"tracebacks in the proxy logs:\n{listing}"
