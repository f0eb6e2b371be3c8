"""The proxy's own read-only endpoints: `/v1/sessions/{id}/history` and `/v1/usage`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply
from addons.stores.base import UsageStore
from addons.usage.report import usage_json
from addons.usage.totals import USAGE_GROUPS, UsageQuery
from translators import json_codec

SESSIONS_PREFIXES = ("/v1/sessions/", "/sessions/")
USAGE_PATHS = frozenset({"/v1/usage", "/usage"})
USAGE_PARAMS = ("session", "project", "since", "until", "group_by")
DEFAULT_GROUPS = ("backend", "model")  # which model answered, and what it cost


def history_limit(query: dict[str, list[str]]) -> int | Reply:
    """The row limit asked for, or the error reply for a bad one."""
    raw = (query.get("limit") or ["1000"])[0]
    # ASCII digits, few of them: str.isdigit() takes "²" (int() then fails) and int() refuses 4301 digits.
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 10_000:
        return error_reply("limit must be a number from 1 to 10000.", 400, param="limit")
    return int(raw)


def history_reply(session_id: str, rows: list[dict[str, Any]], query: dict[str, list[str]]) -> Reply:
    if (query.get("format") or [""])[0] == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        return Reply(200, body, {"content-type": "application/x-ndjson"})
    return Reply(200, json_codec.dumps({"object": "list", "session_id": session_id, "data": rows}))


def history_off() -> Reply:
    return error_reply("Session history is off (LLM_HISTORY=off).", 404, code="history_off")


async def usage_reply(store: UsageStore, query: dict[str, list[str]]) -> Reply:
    """`GET /v1/usage`: totals for the filters, grouped as asked (README "Usage and cost")."""
    asked = usage_query(query)
    if isinstance(asked, Reply):
        return asked
    return Reply(200, json_codec.dumps(usage_json(asked, await store.totals(asked))))


def usage_query(query: dict[str, list[str]]) -> UsageQuery | Reply:
    """The query string as a UsageQuery, or a 400 naming the parameter that is wrong."""
    unknown = sorted(set(query) - set(USAGE_PARAMS))
    if unknown:
        return _bad(
            f"Unknown parameter {unknown[0]!r}; the parameters are {', '.join(USAGE_PARAMS)}.", unknown[0]
        )
    one = {name: values[-1] for name, values in query.items()}
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = _instant(one.get(name))
        except ValueError:
            return _bad(f"{name} must be an ISO-8601 time such as 2026-12-01 or 2026-12-01T09:30:00Z.", name)
    if times["since"] and times["until"] and times["since"] >= times["until"]:
        return _bad("since must be earlier than until.", "since")
    raw = one.get("group_by")
    groups = (
        DEFAULT_GROUPS
        if raw is None
        else tuple(dict.fromkeys(g.strip() for g in raw.split(",") if g.strip()))
    )
    if wrong := [g for g in groups if g not in USAGE_GROUPS]:
        return _bad(
            f"group_by cannot be {wrong[0]!r}; it takes any of {', '.join(USAGE_GROUPS)}.", "group_by"
        )
    return UsageQuery(one.get("session"), one.get("project"), times["since"], times["until"], groups)


def _instant(raw: str | None) -> datetime | None:
    """An ISO-8601 date or time; without a zone it is UTC."""
    if raw is None:
        return None
    moment = datetime.fromisoformat(raw.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bad(message: str, param: str) -> Reply:
    return error_reply(message, 400, param=param, code="invalid_usage_query")
