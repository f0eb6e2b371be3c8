"""What one round measures: each phase is one load-client mode run against a few endpoints.

An endpoint is a target process seen through one API: the proxy is six endpoints (its OpenRouter path
and its Gemini path, each in the chat, Messages and Responses dialects), the fast upstream two
(OpenRouter and Gemini wire formats). A phase names its
endpoints by table column (`direct`, `plain`, `proxy`) and visits them in an order rotated per round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.procfs import wait_idle
from bench.targets import ROOT, Target
from bench.wire import FRONTENDS, GEMINI_MODEL_PATH, OPENAI_MODEL, PROXY_GEMINI_MODEL, Api, Frontend

Raw = dict[str, Any]  # one load-client result (bench.loadgen.Result as JSON)


class Settings(Protocol):
    """The parts of a run profile the phases read (bench.run.Profile)."""

    latency_requests: int
    latency_warmup: int
    throughput_seconds: float
    throughput_concurrency: int
    streams: int
    frontend_streams: int
    load_seconds: float
    load_concurrency: int
    busy_seconds: float
    busy_concurrency: int
    agent_requests: int
    failover_pairs: int
    gap_s: float
    events: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    target: Target
    path: str
    api: Api = "openai"
    model: str = OPENAI_MODEL
    extra_events: int = 0  # content events it adds to the upstream's (the proxy's Gemini finish chunk)


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    mode: str  # bench.loadgen mode
    columns: Mapping[str, str]  # table column -> endpoint name
    spec: Mapping[str, Any] = field(default_factory=dict)


def endpoints(
    upstream: Target,
    plain: Target,
    plain_stream: Target,
    proxy: Target,
    team: Target | None = None,
    before: Target | None = None,
) -> dict[str, Endpoint]:
    """Messages and Responses streams carry one text delta per upstream chunk on both paths: no extras.
    `team`: the proxy on Redis and PostgreSQL (`proxy_team`), when those answer; `before`: the proxy's
    code at an earlier commit (`proxy_before`, report_before.BEFORE)."""
    return {
        **({"proxy_team": Endpoint(team, team.chat_path)} if team else {}),
        **({"proxy_before": Endpoint(before, before.chat_path)} if before else {}),
        "direct": Endpoint(upstream, upstream.chat_path),
        "plain": Endpoint(plain, plain.chat_path),
        "plain_stream": Endpoint(plain_stream, plain_stream.chat_path),
        "proxy": Endpoint(proxy, proxy.chat_path),
        "direct_gemini": Endpoint(upstream, GEMINI_MODEL_PATH, "gemini"),
        "proxy_gemini": Endpoint(proxy, proxy.chat_path, model=PROXY_GEMINI_MODEL, extra_events=1),
        **{f"proxy_{fe.name}": Endpoint(proxy, fe.path, fe.api, fe.model) for fe in FRONTENDS},
    }


OPENROUTER = {"direct": "direct", "plain": "plain", "proxy": "proxy"}
OPENROUTER_STREAMING = {"direct": "direct", "plain": "plain_stream", "proxy": "proxy"}
GEMINI = {"direct": "direct_gemini", "proxy": "proxy_gemini"}
TEAM = {"proxy": "proxy", "team": "proxy_team"}
BEFORE = {"proxy": "proxy", "before": "proxy_before"}


def phases(p: Settings, team: bool = False, before: bool = False) -> list[Phase]:
    """Every phase of a round, in the order they run; `team`: with the shared stores' latency phase;
    `before`: with the phases comparing the proxy to its code at an earlier commit (report_before.BEFORE)."""
    latency = {"count": p.latency_requests, "warmup": p.latency_warmup}
    streams = {"count": p.streams, "warmup": 1}
    frontend_streams = {"count": p.frontend_streams, "warmup": 1}
    load = {"concurrency": p.load_concurrency, "duration": p.load_seconds}
    # Worker starts spread over one stream's length, so streams overlap evenly instead of in lockstep.
    stagger = p.events * p.gap_s / p.busy_concurrency
    busy = {"concurrency": p.busy_concurrency, "duration": p.busy_seconds, "stagger": stagger}
    agent = {"count": p.agent_requests, "warmup": 5, "payload": "agent"}
    throughput = {
        "concurrency": p.throughput_concurrency,
        "duration": p.throughput_seconds,
        "warmup": p.throughput_concurrency,
    }
    return [
        Phase("latency", "latency", OPENROUTER, latency),
        # The same requests, embedded stores vs Redis + PostgreSQL, interleaved: added latency of the latter.
        *([Phase("team_latency", "latency", TEAM, latency)] if team else []),
        Phase("throughput", "throughput", OPENROUTER, throughput),
        Phase("stream", "stream", OPENROUTER_STREAMING, streams),
        # CPU per chunk is a property of the mitmdump process: no direct column.
        Phase("stream_load", "stream_load", {"plain": "plain_stream", "proxy": "proxy"}, load),
        # Before -> now (issue 18): the same 50-chunk streams and requests against the code at an
        # earlier commit, interleaved.
        *(
            [
                Phase("before_stream_load", "stream_load", BEFORE, load),
                Phase("before_latency", "latency", BEFORE, latency),
                Phase("before_throughput", "throughput", BEFORE, throughput),
                Phase("before_agent", "latency", BEFORE, agent),
            ]
            if before
            else []
        ),
        Phase("gemini_stream_load", "stream_load", {"proxy": "proxy_gemini"}, load),
        # Right after their chat-dialect baselines (the two phases above): CPU per upstream chunk.
        *(
            Phase(f"{fe.name}_stream_load", "stream_load", {"proxy": f"proxy_{fe.name}"}, load)
            for fe in FRONTENDS
        ),
        Phase("gemini_latency", "latency", GEMINI, latency),
        Phase("gemini_stream", "stream", GEMINI, streams),
        # First text vs direct, direct speaking the upstream's own dialect.
        *(Phase(f"{fe.name}_stream", "stream", _frontend_columns(fe), frontend_streams) for fe in FRONTENDS),
        Phase("busy_stream", "stream_load", OPENROUTER_STREAMING, busy),
        Phase("gemini_busy_stream", "stream_load", GEMINI, busy),
        Phase("agent_latency", "latency", OPENROUTER, agent),
        Phase("failover", "failover", {"proxy": "proxy"}, {"count": p.failover_pairs, "warmup": 5}),
    ]


def _frontend_columns(fe: Frontend) -> dict[str, str]:
    return {"direct": GEMINI["direct"] if fe.gemini else OPENROUTER["direct"], "proxy": f"proxy_{fe.name}"}


def load(endpoint: Endpoint, upstream: Target, mode: str, events: int, **spec: Any) -> Raw:
    """Run one measurement in a fresh client process; returns its JSON result."""
    spec = {
        "mode": mode,
        "port": endpoint.target.port,
        "path": endpoint.path,
        "api": endpoint.api,
        "model": endpoint.model,
        "events": events,
        "extra_events": endpoint.extra_events,
        "cpu_pids": {"target": endpoint.target.pid or upstream.pid, "upstream": upstream.pid},
        **spec,
    }
    budget = spec.get("deadline", 60.0) + 30.0
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        timeout=budget,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"load client failed ({endpoint.target.name} {mode}):\n{out.stderr.decode()[-2000:]}"
        )
    result: Raw = json.loads(out.stdout)
    return result


def measure_round(
    p: Settings, i: int, points: Mapping[str, Endpoint], upstream: Target, quiet: list[int]
) -> dict[str, dict[str, Raw]]:
    """All phases for round `i`: {phase: {column: raw result}}; columns visited in a rotated order.
    Each measurement starts once the `quiet` processes are idle (no leftover work from the last one)."""
    out: dict[str, dict[str, Raw]] = {}
    for phase in phases(p, team="proxy_team" in points, before="proxy_before" in points):
        columns = list(phase.columns)
        k = i % len(columns)
        out[phase.name] = {}
        for column in columns[k:] + columns[:k]:
            wait_idle(quiet)
            point = points[phase.columns[column]]
            out[phase.name][column] = load(point, upstream, phase.mode, p.events, **phase.spec)
    return out


def redaction_ms(code: Path) -> dict[str, float]:
    """bench.bench_redaction's table cases, run in a fresh process against the proxy's code snapshot."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_redaction", "--json"],
        cwd=code,  # first on sys.path: the snapshot's addons/ wins over the working tree's
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"redaction timing failed:\n{out.stderr.decode()[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout)
    return result
