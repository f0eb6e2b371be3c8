"""Which (backend, model, key) to try, in what order: policies over key rotation, minus resting keys.

Keys are handled by *name*; the secret is looked up only when a call is built. Cooldowns and rotation
positions live in the CooldownStore, so proxies sharing one store share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from addons.routing.routes import unique
from addons.settings import KeyRing
from addons.stores.base import CooldownStore


@dataclass(frozen=True, slots=True)
class Attempt:
    backend: str
    model: str
    key: str  # key *name*


@dataclass(slots=True)
class Plan:
    attempts: list[Attempt]
    # When nothing is usable: the shortest wait and what is exhausted (names only).
    retry_after: float | None = None
    exhausted: list[str] = field(default_factory=list)


class Router:
    def __init__(self, rings: dict[str, KeyRing], cooldowns: CooldownStore) -> None:
        self.rings = rings
        self.cooldowns = cooldowns
        # A ring's rotation is stored under its backend and key names: other keys start a fresh rotation.
        self._ring_ids = {b: f"{b}:{','.join(r.names)}" for b, r in rings.items()}

    def count(self, backend: str) -> int:
        ring = self.rings.get(backend)
        return len(ring) if ring else 0

    def secret(self, backend: str, key: str) -> str:
        return self.rings[backend].secret(key)

    async def _rotation(self, backend: str) -> list[str]:
        """The backend's keys starting at its round-robin position; the position moves on by one."""
        ring = self.rings.get(backend)
        if not ring:
            return []
        start = await self.cooldowns.next_turn(self._ring_ids[backend], len(ring))
        return list(ring.names[start:] + ring.names[:start])

    async def plan(self, elements: list[tuple[str, str]], policy: str = "k") -> Plan:
        rotations: dict[str, list[str]] = {}
        for b, _ in elements:
            if b not in rotations:
                rotations[b] = await self._rotation(b)
        # A (backend, model, key) is worth one call per request, however often a route lists it.
        candidates = unique(_order(elements, policy, rotations))
        usable = [a for a in candidates if not await self.cooldowns.remaining(a.backend, a.model, a.key)]
        if policy == "m":
            usable = _first_per_element(usable)
        if usable:
            # The next request starts after the key this one uses first: a cooling key's turns are
            # spread over the others instead of all falling to its neighbour.
            first = usable[0]
            if first.key != rotations[first.backend][0]:  # else next_turn already moved it there
                position = self.rings[first.backend].names.index(first.key) + 1
                await self.cooldowns.set_turn(self._ring_ids[first.backend], position)
            return Plan(usable)
        if not candidates:
            return Plan([])
        wait, exhausted = await self.exhausted(candidates)
        return Plan([], wait, exhausted)

    async def exhausted(self, attempts: list[Attempt]) -> tuple[float, list[str]]:
        """The shortest remaining cooldown among `attempts` (0 when none ends: keys retired until
        restart), and each one described by key *name*."""
        waits = [(await self.cooldowns.remaining(a.backend, a.model, a.key), a) for a in attempts]
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
