"""Per-session overrides, bounded: idle sessions expire and the store has a hard cap.

A session is a few small fields (slots, each at most MAX_FIELD_LENGTH characters), so the 10,000
sessions the store keeps at most cost a few MB.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

DEFAULT_SESSION = "default"
MAX_SESSION_ID = 128
# Longest value a command may store in a session field (project, model, ...): sessions stay small.
MAX_FIELD_LENGTH = 256


@dataclass(slots=True)
class Session:
    id: str
    model: str | None = None  # as the user gave it: "gemini:gemini-2.5-flash", "openai/gpt-4o", a route name
    backend: str | None = None
    project: str | None = None
    interactive: bool | None = None  # None: the global default applies
    greeted: bool = False  # the banner has been shown
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    """LRU by last use: a session idle over `idle_ttl` seconds, or beyond `max_sessions`, is dropped."""

    def __init__(self, idle_ttl: float = 24 * 3600, max_sessions: int = 10_000) -> None:
        self.idle_ttl = idle_ttl
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def get(self, session_id: str) -> Session:
        now = time.monotonic()
        self._expire(now)
        s = self._sessions.get(session_id)
        if s is None:
            s = self._sessions[session_id] = Session(session_id)
        else:
            self._sessions.move_to_end(session_id)
        s.last_seen = now
        return s

    def peek(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def _expire(self, now: float) -> None:
        # Oldest first: stop at the first session still fresh.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if len(self._sessions) < self.max_sessions and now - oldest.last_seen <= self.idle_ttl:
                break
            self._sessions.popitem(last=False)


def valid_session_id(raw: str | None) -> str | None:
    """The header value, or None if unusable (too long, control characters)."""
    if raw is None or raw == "":
        return DEFAULT_SESSION
    raw = raw.strip()
    if not raw or len(raw) > MAX_SESSION_ID or not raw.isprintable():
        return None
    return raw
