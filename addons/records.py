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
    usage: dict[str, Any] | None = None  # the answer's OpenAI-shaped usage object
    cost_usd: float | None = None  # None: unknown (no price for the model), never 0 for unknown
    guards: list[str] = field(default_factory=list)  # loop-guard trips of this call, e.g. "repetition"
    repairs: int = 0  # tool-call arguments repaired in this call
    ttft_ms: float | None = None  # time to the first streamed content the client got

    def as_metadata(self) -> dict[str, Any]:
        """The record as flow metadata (saved with flows; read back by replay)."""
        return dataclasses.asdict(self)
