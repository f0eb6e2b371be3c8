"""In-process loopback relay that lets the addon stream a body it generates itself.

mitmproxy sends a synthetic `flow.response` in one piece, so a generated stream (a translated or
failed-over upstream, a proxy error mid-stream) is served by pointing the flow at this relay: the
request hook registers an async byte iterator under a one-time token and rewrites the flow's URL to
`http://127.0.0.1:<port>/<token>`. mitmproxy then streams the relay's chunked answer to the client
like any upstream, and the flow stays an ordinary flow in mitmweb. mitmproxy's connections to the relay
are in-process pipes (`relay_pipe`); the listening socket reserves the address and serves any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable

from addons.mitm import relay_pipe
from addons.mitm.relay_pipe import PipeReader, PipeWriter

Reader = asyncio.StreamReader | PipeReader
Writer = asyncio.StreamWriter | PipeWriter

log = logging.getLogger(__name__)

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
_MALFORMED = (
    b'{"error":{"message":"malformed request","type":"invalid_request_error","param":null,"code":null}}'
)
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n" + (
    b"content-length: %d\r\n\r\n%s" % (len(_MALFORMED), _MALFORMED)
)
MAX_BODY = 64 * 1024  # mitmproxy sends the relay empty bodies; a bigger one is not from mitmproxy


class MalformedHead(ValueError):
    """A request head the relay cannot parse: not mitmproxy's, so not worth a traceback."""


class StreamRelay:
    def __init__(self) -> None:
        self._server: asyncio.base_events.Server | None = None
        self._pending: dict[str, tuple[AsyncIterator[bytes], Callable[[], None] | None]] = {}
        self.port = 0
        self.active = 0  # streams being served right now

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        relay_pipe.install(("127.0.0.1", self.port), self._handle)

    def close(self) -> None:
        """Stop accepting; streams already being served run to their end."""
        if self._server:
            self._server.close()
            relay_pipe.uninstall(("127.0.0.1", self.port))
        for source, _ in self._pending.values():
            _close_soon(source)
        self._pending.clear()

    def register(self, source: AsyncIterator[bytes], on_unclaimed: Callable[[], None] | None = None) -> str:
        """Returns the URL a flow must be sent to; the token is single-use."""
        token = secrets.token_urlsafe(16)
        self._pending[token] = (source, on_unclaimed)
        return f"http://127.0.0.1:{self.port}/relay/{token}"

    def discard(self, url: str) -> None:
        """The flow died before reaching the relay: release the upstream it was going to stream."""
        entry = self._pending.pop(url.rsplit("/", 1)[-1], None)
        if entry:
            _close_soon(entry[0])

    async def _handle(self, reader: Reader, writer: Writer) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        following: asyncio.Task[bytes | None] | None = None
        try:
            # mitmproxy may reuse this connection for later flows of the same client: serve in a loop
            # until it closes the connection.
            head = await _next_head(reader)
            while head is not None:
                token, length = _parse_head(head)
                if length:
                    await reader.readexactly(length)
                entry = self._pending.pop(token, None)
                if entry is None:
                    body = (
                        b'{"error":{"message":"stream expired","type":"api_error","param":null,"code":null}}'
                    )
                    writer.write(NOT_FOUND % (len(body), body))
                    await writer.drain()
                    head = await _next_head(reader)
                    continue
                # Read the next head while serving: it ends at once when mitmproxy closes the connection
                # (its client hung up), which _serve must notice even while the upstream is silent.
                following = asyncio.ensure_future(_next_head(reader))
                await self._serve(entry[0], writer, following)
                head = await following
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except MalformedHead as e:
            log.warning("relay: malformed request from %s closed: %s", writer.get_extra_info("peername"), e)
            with contextlib.suppress(ConnectionError):
                writer.write(BAD_REQUEST)
                await writer.drain()
        finally:
            if following is not None:
                following.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def wait_idle(self, limit: float) -> None:
        """Until no stream is being served (or `limit` seconds): a script reload must not cut streams."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while self.active and loop.time() < end:
            await asyncio.sleep(0.2)

    async def _serve(
        self,
        source: AsyncIterator[bytes],
        writer: Writer,
        following: asyncio.Future[bytes | None],
    ) -> None:
        """Streams `source` as a chunked answer. `following` resolving to None means mitmproxy closed the
        connection (the client hung up): the wait on the source is then cancelled at once, so a silent
        upstream is let go now rather than when it next speaks. A callback, not a task per chunk: this
        loop is the streaming hot path."""
        self.active += 1
        serving = True
        writer.write(HEAD)
        try:
            async with asyncio.timeout(None) as scope:

                def closed(f: asyncio.Future[bytes | None]) -> None:
                    if serving and not f.cancelled() and f.result() is None:
                        scope.reschedule(0)

                following.add_done_callback(closed)
                async for data in source:
                    if data:
                        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                        await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except TimeoutError:
            if not scope.expired():
                raise
        finally:
            serving = False  # the callback may still run after the scope is gone
            self.active -= 1
            # Client gone or stream over: closing the generator cancels the upstream request.
            aclose = getattr(source, "aclose", None)
            if aclose:
                await aclose()


async def _next_head(reader: Reader) -> bytes | None:
    """The next request head on a relay connection; None once mitmproxy has closed it."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        return None


def _parse_head(head: bytes) -> tuple[str, int]:
    """(token, body length) of a request head; MalformedHead when it is not one mitmproxy would send."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        raise MalformedHead(f"request line {lines[0][:80]!r}")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            value = value.strip()
            if not (value.isdigit() and len(value) <= 6 and int(value) <= MAX_BODY):
                raise MalformedHead(f"content-length {value[:20]!r}")
            length = int(value)
    return parts[1].decode("latin-1").rsplit("/", 1)[-1], length


def _close_soon(source: AsyncIterator[bytes]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(aclose())
