"""Which budgets apply to a call, the window each counts in, and what a window has spent.

A session budget covers the session's whole spend and never resets. A project budget counts per UTC day
(`daily`) and per UTC month (`monthly`); each window is a ledger of its own, so a new day starts from 0
without anything being reset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from addons.budgets.limits import Limit, ProjectBudget, Unit, parse_limit
from addons.records import CallRecord

log = logging.getLogger(__name__)

type Kind = Literal["session", "project"]
type Period = Literal["session", "daily", "monthly"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose spend: a session or a project. Calls in flight are counted per scope."""

    kind: Kind
    name: str

    @property
    def path(self) -> str:
        """Unique and readable: the name comes last, so any characters in it are harmless."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """One scope's spend in one window: `window` is "" (the whole session), "2025-06-01" or "2025-06"."""

    scope: Scope
    period: Period
    window: str
    start: datetime | None  # None: since the session began
    resets: datetime | None  # None: never

    @property
    def path(self) -> str:
        if self.period == "session":
            return self.scope.path
        return f"{self.scope.kind}:{self.period}:{self.window}:{self.scope.name}"


def ledger_key(scope: Scope, period: Period, now: datetime) -> LedgerKey:
    """The window of `period` that `now` (UTC) falls in."""
    if period == "session":
        return LedgerKey(scope, period, "", None, None)
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return LedgerKey(scope, period, day.strftime("%Y-%m-%d"), day, day + timedelta(days=1))
    month = day.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return LedgerKey(scope, period, month.strftime("%Y-%m"), month, following)


@dataclass(frozen=True, slots=True)
class Budget:
    key: LedgerKey
    limit: Limit

    def describe(self) -> str:
        """How a message names it: "this session's budget", "project 'acme' daily budget"."""
        if self.key.period == "session":
            return "this session's budget"
        return f"project '{self.key.scope.name}' {self.key.period} budget"


def applicable(
    session_id: str,
    session_budget: str | None,
    project: str | None,
    projects: Mapping[str, ProjectBudget],
    now: datetime,
) -> list[Budget]:
    """The budgets a call of this session counts against: its own, then its project's."""
    out = []
    limit = _session_limit(session_id, session_budget)
    if limit is not None:
        out.append(Budget(ledger_key(Scope("session", session_id), "session", now), limit))
    configured = projects.get(project) if project is not None else None
    if project is not None and configured is not None:
        limits: tuple[tuple[Period, float | None], ...] = (
            ("daily", configured.daily), ("monthly", configured.monthly)
        )  # fmt: skip
        for period, usd in limits:
            if usd is not None:
                out.append(Budget(ledger_key(Scope("project", project), period, now), Limit(usd, "usd")))
    return out


def _session_limit(session_id: str, text: str | None) -> Limit | None:
    if text is None:
        return None
    try:
        return parse_limit(text)
    except ValueError:  # `!/set` stores only what it parsed: this came from elsewhere (a shared store)
        log.warning("session %r: ignored budget %r that does not parse", session_id, text)
        return None


@dataclass(frozen=True, slots=True)
class Spend:
    """What one finished call cost: `usd` None when its price is unknown, `tokens` None without usage."""

    usd: float | None
    tokens: int | None

    @classmethod
    def of(cls, record: CallRecord) -> Spend:
        usage = record.usage
        return cls(record.cost_usd, None if usage is None else usage.prompt_tokens + usage.completion_tokens)

    @property
    def nothing(self) -> bool:
        """No usage and no cost: nothing to count (a failed call)."""
        return self.usd is None and self.tokens is None


@dataclass(slots=True)
class Spent:
    """What one window has spent. `largest_*`: the largest call this ledger saw end, None while it has
    seen none (a total read from history tells no call's size); `unpriced` counts calls whose USD cost
    is unknown, which a USD budget cannot count."""

    usd: float = 0.0
    tokens: int = 0
    unpriced: int = 0
    largest_usd: float | None = None
    largest_tokens: int | None = None

    def add(self, spend: Spend) -> None:
        if spend.usd is None:
            self.unpriced += spend.tokens is not None
        else:
            self.usd += spend.usd
            self.largest_usd = max(self.largest_usd or 0.0, spend.usd)
        if spend.tokens is not None:
            self.tokens += spend.tokens
            self.largest_tokens = max(self.largest_tokens or 0, spend.tokens)

    def amount(self, unit: Unit) -> float:
        return self.usd if unit == "usd" else self.tokens

    def largest(self, unit: Unit) -> float | None:
        return self.largest_usd if unit == "usd" else self.largest_tokens


@dataclass(frozen=True, slots=True)
class Admission:
    """A budget store's answer to a call that wants to start: whether it holds a lease now (one of its
    scope's calls in flight), and what the ledgers asked about have spent."""

    admitted: bool
    spent: list[Spent]
