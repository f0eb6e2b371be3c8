"""Table rows for the proxy against its own code at an earlier commit: before → now, in the same run.

`proxy_before` runs the proxy's code as it was at commit BEFORE (issue 18's starting point), configured
like `proxy`; its phases run interleaved with the proxy's in the same round, so the ratio of CPU per
upstream chunk and the difference of the latency p50s are what the changes since then gained or cost.
(Issue 17 used the same rows against 380336e, the commit before usage accounting, guards and repair.)
"""

from __future__ import annotations

from bench.table import Table

# The last commit before the speed work of issue 18.
BEFORE = "6fd608c"
CPU_CHUNK_MAX = 1.0  # CPU per chunk now ≤ this × before: the speed work must not cost


def before_rows(t: Table, skipped: str | None, load_concurrency: int) -> None:
    t.section(f"Speed work (issue 18): proxy vs its code before it ({BEFORE})")
    cpu_label = f"50-chunk streams, c={load_concurrency}: mitmdump CPU per upstream chunk, before → now (µs)"
    lat_label = "latency p50 c=1, before → now (ms); difference"
    cpu, lat = t.s.get("before_cpu_us_per_chunk"), t.s.get("before_latency_p50_ms")
    if skipped or not cpu or not lat:
        why = (skipped or "no measurement").replace("|", "/")
        t.raw(cpu_label, f"not measured: {why}", f"≤ {CPU_CHUNK_MAX:.2f}×")
        return
    before, now = cpu.get("before"), cpu.get("proxy")
    if before and now:
        ratio = cpu["ratio"]
        t.raw(
            cpu_label,
            f"{before.fmt(0)} → {now.fmt(0)}",
            f"≤ {CPU_CHUNK_MAX:.2f}×",
            ratio is not None and ratio.mid <= CPU_CHUNK_MAX,
            ratio.fmt(2, "×") if ratio else "—",
        )
    b, n, diff = lat.get("before"), lat.get("proxy"), lat.get("diff")
    if b and n and diff:
        # "Unchanged within noise": the difference is no larger than the before-code's own spread over
        # the rounds (or 0.1 ms, when the rounds happen to agree closely).
        noise = max(b.hi - b.lo, 0.1)
        sign = "+" if diff.mid >= 0 else ""
        t.raw(
            lat_label,
            f"{b.fmt(3)} → {n.fmt(3)}; {sign}{diff.fmt(3)}",
            f"within noise (≤ +{noise:.3f} ms)",
            diff.mid <= noise,
        )
