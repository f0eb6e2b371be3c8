"""Memory: RSS of a fresh proxy (history on) after many sessions, then under steady load.

1. `sessions`: N requests, each with a new `X-Session-ID` (non-streaming, short), 16 at a time.
2. `soak`: steady load for a while over those same sessions, mixing both backends, streamed and not;
   the proxy's VmRSS is sampled every few seconds. Steady state means a fixed set of sessions, so
   growth between the first and last third of the samples is a leak, not new state.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.phases import Endpoint, load
from bench.procfs import rss_mb
from bench.stats import median
from bench.targets import Target
from bench.wire import OPENAI_MODEL, PROXY_GEMINI_MODEL

CONCURRENCY = 16
# [model, stream, events the proxy adds to the upstream's]: both backends, streamed and not.
MIX = [
    [OPENAI_MODEL, False, 0],
    [OPENAI_MODEL, True, 0],
    [PROXY_GEMINI_MODEL, False, 0],
    [PROXY_GEMINI_MODEL, True, 1],
]
FLAT_PCT = 5.0
FLAT_MB = 10.0


def history_rows(path: Path) -> int:
    """Rows the proxy's history writer has committed (read-only; the proxy keeps writing)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])
    except sqlite3.Error:
        return -1


def growth(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Median RSS of the first and last third of the samples, and the growth between them."""
    values = [mb for _, mb in samples]
    third = max(1, len(values) // 3)
    first, last = median(values[:third]), median(values[-third:])
    pct = (last - first) / first * 100 if first else float("nan")
    return {"first_third_mb": first, "last_third_mb": last, "growth_mb": last - first, "growth_pct": pct}


def is_flat(g: dict[str, float]) -> bool:
    return g["growth_mb"] < FLAT_MB or g["growth_pct"] < FLAT_PCT


def run(
    proxy: Target, upstream: Target, history: Path, sessions: int, seconds: float, events: int
) -> dict[str, Any]:
    assert proxy.pid
    point = Endpoint(proxy, proxy.chat_path)
    rss_start = rss_mb(proxy.pid)
    bounds = {"count": sessions, "concurrency": CONCURRENCY}
    created = load(point, upstream, "sessions", events, **bounds, deadline=max(120.0, sessions / 20))
    time.sleep(1.0)  # let the history writer catch up
    rss_sessions = rss_mb(proxy.pid)
    every = max(1.0, seconds / 60)
    steady = {"duration": seconds, "deadline": seconds + 5, "mix": MIX, "rss_every": every}
    soak = load(point, upstream, "soak", events, **bounds, **steady, rss_pid=proxy.pid)
    time.sleep(1.0)
    g = growth(soak["rss_mb"])
    return {
        "sessions": sessions,
        "concurrency": CONCURRENCY,
        "rss_start_mb": rss_start,
        "rss_after_sessions_mb": rss_sessions,
        "sessions_rps": created["ok"] / created["window_s"] if created["window_s"] else float("nan"),
        "soak_seconds": seconds,
        "soak_requests": soak["ok"],
        "soak_rps": soak["ok"] / soak["window_s"] if soak["window_s"] else float("nan"),
        "rss_samples_mb": soak["rss_mb"],
        **g,
        "flat": is_flat(g),
        "history_rows": history_rows(history),
        "requests": created["ok"] + created["errors"] + soak["ok"] + soak["errors"],
        "raw": {"sessions": created, "soak": soak},
    }
