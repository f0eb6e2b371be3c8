"""Table rows for the proxy against its own code at an earlier commit: before → now, in the same run.

`proxy_before` runs the proxy's code as it was at commit BEFORE (issue 18's starting point), configured
like `proxy`; its phases run interleaved with the proxy's in the same round, so the ratio of CPU per
upstream chunk and the difference of the latency p50s are what the changes since then gained or cost.
(Issue 17 used the same rows against 380336e, the commit before usage accounting, guards and repair.)
"""

from __future__ import annotations

from collections.abc import Callable

from bench.stats import Spread
from bench.table import Table

# The last commit before the speed work of issue 18.
BEFORE = "6fd608c"
CPU_CHUNK_MAX = 1.0  # CPU per chunk now ≤ this × before: the speed work must not cost


def before_rows(t: Table, skipped: str | None, load_concurrency: int) -> None:
    t.section(f"Speed work (issue 18): proxy vs its code before it ({BEFORE})")
    cpu_label = f"50-chunk streams, c={load_concurrency}: mitmdump CPU per upstream chunk, before → now (µs)"
    cpu = t.s.get("before_cpu_us_per_chunk")
    if skipped or not cpu:
        why = (skipped or "no measurement").replace("|", "/")
        t.raw(cpu_label, f"not measured: {why}", f"≤ {CPU_CHUNK_MAX:.2f}×")
        return
    _ratio_row(t, cpu, cpu_label, 0, f"≤ {CPU_CHUNK_MAX:.2f}×", lambda r: r <= CPU_CHUNK_MAX)
    _ratio_row(
        t, t.s.get("before_throughput_rps", {}), "throughput c=32, before → now (req/s)", 0, "≥ 1.00×",
        lambda r: r >= 1.0,
    )  # fmt: skip
    _diff_row(t, t.s.get("before_latency_p50_ms", {}), "latency p50 c=1, before → now (ms); difference")
    agent = "200 KB agent request p50 c=1, before → now (ms); difference"
    _diff_row(t, t.s.get("before_agent_p50_ms", {}), agent)


def _ratio_row(
    t: Table, fig: dict[str, Spread], label: str, digits: int, target: str, ok: Callable[[float], bool]
) -> None:
    before, now, ratio = fig.get("before"), fig.get("proxy"), fig.get("ratio")
    if before and now:
        met = ratio is not None and ok(ratio.mid)
        shown = ratio.fmt(2, "×") if ratio else "—"
        t.raw(label, f"{before.fmt(digits)} → {now.fmt(digits)}", target, met, shown)


def _diff_row(t: Table, fig: dict[str, Spread], label: str) -> None:
    b, n, diff = fig.get("before"), fig.get("proxy"), fig.get("diff")
    if b and n and diff:
        # "Not slower beyond noise": the difference is no larger than the before-code's own spread over
        # the rounds (or 0.1 ms, when the rounds happen to agree closely).
        noise = max(b.hi - b.lo, 0.1)
        sign = "+" if diff.mid >= 0 else ""
        t.raw(
            label,
            f"{b.fmt(3)} → {n.fmt(3)}; {sign}{diff.fmt(3)}",
            f"not slower beyond noise (≤ +{noise:.3f} ms)",
            diff.mid <= noise,
        )
