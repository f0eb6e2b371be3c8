"""One command: `python -m bench.run [--quick]`.

Starts the fast upstream, plain mitmdump (twice: buffering, and streaming via a one-line addon) and
the proxy, then runs every measurement round by round, targets interleaved in a rotating order, and
writes bench/results/latest.{md,json}. Ratios compare targets measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import report
from bench.loadgen import cpu_seconds
from bench.targets import ROOT, Lab, Target


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    rounds: int
    latency_requests: int  # per round, concurrency 1
    latency_warmup: int
    throughput_seconds: float  # per round
    throughput_concurrency: int
    streams: int  # per round, concurrency 1
    load_seconds: float  # streaming CPU phase, per round
    load_concurrency: int
    gap_s: float = 0.010
    events: int = 50


FULL = Profile("full", 5, 400, 50, 5.0, 32, 5, 3.0, 8)
QUICK = Profile("quick", 3, 150, 20, 0.8, 32, 2, 0.6, 8)
PHASES = ("latency", "throughput", "stream", "stream_load")


def load(target: Target, upstream: Target, mode: str, **spec: Any) -> dict[str, Any]:
    """Run one measurement in a fresh client process; returns its JSON result."""
    spec = {
        "mode": mode,
        "port": target.port,
        "path": target.chat_path,
        "cpu_pids": {"target": target.pid or upstream.pid, "upstream": upstream.pid},
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
        raise RuntimeError(f"load client failed ({target.name} {mode}):\n{out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measure_round(
    p: Profile, i: int, targets: dict[str, Target], upstream: Target
) -> dict[str, dict[str, Any]]:
    """All phases for one round; each phase visits the targets in this round's rotated order."""
    slots = ["direct", "plain", "proxy"]
    order = slots[i % 3 :] + slots[: i % 3]
    out: dict[str, dict[str, Any]] = {phase: {} for phase in PHASES}
    for slot in order:
        out["latency"][slot] = load(
            targets[slot], upstream, "latency", count=p.latency_requests, warmup=p.latency_warmup
        )
    for slot in order:
        out["throughput"][slot] = load(
            targets[slot],
            upstream,
            "throughput",
            concurrency=p.throughput_concurrency,
            duration=p.throughput_seconds,
            warmup=p.throughput_concurrency,
        )
    streaming = {**targets, "plain": targets["plain_stream"]}
    for slot in order:
        out["stream"][slot] = load(
            streaming[slot], upstream, "stream", count=p.streams, warmup=1, events=p.events
        )
    for slot in order:
        if slot != "direct":  # CPU per chunk is a property of the mitmdump process
            out["stream_load"][slot] = load(
                streaming[slot],
                upstream,
                "stream_load",
                concurrency=p.load_concurrency,
                duration=p.load_seconds,
                events=p.events,
            )
    return out


def idle_cpu(targets: list[Target], seconds: float = 0.5) -> dict[str, float]:
    """CPU share each process burns while nobody talks to it (timers, polling)."""
    pids = {t.name: t.pid for t in targets if t.pid}
    before = {n: cpu_seconds(pid) for n, pid in pids.items()}
    time.sleep(seconds)
    return {n: (cpu_seconds(pid) - before[n]) / seconds for n, pid in pids.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (~40 s) for a smoke check")
    parser.add_argument("--rounds", type=int, help="override the profile's number of rounds")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/latest.*")
    args = parser.parse_args(argv)
    p = QUICK if args.quick else FULL
    if args.rounds:
        p = Profile(**{**asdict(p), "rounds": max(1, min(args.rounds, 20))})

    started = time.monotonic()
    machine = report.machine()
    print(f"bench ({p.name}): {p.rounds} rounds on {machine['cpu']}, {machine['cores']} cores, "
          f"mitmproxy {machine['mitmproxy']}, Python {machine['python']}", file=sys.stderr)  # fmt: skip
    with Lab(p.gap_s, p.events) as lab:
        upstream = lab.upstream()
        mitm = [lab.plain(upstream), lab.plain_streaming(upstream), lab.proxy(upstream)]
        for t in mitm:
            t.wait_ready()
        targets = {"direct": upstream, **{t.name: t for t in mitm}}
        machine["proxy_code_sha256"] = lab.code_digest
        print(f"  targets ready after {time.monotonic() - started:.1f} s", file=sys.stderr)
        idle = idle_cpu([upstream, *mitm])
        rounds = []
        for i in range(p.rounds):
            t0 = time.monotonic()
            rounds.append(measure_round(p, i, targets, upstream))
            print(f"  round {i + 1}/{p.rounds}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        problems = {t.name: t.problems() for t in [upstream, *mitm]}
    result = report.build(p, machine, rounds, idle, problems, time.monotonic() - started)
    md = report.markdown(result)
    print(md)
    if not args.no_write:
        report.write(result, md)
    return 1 if result["errors_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
