"""Budgets around one call: admitted (or refused) before any provider is called, its spend counted when
its outcome is known, its place among the calls in flight given back when it is over, whatever the end.

The rule (addons/budgets/rule.py) lets a scope run as many calls at once as its budget can pay if each
costs as much as its largest so far; a call that does not fit waits until one ends (up to proxy_timeout),
so a budget is overshot by at most the one call in flight. Every call's spend reaches the ledgers that
exist for its session and project, budget or not, so a budget set later finds them current.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from addons.budgets.ledger import Budget, LedgerKey, Period, Scope, Spend, Spent, applicable, ledger_key
from addons.budgets.rule import busy, left_text, over, refusal, scope_slots, tightest
from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply
from addons.pipeline.core import Core
from addons.records import CallRecord
from addons.stores.base import BudgetStore, Session

log = logging.getLogger(__name__)
WAIT_STEP = 0.2  # seconds between looks while a scope has no room for one more call
NOTHING = Spend(None, None)
_PERIODS: dict[str, tuple[Period, ...]] = {"session": ("session",), "project": ("daily", "monthly")}
_unpriced_warned: set[str] = set()  # backend:model whose unknown price was logged
_background: set[asyncio.Task[None]] = set()  # settles nobody waits for, kept until they end


class Ticket:
    """One call's part in the budgets: its scopes, the budgets it counts against, and its lease."""

    def __init__(self, store: BudgetStore, scopes: Sequence[Scope], budgets: Sequence[Budget]) -> None:
        self.store = store
        self.scopes = tuple(scopes)
        self.budgets = tuple(budgets)
        self.lease: str | None = None  # held in every scope that has a budget
        self._settling: asyncio.Task[None] | None = None

    def settle(self, record: CallRecord) -> None:
        """The call's outcome is known (the Recorder says so, once): count its spend, end its lease."""
        if self._settling is not None:
            return
        spend = Spend.of(record)
        if spend.usd is None and spend.tokens is not None and self._counts_usd():
            self._unpriced(record)
        # The end is taken now, after the usage store got the call: a ledger that begins later has it.
        self._settling = _start(self._settle(spend, time.time()))

    async def finish(self) -> None:
        """The call is over (answered, failed, or its client left): a lease not yet given back is, and
        the spend is stored before the client sees the end (so its next call is judged on it)."""
        if self.lease is None:  # no budget applies: the Recorder's settle is all there is
            return
        if self._settling is None:
            self._settling = _start(self._settle(NOTHING, time.time()))
        await asyncio.shield(self._settling)

    async def around(self, call: Awaitable[Reply]) -> Reply:
        """The call's reply; the call is over when the reply is, or for a stream when the stream is."""
        if self.lease is None:  # nothing to give back (and a stream stays as it is: no layer per chunk)
            return await call
        try:
            reply = await call
        except BaseException:
            await self.finish()
            raise
        if reply.stream is None:
            await self.finish()
        else:
            reply.stream = self.hold(reply.stream)
        return reply

    async def hold(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A streamed answer: the call is over when the stream is (ended, or closed by a client that left)."""
        try:
            async for data in source:
                yield data
        finally:
            await self.finish()

    async def _settle(self, spend: Spend, ended: float) -> None:
        at = datetime.fromtimestamp(ended, UTC)
        keys = [ledger_key(s, p, at) for s in self.scopes for p in _PERIODS[s.kind]]
        try:
            await self.store.settle(self.scopes, keys, spend, ended, self.lease)
        except Exception:  # a broken store must not break the answer; the lease lapses on its own
            log.exception("budget: the spend of a call could not be stored")

    def _counts_usd(self) -> bool:
        return any(b.limit.unit == "usd" for b in self.budgets)

    def _unpriced(self, record: CallRecord) -> None:
        model = f"{record.backend}:{record.model}"
        record.notes.append(f"cost unknown (no price for {model}): not counted in USD budgets, tokens are")
        if model not in _unpriced_warned:
            _unpriced_warned.add(model)
            log.warning("budget: no price for %s; its calls count only toward token budgets", model)


async def admit(core: Core, session: Session, record: CallRecord) -> Ticket | Reply:
    """A ticket for a call that may start; an error reply when a budget is spent (or stays full)."""
    scopes = [Scope("session", session.id)]
    if session.project is not None:
        scopes.append(Scope("project", session.project))
    budgets = _applicable(core, session)
    ticket = Ticket(core.stores.budgets, scopes, budgets)
    if not budgets:
        return ticket
    loop = asyncio.get_running_loop()
    deadline = loop.time() + core.settings.proxy_timeout
    lease = secrets.token_hex(8)
    while True:
        held: list[Scope] = []
        admitted = False
        try:
            verdict = await _take(ticket.store, budgets, lease, held)
            admitted = verdict is None
        finally:
            # Places in some scopes only (or a client that left meanwhile): they go back, unawaited.
            if held and not admitted:
                _start(ticket.store.settle(held, [], NOTHING, time.time(), lease))
        if verdict is None:
            ticket.lease = lease
            return ticket
        budget, spent, spent_out = verdict
        if spent_out:
            return _refused(core, record, refusal(budget, spent, core.settings.command_prefix), 402)
        if loop.time() >= deadline:
            return _refused(core, record, busy(budget, spent, core.settings.proxy_timeout), 429)
        await asyncio.sleep(WAIT_STEP)


async def status_lines(core: Core, session: Session) -> list[str]:
    """What is left of each budget this session's calls count against (for !/status and !/usage)."""
    budgets = _applicable(core, session)
    if not budgets:
        return ["budgets: none apply to this session"]
    spent = await core.stores.budgets.spent([b.key for b in budgets])
    return ["budgets:", *(f"  {left_text(b, s)}" for b, s in zip(budgets, spent, strict=True))]


def _applicable(core: Core, session: Session) -> list[Budget]:
    now = datetime.now(UTC)
    return applicable(session.id, session.budget, session.project, core.settings.budgets, now)


async def _take(
    store: BudgetStore, budgets: Sequence[Budget], lease: str, held: list[Scope]
) -> tuple[Budget, Spent, bool] | None:
    """A lease in every scope (each one taken is added to `held`): None; or, at the first scope without
    room, the budget in the way, its spend, and whether it is spent."""
    for scope in dict.fromkeys(b.key.scope for b in budgets):
        mine = [b for b in budgets if b.key.scope == scope]
        keys: list[LedgerKey] = [b.key for b in mine]
        got = await store.admit(scope, keys, functools.partial(scope_slots, mine), lease)
        if not got.admitted:
            spent_out = over(mine, got.spent)
            if spent_out is not None:
                return (*spent_out, True)
            return (*tightest(mine, got.spent), False)
        held.append(scope)
    return None


def _refused(core: Core, record: CallRecord, message: str, status: int) -> Reply:
    """402 (a budget is spent): a client must not retry it. 429 (calls in flight kept it waiting): it
    may, after a moment."""
    code = "budget_exceeded" if status == 402 else "budget_busy"
    reply = error_reply(message, status, code=code)
    if status == 402:
        reply.headers["x-should-retry"] = "false"
    else:
        reply.headers.pop("x-should-retry", None)
        reply.headers["retry-after"] = "1"
    record.answered_by, record.status = "proxy", status
    record.notes.append(code.replace("_", " "))
    reply.record = record
    return reply


def _start(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task
