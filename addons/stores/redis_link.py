"""The one Redis connection pool the team stores share, and what happens while Redis is away.

Every request-path call is bounded by CALL_TIMEOUT; a failure marks the link degraded (logged once) and
the store answers from its local state instead. While degraded no call is even tried, so requests never
wait on a dead server. One background task holds the pub/sub subscription that carries changes between
instances; it notices an outage, reconnects every RETRY_EVERY seconds, and on reconnecting runs each
store's resync (push what changed locally, re-read what is shared) before leaving degraded mode. The same
task runs the stores' flushes (writes taken off the request path) and their periodic refreshes.

A change message may ask to be acknowledged: each receiver applies it, then says so, and the sender waits
(bounded) for as many acknowledgements as PUBLISH counted receivers, so that a change answered through
one instance is in force on every other before the client can send its next request there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from translators import json_codec

log = logging.getLogger(__name__)
CALL_TIMEOUT = 0.25  # seconds a request may wait on Redis before it goes on with local state
MAX_CONNECTIONS = 64  # per instance; more requests at once queue for one
LATE_BEFORE_DOWN = 3  # timeouts in a row that mark Redis unreachable (a refused connection does at once)
CHECK_TIMEOUT = 3.0  # the start-up check: a slow first connection is not yet an outage
RETRY_EVERY = 0.5  # seconds between reconnection attempts: back within 5 s of Redis
FLUSH_EVERY = 0.5  # writes taken off the request path (last use of sessions) reach Redis this often
REFRESH_EVERY = 2.0  # re-read shared state now and then, in case a change message was lost
ACK_TIMEOUT = 1.0  # longest a change waits for its acknowledgements (a receiver may be busy or hung)
ACK = "ack"  # the kind of an acknowledgement message
SYNC_TIMEOUT = 2.0  # a resync or refresh runs in the background, and may read every session
FAILURES = (RedisError, OSError, TimeoutError)
# Late, not refused: an answer (or a new connection) that took too long, maybe because this process's own
# loop was busy. Only a ping decides whether that is an outage.
LATE = (TimeoutError, RedisTimeout)
MALFORMED = (ValueError, TypeError, KeyError, AttributeError)  # a change message no instance sends

type Op[T] = Callable[[Redis], Awaitable[T]]


class Down(Exception):
    """Redis did not answer (or the link is degraded): the caller goes on with its local state."""


@dataclass(frozen=True, slots=True)
class Change:
    """A change message from an instance (JSON on the link's channel)."""

    kind: str
    sender: str  # the instance that made the change
    ack: str | None = None  # the sender waits for each receiver to acknowledge this token
    subject: str | None = None  # what changed, where the message names it (a session id)
    fields: dict[str, str] = field(default_factory=dict)  # its new values, each JSON-encoded


@dataclass(slots=True)
class _Acks:
    receivers: int | None = None  # as PUBLISH counted them, once it answered
    got: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.receivers is not None and self.got >= self.receivers:
            self.done.set()


async def refusal(url: str) -> str | None:
    """Start-up: None when Redis at `url` answers and accepts the credentials, else what is wrong, naming
    the setting (never its password). On a connection of its own: it may run on a loop of its own."""
    where = f"redis_url ({masked_url(url)})"
    client = Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT, retry=Retry(NoBackoff(), 0)
    )
    try:
        await asyncio.wait_for(client.ping(), CHECK_TIMEOUT)
    except AuthenticationError as e:
        return f"{where}: Redis refused the credentials: {e}"
    except (*FAILURES, ValueError) as e:
        return f"{where}: Redis does not answer: {e}"
    finally:
        with contextlib.suppress(*FAILURES):
            await client.aclose()
    return None


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
        self.instance = secrets.token_hex(8)  # so an instance knows its own change messages
        self.degraded = False
        self._late = 0  # request-path calls in a row that timed out
        self._probe: asyncio.Task[None] | None = None  # a ping deciding whether late answers mean an outage
        self._handlers: dict[str, Callable[[Change], Awaitable[None]]] = {}
        self._resyncs: list[Callable[[], Awaitable[None]]] = []
        self._flushes: list[Callable[[], Awaitable[None]]] = []
        self._refreshes: list[Callable[[], Awaitable[None]]] = []
        self._acks: dict[str, _Acks] = {}  # token -> acknowledgements of a change this instance sent
        self._task: asyncio.Task[None] | None = None
        self._synced: asyncio.Event | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def on_change(self, kind: str, apply: Callable[[Change], Awaitable[None]]) -> None:
        """`apply` runs when another instance publishes a change of `kind`."""
        self._handlers[kind] = apply

    def on_resync(self, resync: Callable[[], Awaitable[None]]) -> None:
        """`resync` runs at every (re)connection: push what changed locally, re-read what is shared."""
        self._resyncs.append(resync)

    def on_flush(self, flush: Callable[[], Awaitable[None]]) -> None:
        """`flush` runs every FLUSH_EVERY seconds while connected (and after each resync's pushes)."""
        self._flushes.append(flush)

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
        except LATE:
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

    def message(self, kind: str, ack: str | None = None) -> bytes:
        return json_codec.dumps({"kind": kind, "from": self.instance, **({"ack": ack} if ack else {})})

    def ack_token(self) -> str:
        """A token for a change message that wants acknowledgements; `acknowledged` then waits for them."""
        token = secrets.token_hex(8)
        self._acks[token] = _Acks()
        return token

    async def acknowledged(self, token: str, receivers: int) -> None:
        """Until `receivers` (PUBLISH's count; 0: the message was not sent) acknowledged the change, at
        most ACK_TIMEOUT. This instance's own subscription counts as one, acknowledged as it reads it."""
        acks = self._acks[token]
        acks.receivers = receivers
        acks.check()
        try:
            await asyncio.wait_for(acks.done.wait(), ACK_TIMEOUT)
        except TimeoutError:
            log.warning(
                "redis: %d of %d instance(s) applied a change within %g s; the others apply it late",
                acks.got,
                receivers,
                ACK_TIMEOUT,
            )
        finally:
            del self._acks[token]

    async def synced(self) -> None:
        """Once the first synchronisation has run (shared state read, or ours pushed), at most
        CHECK_TIMEOUT: a Redis gone by then is an outage, served on local state like any other."""
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
                type(error).__name__ if isinstance(error, LATE) else error,
            )

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except FAILURES as e:
                # A slow read under load (a busy loop, a large refresh) is no outage if Redis still answers.
                if not (isinstance(e, LATE) and await self._answers()):
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
            for resync in (*self._resyncs, *self._flushes):
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
        """Apply change messages until the connection fails or a request call saw Redis fail; flush and
        refresh in between."""
        loop = asyncio.get_running_loop()
        flushed = refreshed = loop.time()
        while not self.degraded:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=FLUSH_EVERY)
            if message is not None:
                await self._dispatch(message["data"])
            if loop.time() - flushed > FLUSH_EVERY:
                for flush in self._flushes:
                    await flush()
                flushed = loop.time()
            if loop.time() - refreshed > REFRESH_EVERY:
                for refresh in self._refreshes:
                    await refresh()
                refreshed = loop.time()

    async def _dispatch(self, data: bytes) -> None:
        try:
            change = parse_change(data)
        except MALFORMED:
            log.warning("redis: ignored a malformed change message")
            return
        # An acknowledgement, or our own change (our own subscription reading it acknowledges it).
        if change.kind == ACK or change.sender == self.instance:
            self._count_ack(change.ack)
            return
        handler = self._handlers.get(change.kind)
        if handler is not None:
            await handler(change)
        if change.ack is not None:  # best effort: the sender waits for it at most ACK_TIMEOUT anyway
            reply = self.message(ACK, change.ack)
            with contextlib.suppress(*FAILURES):
                await self.raw(lambda r: r.publish(self.channel, reply))

    def _count_ack(self, token: str | None) -> None:
        acks = self._acks.get(token) if token is not None else None
        if acks is not None:
            acks.got += 1
            acks.check()


def parse_change(data: bytes) -> Change:
    """One of MALFORMED for what no instance sends."""
    event = json_codec.loads(data)
    fields = event.get("fields") or {}  # Lua's JSON encoder writes an empty table as []
    ack, subject = event.get("ack"), event.get("subject")
    texts = [event["kind"], event["from"], *fields.values(), *(v for v in (ack, subject) if v is not None)]
    if not all(isinstance(v, str) for v in texts):
        raise TypeError("a change message holds a value that is not text")
    return Change(event["kind"], event["from"], ack, subject, fields)
