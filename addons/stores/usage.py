"""The interface every usage store implements, and the in-memory one. What they keep and answer (entries,
queries, totals) is defined in addons/usage/totals.py and re-exported here and by base.py.

Every store's totals include the calls that already ended: one that writes in the background waits for,
or adds, what it has not yet written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol

from addons.usage.totals import USAGE_GROUPS as USAGE_GROUPS
from addons.usage.totals import USAGE_TOKENS as USAGE_TOKENS
from addons.usage.totals import UsageEntry as UsageEntry
from addons.usage.totals import UsageQuery as UsageQuery
from addons.usage.totals import UsageTotal as UsageTotal
from addons.usage.totals import tally

USAGE_TTL = 400 * 86400.0  # seconds the databases keep usage rows: a year of totals, whatever history keeps


class UsageStore(Protocol):
    """Usage entries, summed on demand. `add` never blocks a reply: a store writes in the background and
    its totals include what it has not written yet."""

    def add(self, entry: UsageEntry) -> None: ...

    async def totals(self, query: UsageQuery) -> list[UsageTotal]:
        """One total per group that has entries, ordered by group values; [] when nothing matches."""
        ...


class MemoryUsage:
    """UsageStore in memory, for a proxy that keeps no history file: the newest `max_entries` calls.
    Entries are indexed by session and project, so the totals of one (what budgets ask on every call)
    read that one's entries only."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._all: deque[UsageEntry] = deque()
        self._by: dict[str, dict[str | None, deque[UsageEntry]]] = {"session": {}, "project": {}}
        self.max_entries = max_entries

    def add(self, entry: UsageEntry) -> None:
        self._all.append(entry)
        for name, index in self._by.items():
            index.setdefault(getattr(entry, name), deque()).append(entry)
        if len(self._all) > self.max_entries:
            # Entries arrive in the same order everywhere: the oldest is first in its indexes too.
            old = self._all.popleft()
            for name, index in self._by.items():
                kept = index[getattr(old, name)]
                kept.popleft()
                if not kept:
                    del index[getattr(old, name)]

    async def totals(self, query: UsageQuery) -> list[UsageTotal]:
        candidates: Iterable[UsageEntry] = self._all
        if query.session is not None:
            candidates = self._by["session"].get(query.session, ())
        elif query.project is not None:
            candidates = self._by["project"].get(query.project, ())
        return tally(candidates, query).result()
