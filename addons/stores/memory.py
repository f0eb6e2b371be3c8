"""In-process stores: sessions, and cooldowns with key rotation. Lost on restart, as they always were.

A session is a few small fields (slots, each at most MAX_FIELD_LENGTH characters), so the 10,000
sessions the store keeps at most cost a few MB.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from addons.stores.base import ActiveCooldown, Session


class MemorySessions:
    """LRU by last use: a session idle over `idle_ttl` seconds, or beyond `max_sessions`, is dropped."""

    def __init__(self, idle_ttl: float = 24 * 3600, max_sessions: int = 10_000) -> None:
        self.idle_ttl = idle_ttl
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    async def get(self, session_id: str) -> Session:
        return dataclasses.replace(self._touch(session_id))

    async def update(self, session_id: str, fields: Mapping[str, Any]) -> None:
        s = self._sessions.get(session_id) or self._touch(session_id)
        for name, value in fields.items():
            setattr(s, name, value)

    async def all(self) -> list[Session]:
        return [dataclasses.replace(s) for s in self._sessions.values()]

    async def count(self) -> int:
        return len(self._sessions)

    def _touch(self, session_id: str) -> Session:
        now = time.monotonic()
        self._expire(now)
        s = self._sessions.get(session_id)
        if s is None:
            s = self._sessions[session_id] = Session(session_id)
        else:
            self._sessions.move_to_end(session_id)
        s.last_seen = now
        return s

    def _expire(self, now: float) -> None:
        # Oldest first: stop at the first session still fresh.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if len(self._sessions) < self.max_sessions and now - oldest.last_seen <= self.idle_ttl:
                break
            self._sessions.popitem(last=False)


@dataclass(slots=True)
class _Cooldown:
    until: float
    reason: str


class MemoryCooldowns:
    """Per (backend, model, key) cooldowns, keys retired for every model (credits exhausted), and the
    round-robin position of each key ring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._by_model: dict[tuple[str, str, str], _Cooldown] = {}
        self._retired: dict[tuple[str, str], _Cooldown] = {}
        self._turns: dict[str, int] = {}

    async def cool(self, backend: str, model: str, key: str, seconds: float, reason: str) -> None:
        until = self.clock() + max(0.0, seconds)
        current = self._by_model.get((backend, model, key))
        if current is None or current.until < until:
            self._by_model[(backend, model, key)] = _Cooldown(until, reason)

    async def retire(self, backend: str, key: str, seconds: float | None, reason: str) -> None:
        until = math.inf if seconds is None else self.clock() + seconds
        self._retired[(backend, key)] = _Cooldown(until, reason)

    async def remaining(self, backend: str, model: str, key: str) -> float:
        now = self.clock()
        left = 0.0
        for cd in (self._by_model.get((backend, model, key)), self._retired.get((backend, key))):
            if cd is not None and cd.until > now:
                left = max(left, cd.until - now)
        return left

    async def active(self) -> list[ActiveCooldown]:
        now = self.clock()
        self._by_model = {k: v for k, v in self._by_model.items() if v.until > now}
        out = [ActiveCooldown(b, m, k, cd.until - now, cd.reason) for (b, m, k), cd in self._by_model.items()]
        out += [
            ActiveCooldown(b, "*", k, cd.until - now, cd.reason)
            for (b, k), cd in self._retired.items()
            if cd.until > now
        ]
        return sorted(out)

    async def next_turn(self, ring: str, size: int) -> int:
        start = self._turns.get(ring, 0) % size
        self._turns[ring] = start + 1
        return start

    async def set_turn(self, ring: str, position: int) -> None:
        self._turns[ring] = position
