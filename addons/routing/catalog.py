"""Which models each backend offers, and how a `model` string picks a backend.

Ids of the default backend are listed bare; others carry `backend:` so every listed id can be sent back.
OpenRouter ids may themselves contain ':' (`meta-llama/x:free`), so only a known backend name counts
as a prefix.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pending", "ok", "unavailable"]


@dataclass(slots=True)
class BackendModels:
    status: Status = "pending"
    models: tuple[str, ...] = ()
    reason: str = ""
    _set: frozenset[str] = field(default_factory=frozenset)

    def knows(self, model: str) -> bool:
        return model in self._set


class ModelCatalog:
    def __init__(self, backends: tuple[str, ...]) -> None:
        self.backends = backends
        self._entries: dict[str, BackendModels] = {b: BackendModels() for b in backends}
        self._ready = asyncio.Event()

    def entry(self, backend: str) -> BackendModels:
        return self._entries[backend]

    def set_models(self, backend: str, models: list[str]) -> None:
        uniq = tuple(dict.fromkeys(models))
        self._entries[backend] = BackendModels("ok", uniq, "", frozenset(uniq))

    def set_unavailable(self, backend: str, reason: str) -> None:
        self._entries[backend] = BackendModels("unavailable", (), reason)

    def mark_ready(self) -> None:
        self._ready.set()

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def split(self, model: str, default_backend: str) -> tuple[str, str]:
        """`gemini:gemini-2.5-flash` -> ("gemini", "gemini-2.5-flash"); bare ids go to the default backend."""
        head, sep, rest = model.partition(":")
        if sep and head.lower() in self._entries:
            return head.lower(), rest
        return default_backend, model

    def listing(self, default_backend: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        order = [default_backend] + [b for b in self.backends if b != default_backend]
        for b in order:
            e = self._entries[b]
            prefix = "" if b == default_backend else f"{b}:"
            out.extend((prefix + m, b) for m in e.models)
        return out
