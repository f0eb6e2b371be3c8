"""Which key serves the next request of a backend."""

from __future__ import annotations

from addons.settings import KeyRing


class KeyRotation:
    """Round-robin over each backend's keys, by key name."""

    def __init__(self, rings: dict[str, KeyRing]) -> None:
        self._rings = rings
        self._next: dict[str, int] = dict.fromkeys(rings, 0)

    def pick(self, backend: str) -> tuple[str, str] | None:
        ring = self._rings.get(backend)
        if not ring:
            return None
        i = self._next[backend] % len(ring)
        self._next[backend] = i + 1
        name = ring.names[i]
        return name, ring.secret(name)

    def count(self, backend: str) -> int:
        ring = self._rings.get(backend)
        return len(ring) if ring else 0
