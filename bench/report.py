"""Figures over rounds -> one Markdown table (stdout + results/latest.md) and results/latest.json."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import stats
from bench.stats import Spread

RESULTS = Path(__file__).resolve().parent / "results"
SLOTS = ("direct", "plain", "proxy")
NAN = float("nan")
ADDED_MAX = 1.20
THROUGHPUT_MIN = 0.85
TTFB_EXTRA_MAX_MS = 3.0


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mitmproxy": version("mitmproxy"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": list(os.getloadavg()),
    }


def _div(a: float, b: float) -> float:
    return a / b if b and b == b else NAN


def round_figures(r: dict[str, dict[str, Any]], gap_ms: float) -> dict[str, dict[str, float]]:
    """Figures of one round: {figure: {direct/plain/proxy/ratio/vs_direct_ms: value}}."""
    lat = {s: stats.latency(r["latency"][s]) for s in SLOTS}
    tput = {s: stats.throughput(r["throughput"][s]) for s in SLOTS}
    st = {s: stats.stream(r["stream"][s], gap_ms) for s in SLOTS}
    sl = {s: stats.stream_load(raw) for s, raw in r["stream_load"].items()}
    f: dict[str, dict[str, float]] = {}
    for q in ("p50", "p99"):
        f[f"latency_{q}_ms"] = {s: lat[s][q] for s in SLOTS}
        plain, proxy = (lat[s][q] - lat["direct"][q] for s in ("plain", "proxy"))
        f[f"added_{q}_ms"] = {"plain": plain, "proxy": proxy, "ratio": _div(proxy, plain)}
    f["throughput_rps"] = {s: tput[s]["rps"] for s in SLOTS}
    f["throughput_rps"]["ratio"] = _div(tput["proxy"]["rps"], tput["plain"]["rps"])
    f["cpu_us_per_request"] = {s: tput[s]["cpu_us_per_req"] for s in ("plain", "proxy")}
    f["cpu_us_per_request"]["ratio"] = _div(tput["proxy"]["cpu_us_per_req"], tput["plain"]["cpu_us_per_req"])
    f["upstream_cpu_share_at_c32"] = {s: tput[s]["upstream_cpu_share"] for s in SLOTS}
    f["client_cpu_share_at_c32"] = {s: tput[s]["client_cpu_share"] for s in SLOTS}
    plain, proxy = (st[s]["ttfb_ms"] - st["direct"]["ttfb_ms"] for s in ("plain", "proxy"))
    f["stream_ttfb_added_ms"] = {"plain": plain, "proxy": proxy, "ratio": _div(proxy, plain)}
    for key in ("ttfb_ms", "total_ms", "event_gap_ms"):
        f[f"stream_{key}"] = {s: st[s][key] for s in SLOTS}
        f[f"stream_{key}"]["vs_direct_ms"] = st["proxy"][key] - st["direct"][key]
        f[f"stream_{key}"]["ratio"] = _div(st["proxy"][key], st["plain"][key])
    f["stream_incremental"] = {s: _div(st[s]["incremental"], st[s]["streams"]) for s in SLOTS}
    f["stream_events"] = {s: st[s]["events_per_stream"] for s in SLOTS}
    f["stream_last_event_ms"] = {s: st[s]["last_event_ms"] for s in SLOTS}
    f["cpu_us_per_event"] = {s: sl[s]["cpu_us_per_event"] for s in sl}
    f["cpu_us_per_event"]["ratio"] = _div(sl["proxy"]["cpu_us_per_event"], sl["plain"]["cpu_us_per_event"])
    return f


def _summary(per_round: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Spread | None]]:
    out: dict[str, dict[str, Spread | None]] = {}
    for fig in per_round[0]:
        out[fig] = {k: Spread.of([r[fig].get(k, NAN) for r in per_round]) for k in per_round[0][fig]}
    return out


def _errors(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {s: {"count": 0, "samples": []} for s in SLOTS}
    for r in rounds:
        for phase, by_slot in r.items():
            for slot, raw in by_slot.items():
                out[slot]["count"] += raw["errors"]
                for sample in raw["error_samples"]:
                    if len(out[slot]["samples"]) < 5:
                        out[slot]["samples"].append(f"{phase}: {sample}")
    return out


def build(
    profile: Any,
    machine: dict[str, Any],
    rounds: list[dict[str, dict[str, Any]]],
    idle: dict[str, float],
    problems: dict[str, list[str]],
    elapsed: float,
) -> dict[str, Any]:
    gap_ms = profile.gap_s * 1000
    per_round = [round_figures(r, gap_ms) for r in rounds]
    summary = _summary(per_round)
    errors = _errors(rounds)
    pooled = {
        s: {
            q: stats.percentile([x for r in rounds for x in r["latency"][s]["latencies_ms"]], n)
            for q, n in (("p50", 50), ("p99", 99))
        }
        for s in SLOTS
    }
    example = {s: rounds[0]["stream"][s]["streams"][:1] for s in SLOTS}
    background = [
        raw["cpu_s"].get("others", NAN) / raw["window_s"]
        for r in rounds
        for by_slot in r.values()
        for raw in by_slot.values()
        if raw["window_s"] > 0
    ]
    return {
        "machine": machine,
        "profile": asdict(profile) if is_dataclass(profile) else profile,
        "elapsed_s": round(elapsed, 1),
        "targets": {
            "direct": "load client -> fast fake upstream",
            "plain": "mitmdump reverse proxy, no addon (streaming rows: + 1-line addon setting stream=True)",
            "proxy": "mitmdump -s addons/llm_proxy.py, OpenRouter backend -> the same upstream",
        },
        "summary": {f: {k: asdict(v) if v else None for k, v in d.items()} for f, d in summary.items()},
        "pooled_latency_ms": pooled,
        "per_round": per_round,
        "example_stream_arrivals_ms": example,
        "idle_cpu_share": idle,
        "background_cores": Spread.of(background),
        "process_output": problems,
        "errors": errors,
        "errors_total": sum(e["count"] for e in errors.values()),
        "_spreads": summary,  # dropped before writing JSON
    }


def _cell(s: Spread | None, digits: int = 2, suffix: str = "") -> str:
    return s.fmt(digits, suffix) if s else "—"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**NO**")


def markdown(res: dict[str, Any]) -> str:
    s: dict[str, dict[str, Spread | None]] = res["_spreads"]
    m, p = res["machine"], res["profile"]

    def mid(fig: str, key: str) -> float:
        v = s[fig].get(key)
        return v.mid if v else NAN

    def row(fig: str, label: str, digits: int, ratio: str = "—", target: str = "—", met: str = "—") -> str:
        cells = " | ".join(_cell(s[fig].get(slot), digits) for slot in SLOTS)
        return f"| {label} | {cells} | {ratio} | {target} | {met} |"

    def ratio(fig: str, key: str = "ratio", digits: int = 2, suffix: str = "×", prefix: str = "") -> str:
        return prefix + _cell(s[fig].get(key), digits, suffix)

    c, ev, gap = p["throughput_concurrency"], p["events"], p["gap_s"] * 1000
    r50, r99, rt = mid("added_p50_ms", "ratio"), mid("added_p99_ms", "ratio"), mid("throughput_rps", "ratio")
    ttfb_extra = mid("stream_ttfb_added_ms", "proxy")
    incremental = all(mid("stream_incremental", k) == 1.0 for k in SLOTS)
    added_target = f"≤ {ADDED_MAX:.2f}×"
    errors = res["errors"]
    table = [
        "| figure | direct | plain mitmdump | proxy | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
        row("latency_p50_ms", "latency p50, c=1 (ms)", 3),
        row("latency_p99_ms", "latency p99, c=1 (ms)", 3),
        row("added_p50_ms", "added latency p50 vs direct (ms)", 3, ratio("added_p50_ms"), added_target,
            _met(r50 <= ADDED_MAX)),
        row("added_p99_ms", "added latency p99 vs direct (ms)", 3, ratio("added_p99_ms"), added_target,
            _met(r99 <= ADDED_MAX)),
        row("throughput_rps", f"throughput, c={c} (req/s)", 0, ratio("throughput_rps"),
            f"≥ {THROUGHPUT_MIN:.2f}×", _met(rt >= THROUGHPUT_MIN)),
        row("cpu_us_per_request", f"mitmdump CPU per request, c={c} (µs)", 0, ratio("cpu_us_per_request")),
        row("stream_ttfb_ms", "stream: first SSE event, c=1 (ms)", 2, ratio("stream_ttfb_ms")),
        row("stream_ttfb_added_ms", "stream: first SSE event, added vs direct (ms)", 2,
            ratio("stream_ttfb_added_ms"), f"proxy ≤ +{TTFB_EXTRA_MAX_MS:g} ms",
            _met(ttfb_extra <= TTFB_EXTRA_MAX_MS)),
        row("stream_total_ms", f"stream: total, {ev} events {gap:g} ms apart (ms)", 1,
            ratio("stream_total_ms", "vs_direct_ms", 1, " ms", "proxy − direct: ")),
        row("stream_last_event_ms", "stream: last event arrives at (ms)", 1),
        row("stream_event_gap_ms", "stream: median gap between events (ms)", 2),
        row("stream_events", "stream: events received per stream", 0),
        row("stream_incremental", "stream: share of streams arriving incrementally", 2,
            target="all (1.00)", met=_met(incremental)),
        row("cpu_us_per_event", f"mitmdump CPU per streamed event, c={p['load_concurrency']} (µs)", 0,
            ratio("cpu_us_per_event")),
        f"| failed requests | {errors['direct']['count']} | {errors['plain']['count']} | "
        f"{errors['proxy']['count']} | — | 0 | {_met(res['errors_total'] == 0)} |",
    ]  # fmt: skip
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
    up = s["upstream_cpu_share_at_c32"]
    idle = ", ".join(f"{k} {v * 100:.1f}%" for k, v in res["idle_cpu_share"].items())
    lines += [
        *table,
        "",
        "Cells: median of the per-round values (lowest–highest round). Ratios are proxy / plain mitmdump, "
        "computed per round. Streaming rows use plain mitmdump with a one-line addon setting "
        "`flow.response.stream = True` (without it mitmdump buffers the whole stream).",
        "",
        f"Sanity: upstream CPU busy {_cell(up.get('proxy'), 2)} of a core during the proxy's throughput "
        f"phase ({_cell(up.get('plain'), 2)} for plain mitmdump); idle CPU share: {idle}. "
        f"CPU busy outside the measured processes (other jobs, kernel) during measurements: "
        f"{_cell(res['background_cores'], 2)} cores, median (min–max) over all measurements; "
        "high values mean a noisy machine.",
    ]
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
