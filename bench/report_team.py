"""Table rows for the shared stores (issue 16, acceptance 5): what Redis and PostgreSQL add to a request.

`proxy_team` is the proxy with `LLM_REDIS_URL` and `LLM_DATABASE_URL` set (a namespace of its own per
run); its latency phase runs right after the embedded proxy's on the same requests, the order rotated
per round, so the difference of the two p50s is what the shared stores cost on the request path.
"""

from __future__ import annotations

from typing import Any

from bench.table import Table

ADDED_MAX_MS = 0.3  # p50: Redis + PostgreSQL stores ≤ embedded defaults + this


def status(skipped: str | None, namespace: str | None, cleanup_problems: list[str]) -> dict[str, Any]:
    """What the report says about the team target besides its figures (JSON `team`)."""
    return {"skipped": skipped, "namespace": namespace, "cleanup_problems": cleanup_problems}


def team_rows(t: Table, team: dict[str, Any]) -> None:
    t.section(
        "Shared stores (issue 16): proxy with LLM_REDIS_URL + LLM_DATABASE_URL vs the embedded defaults, c=1"
    )
    label = "added latency p50, Redis + PostgreSQL stores vs embedded (ms)"
    added = t.s.get("team_added_p50_ms", {}).get("proxy")
    if team["skipped"] or added is None:
        why = " ".join((team["skipped"] or "no measurement").split())[:300].replace("|", "/")  # one cell
        t.raw(label, f"not measured: {why}", f"≤ +{ADDED_MAX_MS:g} ms")
        return
    p50 = t.s["team_latency_p50_ms"]
    embedded, shared = p50.get("proxy"), p50.get("team")
    if embedded and shared:
        t.raw("latency p50: embedded → Redis + PostgreSQL (ms)", f"{embedded.fmt(3)} → {shared.fmt(3)}")
    sign = "+" if added.mid >= 0 else ""
    t.raw(label, sign + added.fmt(3), f"≤ +{ADDED_MAX_MS:g} ms", added.mid <= ADDED_MAX_MS)


def team_notes(team: dict[str, Any]) -> list[str]:
    """Markdown lines under the table: leftovers the cleanup could not remove."""
    if not team["cleanup_problems"]:
        return []
    return ["", "Shared stores cleanup: " + "; ".join(team["cleanup_problems"])]
