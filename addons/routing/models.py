"""Which backend and model a client's `model` string means: the user's `model_map`, failover routes,
`backend:model` ids, bare ids, and the vendor-prefixed ids tools hard-wired to one provider miss.

Order (first wins): a session's `!/set(model=...)` (taken as given), else the first `model_map` pattern
that matches the asked name (file order), else the asked name; then a route of that name; then
`backend:model` or a bare id on the session's / default backend. A bare id that backend does not list is
looked for under a vendor prefix there (`gpt-4o-mini` -> OpenRouter's `openai/gpt-4o-mini`), then as is
on the other backends. Only a name that no backend lists, while every catalog it was looked up in is
known, is "not found": a backend whose listing failed gets the name unchecked.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from addons.routing.catalog import ModelCatalog
from addons.stores.base import Route


@dataclass(frozen=True, slots=True)
class ModelMap:
    """`model_map` from mitm_config.yaml: glob pattern -> `backend:model` or a route name, in file order."""

    rules: tuple[tuple[re.Pattern[str], str, str], ...] = ()  # (compiled glob, pattern, target)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ModelMap:
        rules = []
        for pattern, target in data.items():
            if not isinstance(target, str) or not target.strip():
                raise ValueError(f"model_map: {pattern!r} must map to 'backend:model' or a route name")
            rules.append((re.compile(fnmatch.translate(str(pattern)), re.IGNORECASE), str(pattern), target))
        return cls(tuple(rules))

    def apply(self, asked: str) -> str | None:
        for rx, _, target in self.rules:
            if rx.match(asked):
                return target
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """What to try: elements in order and the route policy (k: the first element's keys)."""

    elements: tuple[tuple[str, str], ...]
    policy: str = "k"
    route: str | None = None
    mapped: str | None = None  # the model_map target, when a pattern applied


class ModelNotFound(LookupError):
    def __init__(self, asked: str, looked_up: str) -> None:
        super().__init__(asked)
        self.asked = asked
        self.looked_up = looked_up  # after model_map

    def message(self) -> str:
        mapped = f" (mapped to '{self.looked_up}')" if self.looked_up != self.asked else ""
        shown = f"'{self.asked}'{mapped}"
        return (
            f"The model {shown} is not offered by any configured backend. Send an id from GET /v1/models, "
            "or map the name to one with `model_map` in mitm_config.yaml "
            f"('{self.asked}': 'backend:model' or a route name)."
        )


class EmptyRoute(ValueError):
    pass


def resolve(
    asked: str,
    *,
    session_model: str | None,
    backend: str,
    routes: Mapping[str, Route],
    catalog: ModelCatalog,
    model_map: ModelMap,
) -> Target:
    """`backend` is the session's or the default one. Raises ModelNotFound or EmptyRoute."""
    mapped = None if session_model else model_map.apply(asked)
    name = session_model or mapped or asked
    route = routes.get(name)
    if route is not None:
        if not route.elements:
            raise EmptyRoute(f"Failover route '{route.name}' has no elements yet.")
        return Target(tuple(route.elements), route.policy, route.name, mapped)
    chosen, model = catalog.split(name, backend)
    if chosen != backend or name.lower().startswith(f"{backend}:"):
        return Target(((chosen, model),), mapped=mapped)  # an explicit `backend:` is taken at its word
    found = _find(catalog, backend, model)
    if found is None:
        raise ModelNotFound(asked, name)
    return Target((found,), mapped=mapped)


def _find(catalog: ModelCatalog, backend: str, model: str) -> tuple[str, str] | None:
    entry = catalog.entry(backend)
    if entry.status != "ok" or entry.knows(model):
        return backend, model
    suffix = "/" + model.lower()
    for listed in entry.models:
        if listed.lower().endswith(suffix):
            return backend, listed
    for other in catalog.backends:
        if other != backend and catalog.entry(other).knows(model):
            return other, model
    return None
