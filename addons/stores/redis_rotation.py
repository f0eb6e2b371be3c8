"""Key rotation shared through Redis: each instance hands out rotation positions from blocks it claims.

A ring's counter (`<namespace>:turn:<ring>`) numbers its blocks. Block k is `block_length(size)` positions
(whole rings, at least MIN_BLOCK) starting at position k - 1, so every block gives each key the same share,
and instances holding consecutive blocks start at different keys (instances rotating on their own would
all start at the first). The next block is claimed in the background once half the current one is handed
out: a request takes its position without waiting on Redis, and only a burst that empties both waits for
the one claim in flight. While Redis is away the local rotation goes on from where this instance was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from addons.stores.memory import MemoryCooldowns
from addons.stores.redis_link import Down, RedisLink

MIN_BLOCK = 16  # positions per claim at least: one INCR per this many requests


def block_length(size: int) -> int:
    return size * -(-MIN_BLOCK // size)


@dataclass(slots=True)
class _Block:
    next: int  # the position handed out next (0 <= next < size)
    left: int  # positions still to hand out
    size: int  # the ring's length


class RedisRotation:
    """`next_turn` and `set_turn` of the Redis cooldown store."""

    def __init__(self, link: RedisLink, local: MemoryCooldowns) -> None:
        self.link = link
        self.local = local
        self._blocks: dict[str, _Block] = {}  # ring -> the block positions come from
        self._ahead: dict[str, int] = {}  # ring -> the number of the next block, claimed
        self._claims: dict[str, asyncio.Task[bool]] = {}  # ring -> the claim in flight

    async def next_turn(self, ring: str, size: int) -> int:
        block = self._blocks.get(ring)
        while block is None or block.left == 0:
            number = self._ahead.pop(ring, None)
            if number is not None:
                block = self._blocks[ring] = _Block((number - 1) % size, block_length(size), size)
            elif await asyncio.shield(self._claim(ring)):
                block = self._blocks.get(ring)  # another request may have begun the claimed block
            else:
                return await self.local.next_turn(ring, size)
        position = block.next
        block.next, block.left = (position + 1) % size, block.left - 1
        if block.left <= block_length(size) // 2 and ring not in self._ahead and not self.link.degraded:
            self._claim(ring)
        await self.local.set_turn(ring, block.next)
        return position

    async def set_turn(self, ring: str, position: int) -> None:
        """The planner skipped a resting key: this instance's next request starts at `position`."""
        block = self._blocks.get(ring)
        if block is not None:
            block.next = position % block.size
        await self.local.set_turn(ring, position)

    def _claim(self, ring: str) -> asyncio.Task[bool]:
        """The claim of the ring's next block in flight, or a new one (one done is not reused: its block
        may be taken already, and its removal may not have run yet)."""
        task = self._claims.get(ring)
        if task is None or task.done():
            task = self._claims[ring] = asyncio.get_running_loop().create_task(self._incr(ring))
            task.add_done_callback(
                lambda done: self._claims.pop(ring) if self._claims.get(ring) is done else None
            )
        return task

    async def _incr(self, ring: str) -> bool:
        """True once a block is claimed (kept ahead); False when Redis does not answer."""
        try:
            number = await self.link.call(lambda r: r.incr(self.link.key("turn", ring)))
        except Down:
            return False
        self._ahead.setdefault(ring, number)
        return True
