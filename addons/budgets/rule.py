"""When a call may start, and how the proxy says it may not.

A call that would start with a budget already spent is refused. Otherwise the budget may still be overshot
by the calls in flight, so how many of a scope may run at once depends on what is left: as many as fit
in it if each cost as much as the largest call of that window so far, and always at least one. While no
call's size is known yet (a new window, a restart) that is one. A call that does not fit waits for one
in flight to end. So a budget is overshot by at most one call (one larger than every call before it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from addons.budgets.ledger import Budget, Spent

_SO_FAR = {"session": "so far", "daily": "today (UTC)", "monthly": "this month (UTC)"}


def slots(budget: Budget, spent: Spent) -> int | None:
    """How many calls of the budget's scope may be in flight now: 0 when it is spent, None: no bound
    (every call so far was free, so calls cannot move this budget)."""
    unit = budget.limit.unit
    left = budget.limit.amount - spent.amount(unit)
    if left <= 0:
        return 0
    largest = spent.largest(unit)
    if largest is None:
        return 1
    return max(1, int(left // largest)) if largest > 0 else None


def scope_slots(budgets: Sequence[Budget], spent: Sequence[Spent]) -> int | None:
    """The tightest of the budgets of one scope (None: no bound)."""
    bounds = [n for n in map(slots, budgets, spent) if n is not None]
    return min(bounds) if bounds else None


def over(budgets: Sequence[Budget], spent: Sequence[Spent]) -> tuple[Budget, Spent] | None:
    """The first budget that is spent, with what it spent."""
    return next(((b, s) for b, s in zip(budgets, spent, strict=True) if slots(b, s) == 0), None)


def tightest(budgets: Sequence[Budget], spent: Sequence[Spent]) -> tuple[Budget, Spent]:
    """The budget that leaves its scope the fewest calls in flight."""
    return min(zip(budgets, spent, strict=True), key=lambda bs: _bound(slots(*bs)))


def _bound(n: int | None) -> float:
    return math.inf if n is None else n


def left_text(budget: Budget, spent: Spent) -> str:
    """What is left, e.g. "$1.20 of $2.50 left ($1.30 spent)", when it resets, what it could not count."""
    limit = budget.limit
    used = spent.amount(limit.unit)
    text = (
        f"{budget.describe()}: {limit.show(max(0.0, limit.amount - used))} of {limit.show(limit.amount)} "
        f"left ({limit.show(used)} spent{_resets(budget)})"
    )
    if limit.unit == "usd" and spent.unpriced:
        text += f"; {spent.unpriced} call(s) without a known price not counted"
    return text


def refusal(budget: Budget, spent: Spent, prefix: str) -> str:
    """The message of a refused call: which budget, its limit, what it spent, when it resets."""
    limit = budget.limit
    if budget.key.resets is None:
        after = (
            f"A session budget does not reset: raise it with {prefix}set(budget=...) or remove it with "
            f"{prefix}unset(budget)."
        )
    else:
        after = f"It resets at {iso(budget.key.resets)}; raise it under budgets: in the settings file."
    return (
        f"Budget exceeded: {budget.describe()} is {limit.show(limit.amount)}; spent "
        f"{_SO_FAR[budget.key.period]}: {limit.show(spent.amount(limit.unit))}. {after}"
    )


def busy(budget: Budget, spent: Spent, waited: float) -> str:
    """The message when calls in flight kept this one waiting too long."""
    return (
        f"{left_text(budget, spent)}; that is less than the calls of this scope already running may "
        f"cost, and none of them ended within {waited:g} s. Retry when they have ended."
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _resets(budget: Budget) -> str:
    resets = budget.key.resets
    return "" if resets is None else f", resets {iso(resets)}"
