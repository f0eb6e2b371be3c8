"""The memory stores beyond their contracts: what 10,000 sessions cost."""

from __future__ import annotations

import asyncio
import tracemalloc

from addons.stores.memory import MemorySessions


def test_sessions_expire_and_stay_small() -> None:
    store = MemorySessions(idle_ttl=1000, max_sessions=10_000)

    async def fill() -> None:
        for i in range(10_000):
            await store.update(
                f"session-{i:06d}", {"model": "openrouter:openai/gpt-4o", "project": "project"}
            )

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(fill())
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert asyncio.run(store.count()) == 10_000
    assert used < 10 * 1024 * 1024, used  # ~100 MB allowed by the spec; we are far below
