"""The figures of one round, from its raw load-client results: {figure: {column or ratio: value}}.

Every ratio is computed inside the round, so both sides of it saw the same machine.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.wire import FRONTENDS

Raw = dict[str, Any]
Figures = dict[str, dict[str, float]]
NAN = float("nan")


def div(a: float, b: float) -> float:
    return a / b if b and b == b else NAN


def _latency(prefix: str, by_col: dict[str, Raw]) -> Figures:
    """p50/p99 per column; added = column − direct; ratio = proxy added / plain added (if plain ran)."""
    lat = {c: stats.latency(raw) for c, raw in by_col.items()}
    others = [c for c in by_col if c != "direct"]
    f: Figures = {}
    for q in ("p50", "p99"):
        f[f"{prefix}latency_{q}_ms"] = {c: lat[c][q] for c in by_col}
        added = {c: lat[c][q] - lat["direct"][q] for c in others}
        f[f"{prefix}added_{q}_ms"] = {**added, "ratio": div(added["proxy"], added.get("plain", NAN))}
    return f


def _stream(prefix: str, by_col: dict[str, Raw], gap_ms: float) -> Figures:
    """One stream at a time: first event, total, gaps, events, incremental arrival."""
    st = {c: stats.stream(raw, gap_ms) for c, raw in by_col.items()}
    others = [c for c in by_col if c != "direct"]
    added = {c: st[c]["ttfb_ms"] - st["direct"]["ttfb_ms"] for c in others}
    f: Figures = {
        f"{prefix}stream_ttfb_added_ms": {**added, "ratio": div(added["proxy"], added.get("plain", NAN))}
    }
    for key in ("ttfb_ms", "total_ms", "event_gap_ms"):
        f[f"{prefix}stream_{key}"] = {c: st[c][key] for c in by_col}
        f[f"{prefix}stream_{key}"]["vs_direct_ms"] = st["proxy"][key] - st["direct"][key]
        f[f"{prefix}stream_{key}"]["ratio"] = div(st["proxy"][key], st.get("plain", {}).get(key, NAN))
    f[f"{prefix}stream_incremental"] = {c: div(st[c]["incremental"], st[c]["streams"]) for c in by_col}
    f[f"{prefix}stream_events"] = {c: st[c]["events_per_stream"] for c in by_col}
    f[f"{prefix}stream_frames_per_event"] = {c: st[c]["frames_per_event"] for c in by_col}
    f[f"{prefix}stream_last_event_ms"] = {c: st[c]["last_event_ms"] for c in by_col}
    return f


def _busy(prefix: str, by_col: dict[str, Raw]) -> Figures:
    """Many streams at once: first-event percentiles; ratio = proxy / direct."""
    sl = {c: stats.stream_load(raw) for c, raw in by_col.items()}
    f: Figures = {}
    for q in ("p50", "p99"):
        key = f"ttfb_{q}_ms"
        f[f"{prefix}busy_{key}"] = {c: sl[c][key] for c in by_col}
        f[f"{prefix}busy_{key}"]["ratio"] = div(sl["proxy"][key], sl["direct"][key])
    f[f"{prefix}busy_streams"] = {c: sl[c]["streams"] for c in by_col}
    return f


def _frontends(ph: dict[str, dict[str, Raw]], gap_ms: float) -> Figures:
    """Messages and Responses: first text vs direct, and CPU per upstream chunk vs the chat dialect on
    the same path (OpenRouter: the OpenAI passthrough) measured in the same round."""
    chat = stats.stream_load(ph["stream_load"]["proxy"])["cpu_us_per_chunk"]
    gemini_chat = stats.stream_load(ph["gemini_stream_load"]["proxy"])["cpu_us_per_chunk"]
    f: Figures = {
        "chat_cpu_us_per_chunk": {"proxy": chat},
        "gemini_chat_cpu_us_per_chunk": {"proxy": gemini_chat},
    }
    for fe in FRONTENDS:
        f.update(_stream(f"{fe.name}_", ph[f"{fe.name}_stream"], gap_ms))
        cpu = stats.stream_load(ph[f"{fe.name}_stream_load"]["proxy"])["cpu_us_per_chunk"]
        base = gemini_chat if fe.gemini else chat
        f[f"{fe.name}_cpu_us_per_chunk"] = {"proxy": cpu, "ratio": div(cpu, base), "vs_chat": div(cpu, chat)}
    return f


def round_figures(r: dict[str, Any], gap_ms: float) -> Figures:
    ph: dict[str, dict[str, Raw]] = r["phases"]
    f: Figures = {}
    f.update(_latency("", ph["latency"]))
    tput = {c: stats.throughput(raw) for c, raw in ph["throughput"].items()}
    f["throughput_rps"] = {c: tput[c]["rps"] for c in tput}
    f["throughput_rps"]["ratio"] = div(tput["proxy"]["rps"], tput["plain"]["rps"])
    f["cpu_us_per_request"] = {c: tput[c]["cpu_us_per_req"] for c in ("plain", "proxy")}
    f["cpu_us_per_request"]["ratio"] = div(tput["proxy"]["cpu_us_per_req"], tput["plain"]["cpu_us_per_req"])
    f["upstream_cpu_share_at_c32"] = {c: tput[c]["upstream_cpu_share"] for c in tput}
    f["client_cpu_share_at_c32"] = {c: tput[c]["client_cpu_share"] for c in tput}
    f.update(_stream("", ph["stream"], gap_ms))

    cpu = {c: stats.stream_load(raw)["cpu_us_per_event"] for c, raw in ph["stream_load"].items()}
    gemini_cpu = stats.stream_load(ph["gemini_stream_load"]["proxy"])["cpu_us_per_event"]
    f["cpu_us_per_event"] = {**cpu, "ratio": div(cpu["proxy"], cpu["plain"])}
    f["gemini_cpu_us_per_event"] = {"proxy": gemini_cpu, "ratio": div(gemini_cpu, cpu["proxy"])}

    f.update(_latency("gemini_", ph["gemini_latency"]))
    gemini_added = f["gemini_added_p50_ms"]["proxy"]
    f["gemini_added_p50_ms"]["ratio"] = div(gemini_added, f["added_p50_ms"]["proxy"])  # vs OpenRouter path
    f.update(_stream("gemini_", ph["gemini_stream"], gap_ms))
    f.update(_frontends(ph, gap_ms))
    f.update(_busy("", ph["busy_stream"]))
    f.update(_busy("gemini_", ph["gemini_busy_stream"]))
    f.update(_latency("agent_", ph["agent_latency"]))

    fo = ph["failover"]["proxy"]
    normal, failed = stats.percentile(fo["latencies_ms"], 50), stats.percentile(fo["failover_ms"], 50)
    f["failover_p50_ms"] = {"proxy": failed}
    f["failover_normal_p50_ms"] = {"proxy": normal}
    f["failover_added_ms"] = {"proxy": failed - normal}

    if "team_latency" in ph:  # Redis + PostgreSQL stores vs the embedded ones, same requests, same round
        lat = {c: stats.latency(raw)["p50"] for c, raw in ph["team_latency"].items()}
        f["team_latency_p50_ms"] = {"proxy": lat["proxy"], "team": lat["team"]}
        f["team_added_p50_ms"] = {"proxy": lat["team"] - lat["proxy"]}

    if "before_stream_load" in ph:  # the code at report_before.BEFORE, same round
        cpu = {c: stats.stream_load(raw)["cpu_us_per_chunk"] for c, raw in ph["before_stream_load"].items()}
        f["before_cpu_us_per_chunk"] = {**cpu, "ratio": div(cpu["proxy"], cpu["before"])}
        lat = {c: stats.latency(raw)["p50"] for c, raw in ph["before_latency"].items()}
        f["before_latency_p50_ms"] = {**lat, "diff": lat["proxy"] - lat["before"]}
        rps = {c: stats.throughput(raw)["rps"] for c, raw in ph["before_throughput"].items()}
        f["before_throughput_rps"] = {**rps, "ratio": div(rps["proxy"], rps["before"])}
        agent = {c: stats.latency(raw)["p50"] for c, raw in ph["before_agent"].items()}
        f["before_agent_p50_ms"] = {**agent, "diff": agent["proxy"] - agent["before"]}

    for case, ms in r["redaction_ms"].items():
        f[f"redaction_{case}_ms"] = {"proxy": ms}
    return f
