"""A decision against a request: what the edge answers instead of serving or forwarding it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    code: str
    headers: tuple[tuple[str, str], ...] = ()
