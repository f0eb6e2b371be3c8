"""The PostgreSQL stores of a team's proxies (`database_url`): history and kept Responses answers.

`build` makes them around one pool; `history.start()` starts it and `history.close()` stops it, as with
the SQLite history. `check` tells, at start-up, whether the URL works, in words naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable

from addons.stores.pg_history import PgHistory
from addons.stores.pg_pool import PgPool, check
from addons.stores.pg_responses import PgResponses

__all__ = ["PgShared", "build", "check"]


def build(
    url: str, namespace: str, scrub: Callable[[str], str], max_days: float = 0.0, max_queue: int = 10_000
) -> tuple[PgHistory, PgResponses]:
    """History and responses in schema `namespace` (sanitised: see pg_schema.schema_name)."""
    history = PgHistory(PgPool(url, namespace), scrub, max_queue=max_queue, max_days=max_days)
    return history, PgResponses(history)


class PgShared:
    """The PostgreSQL stores as status and start-up see them."""

    name = "PostgreSQL"

    def __init__(self, url: str, history: PgHistory) -> None:
        self.url = url
        self.history = history

    @property
    def degraded(self) -> bool:
        return self.history.down

    def detail(self) -> str:
        state = "DEGRADED: PostgreSQL does not answer, history rows wait" if self.degraded else "ok"
        return f"{state}; history rows dropped (buffer full): {self.history.dropped}"

    async def check(self) -> str | None:
        return await check(self.url)

    async def synchronise(self) -> None:
        """Nothing to read ahead: history and kept responses are read when asked for."""
