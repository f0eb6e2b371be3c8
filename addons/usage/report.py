"""How usage reads: one call's tokens and cost (the mitmweb comment), totals as text (`!/usage`) and as
JSON (`GET /v1/usage`). A sum that misses calls of unknown cost always says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from addons.records import Usage
from addons.stores.base import UsageStore
from addons.usage.totals import Tally, UsageQuery, UsageTotal


def money(cost: float | None) -> str:
    """'$0.000123', '$1.2346', '$123.46'; 'unknown' for None."""
    if cost is None:
        return "unknown"
    if cost == 0:
        return "$0"
    digits = 6 if cost < 1 else 4 if cost < 100 else 2
    return f"${cost:,.{digits}f}"


def _details(cached: int, reasoning: int) -> str:
    parts = [f"{cached:,} cached"] * bool(cached) + [f"{reasoning:,} reasoning"] * bool(reasoning)
    return f" ({', '.join(parts)})" if parts else ""


def call_summary(usage: Usage | None, cost: float | None) -> str:
    """One call, for the flow comment: 'tokens 120+30=150 · $0.000123' (or '· cost unknown')."""
    if usage is None:
        tokens = "tokens unknown"
    else:
        tokens = f"tokens {usage.prompt_tokens}+{usage.completion_tokens}={usage.total_tokens}"
        tokens += _details(usage.cached_tokens, usage.reasoning_tokens)
    return f"{tokens} · {'cost unknown' if cost is None else money(cost)}"


def known_cost(total: UsageTotal) -> float | None:
    """The sum of the calls with a known cost; None when no call's cost is known."""
    return None if total.requests and total.unknown_cost == total.requests else total.cost_usd


def total_summary(total: UsageTotal | None) -> str:
    """'3 calls · 1,234 in (800 cached) + 56 out = 1,290 tokens · $0.000123 (+1 call of unknown cost)'."""
    if total is None or not total.requests:
        return "no calls"
    calls = f"{total.requests:,} call{'s' * (total.requests != 1)}"
    tokens = (
        f"{total.prompt_tokens:,} in{_details(total.cached_tokens, 0)} + {total.completion_tokens:,} out"
        f"{_details(0, total.reasoning_tokens)} = {total.total_tokens:,} tokens"
    )
    cost = known_cost(total)
    if cost is None:
        shown = "cost unknown"
    elif total.unknown_cost:
        n = total.unknown_cost
        shown = f"{money(cost)} (+{n} call{'s' * (n != 1)} of unknown cost)"
    else:
        shown = money(cost)
    return f"{calls} · {tokens} · {shown}"


async def usage_text(
    store: UsageStore, session: str, project: str | None, now: datetime | None = None
) -> str:
    """`!/usage`: this session, its project, and today (UTC) across every session."""
    now = now or datetime.now(UTC)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = UsageQuery(since=midnight, until=midnight + timedelta(days=1))
    lines = [
        f"usage · session {session}",
        f"this session: {total_summary(await _one(store, UsageQuery(session)))}",
    ]
    if project:
        lines.append(f"project {project}: {total_summary(await _one(store, UsageQuery(project=project)))}")
    else:
        lines.append("project: none set (set one with !/set(project=NAME))")
    lines.append(f"today ({midnight:%Y-%m-%d} UTC, all sessions): {total_summary(await _one(store, today))}")
    return "\n".join(lines)


async def _one(store: UsageStore, query: UsageQuery) -> UsageTotal | None:
    totals = await store.totals(query)
    return totals[0] if totals else None


def total_json(total: UsageTotal) -> dict[str, Any]:
    cost = known_cost(total)
    return {
        "requests": total.requests,
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "total_tokens": total.total_tokens,
        "cached_tokens": total.cached_tokens,
        "reasoning_tokens": total.reasoning_tokens,
        "cost_usd": None if cost is None else round(cost, 10),
        "unknown_cost": total.unknown_cost,
        "cost_complete": total.unknown_cost == 0,
    }


def usage_json(query: UsageQuery, totals: list[UsageTotal]) -> dict[str, Any]:
    """`GET /v1/usage`: the filters as understood, the grand total, and one entry per group."""
    overall = Tally(())
    for t in totals:
        overall.merge(t)
    grand = overall.result()
    return {
        "object": "usage",
        "filters": {
            "session": query.session,
            "project": query.project,
            "since": query.since.isoformat() if query.since else None,
            "until": query.until.isoformat() if query.until else None,
        },
        "group_by": list(query.group_by),
        "total": total_json(grand[0] if grand else UsageTotal({})),
        "groups": [{"group": t.group, **total_json(t)} for t in totals],
    }
