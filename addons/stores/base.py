"""The state the proxy keeps, as plain records, and the small async interfaces every store implements.

Stores are keyed by plain values (session id, backend, model and key *names*) and hand out copies, so a
store several proxies share can implement the same interfaces. Nothing outside `addons/stores/` knows
which store it talks to; `addons/app.py` alone constructs them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from addons.budgets.ledger import Admission, LedgerKey, Scope, Spend, Spent
from addons.stores.budget_memory import MemoryBudgets, Slots

# Usage accounting: the interface and the memory store (Stores' default) are in usage.py, the records it
# keeps and answers in addons/usage/totals.py.
from addons.stores.usage import MemoryUsage
from addons.stores.usage import UsageStore as UsageStore
from addons.usage.totals import UsageEntry as UsageEntry
from addons.usage.totals import UsageQuery as UsageQuery
from addons.usage.totals import UsageTotal as UsageTotal

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
    budget: str | None = None  # as set by `!/set(budget=...)`: USD ("2.50") or tokens ("200k")
    loop_guard: bool | None = None  # None: the configured default applies
    last_seen: float = field(default_factory=time.monotonic)


def valid_session_id(raw: str | None) -> str | None:
    """The header value, or None if unusable (too long, control characters)."""
    if raw is None or raw == "":
        return DEFAULT_SESSION
    raw = raw.strip()
    if not raw or len(raw) > MAX_SESSION_ID or not raw.isprintable():
        return None
    return raw


@dataclass(slots=True)
class Route:
    """A failover route: what the config store keeps (validation lives in `routing.routes`)."""

    name: str
    policy: str = "k"
    elements: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "elements": [f"{b}:{m}" for b, m in self.elements]}

    def describe(self) -> str:
        els = ", ".join(f"{b}:{m}" for b, m in self.elements) or "(empty)"
        return f"{self.name} [{self.policy}]: {els}"


# RuntimeConfig field -> the start-up setting (and state file entry) it overrides.
RUNTIME_SETTINGS = {
    "default_backend": "default_backend",
    "interactive": "interactive_mode",
    "redact": "redact_api_keys_in_prompts",
}


@dataclass(slots=True)
class RuntimeConfig:
    """What in-chat commands change for every session. Treated as immutable: a change is a new one."""

    default_backend: str
    interactive: bool
    redact: bool
    routes: dict[str, Route] = field(default_factory=dict)
    # What `unset` goes back to: the start-up values, by setting name.
    base: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """What a store keeps: only values that differ from start-up, plus routes."""
        out: dict[str, Any] = {}
        for attr, name in RUNTIME_SETTINGS.items():
            if getattr(self, attr) != self.base.get(name):
                out[name] = getattr(self, attr)
        if self.routes:
            out["routes"] = {name: r.to_json() for name, r in self.routes.items()}
        return out

    def carry(self, live: RuntimeConfig) -> None:
        """Keep what commands changed in `live`, the configuration this one replaces after an option
        change: a changed value stays unless its start-up value changed too. The live routes stay."""
        for attr, name in RUNTIME_SETTINGS.items():
            if getattr(live, attr) != live.base.get(name) and self.base.get(name) == live.base.get(name):
                setattr(self, attr, getattr(live, attr))
        self.routes = live.routes


@dataclass(frozen=True, slots=True, order=True)
class ActiveCooldown:
    backend: str
    model: str  # "*": the key is retired for every model
    key: str  # key *name*
    left: float  # seconds; math.inf: until restart
    reason: str


@dataclass(slots=True)
class HistoryRow:
    """One interaction as history keeps it: what was forwarded, and key *names* only."""

    session_id: str
    answered_by: str
    backend: str | None
    model: str | None
    key_name: str | None
    project: str | None
    stream: int
    prompt: Any
    params: dict[str, Any]
    reply: str | None
    usage: dict[str, Any] | None
    latency_ms: float
    status: int
    error: str | None
    frontend: str = "openai_chat"  # the client's dialect: "openai_chat", "anthropic", "responses"
    ts: float = field(default_factory=time.time)
    # The call's tokens (None: not reported) and cost (None: unknown), as the usage store has them.
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(slots=True)
class StoredResponse:
    """A Responses API answer kept for `previous_response_id` and the `/v1/responses/{id}` endpoints."""

    id: str  # resp_...
    session: str
    previous_id: str | None  # the previous_response_id it continued
    response: dict[str, Any]  # the Responses `response` object as returned to the client
    input_items: list[dict[str, Any]]  # this request's input items (with ids), for input_items
    # This turn only, as internal chat messages: the input's messages, then the output's assistant message(s).
    messages: list[dict[str, Any]]
    created_at: float = field(default_factory=time.time)


class SessionStore(Protocol):
    """Per-session overrides. A session idle over `idle_ttl` seconds, or beyond the store's cap, is gone."""

    idle_ttl: float

    async def get(self, session_id: str) -> Session:
        """A copy of the session, created if new; marks it as used now."""
        ...

    async def update(self, session_id: str, fields: Mapping[str, Any]) -> None:
        """Set `fields` (Session attribute -> value), creating the session if it expired meanwhile."""
        ...

    async def all(self) -> list[Session]: ...

    async def count(self) -> int: ...


