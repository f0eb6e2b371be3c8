"""The PostgreSQL connection pool, on an event loop and thread of its own.

The stores' callers run on mitmproxy's loop (or a fresh loop per test), an asyncpg pool belongs to the
loop that made it, and a slow server must never hold up the proxy's loop: every database call runs on
this loop and the caller awaits it. The pool is made, and the schema migrated, on first use and again
after a failure, so an instance that starts while PostgreSQL is down catches up when it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from addons.stores.base import StoreUnavailable
from addons.stores.pg_schema import migrate, quoted, schema_name

log = logging.getLogger(__name__)

# No floor: the writer keeps a connection in use anyway, and asyncpg logs a traceback each time it fails
# to restore a floor while the server is away.
POOL_MIN, POOL_MAX = 0, 5
CONNECT_TIMEOUT = 3.0  # seconds to open a connection
STATEMENT_TIMEOUT = 5.0  # seconds a statement may run, enforced by the server and by the client
# What says the server is not there (or refuses us), as opposed to a statement it rejected.
DOWN: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class PgPool:
    """The pool of one deployment's schema. `start` and `stop` are for the synchronous life cycle."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.schema = schema_name(namespace)
        self.table_prefix = quoted(self.schema)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        self._opening = None  # a lock belongs to the loop it first waited on
        self._thread = threading.Thread(target=loop.run_forever, name="llm-postgres", daemon=True)
        self._thread.start()
        self._loop = loop

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Runs `coro` on the pool's loop; its future is usable from any thread."""
        if self._loop is None:
            coro.close()
            raise StoreUnavailable("the PostgreSQL store is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Runs `fn` on the pool's loop, from any thread (a no-op once stopped)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    async def run[T](self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`work` with a pooled connection, awaited from the caller's loop. Raises StoreUnavailable when
        the server cannot answer; other database errors (a bug, a broken schema) as they are."""
        return await asyncio.wrap_future(self.spawn(self.with_connection(work)))

    async def with_connection[T](self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """On the pool's loop: `work` with a connection; StoreUnavailable when the server cannot answer.
        Tried twice: a pooled connection a server restart broke fails once, then the pool replaces it."""
        try:
            return await self._once(work)
        except DOWN:
            pass
        try:
            return await self._once(work)
        except DOWN as e:
            raise StoreUnavailable(f"PostgreSQL at {safe_url(self.url)} did not answer: {e}") from e

    async def _once[T](self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = await self._pool_ready()
        async with pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
            return await work(conn)

    async def _pool_ready(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=POOL_MIN,
                    max_size=POOL_MAX,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=STATEMENT_TIMEOUT,
                    server_settings={
                        "statement_timeout": str(int(STATEMENT_TIMEOUT * 1000)),
                        "application_name": "llm-intercept",
                    },
                )
                try:
                    async with pool.acquire() as conn:
                        if await migrate(conn, self.schema) == 0:
                            log.info("history: created the PostgreSQL schema %s", self.schema)
                except BaseException:
                    pool.terminate()
                    raise
                self._pool = pool
            return self._pool

    def stop(self, timeout: float = 5.0) -> None:
        """Closes the pool and ends the thread (blocking)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout)
        except (concurrent.futures.TimeoutError, *DOWN) as e:
            log.warning("history: PostgreSQL pool not closed cleanly: %s", e)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        if not loop.is_running():
            loop.close()

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 2.0)
            except (TimeoutError, *DOWN):
                pool.terminate()


async def check(url: str) -> str | None:
    """None when PostgreSQL at `url` accepts us; else what is wrong, naming the setting (no password)."""
    where = f"database_url (LLM_DATABASE_URL) {safe_url(url)}"
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        return f"{where}: not a postgresql:// URL"
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (ValueError, *DOWN, asyncpg.PostgresError) as e:
        said = str(e)
        if password := urlsplit(url).password:
            said = said.replace(password, "***")
        return f"{where}: cannot connect: {type(e).__name__}: {said}"
    await conn.close()
    return None
