"""Per-round figures from raw load-client results, and medians with spread over rounds."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

Raw = dict[str, Any]  # one load-client result (bench.loadgen.Result as JSON)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no data."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True, slots=True)
class Spread:
    """Median of per-round values, with the lowest and highest round."""

    mid: float
    lo: float
    hi: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        vals = [v for v in values if v == v]  # drop NaN
        if not vals:
            return None
        return cls(median(vals), min(vals), max(vals))

    def fmt(self, digits: int = 2, suffix: str = "") -> str:
        f = f"{{:.{digits}f}}"
        mid, lo, hi = f.format(self.mid), f.format(self.lo), f.format(self.hi)
        return f"{mid}{suffix}" if lo == hi else f"{mid}{suffix} ({lo}–{hi})"


def latency(raw: Raw) -> dict[str, float]:
    lat = raw["latencies_ms"]
    return {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "n": len(lat)}


def throughput(raw: Raw) -> dict[str, float]:
    ok, window = raw["ok"], raw["window_s"] or float("nan")
    cpu = raw["cpu_s"]
    return {
        "rps": ok / window,
        "cpu_us_per_req": cpu.get("target", float("nan")) / ok * 1e6 if ok else float("nan"),
        "target_cpu_share": cpu.get("target", float("nan")) / window,
        "upstream_cpu_share": cpu.get("upstream", float("nan")) / window,
        "client_cpu_share": cpu.get("client", float("nan")) / window,
    }


def stream(raw: Raw, gap_ms: float) -> dict[str, float]:
    streams = raw["streams"]
    incremental = 0
    for s in streams:
        arr = s["arrivals_ms"]
        gaps = [b - a for a, b in itertools.pairwise(arr)]
        # Incremental: events spaced like the upstream sent them, and the first long before the last.
        if gaps and median(gaps) >= 0.5 * gap_ms and arr[0] < 0.1 * arr[-1]:
            incremental += 1
    return {
        "ttfb_ms": median([s["ttfb_ms"] for s in streams]),
        "total_ms": median([s["total_ms"] for s in streams]),
        "last_event_ms": median([s["arrivals_ms"][-1] for s in streams]),
        "event_gap_ms": median([b - a for s in streams for a, b in itertools.pairwise(s["arrivals_ms"])]),
        "events_per_stream": median([float(s["events"]) for s in streams]),
        # All SSE events per content event (= per upstream chunk): what a dialect wraps each chunk in.
        "frames_per_event": median([s["frames"] / s["events"] for s in streams if s["events"]]),
        "streams": len(streams),
        "incremental": incremental,
    }


def stream_load(raw: Raw) -> dict[str, float]:
    events, chunks, cpu, ttfbs = raw["events"], raw["chunks"], raw["cpu_s"], raw["ttfbs_ms"]
    return {
        "events": events,
        "cpu_us_per_event": cpu.get("target", float("nan")) / events * 1e6 if events else float("nan"),
        # Per upstream chunk: fair across dialects that send more (or fewer) events per chunk.
        "cpu_us_per_chunk": cpu.get("target", float("nan")) / chunks * 1e6 if chunks else float("nan"),
        "target_cpu_share": cpu.get("target", float("nan")) / (raw["window_s"] or float("nan")),
        "ttfb_p50_ms": percentile(ttfbs, 50),
        "ttfb_p99_ms": percentile(ttfbs, 99),
        "streams": len(ttfbs),
    }