class CooldownStore(Protocol):
    """Cooldowns per (backend, model, key), keys retired for every model, and each key ring's rotation."""

    async def cool(self, backend: str, model: str, key: str, seconds: float, reason: str) -> None:
        """Rest the key for this model; a longer cooldown already running wins."""
        ...

    async def retire(self, backend: str, key: str, seconds: float | None, reason: str) -> None:
        """Out of service for every model for `seconds`, or until restart when None."""
        ...

    async def remaining(self, backend: str, model: str, key: str) -> float:
        """Seconds until the key may be used for the model again (0: now; math.inf: not before restart)."""
        ...

    async def active(self) -> list[ActiveCooldown]:
        """Every cooldown still running, sorted."""
        ...

    async def next_turn(self, ring: str, size: int) -> int:
        """The ring's round-robin position (0 <= p < size); the stored position moves on to p + 1."""
        ...

    async def set_turn(self, ring: str, position: int) -> None: ...


class ConfigStore(Protocol):
    """The runtime configuration and routes. Writes reach durable storage off the event loop."""

    async def get(self) -> RuntimeConfig:
        """The live configuration; callers never change it in place (put a new one instead)."""
        ...

    async def put(self, config: RuntimeConfig) -> None: ...

    async def flush(self) -> None:
        """Wait until every configuration put so far is stored."""
        ...


class HistorySink(Protocol):
    """Where interactions go. `record` never blocks a reply: a sink queues and writes in the background.
    `start`, `drain` and `close` belong to the addon's synchronous life cycle (start-up, shutdown)."""

    @property
    def enabled(self) -> bool: ...

    def start(self) -> None: ...

    def record(self, row: HistoryRow) -> None: ...

    async def flush(self) -> None:
        """Wait until every row recorded so far can be read back."""
        ...

    async def read(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """The session's newest `limit` rows, oldest first."""
        ...

    def drain(self) -> None:
        """flush(), blocking: on shutdown the event loop may not run again."""
        ...

    def close(self) -> None:
        """Write what is queued and stop (blocking)."""
        ...


class ResponseStore(Protocol):
    """Stored Responses answers. What `get` returns is a fresh copy; a `put` is visible to the next `get`
    at once, even where it reaches durable storage later."""

    async def put(self, item: StoredResponse) -> None: ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool:
        """False when there was no such response."""
        ...

    async def conversation(self, response_id: str, limit: int = 1000) -> list[dict[str, Any]] | None:
        """The chat messages of the chain ending at `response_id` (following `previous_id`, at most
        `limit` responses), oldest first. None when `response_id` is unknown; a link missing further back
        ends the chain there."""
        ...

    async def flush(self) -> None:
        """Wait until every put and delete so far is stored."""
        ...

    async def aclose(self) -> None: ...


SIGNATURE_TTL = 7 * 86400.0  # seconds a signature is kept: an agent session rarely resumes later


class SignatureStore(Protocol):
    """What backends keep about the tool calls they hand out (thought signatures, the provider's own call
    ids), as opaque strings by the tool call id the client sees. Bounded and expiring: a miss is normal
    (evicted, expired, kept by another proxy) and the backend then does what it does for history from
    elsewhere. A put is visible to the next get at once, even where it reaches durable storage later."""

    async def put_many(self, items: Mapping[str, str]) -> None: ...

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        """The values of the ids the store has; the others are left out."""
        ...

    async def flush(self) -> None:
        """Wait until every put so far is stored."""
        ...


class BudgetStore(Protocol):
    """What budgets spent, per ledger (a session's whole spend, a project's UTC day or month), and each
    scope's calls in flight as leases that lapse (the calls of an instance that died stop counting)."""

    async def admit(self, scope: Scope, keys: Sequence[LedgerKey], slots: Slots, lease: str) -> Admission:
        """What the ledgers spent and, in the same step, a lease for the call when the scope has fewer
        calls in flight than `slots` allows for that spend."""
        ...

    async def settle(
        self,
        scopes: Sequence[Scope],
        keys: Sequence[LedgerKey],
        spend: Spend,
        ended: float,
        lease: str | None,
    ) -> None:
        """A call of `scopes` ended at `ended` (epoch seconds): its spend goes to the ledgers of `keys`,
        its lease (if any) ends."""
        ...

    async def spent(self, keys: Sequence[LedgerKey]) -> list[Spent]: ...


class StoreUnavailable(Exception):
    """A shared store cannot answer what only it knows (a kept response on PostgreSQL): a 503."""


class SharedState(Protocol):
    """A server the proxy instances share state through (Redis, PostgreSQL), as status and start-up see it."""

    name: str

    @property
    def degraded(self) -> bool:
        """True while the server does not answer and this instance serves on what it has."""
        ...

    def detail(self) -> str:
        """One line for !/status and llm.status (no password)."""
        ...

    async def check(self) -> str | None:
        """Start-up, before the proxy serves: None, or what is wrong, naming the setting (never its
        password). Over a connection of its own, on an event loop of its own (mitmproxy's cannot be
        awaited where options are validated)."""
        ...

    async def synchronise(self) -> None:
        """Serving starts: once what is shared has been read (bounded; a server gone by then is an outage,
        served around like any other)."""
        ...


@dataclass(slots=True)
class Stores:
    sessions: SessionStore
    cooldowns: CooldownStore
    config: ConfigStore
    history: HistorySink
    responses: ResponseStore
    signatures: SignatureStore
    shared: tuple[SharedState, ...] = ()  # the servers several instances share state through
    usage: UsageStore = field(default_factory=MemoryUsage)  # app.py chooses; the default serves tests
    budgets: BudgetStore = field(default_factory=MemoryBudgets)  # app.py chooses; the default serves tests
