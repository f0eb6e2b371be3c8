"""Everything one call needs, built once by `app.build()` and shared by the pipeline's steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from addons.backends.base import Backend
from addons.frontends.base import Frontend
from addons.metrics.registry import Metrics
from addons.pipeline.record import Meter
from addons.routing.catalog import ModelCatalog
from addons.routing.models import ModelMap
from addons.routing.planner import Router
from addons.security.redaction import Redactor
from addons.settings import Settings
from addons.stores.base import Stores
from addons.upstream import Upstream


@dataclass(slots=True)
class Core:
    settings: Settings
    backends: Mapping[str, Backend]
    upstream: Upstream
    catalog: ModelCatalog
    router: Router
    redactor: Redactor
    stores: Stores
    model_map: ModelMap
    frontends: Mapping[str, Frontend]  # by name: openai_chat, anthropic, responses
    metrics: Metrics  # carried across option changes, like the in-memory stores
    meter: Meter  # prices each answered call and adds it to the usage store

    def key_counts(self) -> dict[str, int]:
        return {b: self.router.count(b) for b in self.backends}
