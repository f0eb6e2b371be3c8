"""The servers behind `proxy_team` (issue 16): the machine's Redis and PostgreSQL, isolated per run.

A run gets its own namespace: Redis keys under `<namespace>:` and the PostgreSQL schema named after it,
both removed at the end. When a server does not answer (or its client is not installed: the `team`
extra), the team target is not started and the table row says why; the rest of the run goes on.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

PgCall = Callable[[Any], Awaitable[Any]]  # run on one asyncpg connection

REDIS_URL = "redis://127.0.0.1:6379"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
TIMEOUT_S = 2.0


def _namespace() -> str:
    # Already a valid schema name (lower case, [a-z0-9_], starts with a letter): keys and schema match.
    return f"bench_{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class TeamServers:
    redis_url: str = REDIS_URL
    database_url: str = DATABASE_URL
    namespace: str = field(default_factory=_namespace)

    def env(self) -> dict[str, str]:
        """What makes a proxy use the shared stores."""
        return {
            "LLM_REDIS_URL": self.redis_url,
            "LLM_DATABASE_URL": self.database_url,
            "LLM_NAMESPACE": self.namespace,
        }

    @property
    def schema(self) -> str:
        from addons.stores.pg_schema import schema_name  # the proxy's own rule, so cleanup hits its schema

        return schema_name(self.namespace)

    def unavailable(self) -> str | None:
        """Why the team target cannot run (a server does not answer, a client is missing), else None."""
        try:
            import asyncpg  # the proxy needs both clients (the `team` extra)
            import redis
        except ImportError as e:
            return f"client not installed ({e.name}; pip install -e '.[team]')"
        try:
            with redis.Redis.from_url(
                self.redis_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            ) as r:
                r.ping()
        except (redis.RedisError, OSError) as e:
            return f"Redis {self.redis_url} does not answer ({e})"
        try:
            asyncio.run(self._pg(lambda conn: conn.fetchval("SELECT 1")))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            return f"PostgreSQL {self.database_url} does not answer ({e})"
        return None

    def cleanup(self) -> list[str]:
        """Deletes the run's Redis keys and drops its schema; returns what could not be removed."""
        problems: list[str] = []
        try:
            self._delete_keys()
        except Exception as e:  # a cleanup failure is reported, never hides the run's result
            problems.append(f"Redis keys {self.namespace}:* not deleted: {e}")
        quoted = '"' + self.schema.replace('"', '""') + '"'
        try:
            asyncio.run(self._pg(lambda conn: conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")))
        except Exception as e:
            problems.append(f"PostgreSQL schema {self.schema} not dropped: {e}")
        return problems

    def leftovers(self) -> tuple[int, bool]:
        """(Redis keys under the namespace, whether the schema exists): what cleanup should leave at 0."""
        import redis

        with redis.Redis.from_url(self.redis_url, socket_timeout=TIMEOUT_S) as r:
            keys = sum(1 for _ in r.scan_iter(match=f"{self.namespace}:*", count=1000))
        query = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
        schema = self.schema
        exists = asyncio.run(self._pg(lambda conn: conn.fetchval(query, schema)))
        return keys, bool(exists)

    def _delete_keys(self) -> None:
        import redis

        with redis.Redis.from_url(self.redis_url, socket_timeout=TIMEOUT_S) as r:
            keys = list(r.scan_iter(match=f"{self.namespace}:*", count=1000))
            for i in range(0, len(keys), 1000):
                r.delete(*keys[i : i + 1000])

    async def _pg(self, run: PgCall) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.database_url, timeout=TIMEOUT_S)
        try:
            return await run(conn)
        finally:
            await conn.close()
