"""What usage accounting counts and sums: one entry per answered model call, the question a total answers
(filters and grouping), and the totals. Plain records and sums: the usage stores (addons/stores/) keep the
entries, report.py shows the totals."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from addons.records import Usage

# What totals can be grouped by: UsageEntry attribute names.
USAGE_GROUPS = ("session", "project", "backend", "model", "key")
# The token counts an entry, a total and a database row carry: Usage attribute names.
USAGE_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One answered model call: who sent it, who answered, its tokens, its cost (None: unknown)."""

    session: str
    project: str | None
    backend: str | None
    model: str | None
    key: str | None  # key *name*
    frontend: str
    tokens: Usage
    cost_usd: float | None
    ts: float = field(default_factory=time.time)  # when the call ended (epoch seconds)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Entries of `session` and `project` (None: any) from `since` (inclusive) to `until` (exclusive),
    summed per distinct value of the `group_by` attributes (empty: one total)."""

    session: str | None = None
    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    group_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [g for g in self.group_by if g not in USAGE_GROUPS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; groups: {', '.join(USAGE_GROUPS)}")

    def window(self) -> tuple[float | None, float | None]:
        """`since` and `until` as epoch seconds (naive datetimes are taken as UTC)."""
        return _epoch(self.since), _epoch(self.until)

    def matches(self, entry: UsageEntry, since: float | None, until: float | None) -> bool:
        """`since` and `until`: this query's window()."""
        return (
            (self.session is None or entry.session == self.session)
            and (self.project is None or entry.project == self.project)
            and (since is None or entry.ts >= since)
            and (until is None or entry.ts < until)
        )


@dataclass(slots=True)
class UsageTotal:
    """The sums of one group. `cost_usd` covers the calls with a known cost only; `unknown_cost` counts
    the others, so a partial sum is never taken for the whole."""

    group: dict[str, str | None]
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, entry: UsageEntry) -> None:
        t = entry.tokens
        self.requests += 1
        self.prompt_tokens += t.prompt_tokens
        self.completion_tokens += t.completion_tokens
        self.cached_tokens += t.cached_tokens
        self.reasoning_tokens += t.reasoning_tokens
        if entry.cost_usd is None:
            self.unknown_cost += 1
        else:
            self.cost_usd += entry.cost_usd

    def merge(self, other: UsageTotal) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cost_usd += other.cost_usd
        self.unknown_cost += other.unknown_cost


class Tally:
    """Totals per group, built from entries and from totals a database already summed."""

    def __init__(self, group_by: tuple[str, ...]) -> None:
        self.group_by = group_by
        self._groups: dict[tuple[str | None, ...], UsageTotal] = {}

    def _total(self, values: tuple[str | None, ...]) -> UsageTotal:
        total = self._groups.get(values)
        if total is None:
            total = self._groups[values] = UsageTotal(dict(zip(self.group_by, values, strict=True)))
        return total

    def add(self, entry: UsageEntry) -> None:
        self._total(tuple(getattr(entry, g) for g in self.group_by)).add(entry)

    def merge(self, total: UsageTotal) -> None:
        self._total(tuple(total.group.get(g) for g in self.group_by)).merge(total)

    def result(self) -> list[UsageTotal]:
        return [
            self._groups[k] for k in sorted(self._groups, key=lambda k: [(v is not None, v or "") for v in k])
        ]


def tally(entries: Iterable[UsageEntry], query: UsageQuery) -> Tally:
    out = Tally(query.group_by)
    since, until = query.window()
    for entry in entries:
        if query.matches(entry, since, until):
            out.add(entry)
    return out


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).timestamp()
    return moment.timestamp()
