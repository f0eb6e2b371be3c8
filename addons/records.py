"""Typed records that travel between the steps of one call: written by the pipeline, read by the flow
view, history and replay. Plain data only, so a saved flow can carry them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(slots=True)
class AttemptRecord:
    """One try of one (backend, model, key name)."""

    backend: str
    model: str
    key: str  # key *name*
    status: int
    error: str | None
    ms: float


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens of one answer, counted as OpenAI counts them: cached tokens are part of the prompt
    tokens, reasoning tokens part of the completion tokens (and billed as output)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """From an OpenAI-shaped usage object (what every backend's answer is translated to); None when
        there is none. Counts that are missing or not numbers count as 0."""
        if not isinstance(usage, dict):
            return None
        prompt_details, completion_details = (
            d if isinstance(d, dict) else {}
            for d in (usage.get("prompt_tokens_details"), usage.get("completion_tokens_details"))
        )
        return cls(
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            _count(prompt_details.get("cached_tokens")),
            _count(completion_details.get("reasoning_tokens")),
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class CallRecord:
    """What happened to one client call, from the session that sent it to the answer it got."""

    session: str
    stream: bool
    frontend: str = "openai_chat"  # the client's dialect: openai_chat, anthropic, responses
    commands: list[str] = field(default_factory=list)  # redacted text of the commands applied
    notes: list[str] = field(default_factory=list)  # what the front-end left out or changed
    answered_by: Literal["backend", "proxy"] = "backend"
    route: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    backend: str | None = None  # of the attempt that answered (or the last one tried)
    model: str | None = None
    key: str | None = None  # key *name*
    project: str | None = None
    status: int | None = None
    usage: Usage | None = None  # None: the answer reported none (or there was no answer)
    cost_usd: float | None = None  # None: unknown (no price for the model), never 0 for unknown
    guards: list[str] = field(default_factory=list)  # loop-guard trips of this call, e.g. "repetition"
    repairs: int = 0  # tool-call arguments repaired in this call
    ttft_ms: float | None = None  # time to the first streamed content the client got

    def as_metadata(self) -> dict[str, Any]:
        """The record as flow metadata (saved with flows; read back by replay)."""
        return dataclasses.asdict(self)
