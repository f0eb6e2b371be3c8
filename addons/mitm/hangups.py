"""Client hang-ups: mitmproxy does not cancel a request hook whose client has gone, so the upstream
call would run on for nobody. A scope per waiting hook, cancelled from `client_disconnected`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mitmproxy import connection, http


class HangupWatch:
    def __init__(self) -> None:
        # client connection id -> the request hooks of its flows still waiting on the pipeline
        self._waiting: dict[str, set[asyncio.Timeout]] = {}

    @contextlib.asynccontextmanager
    async def until_client_leaves(self, flow: http.HTTPFlow) -> AsyncIterator[None]:
        """Cancels the block (raising TimeoutError) when the flow's client disconnects."""
        if flow.is_replay:  # no client to leave
            yield
            return
        client = flow.client_conn
        async with asyncio.timeout(None) as scope:
            hooks = self._waiting.setdefault(client.id, set())
            hooks.add(scope)
            if not client.connected:  # it left before the hook started: its client_disconnected has run
                scope.reschedule(0)
            try:
                yield
            finally:
                hooks.discard(scope)
                if not hooks:
                    self._waiting.pop(client.id, None)

    def client_disconnected(self, client: connection.Client) -> None:
        for scope in self._waiting.pop(client.id, ()):
            scope.reschedule(0)
