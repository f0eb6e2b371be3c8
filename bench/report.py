"""Figures over rounds -> one Markdown table (stdout + results/latest.md) and results/latest.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from bench import soak as soak_mod
from bench import stats
from bench.figures import NAN, round_figures
from bench.report_before import before_rows
from bench.report_frontends import frontend_rows
from bench.report_team import team_notes, team_rows
from bench.stats import Spread
from bench.table import SLOTS, Spreads, Table, cell, met

RESULTS = Path(__file__).resolve().parent / "results"
ADDED_MAX = 1.20
THROUGHPUT_MIN = 0.85
TTFB_EXTRA_MAX_MS = 3.0
BUSY_TTFB_MAX = 2.0  # proxy p99 / direct p99, first stream event at c=32
CPU_EVENT_MAX = 1.20  # proxy / plain mitmdump (streaming), CPU per streamed event
GEMINI_CPU_MAX = 2.0  # Gemini path / OpenRouter path, CPU per streamed event
AGENT_ADDED_MAX = 1.60
REDACTION_MAX_MS = 10.0
RSS_MAX_MB = 150.0


def _summary(per_round: list[dict[str, dict[str, float]]]) -> Spreads:
    out: Spreads = {}
    for fig in per_round[0]:
        out[fig] = {k: Spread.of([r[fig].get(k, NAN) for r in per_round]) for k in per_round[0][fig]}
    return out


def _raws(rounds: list[dict[str, Any]], soak: dict[str, Any] | None) -> list[tuple[str, str, dict[str, Any]]]:
    """Every raw load-client result as (phase, column, raw)."""
    out = [
        (ph, col, raw) for r in rounds for ph, by_col in r["phases"].items() for col, raw in by_col.items()
    ]
    if soak:
        out += [(name, "proxy_soak", raw) for name, raw in soak["raw"].items()]
    return out


def _errors(raws: list[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for phase, col, raw in raws:
        e = out.setdefault(col, {"count": 0, "samples": []})
        e["count"] += raw["errors"]
        e["samples"] += [f"{phase}: {s}" for s in raw["error_samples"]][: 5 - len(e["samples"])]
    return out


def build(
    profile: Any,
    machine: dict[str, Any],
    rounds: list[dict[str, Any]],
    soak: dict[str, Any] | None,
    idle: dict[str, float],
    problems: dict[str, list[str]],
    elapsed: float,
    team: dict[str, Any],
    before_skipped: str | None = None,
) -> dict[str, Any]:
    gap_ms = profile.gap_s * 1000
    per_round = [round_figures(r, gap_ms) for r in rounds]
    summary = _summary(per_round)
    raws = _raws(rounds, soak)
    errors = _errors(raws)

    def pooled(phase: str, key: str, cols: tuple[str, ...]) -> dict[str, dict[str, float]]:
        return {
            c: {
                f"p{q}": stats.percentile([x for r in rounds for x in r["phases"][phase][c][key]], q)
                for q in (50, 99)
            }
            for c in cols
        }

    background = [
        raw["cpu_s"].get("others", NAN) / raw["window_s"] for _, _, raw in raws if raw["window_s"] > 0
    ]
    return {
        "machine": machine,
        "profile": asdict(profile) if is_dataclass(profile) else profile,
        "elapsed_s": round(elapsed, 1),
        "targets": {
            "direct": "load client -> fast fake upstream (Gemini rows: its Gemini wire format)",
            "plain": "mitmdump reverse proxy, no addon (streaming rows: + 1-line addon setting stream=True)",
            "proxy": "mitmdump -s addons/llm_proxy.py, both backends -> the same upstream, history on",
            "proxy_soak": "a second, fresh proxy like `proxy`, used only for the memory rows",
            "proxy_team": "a proxy like `proxy`, its stores on Redis + PostgreSQL (own namespace per run)",
            "proxy_before": "a proxy like `proxy` on its code before the speed work of issue 18",
        },
        "summary": {f: {k: asdict(v) if v else None for k, v in d.items()} for f, d in summary.items()},
        "pooled_latency_ms": pooled("latency", "latencies_ms", SLOTS),
        "pooled_busy_ttfb_ms": {
            "openrouter": pooled("busy_stream", "ttfbs_ms", SLOTS),
            "gemini": pooled("gemini_busy_stream", "ttfbs_ms", ("direct", "proxy")),
        },
        "per_round": per_round,
        "memory": {k: v for k, v in soak.items() if k != "raw"} if soak else None,
        "example_stream_arrivals_ms": {
            "openrouter": {c: raw["streams"][:1] for c, raw in rounds[0]["phases"]["stream"].items()},
            "gemini": {c: raw["streams"][:1] for c, raw in rounds[0]["phases"]["gemini_stream"].items()},
        },
        "team": team,
        "before_skipped": before_skipped,
        "idle_cpu_share": idle,
        "background_cores": Spread.of(background),
        "process_output": problems,
        "errors": errors,
        "errors_total": sum(e["count"] for e in errors.values()),
        "_spreads": summary,  # dropped before writing JSON
    }


def _openrouter_rows(t: Table, p: dict[str, Any]) -> None:
    c = p["throughput_concurrency"]
    added = f"≤ {ADDED_MAX:.2f}×"
    t.row("latency_p50_ms", "latency p50, c=1 (ms)", 3)
    t.row("latency_p99_ms", "latency p99, c=1 (ms)", 3)
    t.row(
        "added_p50_ms",
        "added latency p50 vs direct (ms)",
        3,
        t.ratio("added_p50_ms"),
        added,
        t.mid("added_p50_ms", "ratio") <= ADDED_MAX,
    )
    t.row(
        "added_p99_ms",
        "added latency p99 vs direct (ms)",
        3,
        t.ratio("added_p99_ms"),
        added,
        t.mid("added_p99_ms", "ratio") <= ADDED_MAX,
    )
    t.row(
        "throughput_rps",
        f"throughput, c={c} (req/s)",
        0,
        t.ratio("throughput_rps"),
        f"≥ {THROUGHPUT_MIN:.2f}×",
        t.mid("throughput_rps", "ratio") >= THROUGHPUT_MIN,
    )
    t.row("cpu_us_per_request", f"mitmdump CPU per request, c={c} (µs)", 0, t.ratio("cpu_us_per_request"))


def _stream_rows(t: Table, p: dict[str, Any]) -> None:
    ev, gap = p["events"], p["gap_s"] * 1000
    ttfb_extra = t.mid("stream_ttfb_added_ms", "proxy")
    incremental = all(t.mid("stream_incremental", k) == 1.0 for k in SLOTS)
    t.row("stream_ttfb_ms", "stream: first SSE event, c=1 (ms)", 2, t.ratio("stream_ttfb_ms"))
    t.row(
        "stream_ttfb_added_ms",
        "stream: first SSE event, added vs direct (ms)",
        2,
        t.ratio("stream_ttfb_added_ms"),
        f"proxy ≤ +{TTFB_EXTRA_MAX_MS:g} ms",
        ttfb_extra <= TTFB_EXTRA_MAX_MS,
    )
    t.row(
        "stream_total_ms",
        f"stream: total, {ev} events {gap:g} ms apart (ms)",
        1,
        t.ratio("stream_total_ms", "vs_direct_ms", 1, " ms", "proxy − direct: "),
    )
    t.row("stream_last_event_ms", "stream: last event arrives at (ms)", 1)
    t.row("stream_event_gap_ms", "stream: median gap between events (ms)", 2)
    t.row("stream_events", "stream: events received per stream", 0)
    t.row(
        "stream_incremental",
        "stream: share of streams arriving incrementally",
        2,
        target="all (1.00)",
        ok=incremental,
    )
    t.row(
        "cpu_us_per_event",
        f"mitmdump CPU per streamed event, c={p['load_concurrency']} (µs)",
        0,
        t.ratio("cpu_us_per_event"),
        f"≤ {CPU_EVENT_MAX:.2f}×",
        t.mid("cpu_us_per_event", "ratio") <= CPU_EVENT_MAX,
    )
    t.row("agent_latency_p50_ms", "200 KB agent request (history + tools): latency p50, c=1 (ms)", 2)
    t.row(
        "agent_added_p50_ms",
        "200 KB agent request: added latency p50 vs direct (ms)",
        2,
        t.ratio("agent_added_p50_ms"),
        f"≤ {AGENT_ADDED_MAX:.2f}×",
        t.mid("agent_added_p50_ms", "ratio") <= AGENT_ADDED_MAX,
    )


def _gemini_rows(t: Table) -> None:
    ttfb_extra = t.mid("gemini_stream_ttfb_added_ms", "proxy")
    incremental = all(t.mid("gemini_stream_incremental", k) == 1.0 for k in ("direct", "proxy"))
    t.row("gemini_latency_p50_ms", "Gemini: latency p50, c=1 (ms)", 3)
    t.row(
        "gemini_added_p50_ms",
        "Gemini: added latency p50 vs direct (ms)",
        3,
        t.ratio("gemini_added_p50_ms", prefix="vs OpenRouter path: "),
    )
    t.row("gemini_stream_ttfb_ms", "Gemini stream: first SSE event, c=1 (ms)", 2)
    t.row(
        "gemini_stream_ttfb_added_ms",
        "Gemini stream: first SSE event, added vs direct (ms)",
        2,
        target=f"proxy ≤ +{TTFB_EXTRA_MAX_MS:g} ms",
        ok=ttfb_extra <= TTFB_EXTRA_MAX_MS,
    )
    t.row(
        "gemini_stream_total_ms",
        "Gemini stream: total (ms)",
        1,
        t.ratio("gemini_stream_total_ms", "vs_direct_ms", 1, " ms", "proxy − direct: "),
    )
    t.row("gemini_stream_events", "Gemini stream: events received per stream (proxy: + finish chunk)", 0)
    t.row(
        "gemini_stream_incremental",
        "Gemini stream: share of streams arriving incrementally",
        2,
        target="all (1.00)",
        ok=incremental,
    )
    t.row(
        "gemini_cpu_us_per_event",
        "Gemini stream: mitmdump CPU per streamed event (µs)",
        0,
        t.ratio("gemini_cpu_us_per_event", prefix="vs OpenRouter path: "),
        f"≤ {GEMINI_CPU_MAX:.2f}×",
        t.mid("gemini_cpu_us_per_event", "ratio") <= GEMINI_CPU_MAX,
    )


def _busy_rows(t: Table, c: int) -> None:
    for prefix, name in (("", "OpenRouter path"), ("gemini_", "Gemini path")):
        t.row(
            f"{prefix}busy_ttfb_p50_ms",
            f"{name}: first SSE event p50, c={c} streams (ms)",
            2,
            t.ratio(f"{prefix}busy_ttfb_p50_ms", prefix="proxy/direct: "),
        )
        t.row(
            f"{prefix}busy_ttfb_p99_ms",
            f"{name}: first SSE event p99, c={c} streams (ms)",
            2,
            t.ratio(f"{prefix}busy_ttfb_p99_ms", prefix="proxy/direct: "),
            f"≤ {BUSY_TTFB_MAX:g}× direct",
            t.mid(f"{prefix}busy_ttfb_p99_ms", "ratio") <= BUSY_TTFB_MAX,
        )


def _proxy_only_rows(t: Table, redaction_cases: list[str]) -> None:
    t.row("failover_normal_p50_ms", "failover: latency p50, first attempt succeeds (ms)", 2)
    t.row("failover_p50_ms", "failover: latency p50, first key gets 429, retried on the second (ms)", 2)
    t.row("failover_added_ms", "failover: added per failover (ms)", 2)
    labels = {
        "dirty": "40 realistic keys, 1 MB prompt with 20 keys inside",
        "random": "40 random keys (40 anchors, worst case), 1 MB prompt",
    }
    for case in redaction_cases:
        fig = f"redaction_{case}_ms"
        t.row(
            fig,
            f"redaction: {labels.get(case, case)} (ms)",
            2,
            target=f"≤ {REDACTION_MAX_MS:g} ms",
            ok=t.mid(fig, "proxy") <= REDACTION_MAX_MS,
        )


def _memory_rows(t: Table, m: dict[str, Any]) -> None:
    t.raw("RSS at start, fresh proxy (MB)", f"{m['rss_start_mb']:.1f}")
    after = m["rss_after_sessions_mb"]
    t.raw(
        f"RSS after {m['sessions']:,} sessions, history on (MB)",
        f"{after:.1f}",
        f"≤ {RSS_MAX_MB:g} MB",
        after <= RSS_MAX_MB,
    )
    t.raw(
        f"RSS under steady load, {m['soak_seconds']:g} s at c={m['concurrency']}: "
        "median of first → last third of samples (MB)",
        f"{m['first_third_mb']:.1f} → {m['last_third_mb']:.1f}",
        f"growth < {soak_mod.FLAT_PCT:g}% or < {soak_mod.FLAT_MB:g} MB",
        m["flat"],
        f"{m['growth_mb']:+.1f} MB ({m['growth_pct']:+.1f}%)",
    )


def _table(res: dict[str, Any]) -> list[str]:
    p = res["profile"]
    t = Table(res["_spreads"])
    _openrouter_rows(t, p)
    _stream_rows(t, p)
    t.section("Gemini path: direct = the fake Gemini itself; proxy = OpenAI in, Gemini out, translated back")
    _gemini_rows(t)
    t.section(
        "Messages and Responses front-ends: direct = the fake upstream in its own dialect (OpenAI, Gemini)"
    )
    frontend_rows(t, p["load_concurrency"])
    t.section(
        f"{p['busy_concurrency']} streams at once ({p['events']} events {p['gap_s'] * 1000:g} ms apart)"
    )
    _busy_rows(t, p["busy_concurrency"])
    t.section("Proxy only")
    _proxy_only_rows(
        t, sorted(k.removeprefix("redaction_").removesuffix("_ms") for k in t.s if k.startswith("redaction_"))
    )
    if res["memory"]:
        _memory_rows(t, res["memory"])
    team_rows(t, res["team"])
    before_rows(t, res.get("before_skipped"), p["load_concurrency"])
    errors = res["errors"]
    count = {c: sum(e["count"] for k, e in errors.items() if k.startswith(c)) for c in SLOTS}
    t.lines.append(
        f"| failed requests | {count['direct']} | {count['plain']} | {count['proxy']} | — | 0 | "
        f"{met(res['errors_total'] == 0)} |"
    )
    return t.lines


def markdown(res: dict[str, Any]) -> str:
    m, p = res["machine"], res["profile"]
    errors = res["errors"]
    lines = [
        f"# llm-intercept benchmark ({p['name']}, {len(res['per_round'])} rounds)",
        "",
        f"{m['date']} · {m['cpu']}, {m['cores']} cores · Linux {m['kernel']} · Python {m['python']} · "
        f"mitmproxy {m['mitmproxy']} · load at start {m['loadavg_at_start'][0]:.2f} · "
        f"run {res['elapsed_s']} s · proxy code (addons/, translators/) sha256 "
        f"{m.get('proxy_code_sha256', '?')[:12]}",
        "",
    ]
    if res["errors_total"]:
        lines += [f"## !!! {res['errors_total']} FAILED REQUESTS: the numbers below are suspect !!!", ""]
        lines += [f"- {k}: {e['count']} errors, e.g. {e['samples']}" for k, e in errors.items() if e["count"]]
        lines += [""]
    s = res["_spreads"]
    up = s["upstream_cpu_share_at_c32"]
    idle = ", ".join(f"{k} {v * 100:.1f}%" for k, v in res["idle_cpu_share"].items())
    lines += [
        *_table(res),
        "",
        "Cells: median of the per-round values (lowest–highest round). Ratios are proxy / plain mitmdump, "
        "computed per round, unless the cell says otherwise. Streaming rows use plain mitmdump with a "
        "one-line addon setting `flow.response.stream = True` (else mitmdump buffers the whole stream). "
        "Memory rows are one measurement on a second, fresh proxy after the rounds.",
        "",
        f"Sanity: upstream CPU busy {cell(up.get('proxy'), 2)} of a core during the proxy's throughput "
        f"phase ({cell(up.get('plain'), 2)} for plain mitmdump); idle CPU share: {idle}. "
        f"CPU busy outside the measured processes (other jobs, kernel) during measurements: "
        f"{cell(res['background_cores'], 2)} cores, median (min–max) over all measurements; "
        "high values mean a noisy machine.",
    ]
    mem = res["memory"]
    if mem:
        lines += [
            "",
            f"Memory run: {mem['sessions']:,} sessions at {mem['sessions_rps']:.0f} req/s, then "
            f"{mem['soak_requests']:,} requests at {mem['soak_rps']:.0f} req/s (both backends, streamed and "
            f"not); {mem['history_rows']:,} history rows written for {mem['requests']:,} requests.",
        ]
    lines += team_notes(res["team"])
    for name, out in res["process_output"].items():
        if out:
            lines += ["", f"{name} printed (termlog at warn): " + " | ".join(out[:5])[:600]]
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Spread):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def write(res: dict[str, Any], md: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    data = _jsonable({k: v for k, v in res.items() if not k.startswith("_")})
    for name, text in (("latest.md", md), ("latest.json", json.dumps(data, indent=1) + "\n")):
        tmp = RESULTS / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, RESULTS / name)
