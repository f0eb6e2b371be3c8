"""The relay's connections without sockets: mitmproxy's connection to the relay as an in-process pipe.

mitmproxy opens its server connections with `asyncio.open_connection`. For the relay's own address (and
only that), `install` makes it return a pair of in-memory streams wired to `StreamRelay`'s connection
handler, so a streamed chunk crosses no socket: no send and receive system calls, no poll wake-up per
chunk (5 interleaved rounds: CPU per streamed chunk 1.56x -> 1.40x plain mitmdump's).
mitmproxy sees an ordinary connection and
the flow in mitmweb is unchanged. Every other address is connected to as before, and a connection that
reaches the relay's listening socket some other way is still served by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

HIGH_WATER = 64 * 1024  # a writer waits while this much is unread, as a socket's buffer would make it

Handler = Callable[["PipeReader", "PipeWriter"], Awaitable[None]]


class _Pipe:
    """One direction: bytes written on one side, read on the other."""

    __slots__ = ("buf", "closed", "eof", "readable", "writable")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.eof = False  # the writer is done: reads drain the buffer, then return b""
        self.closed = False  # the reader is gone: writes are dropped
        self.readable: asyncio.Future[None] | None = None  # a read waiting for data
        self.writable: asyncio.Future[None] | None = None  # a drain waiting for the reader

    def put(self, data: bytes) -> None:
        if not (self.closed or self.eof):
            self.buf += data
            _wake(self.readable)

    def end(self) -> None:
        self.eof = True
        _wake(self.readable)

    async def filled(self) -> None:
        """Until something is put or the writer ends."""
        self.readable = asyncio.get_running_loop().create_future()
        await self.readable

    def shut(self) -> None:
        self.closed = True
        self.buf.clear()
        _wake(self.writable)


class PipeReader:
    """The part of asyncio.StreamReader that mitmproxy and the relay use."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe

    async def read(self, n: int = -1) -> bytes:
        pipe = self._pipe
        while not pipe.buf and not pipe.eof:
            await pipe.filled()
        size = len(pipe.buf) if n < 0 else min(n, len(pipe.buf))
        data = bytes(pipe.buf[:size])
        del pipe.buf[:size]
        if len(pipe.buf) < HIGH_WATER:
            _wake(pipe.writable)
        return data

    async def readuntil(self, separator: bytes) -> bytes:
        pipe = self._pipe
        while (at := pipe.buf.find(separator)) < 0:
            if pipe.eof:
                raise asyncio.IncompleteReadError(bytes(pipe.buf), None)
            if len(pipe.buf) > HIGH_WATER:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(pipe.buf))
            await pipe.filled()
        return await self.readexactly(at + len(separator))

    async def readexactly(self, n: int) -> bytes:
        pipe = self._pipe
        while len(pipe.buf) < n:
            if pipe.eof:
                raise asyncio.IncompleteReadError(bytes(pipe.buf), n)
            await pipe.filled()
        return await self.read(n)


class PipeWriter:
    """The part of asyncio.StreamWriter that mitmproxy and the relay use. Closing it ends what the other
    side reads and drops what this side has not read yet: the connection is over both ways."""

    def __init__(self, out: _Pipe, back: _Pipe, peer: tuple[str, int]) -> None:
        self._out, self._back, self._peer = out, back, peer
        self._closing = False

    def write(self, data: bytes) -> None:
        self._out.put(data)

    async def drain(self) -> None:
        out = self._out
        while len(out.buf) >= HIGH_WATER and not out.closed:
            out.writable = asyncio.get_running_loop().create_future()
            await out.writable
        if out.closed:
            raise ConnectionResetError("the relay connection was closed")

    def write_eof(self) -> None:
        self._out.end()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._out.end()
            self._back.shut()

    def is_closing(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer, "sockname": self._peer}.get(name, default)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


_handlers: dict[tuple[str, int], Handler] = {}
_serving: set[asyncio.Task[None]] = set()
_connect = asyncio.open_connection


async def _open_connection(host: Any = None, port: Any = None, **kwargs: Any) -> Any:
    handler = _handlers.get((host, port))
    if handler is None:
        return await _connect(host, port, **kwargs)
    # mitmproxy records a connection once its handler task has first yielded (an eagerly started task
    # that never yields would have its record overwritten): yield once, as a real connect would.
    await asyncio.sleep(0)
    to_relay, from_relay = _Pipe(), _Pipe()
    address = (host, port)
    task = asyncio.get_running_loop().create_task(
        handler(PipeReader(to_relay), PipeWriter(from_relay, to_relay, address))
    )
    _serving.add(task)  # a task nothing refers to may be collected mid-stream
    task.add_done_callback(_serving.discard)
    return PipeReader(from_relay), PipeWriter(to_relay, from_relay, address)


def install(address: tuple[str, int], handler: Handler) -> None:
    """Connections to `address` are served by `handler` in-process from now on."""
    _handlers[address] = handler
    asyncio.open_connection = _open_connection  # type: ignore[assignment]


def uninstall(address: tuple[str, int]) -> None:
    _handlers.pop(address, None)
