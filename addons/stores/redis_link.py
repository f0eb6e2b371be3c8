"""The one Redis connection pool the team stores share, and what happens while Redis is away.

Every request-path call is bounded by CALL_TIMEOUT; a failure marks the link degraded (logged once) and
the store answers from its local state instead. While degraded no call is even tried, so requests never
wait on a dead server. One background task holds the pub/sub subscription that carries changes between
instances; it notices an outage, reconnects every RETRY_EVERY seconds, and on reconnecting runs each
store's resync (push what changed locally, re-read what is shared) before leaving degraded mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError

from addons.settings import SettingsError
from translators import json_codec

log = logging.getLogger(__name__)
CALL_TIMEOUT = 0.25  # seconds a request may wait on Redis before it goes on with local state
MAX_CONNECTIONS = 64  # per instance; more requests at once queue for one
LATE_BEFORE_DOWN = 3  # timeouts in a row that mark Redis unreachable (a refused connection does at once)
CHECK_TIMEOUT = 3.0  # the start-up check: a slow first connection is not yet an outage
RETRY_EVERY = 0.5  # seconds between reconnection attempts: back within 5 s of Redis
REFRESH_EVERY = 2.0  # re-read shared state now and then, in case a change message was lost
SYNC_TIMEOUT = 2.0  # a resync or refresh runs in the background, and may read every session
FAILURES = (RedisError, OSError, TimeoutError)

type Op[T] = Callable[[Redis], Awaitable[T]]


class Down(Exception):
    """Redis did not answer (or the link is degraded): the caller goes on with its local state."""


def masked_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisLink:
    """`degraded`: True while Redis is unreachable (the proxy's status shows it)."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        # Many requests at once wait for a free connection (bounded by the call's own timeout) instead of
        # failing with "Too many connections", which is no outage either.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=SYNC_TIMEOUT,
            socket_timeout=SYNC_TIMEOUT,  # request calls are bounded tighter, by wait_for
            socket_connect_timeout=CALL_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.client = Redis(connection_pool=pool)
        self.channel = self.key("events")
        self.instance = secrets.token_hex(8)  # so an instance skips its own change messages
        self.degraded = False
        self._late = 0  # request-path calls in a row that timed out
        self._probe: asyncio.Task[None] | None = None  # a ping deciding whether late answers mean an outage
        self._handlers: dict[str, Callable[[], Awaitable[None]]] = {}
        self._resyncs: list[Callable[[], Awaitable[None]]] = []
        self._refreshes: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._synced: asyncio.Event | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def on_change(self, kind: str, reload: Callable[[], Awaitable[None]]) -> None:
        """`reload` runs when another instance publishes a change of `kind`."""
        self._handlers[kind] = reload

    def on_resync(self, resync: Callable[[], Awaitable[None]]) -> None:
        """`resync` runs at every (re)connection: push what changed locally, re-read what is shared."""
        self._resyncs.append(resync)

    def on_refresh(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """`refresh` runs every REFRESH_EVERY seconds while connected, in case a change message was lost."""
        self._refreshes.append(refresh)

    async def raw[T](self, op: Op[T], timeout: float = SYNC_TIMEOUT) -> T:
        """The operation, bounded; failures raise as they are (resyncs run inside the listener)."""
        return await asyncio.wait_for(op(self.client), timeout)

    async def call[T](self, op: Op[T]) -> T:
        """The operation, or Down at once while degraded, or Down after a failure (then degraded)."""
        self.start()
        if self.degraded:
            raise Down
        try:
            result = await self.raw(op, CALL_TIMEOUT)
        except TimeoutError:
            # A late answer may be this process's own busy loop, not Redis: this call goes on with local
            # state, and a run of them has a ping (with time to answer) decide whether Redis is away.
            self._late += 1
            if self._late >= LATE_BEFORE_DOWN and self._probe is None:
                self._probe = asyncio.get_running_loop().create_task(self._confirm_down())
            raise Down from None
        except FAILURES as e:
            self._down(e)
            raise Down from None
        self._late = 0
        return result

    async def publish(self, kind: str) -> None:
        """Tell the other instances that `kind` changed (best effort: the periodic refresh catches up)."""
        with contextlib.suppress(Down):
            await self.call(lambda r: r.publish(self.channel, self.message(kind)))

    def message(self, kind: str) -> bytes:
        return json_codec.dumps({"kind": kind, "from": self.instance})

    async def check(self) -> None:
        """Start-up: Redis answers and accepts the credentials, else SettingsError naming the setting.
        Then the first synchronisation has run (shared state read, or ours pushed)."""
        try:
            await asyncio.wait_for(self.client.ping(), CHECK_TIMEOUT)
        except AuthenticationError as e:
            raise SettingsError(
                f"redis_url ({masked_url(self.url)}): Redis refused the credentials: {e}"
            ) from None
        except (*FAILURES, ValueError) as e:
            raise SettingsError(f"redis_url ({masked_url(self.url)}): Redis does not answer: {e}") from None
        self.start()
        assert self._synced is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), CHECK_TIMEOUT)

    def start(self) -> None:
        """The listener, on the running loop (lazily: stores are built before the loop runs them)."""
        if self._task is None:
            self._synced = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llm-redis-link")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    def _down(self, error: BaseException) -> None:
        if not self.degraded:
            self.degraded = True
            log.warning(
                "redis_url %s: unreachable (%s); serving from local state until it answers",
                masked_url(self.url),
                type(error).__name__ if isinstance(error, TimeoutError) else error,
            )

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except FAILURES as e:
                # A slow read under load (a busy loop, a large refresh) is no outage if Redis still answers.
                if not (isinstance(e, TimeoutError) and await self._answers()):
                    self._down(e)
            except Exception:  # a bug in a handler must not end the synchronisation for good
                log.exception("redis: synchronisation failed; retrying")
            await asyncio.sleep(RETRY_EVERY)

    async def _confirm_down(self) -> None:
        try:
            if not await self._answers():
                self._down(TimeoutError())
        finally:
            self._late, self._probe = 0, None

    async def _answers(self) -> bool:
        try:
            await self.raw(lambda r: r.ping(), CHECK_TIMEOUT)
        except FAILURES:
            return False
        return True

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await self.raw(lambda _: pubsub.subscribe(self.channel), CALL_TIMEOUT)
            for resync in self._resyncs:
                await resync()
            if self.degraded:
                log.warning("redis_url %s: reachable again; state resynchronised", masked_url(self.url))
                self.degraded, self._late = False, 0
            assert self._synced is not None
            self._synced.set()
            await self._serve(pubsub)
        finally:
            with contextlib.suppress(*FAILURES):
                await asyncio.wait_for(pubsub.aclose(), CALL_TIMEOUT)

    async def _serve(self, pubsub: Any) -> None:
        """Apply change messages until the connection fails or a request call saw Redis fail."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while not self.degraded:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=RETRY_EVERY)
            if message is not None:
                await self._dispatch(message["data"])
            if loop.time() - refreshed > REFRESH_EVERY:
                for refresh in self._refreshes:
                    await refresh()
                refreshed = loop.time()

    async def _dispatch(self, data: bytes) -> None:
        try:
            event = json_codec.loads(data)
            kind, sender = event["kind"], event["from"]
        except (ValueError, TypeError, KeyError):
            log.warning("redis: ignored a malformed change message")
            return
        handler = self._handlers.get(kind)
        if handler is not None and sender != self.instance:
            await handler()
