"""Everything one call needs, built once by `app.build()` and shared by the pipeline's steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from addons.backends.base import Backend
from addons.routing.catalog import ModelCatalog
from addons.routing.planner import Router
from addons.security.redaction import Redactor
from addons.settings import Settings
from addons.stores.jsonfile import RuntimeConfig, StateFile
from addons.stores.sessions import SessionStore
from addons.stores.sqlite import HistoryStore
from addons.upstream import Upstream


@dataclass(slots=True)
class Core:
    settings: Settings
    backends: Mapping[str, Backend]
    upstream: Upstream
    catalog: ModelCatalog
    router: Router
    sessions: SessionStore
    redactor: Redactor
    runtime: RuntimeConfig
    state_file: StateFile
    history: HistoryStore

    def key_counts(self) -> dict[str, int]:
        return {b: self.router.count(b) for b in self.backends}

    def save_state(self) -> None:
        # Snapshot now, on the loop; the file is written by a background thread.
        self.state_file.save_later(self.runtime.snapshot())
