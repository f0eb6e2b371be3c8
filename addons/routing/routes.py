"""Failover routes: policies, limits, and the validation of a route's JSON/YAML form."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from addons.stores.base import Route

POLICIES = {
    "k": "all keys of the first element",
    "m": "each element with its first usable key",
    "km": "each element, all of its keys",
    "mk": "first key of every element, then second keys, ...",
}
ROUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Every element multiplies the upstream calls one request may make: keep both small.
MAX_ROUTES = 100
MAX_ROUTE_ELEMENTS = 32


def parse_route(name: str, data: Any, backends: Iterable[str]) -> Route:
    """A route from its JSON/YAML form; raises ValueError naming what is wrong."""
    if not ROUTE_NAME.match(name):
        raise ValueError(f"route name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(data, dict):
        raise ValueError(f"route {name}: expected an object with policy and elements")
    policy = data.get("policy", "k")
    if policy not in POLICIES:
        raise ValueError(f"route {name}: policy {policy!r} is not one of {', '.join(POLICIES)}")
    raw = data.get("elements") or []
    if not isinstance(raw, list):
        raise ValueError(f"route {name}: elements must be a list of backend:model")
    known = set(backends)
    elements = []
    for el in raw:
        b, sep, m = str(el).partition(":")
        if not sep or b not in known or not m:
            raise ValueError(
                f"route {name}: element {el!r} must be backend:model with backend in {sorted(known)}"
            )
        elements.append((b, m))
    elements = unique(elements)
    if len(elements) > MAX_ROUTE_ELEMENTS:
        raise ValueError(
            f"route {name}: {len(elements)} elements; a route holds at most {MAX_ROUTE_ELEMENTS}"
        )
    return Route(name, policy, elements)


def parse_routes(data: dict[str, Any], backends: Iterable[str]) -> tuple[dict[str, Route], list[str]]:
    """Routes from their JSON/YAML form, at most MAX_ROUTES; the valid ones and a problem per bad one."""
    routes: dict[str, Route] = {}
    problems: list[str] = []
    backends = tuple(backends)
    for i, (name, value) in enumerate(data.items()):
        if len(routes) == MAX_ROUTES:
            problems.append(f"more than {MAX_ROUTES} routes; the last {len(data) - i} left out")
            break
        try:
            routes[str(name)] = parse_route(str(name), value, backends)
        except ValueError as e:
            problems.append(str(e))
    return routes, problems


def unique[T](items: Iterable[T]) -> list[T]:
    """`items` without repeats, first occurrence kept."""
    return list(dict.fromkeys(items))
