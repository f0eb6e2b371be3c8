"""How usage reads: money, one call, a total that misses unknown costs, `!/usage`'s text, `/v1/usage`'s
JSON and its query (a bad parameter is a 400 naming it)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from addons.frontends import admin
from addons.frontends.base import Reply
from addons.records import Usage
from addons.stores.usage import MemoryUsage
from addons.usage.report import call_summary, money, total_summary, usage_json, usage_text
from addons.usage.totals import UsageEntry, UsageQuery, UsageTotal

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
TODAY = NOW.replace(hour=1).timestamp()
YESTERDAY = NOW.replace(day=30, month=11).timestamp()


CALL = Usage(100, 20)


def entry(
    session: str, project: str | None, cost: float | None, ts: float, tokens: Usage = CALL
) -> UsageEntry:
    return UsageEntry(
        session, project, "gemini", "gemini-2.5-flash", "GEMINI_API_KEY_1", "openai_chat", tokens, cost, ts
    )


@pytest.mark.parametrize(
    ("cost", "shown"),
    [(None, "unknown"), (0, "$0"), (0.000123, "$0.000123"), (1.23456, "$1.2346"), (1234.5, "$1,234.50")],
)
def test_money(cost: float | None, shown: str) -> None:
    assert money(cost) == shown


def test_one_call() -> None:
    assert call_summary(Usage(120, 30), 0.000123) == "tokens 120+30=150 · $0.000123"
    assert call_summary(Usage(120, 30), None) == "tokens 120+30=150 · cost unknown"
    assert (
        call_summary(Usage(120, 30, 100, 10), 0.5)
        == "tokens 120+30=150 (100 cached, 10 reasoning) · $0.500000"
    )
    assert call_summary(None, None) == "tokens unknown · cost unknown"


def test_a_total_says_what_it_misses() -> None:
    total = UsageTotal({}, 3, 1200, 300, 1000, 50, 0.25, 1)
    assert total_summary(total) == (
        "3 calls · 1,200 in (1,000 cached) + 300 out (50 reasoning) = 1,500 tokens · $0.250000 "
        "(+1 call of unknown cost)"
    )
    all_unknown = UsageTotal({}, 2, 10, 10, 0, 0, 0.0, 2)
    assert total_summary(all_unknown).endswith("· cost unknown")
    assert total_summary(None) == "no calls"


def test_usage_command_text() -> None:
    store = MemoryUsage()
    for e in (
        entry("s1", "acme", 0.001, TODAY), entry("s1", "acme", None, TODAY),
        entry("s1", "acme", 0.002, YESTERDAY), entry("s2", "acme", 0.004, TODAY),
        entry("s3", None, 0.008, TODAY),
    ):  # fmt: skip
        store.add(e)
    text = asyncio.run(usage_text(store, "s1", "acme", NOW))
    assert text.splitlines() == [
        "usage · session s1",
        "this session: 3 calls · 300 in + 60 out = 360 tokens · $0.003000 (+1 call of unknown cost)",
        "project acme: 4 calls · 400 in + 80 out = 480 tokens · $0.007000 (+1 call of unknown cost)",
        "today (2026-12-01 UTC, all sessions): 4 calls · 400 in + 80 out = 480 tokens · $0.013000 "
        "(+1 call of unknown cost)",
    ]
    text = asyncio.run(usage_text(store, "new", None, NOW))
    assert "this session: no calls" in text and "project: none set (set one with !/set(project=NAME))" in text


def test_usage_json_has_a_grand_total_and_says_when_costs_are_missing() -> None:
    query = UsageQuery(project="acme", group_by=("session",))
    totals = [
        UsageTotal({"session": "s1"}, 2, 200, 40, 0, 0, 0.001, 1),
        UsageTotal({"session": "s2"}, 1, 100, 20, 0, 0, 0.004, 0),
    ]
    out = usage_json(query, totals)
    assert out["filters"] == {"session": None, "project": "acme", "since": None, "until": None}
    assert out["group_by"] == ["session"]
    assert out["total"] == {
        "requests": 3, "prompt_tokens": 300, "completion_tokens": 60, "total_tokens": 360, "cached_tokens": 0,
        "reasoning_tokens": 0, "cost_usd": 0.005, "unknown_cost": 1, "cost_complete": False,
    }  # fmt: skip
    assert [g["group"] for g in out["groups"]] == [{"session": "s1"}, {"session": "s2"}]
    assert out["groups"][1]["cost_complete"] is True
    unknown = usage_json(UsageQuery(), [UsageTotal({}, 1, 1, 1, 0, 0, 0.0, 1)])
    assert unknown["total"]["cost_usd"] is None  # no call's cost is known: null, not 0
    empty = usage_json(UsageQuery(), [])
    assert empty["total"]["requests"] == 0 and empty["total"]["cost_usd"] == 0 and empty["groups"] == []


def q(**params: str) -> UsageQuery | Reply:
    return admin.usage_query({k: [v] for k, v in params.items()})


def test_usage_query_parameters() -> None:
    assert q() == UsageQuery(group_by=("backend", "model"))
    assert q(group_by="") == UsageQuery()
    asked = q(
        session="s1",
        project="p",
        since="2026-12-01",
        until="2026-12-02T10:00:00+02:00",
        group_by="key,model,key",
    )
    assert asked == UsageQuery(
        "s1",
        "p",
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime.fromisoformat("2026-12-02T10:00:00+02:00"),
        ("key", "model"),
    )
    assert q(since="2026-12-01T09:30:00Z") == UsageQuery(
        since=datetime(2026, 12, 1, 9, 30, tzinfo=UTC), group_by=("backend", "model")
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "since"),
        ({"group_by": "model,colour"}, "group_by"),
        ({"sesion": "s1"}, "sesion"),
    ],
)
def test_a_bad_usage_query_is_a_400_naming_the_parameter(params: dict[str, str], param: str) -> None:
    reply = q(**params)
    assert isinstance(reply, Reply) and reply.status == 400
    error = json.loads(reply.body)["error"]
    assert error["param"] == param and param in error["message"] and error["code"] == "invalid_usage_query"
