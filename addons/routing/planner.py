"""Which (backend, model, key) to try, in what order: key rotation, cooldowns and failover routes.

Pure Python. Keys are handled by *name*; the secret is looked up only when a call is built.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from addons.settings import KeyRing

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


@dataclass(frozen=True, slots=True)
class Attempt:
    backend: str
    model: str
    key: str  # key *name*


@dataclass(slots=True)
class Route:
    name: str
    policy: str = "k"
    elements: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "elements": [f"{b}:{m}" for b, m in self.elements]}

    def describe(self) -> str:
        els = ", ".join(f"{b}:{m}" for b, m in self.elements) or "(empty)"
        return f"{self.name} [{self.policy}]: {els}"


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


@dataclass(slots=True)
class Cooldown:
    until: float
    reason: str


class Cooldowns:
    """Per (backend, model, key) cooldowns, plus keys retired for every model (credits exhausted)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._by_model: dict[tuple[str, str, str], Cooldown] = {}
        self._retired: dict[tuple[str, str], Cooldown] = {}

    def cool(self, backend: str, model: str, key: str, seconds: float, reason: str) -> None:
        until = self.clock() + max(0.0, seconds)
        current = self._by_model.get((backend, model, key))
        if current is None or current.until < until:
            self._by_model[(backend, model, key)] = Cooldown(until, reason)

    def retire(self, backend: str, key: str, seconds: float | None, reason: str) -> None:
        """Out of service for `seconds`, or until restart when None."""
        until = math.inf if seconds is None else self.clock() + seconds
        self._retired[(backend, key)] = Cooldown(until, reason)

    def remaining(self, backend: str, model: str, key: str) -> float:
        now = self.clock()
        left = 0.0
        for cd in (self._by_model.get((backend, model, key)), self._retired.get((backend, key))):
            if cd is not None and cd.until > now:
                left = max(left, cd.until - now)
        return left

    def active(self) -> list[tuple[str, str, str, float, str]]:
        """(backend, model or '*', key, seconds left, reason) of every cooldown still running."""
        now = self.clock()
        self._by_model = {k: v for k, v in self._by_model.items() if v.until > now}
        out = [(b, m, k, cd.until - now, cd.reason) for (b, m, k), cd in self._by_model.items()]
        out += [
            (b, "*", k, cd.until - now, cd.reason) for (b, k), cd in self._retired.items() if cd.until > now
        ]
        return sorted(out)


@dataclass(slots=True)
class Plan:
    attempts: list[Attempt]
    # When nothing is usable: the shortest wait and what is exhausted (names only).
    retry_after: float | None = None
    exhausted: list[str] = field(default_factory=list)


class Router:
    def __init__(self, rings: dict[str, KeyRing], cooldowns: Cooldowns) -> None:
        self.rings = rings
        self.cooldowns = cooldowns
        self._next: dict[str, int] = dict.fromkeys(rings, 0)

    def count(self, backend: str) -> int:
        ring = self.rings.get(backend)
        return len(ring) if ring else 0

    def secret(self, backend: str, key: str) -> str:
        return self.rings[backend].secret(key)

    def _rotation(self, backend: str) -> list[str]:
        """The backend's keys starting at its round-robin pointer; the pointer moves on by one."""
        ring = self.rings.get(backend)
        if not ring:
            return []
        start = self._next[backend] % len(ring)
        self._next[backend] = start + 1
        return list(ring.names[start:] + ring.names[:start])

    def plan(self, elements: list[tuple[str, str]], policy: str = "k") -> Plan:
        rotations: dict[str, list[str]] = {}
        for b, _ in elements:
            if b not in rotations:
                rotations[b] = self._rotation(b)
        # A (backend, model, key) is worth one call per request, however often a route lists it.
        candidates = unique(_order(elements, policy, rotations))
        usable = [a for a in candidates if self.cooldowns.remaining(a.backend, a.model, a.key) == 0]
        if policy == "m":
            usable = _first_per_element(usable)
        if usable:
            # The next request starts after the key this one uses first: a cooling key's turns are
            # spread over the others instead of all falling to its neighbour.
            first = usable[0]
            self._next[first.backend] = self.rings[first.backend].names.index(first.key) + 1
            return Plan(usable)
        if not candidates:
            return Plan([])
        wait, exhausted = self.exhausted(candidates)
        return Plan([], wait, exhausted)

    def exhausted(self, attempts: list[Attempt]) -> tuple[float, list[str]]:
        """The shortest remaining cooldown among `attempts` (0 when none ends: keys retired until
        restart), and each one described by key *name*."""
        waits = [(self.cooldowns.remaining(a.backend, a.model, a.key), a) for a in attempts]
        described = [
            f"{a.backend}:{a.model} with {a.key} ({'retired' if w == math.inf else f'{math.ceil(w)} s'})"
            for w, a in waits
            if w > 0
        ]
        return min((w for w, _ in waits if 0 < w < math.inf), default=0.0), described


def _order(elements: list[tuple[str, str]], policy: str, rotations: dict[str, list[str]]) -> list[Attempt]:
    if not elements:
        return []
    if policy == "k":
        b, m = elements[0]
        return [Attempt(b, m, k) for k in rotations[b]]
    if policy in ("m", "km"):
        return [Attempt(b, m, k) for b, m in elements for k in rotations[b]]
    if policy == "mk":
        depth = max((len(rotations[b]) for b, _ in elements), default=0)
        return [
            Attempt(b, m, rotations[b][i]) for i in range(depth) for b, m in elements if i < len(rotations[b])
        ]
    raise ValueError(f"unknown policy {policy!r}")


def _first_per_element(attempts: list[Attempt]) -> list[Attempt]:
    """Policy m: each element once, with its first usable key."""
    seen: set[tuple[str, str]] = set()
    out = []
    for a in attempts:
        if (a.backend, a.model) not in seen:
            seen.add((a.backend, a.model))
            out.append(a)
    return out
