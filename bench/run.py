"""One command: `python -m bench.run [--quick]`.

Starts the fast upstream (OpenRouter and Gemini wire formats), plain mitmdump (twice: buffering, and
streaming via a one-line addon), the proxy, and a second proxy for the memory rows; runs every
measurement round by round, targets interleaved in a rotating order; then the memory run (many
sessions, then steady load) on the second proxy; and writes bench/results/latest.{md,json}. Ratios
compare targets measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from bench import phases, procfs, report, report_team, soak
from bench.procfs import cpu_seconds, wait_idle
from bench.report_before import BEFORE
from bench.targets import Lab, Target


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    rounds: int
    latency_requests: int  # per round, concurrency 1 (also the Gemini path's)
    latency_warmup: int
    throughput_seconds: float  # per round
    throughput_concurrency: int
    streams: int  # per round, concurrency 1
    frontend_streams: int  # the same, per Messages/Responses endpoint (a single stream is too noisy)
    load_seconds: float  # streaming CPU phase, per round
    load_concurrency: int
    busy_seconds: float  # many streams at once, per round (the first stream length is ramp-up)
    agent_requests: int  # 200 KB requests per round, concurrency 1
    failover_pairs: int  # per round: a normal request and a failing-over one
    sessions: int  # memory run: distinct sessions
    soak_seconds: float  # memory run: steady load after the sessions
    busy_concurrency: int = 32
    gap_s: float = 0.010
    events: int = 50


FULL = Profile("full", 5, 400, 50, 5.0, 32, 5, 5, 3.0, 8, 4.0, 100, 100, 10_000, 300.0)
# A smoke check in ~2 min: two rounds, and fewer sessions (10,000 take ~35 s on their own).
QUICK = Profile("quick", 2, 150, 20, 0.8, 32, 1, 3, 0.6, 8, 1.0, 30, 40, 3_000, 20.0)


def idle_cpu(targets: list[Target], seconds: float = 0.5) -> dict[str, float]:
    """CPU share each process burns while nobody talks to it (timers, polling)."""
    pids = {t.name: t.pid for t in targets if t.pid}
    before = {n: cpu_seconds(pid) for n, pid in pids.items()}
    time.sleep(seconds)
    return {n: (cpu_seconds(pid) - before[n]) / seconds for n, pid in pids.items()}


def _team_ready(team: Target | None, skipped: str | None) -> tuple[Target | None, str | None]:
    """The shared-stores proxy once it answers; one that does not start costs its row, not the run."""
    if team is None:
        return None, skipped
    try:
        team.wait_ready()
    except RuntimeError as e:
        team.stop()
        return None, f"proxy_team did not start: {e}"
    return team, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (~2 min) for a smoke check")
    parser.add_argument("--rounds", type=int, help="override the profile's number of rounds")
    parser.add_argument("--soak-seconds", type=float, help="steady-load phase of the memory run (full: 300)")
    parser.add_argument("--sessions", type=int, help="distinct sessions in the memory run (default 10000)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory run (sessions + soak)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/latest.*")
    args = parser.parse_args(argv)
    p = QUICK if args.quick else FULL
    if args.rounds:
        p = replace(p, rounds=max(1, min(args.rounds, 20)))
    if args.soak_seconds is not None:
        p = replace(p, soak_seconds=max(5.0, min(args.soak_seconds, 3600.0)))
    if args.sessions is not None:
        p = replace(p, sessions=max(100, min(args.sessions, 100_000)))

    started = time.monotonic()
    machine = procfs.machine()
    print(f"bench ({p.name}): {p.rounds} rounds on {machine['cpu']}, {machine['cores']} cores, "
          f"mitmproxy {machine['mitmproxy']}, Python {machine['python']}", file=sys.stderr)  # fmt: skip
    with Lab(p.gap_s, p.events) as lab:
        upstream = lab.upstream()
        plain, plain_stream, proxy = lab.plain(upstream), lab.plain_streaming(upstream), lab.proxy(upstream)
        spare = None if args.no_memory else lab.proxy(upstream, "proxy_soak")
        team, skipped = lab.proxy_team(upstream)
        before, before_skipped = lab.proxy_before(upstream, BEFORE)
        for t in (plain, plain_stream, proxy, spare, before):
            if t:
                t.wait_ready()
        team, skipped = _team_ready(team, skipped)
        mitm = [t for t in (plain, plain_stream, proxy, spare, team, before) if t]
        points = phases.endpoints(upstream, plain, plain_stream, proxy, team, before)
        machine["proxy_code_sha256"] = lab.code_digest
        print(f"  targets ready after {time.monotonic() - started:.1f} s", file=sys.stderr)
        idle = idle_cpu([upstream, *mitm])
        quiet = [t.pid for t in (upstream, plain, plain_stream, proxy, team, before) if t and t.pid]
        rounds: list[dict[str, Any]] = []
        for i in range(p.rounds):
            t0 = time.monotonic()
            rounds.append({
                "phases": phases.measure_round(p, i, points, upstream, quiet),
                "redaction_ms": phases.redaction_ms(lab.code_dir),
            })  # fmt: skip
            print(f"  round {i + 1}/{p.rounds}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        memory = None
        if spare:
            t0 = time.monotonic()
            wait_idle(quiet)
            memory = soak.run(
                spare, upstream, lab.history_path(spare.name), p.sessions, p.soak_seconds, p.events
            )
            print(f"  memory run: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        problems = {t.name: t.problems() for t in [upstream, *mitm]}
    namespace = lab.team.namespace if lab.team else None
    team_status = report_team.status(skipped, namespace, lab.cleanup_problems)
    elapsed = time.monotonic() - started
    result = report.build(p, machine, rounds, memory, idle, problems, elapsed, team_status, before_skipped)
    md = report.markdown(result)
    print(md)
    if not args.no_write:
        report.write(result, md)
    return 1 if result["errors_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
